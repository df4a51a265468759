"""Primitive sets: the functions and terminals trees are built from.

Protected operators keep every tree defined on every input, the convention of Koza (1992)
and of the benchmark suite of McDermott et al. (2012): division by zero gives 1, the log
of 0 gives 0 (and of a negative number the log of its magnitude), square roots take the
magnitude. Each function works on numpy arrays and scalars alike, so a tree is evaluated
over all fitness cases at once; overflow (exp of a large number) gives inf, which the
error measures turn into the worst possible fitness rather than a crash.

A node code indexes, in order: the functions, the input variables, then one code for an
ephemeral random constant whose value lives beside the code (see tree.py).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


def pdiv(a, b):
    """a / b, or 1 where b is 0 (Koza's protected division). Callers silence numpy's
    divide warnings (evaluate.py does, once per tree)."""
    return np.where(b == 0, 1.0, np.divide(a, b))


def plog(a):
    """log |a|, or 0 where a is 0."""
    return np.where(a == 0, 0.0, np.log(np.abs(a)))


def psqrt(a):
    return np.sqrt(np.abs(a))


def pinv(a):
    return pdiv(1.0, a)


def neg(a):
    return np.negative(a)


@dataclass(frozen=True)
class Function:
    name: str
    arity: int
    numpy: Callable  # vectorised, over arrays or scalars
    scalar: Callable  # the same rule on Python floats, for reference evaluation and DEAP


def _sdiv(a: float, b: float) -> float:
    return 1.0 if b == 0 else a / b


def _slog(a: float) -> float:
    return 0.0 if a == 0 else math.log(abs(a))


def _sexp(a: float) -> float:
    try:
        return math.exp(a)
    except OverflowError:
        return math.inf


FUNCTIONS: dict[str, Function] = {f.name: f for f in (
    Function("add", 2, np.add, lambda a, b: a + b),
    Function("sub", 2, np.subtract, lambda a, b: a - b),
    Function("mul", 2, np.multiply, lambda a, b: a * b),
    Function("div", 2, pdiv, _sdiv),
    Function("sin", 1, np.sin, math.sin),
    Function("cos", 1, np.cos, math.cos),
    Function("exp", 1, np.exp, _sexp),
    Function("log", 1, plog, _slog),
    Function("sqrt", 1, psqrt, lambda a: math.sqrt(abs(a))),
    Function("inv", 1, pinv, lambda a: _sdiv(1.0, a)),
    Function("neg", 1, neg, lambda a: -a),
)}

# McDermott et al. (2012), "Genetic programming needs better benchmarks", table 2.
KOZA_SET = ("add", "sub", "mul", "div", "sin", "cos", "exp", "log")
NGUYEN_SET = KOZA_SET
KEIJZER_SET = ("add", "mul", "inv", "neg", "sqrt")


@dataclass(frozen=True)
class Constants:
    """Ephemeral random constants: ``normal`` draws N(a, b), ``uniform`` U[a, b]."""

    kind: str = "none"  # none | normal | uniform
    a: float = 0.0
    b: float = 1.0

    def draw(self, rng: np.random.Generator) -> float:
        if self.kind == "normal":
            return float(rng.normal(self.a, self.b))
        if self.kind == "uniform":
            return float(rng.uniform(self.a, self.b))
        raise ValueError("this primitive set has no constants")


@dataclass(frozen=True)
class PrimitiveSet:
    functions: tuple[Function, ...]
    n_vars: int
    constants: Constants = field(default_factory=Constants)
    var_names: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.var_names:
            object.__setattr__(self, "var_names", tuple(f"x{i}" for i in range(self.n_vars)))
        if len(self.var_names) != self.n_vars:
            raise ValueError(f"{self.n_vars} variables but {len(self.var_names)} names")
        if self.n_vars < 1:
            raise ValueError("a primitive set needs at least one input variable")
        if not self.functions:
            raise ValueError("a primitive set needs at least one function")
        # flat lookup tables indexed by node code, for the hot loops
        object.__setattr__(self, "arity", tuple(f.arity for f in self.functions) + (0,) * (self.n_vars + 1))
        object.__setattr__(self, "names", tuple(f.name for f in self.functions) + self.var_names + ("const",))

    @property
    def n_functions(self) -> int:
        return len(self.functions)

    @property
    def const_code(self) -> int:
        return self.n_functions + self.n_vars

    @property
    def has_constants(self) -> bool:
        return self.constants.kind != "none"

    @property
    def n_terminals(self) -> int:
        return self.n_vars + (1 if self.has_constants else 0)

    def terminal_codes(self) -> range:
        return range(self.n_functions, self.n_functions + self.n_terminals)

    def codes_of_arity(self, arity: int) -> list[int]:
        if arity == 0:
            return list(self.terminal_codes())
        return [i for i, f in enumerate(self.functions) if f.arity == arity]


def make_pset(functions: tuple[str, ...] | list[str], n_vars: int, constants: Constants | None = None,
              var_names: tuple[str, ...] = ()) -> PrimitiveSet:
    """A primitive set from function names; an unknown name is refused with the known ones."""
    found = []
    for name in functions:
        if name not in FUNCTIONS:
            close = difflib.get_close_matches(str(name), FUNCTIONS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown function {name!r}{hint}; known: {', '.join(FUNCTIONS)}")
        found.append(FUNCTIONS[name])
    if len(set(functions)) != len(functions):
        raise ValueError(f"functions listed twice in {list(functions)}")
    return PrimitiveSet(tuple(found), n_vars, constants or Constants(), tuple(var_names))
