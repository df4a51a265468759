"""Expression trees as flat prefix sequences.

A tree is a tuple of node codes in prefix order (see primitives.py for what a code
means) and a parallel tuple of constant values (0.0 except at constant nodes). Flat
tuples are hashable, so identical trees share one cached evaluation, and a subtree is a
contiguous slice, so crossover and mutation are slicing and concatenation. Depth follows
DEAP's convention: a lone terminal has depth 0 (the limit of 17 is Koza's).
"""

from __future__ import annotations

import numpy as np

from culturesim.kinds.matechoice.gp.primitives import PrimitiveSet


class Tree:
    """An immutable prefix tree; the depth of each node is worked out on first use."""

    __slots__ = ("codes", "consts", "depth", "_layout")

    def __init__(self, codes: tuple[int, ...], consts: tuple[float, ...], depth: int):
        self.codes = codes
        self.consts = consts
        self.depth = depth
        self._layout: tuple[list[int], list[int]] | None = None

    @property
    def size(self) -> int:
        return len(self.codes)

    @property
    def key(self) -> tuple:
        return (self.codes, self.consts)

    def layout(self, arity: tuple[int, ...]) -> tuple[list[int], list[int]]:
        """Per node: its depth and one past the end of its subtree (kept: parents are
        used by several offspring)."""
        if self._layout is None:
            self._layout = layout(self.codes, arity)
        return self._layout

    def __eq__(self, other) -> bool:
        return isinstance(other, Tree) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"Tree(size={self.size}, depth={self.depth})"


def make_tree(codes: tuple[int, ...] | list[int], consts: tuple[float, ...] | list[float], pset: PrimitiveSet) -> Tree:
    codes, consts = tuple(codes), tuple(consts)
    if len(codes) != len(consts) or not codes:
        raise ValueError("a tree needs as many constants as codes, and at least one node")
    return Tree(codes, consts, depth_of(codes, pset))


def depth_of(codes: tuple[int, ...], pset: PrimitiveSet) -> int:
    """Depth of a prefix sequence (raises if it is not exactly one complete tree)."""
    arity = pset.arity
    stack: list[int] = []  # remaining children to fill, per open node
    deepest = 0
    for i, code in enumerate(codes):
        if not stack and i:
            raise ValueError("prefix sequence holds more than one tree")
        d = len(stack)
        deepest = max(deepest, d)
        if stack:
            stack[-1] -= 1
        a = arity[code]
        if a:
            stack.append(a)
        while stack and stack[-1] == 0:
            stack.pop()
    if stack:
        raise ValueError("prefix sequence ends before the tree is complete")
    return deepest


def layout(codes: tuple[int, ...], arity: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """Depth of every node and the end of its subtree, in prefix order, in one pass."""
    n = len(codes)
    depths = [0] * n
    ends = [0] * n
    stack: list[list[int]] = []  # open ancestors: [index, children still to complete]
    for i, code in enumerate(codes):
        depths[i] = len(stack)
        a = arity[code]
        if a:
            stack.append([i, a])
            continue
        ends[i] = i + 1
        while stack:
            top = stack[-1]
            top[1] -= 1
            if top[1]:
                break
            ends[top[0]] = i + 1
            stack.pop()
    return depths, ends


def to_string(tree: Tree, pset: PrimitiveSet) -> str:
    """DEAP-style prefix text: ``add(x0, mul(x0, 1.5))``; constants with repr precision."""
    names, arity, cc = pset.names, pset.arity, pset.const_code
    out: list[str] = []
    stack: list[list[int]] = []  # per open function: [children still to come, children written]
    for code, value in zip(tree.codes, tree.consts, strict=True):
        if stack:
            if stack[-1][1]:
                out.append(", ")
            stack[-1][0] -= 1
            stack[-1][1] += 1
        a = arity[code]
        if a:
            out.append(names[code] + "(")
            stack.append([a, 0])
        else:
            out.append(repr(value) if code == cc else names[code])
        while stack and stack[-1][0] == 0:
            out.append(")")
            stack.pop()
    return "".join(out)


def generate(pset: PrimitiveSet, rng: np.random.Generator, min_depth: int, max_depth: int, method: str) -> Tree:
    """A random tree by ``full`` or ``grow``, with DEAP's rule: below ``min_depth`` only
    functions, at the drawn height only terminals, in between (grow) a terminal with
    probability terminals / (terminals + functions)."""
    height = int(rng.integers(min_depth, max_depth + 1))
    n_f, n_t = pset.n_functions, pset.n_terminals
    p_term = n_t / (n_t + n_f)
    arity = pset.arity
    cc = pset.const_code
    codes: list[int] = []
    consts: list[float] = []
    open_slots = [0]  # depth of each slot still to fill, as a stack (prefix order)
    while open_slots:
        d = open_slots.pop()
        terminal = d == height or (method == "grow" and d >= min_depth and rng.random() < p_term)
        if terminal:
            code = pset.n_functions + int(rng.integers(n_t))
        else:
            code = int(rng.integers(n_f))
        codes.append(code)
        consts.append(pset.constants.draw(rng) if code == cc else 0.0)
        open_slots.extend([d + 1] * arity[code])
    return make_tree(codes, consts, pset)


def ramped_half_and_half(pset: PrimitiveSet, rng: np.random.Generator, n: int, min_depth: int,
                         max_depth: int) -> list[Tree]:
    """DEAP's genHalfAndHalf: each tree draws its height in [min, max] and grow or full."""
    return [generate(pset, rng, min_depth, max_depth, "grow" if rng.random() < 0.5 else "full") for _ in range(n)]
