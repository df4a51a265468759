"""Choosing parents: tournament, uniform random, and PIMP (ideal-mate preferences).

Every function selects for many offspring at once (one per *slot*), vectorised with
numpy. Who can be chosen for a slot is its *pool*: the whole population when mating is
panmictic, or the slot and its network neighbours (``Pools.from_graph``). Draws are with
replacement, as in DEAP's ``selTournament``/``selRandom``; a tournament goes to the
lowest error, the first drawn among equals.

PIMP (Simoes, Lourenco and Machado 2023): the first parent is a tournament winner; it
looks at ``k`` candidates (``k`` random members of the pool, or ``k`` tournament
winners) and mates with the one nearest to its ideal mate, the first among equals.
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx
import numpy as np

MODES = ("tournament", "random", "pimp")
CANDIDATE_RULES = ("random", "tournament")


class Pools:
    """Who each slot may choose from: all ``n`` (``table`` None) or a padded table of ids."""

    def __init__(self, n: int, table: np.ndarray | None = None, sizes: np.ndarray | None = None):
        self.n = n
        self.table = table
        self.sizes = sizes

    @classmethod
    def from_graph(cls, graph: nx.Graph) -> Pools:
        """Closed neighbourhoods: a slot mates among itself and its neighbours."""
        n = graph.number_of_nodes()
        members = [[s, *sorted(v for v in graph.neighbors(s) if v != s)] for s in range(n)]
        sizes = np.array([len(m) for m in members])
        table = np.zeros((n, int(sizes.max())), dtype=np.int64)
        for s, m in enumerate(members):
            table[s, : len(m)] = m
        return cls(n, table, sizes)

    def draw(self, slots: np.ndarray, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Uniform members of each slot's pool: an array of shape (len(slots), *shape)."""
        u = rng.random((len(slots), *shape))
        if self.table is None:
            return (u * self.n).astype(np.int64)
        size = self.sizes[slots].reshape((len(slots),) + (1,) * len(shape))
        pos = (u * size).astype(np.int64)
        rows = np.asarray(slots).reshape((len(slots),) + (1,) * len(shape))
        return self.table[rows, pos]


def tournament(fitness: np.ndarray, pools: Pools, slots: np.ndarray, size: int,
               rng: np.random.Generator, count: int | None = None) -> np.ndarray:
    """Winners of tournaments of ``size`` (lowest error wins): one per slot, or ``count``
    per slot (shape (slots, count)) when ``count`` is given."""
    shape = (size,) if count is None else (count, size)
    entrants = pools.draw(slots, shape, rng)
    best = np.argmin(fitness[entrants], axis=-1)
    return np.take_along_axis(entrants, best[..., None], axis=-1)[..., 0]


def uniform(pools: Pools, slots: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return pools.draw(slots, (1,), rng)[:, 0]


def candidates(fitness: np.ndarray, pools: Pools, slots: np.ndarray, k: int, rule: str, size: int,
               rng: np.random.Generator) -> np.ndarray:
    """The ``k`` candidates each slot's first parent looks at, shape (slots, k)."""
    if rule == "random":
        return pools.draw(slots, (k,), rng)
    if rule == "tournament":
        return tournament(fitness, pools, slots, size, rng, count=k)
    raise ValueError(f"unknown candidate rule {rule!r}; allowed: {', '.join(CANDIDATE_RULES)}")


def nearest(cands: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Per row, the candidate at the smallest distance (the first among equals)."""
    return cands[np.arange(len(cands)), np.argmin(distances, axis=1)]


def pimp(fitness: np.ndarray, pools: Pools, slots: np.ndarray, first: np.ndarray, k: int, rule: str,
         size: int, rng: np.random.Generator,
         distance: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Second parents by ideal-mate preference; ``distance(first, cands)`` gives, for each
    first parent, the distance of each candidate to that parent's ideal mate (slots x k).
    Returns the chosen mates and the candidates they were chosen from."""
    cands = candidates(fitness, pools, slots, k, rule, size, rng)
    return nearest(cands, distance(first, cands)), cands
