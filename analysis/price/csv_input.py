"""The three inputs from CSV files: a user's own genealogy, for ``culturesim price``.

Cells are read as text and parsed here, so that a file of integers and ``a/b`` fractions stays
exact (residual exactly 0) and a bad cell is reported by file and line.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any

import polars as pl

_RATIONAL = re.compile(r"[+-]?\d+(/\d+)?")


def _parse_column(values: list[Any], path: Any, name: str) -> list[Any]:
    """Exact Fractions when every cell is an integer or a/b, else floats, so hand data stays exact."""
    for r, v in enumerate(values):
        if v is None or not str(v).strip():
            raise ValueError(f"{path} line {r + 2}: {name} is missing")
    cells = [str(v).strip() for v in values]
    exact = []
    for r, s in enumerate(cells):
        if _RATIONAL.fullmatch(s):
            try:
                exact.append(Fraction(s))
            except ZeroDivisionError:
                raise ValueError(f"{path} line {r + 2}: {name} {s!r} divides by zero") from None
        else:
            exact.append(None)
    if all(x is not None for x in exact):
        return exact
    out = []
    for r, s in enumerate(cells):
        if exact[r] is not None:  # "2/3" next to "0.5": the file is float, the cell still a number
            try:
                out.append(float(exact[r]))
            except OverflowError:
                raise ValueError(f"{path} line {r + 2}: {name} is too large for a float (other cells are "
                                 f"decimals); rescale the {name}") from None
            continue
        try:
            f = float(s)
        except ValueError:
            raise ValueError(f"{path} line {r + 2}: {name} {s!r} is not a number") from None
        if not math.isfinite(f):
            raise ValueError(f"{path} line {r + 2}: {name} is {s!r}; it must be a finite number")
        out.append(f)
    return out


def _read_csv(path: Any, what: str, required: tuple[str, ...], allow_no_rows: bool = False) -> pl.DataFrame:
    try:  # glob=False: a file named a[1].csv or *.csv is that one file, never a pattern
        df = pl.read_csv(path, infer_schema=False, glob=False)
    except pl.exceptions.NoDataError:
        raise ValueError(f"{what} file {path}: empty file") from None
    except FileNotFoundError:
        raise ValueError(f"{what} file {path}: not found") from None
    except pl.exceptions.PolarsError as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"{what} file {path}: cannot read CSV ({first})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{what} file {path}: not UTF-8 text") from None
    twice = sorted({c.split("_duplicated_")[0] for c in df.columns if "_duplicated_" in c})
    if twice:
        raise ValueError(f"{what} file {path}: column(s) {', '.join(twice)} appear more than once in the header")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{what} file {path}: missing column(s) {', '.join(missing)} (have {', '.join(df.columns)})")
    if df.height == 0 and not allow_no_rows:
        raise ValueError(f"{what} file {path}: no data rows")
    return df


def load_tables(parents_csv: Any, children_csv: Any, attributions_csv: Any) -> tuple[list, list, list]:
    """Row lists ready for :func:`price` from three CSV files.

    ids are read as strings (so ``01`` and ``1`` stay different ids); the parents' ``group``
    column is optional and an empty cell means no group. A header-only attributions file is
    allowed (every child is an innovation); header-only parents or children files are not.
    """
    p = _read_csv(parents_csv, "parents", ("id", "trait"))
    c = _read_csv(children_csv, "children", ("id", "trait"))
    a = _read_csv(attributions_csv, "attributions", ("child", "parent", "weight"), allow_no_rows=True)
    pt = _parse_column(p["trait"].to_list(), parents_csv, "trait")
    groups = p["group"].to_list() if "group" in p.columns else [None] * p.height
    groups = [g if g is not None and g.strip() else None for g in groups]
    parents = list(zip(p["id"].to_list(), groups, pt, strict=True))
    children = list(zip(c["id"].to_list(), _parse_column(c["trait"].to_list(), children_csv, "trait"), strict=True))
    weights = _parse_column(a["weight"].to_list(), attributions_csv, "weight") if a.height else []
    attributions = list(zip(a["child"].to_list(), a["parent"].to_list(), weights, strict=True))
    return parents, children, attributions
