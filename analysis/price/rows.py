"""Reading and checking the three inputs row by row: the reference every other path must agree with.

Bad input raises ``ValueError`` naming the offending row rather than producing a decomposition
that silently does not add up. If every trait and weight is an ``int`` or ``fractions.Fraction``
the values stay exact (Fractions); anything else becomes float64, and each child's weights are
renormalised to sum to 1 (they are only checked to within :data:`WEIGHT_TOLERANCE`), so that the
identity then holds to rounding error. :mod:`analysis.price.fast` accepts valid float input
faster and hands everything else to :func:`_prepare` here, so its error messages are the only ones.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import polars as pl

WEIGHT_TOLERANCE = 1e-9


@dataclass
class _Data:
    parent_ids: list[Hashable]
    group_index: list[int]  # parent -> index into groups
    n_groups: int
    zp: list[Any]
    zc: list[Any]
    links: list[tuple[int, int, Any]]  # (child index, parent index, weight)
    inherited: list[bool]  # per child
    exact: bool


def _is_dataframe(obj: Any) -> bool:
    return isinstance(obj, pl.DataFrame)


def _rows(obj: Any, what: str, columns: tuple[str, ...], optional: tuple[str, ...] = ()) -> list[tuple]:
    """Tuples in ``columns`` order from a DataFrame or a sequence, so validation sees one shape."""
    if _is_dataframe(obj):
        missing = [c for c in columns if c not in obj.columns and c not in optional]
        if missing:
            raise ValueError(f"{what}: missing column(s) {', '.join(missing)} (have {', '.join(obj.columns)})")
        exprs = [pl.col(c) if c in obj.columns else pl.lit(None).alias(c) for c in columns]
        return obj.select(exprs).rows()
    if obj is None or isinstance(obj, (str, bytes)) or not isinstance(obj, Iterable):
        raise ValueError(f"{what}: expected a polars DataFrame or a sequence of rows, got {type(obj).__name__}")
    out = []
    short = tuple(c for c in columns if c not in optional)
    for r, row in enumerate(obj):
        if not isinstance(row, (tuple, list)) or len(row) not in (len(columns), len(short)):
            raise ValueError(f"{what} row {r}: expected ({', '.join(columns)}), got {row!r}")
        if len(row) == len(columns):
            out.append(tuple(row))
        else:  # the optional columns are absent: fill them with None in their place
            it = iter(row)
            out.append(tuple(None if c in optional else next(it) for c in columns))
    return out


def _number(v: Any, where: str, name: str) -> tuple[Any, bool]:
    """(value, is_exact); rejects what would make the decomposition meaningless instead of NaN."""
    if isinstance(v, numbers.Integral):
        return Fraction(int(v)), True
    if isinstance(v, numbers.Rational):
        return Fraction(int(v.numerator), int(v.denominator)), True
    if isinstance(v, numbers.Real):
        f = float(v)
        if math.isnan(f):
            raise ValueError(f"{where}: {name} is NaN")
        if math.isinf(f):
            raise ValueError(f"{where}: {name} is infinite")
        return f, False
    if v is None:
        raise ValueError(f"{where}: {name} is missing")
    raise ValueError(f"{where}: {name} must be a real number, got {v!r}")


def _as_float(z: Any, where: str) -> float:
    """An exact trait among float ones, as a float; one too large for a float is refused, never a traceback."""
    try:
        return float(z)
    except OverflowError:
        raise ValueError(f"{where}: trait is too large for a float (other traits are floats, so all are "
                         f"computed in float); rescale the trait (divide it by a constant)") from None


def _hashable(v: Any, where: str, what: str) -> Hashable:
    try:
        hash(v)
    except TypeError:
        raise ValueError(f"{where}: {what} {v!r} is not hashable") from None
    return v


def _check_id(v: Any, where: str) -> Hashable:
    if v is None:
        raise ValueError(f"{where}: id is missing")
    return _hashable(v, where, "id")


def _prepare(parents: Any, children: Any, attributions: Any) -> _Data:
    prow = _rows(parents, "parents", ("id", "group", "trait"), optional=("group",))
    crow = _rows(children, "children", ("id", "trait"))
    arow = _rows(attributions, "attributions", ("child", "parent", "weight"))
    if not prow:
        raise ValueError("parents: empty (no parents, so nothing to decompose)")
    if not crow:
        raise ValueError("children: empty (the children's mean trait is undefined)")

    exact = True
    pindex: dict[Hashable, int] = {}
    parent_ids, zp, groups = [], [], []
    for r, (pid, group, trait) in enumerate(prow):
        where = f"parents row {r} (id={pid!r})"
        _check_id(pid, where)
        if pid in pindex:
            raise ValueError(f"{where}: duplicate parent id {pid!r} (first at row {pindex[pid]})")
        _hashable(group, where, "group")
        z, ex = _number(trait, where, "trait")
        exact &= ex
        pindex[pid] = r
        parent_ids.append(pid)
        zp.append(z)
        groups.append(group)

    cindex: dict[Hashable, int] = {}
    zc = []
    for r, (cid, trait) in enumerate(crow):
        where = f"children row {r} (id={cid!r})"
        _check_id(cid, where)
        if cid in cindex:
            raise ValueError(f"{where}: duplicate child id {cid!r} (first at row {cindex[cid]})")
        z, ex = _number(trait, where, "trait")
        exact &= ex
        cindex[cid] = r
        zc.append(z)

    links: list[tuple[int, int, Any]] = []
    seen: dict[tuple[int, int], int] = {}
    for r, (cid, pid, weight) in enumerate(arow):
        where = f"attributions row {r} (child={cid!r}, parent={pid!r})"
        if cid not in cindex:
            raise ValueError(f"{where}: unknown child id {cid!r}")
        if pid not in pindex:
            raise ValueError(f"{where}: unknown parent id {pid!r}")
        a, ex = _number(weight, where, "weight")
        if a < 0:
            raise ValueError(f"{where}: negative weight {weight!r}")
        key = (cindex[cid], pindex[pid])
        if key in seen:
            raise ValueError(f"{where}: duplicate attribution (first at row {seen[key]})")
        seen[key] = r
        exact &= ex
        links.append((key[0], key[1], a))

    totals: dict[int, Any] = {}
    for c, _, a in links:
        totals[c] = totals.get(c, 0) + a
    for c, total in totals.items():
        ok = total == 1 if exact else abs(float(total) - 1.0) <= WEIGHT_TOLERANCE
        if not ok:
            rows = [seen[(c, p)] for c2, p, _ in links if c2 == c]
            raise ValueError(f"attributions rows {rows} (child={crow[c][0]!r}): weights sum to {total}, not 1")

    if not exact:
        zp = [_as_float(z, f"parents row {r} (id={parent_ids[r]!r})") for r, z in enumerate(zp)]
        zc = [_as_float(z, f"children row {r} (id={crow[r][0]!r})") for r, z in enumerate(zc)]
        # Renormalise so that sum_i w_i z'_i = sum_c z_c holds to rounding, not to 1e-9.
        links = [(c, p, float(a) / float(totals[c])) for c, p, a in links]

    labels: dict[Any, int] = {}
    group_index = [labels.setdefault(g, len(labels)) for g in groups]
    inherited = [c in totals for c in range(len(zc))]
    return _Data(parent_ids, group_index, len(labels), zp, zc, links, inherited, exact)
