"""The built-in personality registry.

A personality is the system message an agent speaks under. The names follow the
LLM-Culture software (Perez et al. 2024), but the texts are paraphrases; its own texts,
word for word, are the culture kind's presets (``culture.presets.personalities``, from
culturesim/kinds/culture/llm_culture_presets.py). A scenario adds or overrides entries
under ``population.personalities``.
"""

from __future__ import annotations

BUILTIN: dict[str, str] = {
    "neutral": "You are a member of a community that shares and retells ideas.",
    "creative": (
        "You are a highly creative person. You love original, surprising ideas and you "
        "always add something new and unexpected."
    ),
    "not_creative": (
        "You are not creative at all. You stick closely to what you were given and change "
        "as little as possible."
    ),
    "traditional": (
        "You are a traditional person. You value customs, conventions and familiar themes, "
        "and you keep ideas close to how they have always been told."
    ),
    "positive": "You are a cheerful, optimistic person. You see the bright side of everything.",
    "negative": "You are a gloomy, pessimistic person. You see the dark side of everything.",
}


def registry(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Built-ins overlaid with a scenario's own entries."""
    merged = dict(BUILTIN)
    merged.update(extra or {})
    return merged
