"""Evaluate trees over all fitness cases at once, and remember what was evaluated.

A tree is walked once, from its last prefix node to its first, with one numpy operation
per function node over the whole vector of cases: the per-point Python loop of a naive
interpreter never happens. Offspring that are unchanged copies of a parent (no
crossover, no mutation) and elites are frequent, so outputs are cached by the tree's
flat key; the cache keeps only what the caller still holds (``retain``).
"""

from __future__ import annotations

import numpy as np

from culturesim.kinds.matechoice.gp.primitives import PrimitiveSet
from culturesim.kinds.matechoice.gp.tree import Tree


def evaluate(tree: Tree, X: np.ndarray, pset: PrimitiveSet) -> np.ndarray:
    """The tree's outputs on the cases ``X`` (shape n_vars x n_cases), as float64."""
    n_f = pset.n_functions
    funcs = [f.numpy for f in pset.functions]
    arity = pset.arity
    codes, consts = tree.codes, tree.consts
    stack: list = []
    with np.errstate(all="ignore"):
        for i in range(len(codes) - 1, -1, -1):
            c = codes[i]
            if c < n_f:
                if arity[c] == 1:
                    stack[-1] = funcs[c](stack[-1])
                else:
                    first = stack.pop()
                    stack[-1] = funcs[c](first, stack[-1])
            elif c == pset.const_code:
                stack.append(consts[i])
            else:
                stack.append(X[c - n_f])
    out = np.asarray(stack[0], dtype=np.float64)
    if out.shape != (X.shape[1],):
        out = np.full(X.shape[1], float(out))
    return out


def rmse(outputs: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Root mean squared error along the last axis; inf where any output is not finite."""
    with np.errstate(all="ignore"):
        err = np.sqrt(np.mean((outputs - target) ** 2, axis=-1))
    return np.where(np.isfinite(err), err, np.inf)


def hits(outputs: np.ndarray, target: np.ndarray, threshold: float) -> np.ndarray:
    """Whether every case is within ``threshold`` of its target (the success criterion)."""
    with np.errstate(all="ignore"):
        return np.all(np.abs(outputs - target) <= threshold, axis=-1)


class Evaluator:
    """Outputs of trees on one set of cases, cached by tree."""

    def __init__(self, X: np.ndarray, pset: PrimitiveSet):
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.pset = pset
        self.cache: dict[tuple, np.ndarray] = {}
        self.evaluations = 0

    def __call__(self, tree: Tree) -> np.ndarray:
        key = tree.key
        found = self.cache.get(key)
        if found is None:
            found = self.cache[key] = evaluate(tree, self.X, self.pset)
            found.setflags(write=False)
            self.evaluations += 1
        return found

    def matrix(self, trees: list[Tree]) -> np.ndarray:
        """Outputs of many trees, one row each."""
        if not trees:
            return np.empty((0, self.X.shape[1]))
        return np.vstack([self(t) for t in trees])

    def retain(self, trees: list[Tree]) -> None:
        keep = {t.key for t in trees}
        self.cache = {k: v for k, v in self.cache.items() if k in keep}
