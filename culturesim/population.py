"""What every population of LLM agents shares, whatever its kind: who has which personality,
how ideas are named, and the seed of each request.

Seeds come from (run seed, step, agent id) rather than from a stream carried across steps,
so a model rebuilt from the recorded rows of steps 1..t continues exactly as an
uninterrupted run, and every kind's agents draw their requests' seeds the same way.
"""

from __future__ import annotations

import numpy as np


def request_seed(run_seed: int, step: int, agent_id: int) -> int:
    """A 32-bit seed per (run, step, agent): what llama.cpp and OpenAI servers accept."""
    return int(np.random.SeedSequence([run_seed, step, agent_id]).generate_state(1)[0])


def assign_personalities(mix: dict[str, float], n: int, rng: np.random.Generator) -> list[str]:
    """Exact counts by largest remainder, then shuffled: a 50/50 mix of 10 is 5 and 5."""
    names = list(mix)
    weights = np.array([mix[k] for k in names], dtype=float)
    quotas = weights / weights.sum() * n
    counts = np.floor(quotas).astype(int)
    for i in np.argsort(-(quotas - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    labels = [name for name, c in zip(names, counts, strict=True) for _ in range(c)]
    rng.shuffle(labels)
    return labels


def idea_id(step: int, agent_id: int) -> str:
    return f"s{step}-a{agent_id}"
