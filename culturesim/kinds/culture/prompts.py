"""Named prompt presets of the culture kind: whole sets of the create / transform / combine
templates, offered by the app's scenario builder (its "prompt preset" picker) and usable by
anyone who writes a scenario by hand.

A preset maps a dotted scenario key to its text; the builder writes those keys into the form
and the YAML, and the scenario's own checks (placeholders known, memory placeholders only with
memory on) apply as to any typed prompt. The kind declares them in its :class:`Kind`
(``prompt_presets``), so the app needs no kind's name to offer them.
"""

from __future__ import annotations

from culturesim.kinds.culture.llm_culture_presets import template
from culturesim.kinds.culture.schema import PromptsSpec

_DEFAULTS = PromptsSpec()

PRESETS: dict[str, dict[str, str]] = {
    # the schema's own defaults: picking it undoes another preset
    "short stories (default)": {
        "culture.prompts.create": _DEFAULTS.create,
        "culture.prompts.transform": _DEFAULTS.transform,
        "culture.prompts.combine": _DEFAULTS.combine,
    },
    # LLM-Culture's own prompts (Perez et al. 2024), verbatim from llm_culture_presets (which cites
    # their files and commit), with how their code sends them: personality in the user message,
    # the stories received appended as their Python list
    "LLM-Culture stories (verbatim)": {
        "culture.prompts.create": template("create", "story teller"),
        "culture.prompts.transform": template("transform", "MinorChanges"),
        "culture.prompts.combine": template("combine", "CombineTwo"),
        "culture.personality_in": "user",
        "culture.ideas_format": "python_list",
    },
    # one line per idea: cheap for small models, easy to compare by eye and by embedding
    "proverbs": {
        "culture.prompts.create": "Invent one new proverb. Write only the proverb, in one sentence.",
        "culture.prompts.transform": "Here is a proverb you heard:\n{ideas}\n\nSay it again as a new proverb "
                                     "of one sentence. Write only the proverb.",
        "culture.prompts.combine": "Here are proverbs told by people around you:\n{ideas}\n\nMerge them into "
                                   "one new proverb of one sentence. Write only the proverb.",
    },
}
