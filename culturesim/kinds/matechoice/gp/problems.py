"""Symbolic regression problems: the standard benchmarks and a user's CSV dataset.

Definitions and sampling follow McDermott et al. (2012), "Genetic programming needs better
benchmarks", table 2 (U[a, b, n]: n points drawn uniformly from [a, b]; E[a, b, s]: a grid
from a to b with step s):

- Koza-1:    x^4 + x^3 + x^2 + x,             train U[-1, 1, 20]
- Nguyen-7:  log(x + 1) + log(x^2 + 1),       train U[0, 2, 20]
- Keijzer-6: sum_{i=1..x} 1/i,                train E[1, 50, 1], test E[1, 120, 1]
- Pagie-1:   1/(1 + x^-4) + 1/(1 + y^-4),     train E[-5, 5, 0.4] in both inputs (676 points)

Koza-1, Nguyen-7 and Pagie-1 have no standard test set; here their test set is a fresh
draw of the same size from the same range (uniform in the square for Pagie-1), so test
error measures generalisation between the training points. Random points come from the
generator the caller passes (seeded by the scenario), so a run's data are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from culturesim.kinds.matechoice.gp.primitives import (
    KEIJZER_SET,
    KOZA_SET,
    NGUYEN_SET,
    Constants,
    PrimitiveSet,
    make_pset,
)

BENCHMARKS = ("koza1", "nguyen7", "keijzer6", "pagie1")


@dataclass(frozen=True)
class Problem:
    name: str
    pset: PrimitiveSet
    X_train: np.ndarray  # n_vars x n_cases
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def koza1(x: np.ndarray) -> np.ndarray:
    return x**4 + x**3 + x**2 + x


def nguyen7(x: np.ndarray) -> np.ndarray:
    return np.log(x + 1) + np.log(x**2 + 1)


def keijzer6(x: np.ndarray) -> np.ndarray:
    """Harmonic numbers H(x) for integer x >= 1."""
    x = np.asarray(x, dtype=int)
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, int(x.max()) + 1))])
    return harmonic[x]


def pagie1(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 1 / (1 + x**-4.0) + 1 / (1 + y**-4.0)


# name -> (function set, constants)
STANDARD_SETS: dict[str, tuple[tuple[str, ...], Constants]] = {
    "koza1": (KOZA_SET, Constants()),
    "nguyen7": (NGUYEN_SET, Constants()),
    "keijzer6": (KEIJZER_SET, Constants("normal", 0.0, 5.0)),
    "pagie1": (NGUYEN_SET, Constants()),
}


def benchmark(name: str, rng: np.random.Generator, functions: tuple[str, ...] | None = None,
              constants: Constants | None = None) -> Problem:
    """A benchmark's data and primitive set (its standard one unless overridden)."""
    std_functions, std_constants = STANDARD_SETS[name]
    if name == "koza1":
        xtr, xte = rng.uniform(-1, 1, 20), rng.uniform(-1, 1, 20)
        X_train, y_train, X_test, y_test = xtr[None], koza1(xtr), xte[None], koza1(xte)
    elif name == "nguyen7":
        xtr, xte = rng.uniform(0, 2, 20), rng.uniform(0, 2, 20)
        X_train, y_train, X_test, y_test = xtr[None], nguyen7(xtr), xte[None], nguyen7(xte)
    elif name == "keijzer6":
        xtr, xte = np.arange(1, 51), np.arange(1, 121)
        X_train, y_train = xtr[None].astype(float), keijzer6(xtr)
        X_test, y_test = xte[None].astype(float), keijzer6(xte)
    elif name == "pagie1":
        axis = -5 + 0.4 * np.arange(26)
        gx, gy = np.meshgrid(axis, axis, indexing="ij")
        X_train = np.vstack([gx.ravel(), gy.ravel()])
        X_test = rng.uniform(-5, 5, size=(2, X_train.shape[1]))
        y_train, y_test = pagie1(*X_train), pagie1(*X_test)
    else:
        raise ValueError(f"unknown problem {name!r}; allowed: {', '.join(BENCHMARKS)}, csv")
    n_vars = X_train.shape[0]
    names = ("x",) if n_vars == 1 else ("x", "y")
    pset = make_pset(functions or std_functions, n_vars, constants or std_constants, names)
    return Problem(name, pset, X_train, y_train, X_test, y_test)


