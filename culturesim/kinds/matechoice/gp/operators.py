"""Variation: subtree crossover, subtree and point mutation, under a depth limit.

The operators follow DEAP's standard GP so the two can be compared like for like:
one-point subtree crossover picks a non-root node uniformly in each parent; subtree
mutation (mutUniform) replaces a uniformly chosen subtree by a fresh ``full`` tree;
point mutation (mutNodeReplacement) swaps one node for a random primitive of the same
arity (a terminal for a terminal, with a fresh constant). An offspring deeper than the
limit is replaced by its (first) parent, as DEAP's ``staticLimit`` does.
"""

from __future__ import annotations

import numpy as np

from culturesim.kinds.matechoice.gp.primitives import PrimitiveSet
from culturesim.kinds.matechoice.gp.tree import Tree, generate

MUTATIONS = ("subtree", "point", "both")


def crossover(a: Tree, b: Tree, rng: np.random.Generator, pset: PrimitiveSet, max_depth: int) -> Tree:
    """``a`` with one of its subtrees replaced by one of ``b``'s (one child, the first)."""
    if a.size < 2 or b.size < 2:
        return a
    i = int(rng.integers(1, a.size))
    j = int(rng.integers(1, b.size))
    da, ends_a = a.layout(pset.arity)
    db, ends_b = b.layout(pset.arity)
    ei, ej = ends_a[i], ends_b[j]
    # the child's depth from its parents' node depths, without walking the child
    outside = max(max(da[:i]), max(da[ei:], default=0))
    depth = max(outside, da[i] + max(db[j:ej]) - db[j])
    if depth > max_depth:
        return a
    return Tree(a.codes[:i] + b.codes[j:ej] + a.codes[ei:], a.consts[:i] + b.consts[j:ej] + a.consts[ei:], depth)


def subtree_mutation(a: Tree, rng: np.random.Generator, pset: PrimitiveSet, max_depth: int,
                     depth_range: tuple[int, int]) -> Tree:
    i = int(rng.integers(a.size))
    da, ends = a.layout(pset.arity)
    end = ends[i]
    new = generate(pset, rng, depth_range[0], depth_range[1], "full")
    depth = max(max(da[:i], default=0), max(da[end:], default=0), da[i] + new.depth)
    if depth > max_depth:
        return a
    return Tree(a.codes[:i] + new.codes + a.codes[end:], a.consts[:i] + new.consts + a.consts[end:], depth)


def point_mutation(a: Tree, rng: np.random.Generator, pset: PrimitiveSet) -> Tree:
    """One node replaced by a random primitive of the same arity (depth cannot change)."""
    i = int(rng.integers(a.size))
    choices = pset.codes_of_arity(pset.arity[a.codes[i]])
    code = choices[int(rng.integers(len(choices)))]
    value = pset.constants.draw(rng) if code == pset.const_code else 0.0
    return Tree(a.codes[:i] + (code,) + a.codes[i + 1:], a.consts[:i] + (value,) + a.consts[i + 1:], a.depth)


def mutate(a: Tree, kind: str, rng: np.random.Generator, pset: PrimitiveSet, max_depth: int,
           depth_range: tuple[int, int]) -> Tree:
    """``both`` picks subtree or point mutation with equal probability, per mutation."""
    if kind == "both":
        kind = "subtree" if rng.random() < 0.5 else "point"
    if kind == "subtree":
        return subtree_mutation(a, rng, pset, max_depth, depth_range)
    if kind == "point":
        return point_mutation(a, rng, pset)
    raise ValueError(f"unknown mutation {kind!r}; allowed: {', '.join(MUTATIONS)}")


def vary(a: Tree, b: Tree, rng: np.random.Generator, pset: PrimitiveSet, *, crossover_rate: float,
         mutation_rate: float, mutation: str, max_depth: int, depth_range: tuple[int, int]) -> Tree:
    """One offspring of ``a`` and ``b``: crossover with its rate, then mutation with its rate."""
    if rng.random() < crossover_rate:
        a = crossover(a, b, rng, pset, max_depth)
    if rng.random() < mutation_rate:
        a = mutate(a, mutation, rng, pset, max_depth, depth_range)
    return a
