"""Which of its neighbours' ideas an agent sees: sampling, transmission biases, budget.

The biases are the classic ones of cultural evolution theory (Boyd & Richerson 1985):
content bias (some ideas are more attractive), prestige bias (copy successful or
well-connected models) and conformity (copy the majority disproportionately). Each
becomes a weight per candidate idea raised to ``strength``, so strength 0 is unbiased
copying and larger values sharpen the bias.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from culturesim.kinds.culture.schema import SocialSpec

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Candidate:
    """An idea an agent could see, with who holds it."""

    idea_id: str
    text: str
    agent_id: int


def words(text: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _WORD.findall(text))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def bias_weights(
    candidates: list[Candidate],
    spec: SocialSpec,
    *,
    degree: dict[int, int],
    copies: dict[int, int],
    log: bool = False,
) -> np.ndarray:
    """Selection weight of each candidate under the scenario's bias (its log if ``log``).

    Weights are ``base ** strength``; with strong biases that overflows or underflows a
    float, silently turning the strongest bias into none or dropping ideas, so the
    sampler works with ``strength * log(base)`` instead.
    """
    n = len(candidates)
    if spec.bias == "none" or n == 0:
        base = np.ones(n)
    elif spec.bias == "prestige":
        source = degree if spec.prestige == "degree" else copies
        base = np.array([source.get(c.agent_id, 0) + 1.0 for c in candidates])
    elif spec.bias == "content":
        if spec.content_keywords:
            patterns = [re.compile(rf"\b{re.escape(k.lower())}\b") for k in spec.content_keywords]
            base = np.array([1.0 + sum(len(p.findall(c.text.lower())) for p in patterns) for c in candidates])
        else:
            lengths = np.array([max(len(c.text), 1) for c in candidates], dtype=float)
            base = lengths / lengths.mean()
    else:  # conformity: how many candidates hold a similar variant (itself included)
        sets = [words(c.text) for c in candidates]
        base = np.array(
            [sum(jaccard(s, t) >= spec.similarity_threshold for t in sets) for s in sets], dtype=float
        )
    logs = spec.strength * np.log(base)
    return logs if log else np.exp(logs)


def choose(
    candidates: list[Candidate],
    spec: SocialSpec,
    rng: np.random.Generator,
    *,
    limit: int | None,
    degree: dict[int, int],
    copies: dict[int, int],
) -> list[Candidate]:
    """Pick up to ``limit`` candidates (all if None), in the order they will be shown.

    Weighted sampling without replacement by the Gumbel-top-k trick (sort log-weight
    plus Gumbel noise): the same distribution as drawing one at a time in proportion
    to the weights, and exact for any strength. The order itself follows the bias, so
    when the text budget cuts the list, the favoured ideas are the ones that remain.
    """
    if not candidates:
        return []
    logs = bias_weights(candidates, spec, degree=degree, copies=copies, log=True)
    keys = logs + rng.gumbel(size=len(candidates))
    order = [int(i) for i in np.argsort(-keys, kind="stable") if np.isfinite(logs[i])]
    return [candidates[i] for i in order[:limit]]


def fit_budget(texts: list[str], max_chars: int) -> list[str]:
    """Keep texts in order while their total stays within ``max_chars``.

    The first text always stays (truncated if it alone is too long) so an agent is never
    left with nothing to work from.
    """
    kept: list[str] = []
    used = 0
    for text in texts:
        if used + len(text) <= max_chars:
            kept.append(text)
            used += len(text)
        elif not kept:
            kept.append(text[: max(max_chars - 1, 1)] + "…")
            break
        else:
            break
    return kept


def render(texts: list[str], style: str) -> str:
    """The ideas shown, as the ``{ideas}`` of a prompt.

    ``numbered``: one idea bare, several as "1. ..." lines. ``python_list``: LLM-Culture's
    own form (its agent.py appends ``str([str(i) + ': ' + story for i ...])`` to the update
    prompt), the Python list of "i: text" strings numbered from 0, even for one idea.
    """
    if style == "python_list":
        return str([f"{i}: {t}" for i, t in enumerate(texts)])
    return texts[0] if len(texts) == 1 else "\n".join(f"{i}. {t}" for i, t in enumerate(texts, 1))