def _read_table(path: Path, where: str) -> pl.DataFrame:
    if not path.is_file():
        raise ValueError(f"{where}: {path} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"{where}: {path} is empty")
    try:
        table = pl.read_csv(path, infer_schema_length=None)
    except Exception as exc:  # noqa: BLE001 - polars raises several kinds for a bad CSV
        raise ValueError(f"{where}: {path} is not a readable CSV ({type(exc).__name__}: {exc})") from None
    if table.height == 0:
        raise ValueError(f"{where}: {path} has a header but no rows")
    return table


def _matrix(table: pl.DataFrame, columns: list[str], path: Path, where: str) -> np.ndarray:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{where}: {path} lacks column(s) {missing}; it has {table.columns}")
    for c in columns:
        dtype = table.schema[c]
        values = table[c].cast(pl.Float64, strict=False) if dtype.is_numeric() or dtype == pl.String else None
        unreadable = values is None or (values.is_null() & table[c].is_not_null()).any()
        if unreadable:  # a column polars could not read as numbers ("nan" and "inf" can be)
            bad = values.is_null() & table[c].is_not_null() if values is not None else table[c].is_not_null()
            row = int(bad.arg_max())
            raise ValueError(f"{where}: {path} column {c!r} is not numeric ({dtype}; e.g. "
                             f"{table[c][row]!r} on data row {row + 1})")
        bad = values.is_null() | ~values.is_finite()
        if bad.any():
            row = int(bad.arg_max())
            raise ValueError(f"{where}: {path} column {c!r} has {int(bad.sum())} missing, NaN or infinite "
                             f"value(s), the first on data row {row + 1}")
    return table.select(columns).cast(pl.Float64).to_numpy().T.copy()


def from_csv(path: Path, target: str, inputs: list[str] | None, *, test_path: Path | None,
             test_fraction: float, rng: np.random.Generator, functions: tuple[str, ...],
             constants: Constants, where: str = "matechoice.problem.csv") -> Problem:
    """A dataset from CSV columns: ``inputs`` (default: every column but the target) -> ``target``.

    The test set is another file, or a seeded random share of the rows, or (fraction 0)
    the training set itself.
    """
    table = _read_table(path, f"{where}.path")
    if target not in table.columns:
        raise ValueError(f"{where}.target: {path} has no column {target!r}; it has {table.columns}")
    inputs = list(inputs) if inputs else [c for c in table.columns if c != target]
    if not inputs:
        raise ValueError(f"{where}.inputs: {path} has no input column besides the target {target!r}")
    if target in inputs:
        raise ValueError(f"{where}.inputs: the target {target!r} cannot also be an input")
    X = _matrix(table, inputs, path, f"{where}.path")
    y = _matrix(table, [target], path, f"{where}.path")[0]
    if test_path is not None:
        test = _read_table(test_path, f"{where}.test_path")
        X_test = _matrix(test, inputs, test_path, f"{where}.test_path")
        y_test = _matrix(test, [target], test_path, f"{where}.test_path")[0]
        X_train, y_train = X, y
    elif test_fraction > 0:
        n_test = int(round(test_fraction * len(y)))
        if n_test < 1 or n_test >= len(y):
            raise ValueError(f"{where}.test_fraction: {test_fraction} of {len(y)} rows leaves no training "
                             f"or no test rows")
        order = rng.permutation(len(y))
        te, tr = np.sort(order[:n_test]), np.sort(order[n_test:])
        X_train, y_train, X_test, y_test = X[:, tr], y[tr], X[:, te], y[te]
    else:
        X_train, y_train, X_test, y_test = X, y, X, y
    safe = tuple(inputs)
    pset = make_pset(functions, len(inputs), constants, safe)
    return Problem(path.stem, pset, X_train, y_train, X_test, y_test)
