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

from culturesim.scenario import SocialSpec

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
) -> np.ndarray:
    """Unnormalised selection weight of each candidate under the scenario's bias."""
    n = len(candidates)
    if spec.bias == "none" or n == 0:
        return np.ones(n)
    if spec.bias == "prestige":
        source = degree if spec.prestige == "degree" else copies
        base = np.array([source.get(c.agent_id, 0) + 1.0 for c in candidates])
    elif spec.bias == "content":
        if spec.content_keywords:
            keys = [k.lower() for k in spec.content_keywords]
            base = np.array([1.0 + sum(c.text.lower().count(k) for k in keys) for c in candidates])
        else:
            lengths = np.array([max(len(c.text), 1) for c in candidates], dtype=float)
            base = lengths / lengths.mean()
    else:  # conformity: how many candidates hold a similar variant (itself included)
        sets = [words(c.text) for c in candidates]
        base = np.array(
            [sum(jaccard(s, t) >= spec.similarity_threshold for t in sets) for s in sets], dtype=float
        )
    return base**spec.strength


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

    Sampling is weighted and without replacement, so the order itself follows the bias:
    when the text budget cuts the list, the favoured ideas are the ones that remain.
    """
    if not candidates:
        return []
    weights = bias_weights(candidates, spec, degree=degree, copies=copies)
    total = weights.sum()
    p = weights / total if total > 0 and np.isfinite(total) else None
    nonzero = len(candidates) if p is None else int((p > 0).sum())
    size = len(candidates) if limit is None else min(limit, len(candidates))
    size = min(size, nonzero)
    picked = rng.choice(len(candidates), size=size, replace=False, p=p)
    return [candidates[i] for i in picked]


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
