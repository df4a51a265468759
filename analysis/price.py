"""Exact Price-equation decomposition of the change in a mean trait across one step of any genealogy.

Why this module exists: claims such as "the population drifted towards longer ideas because
long ideas were copied more" (selection) versus "because every copy came out longer"
(transmission bias) versus "because fresh ideas were longer" (innovation) are only worth
citing if the parts add up to the change that was actually observed. Every term here is
therefore defined so that the identity holds *exactly*, not approximately, and
:meth:`PriceTerms.check` returns the residual so callers (and tests) can prove it.

Inputs are generic, so the same code serves LLM idea runs, GP populations, molecular
assemblies or a user's own CSV files:

* parents ``i`` with trait ``z_i`` and a group label ``g_i`` (``None`` is a label like any other;
  all ``None`` means one group);
* children ``c`` with trait ``z_c``;
* attributions ``a(c, i) >= 0``: how much of child ``c`` comes from parent ``i``. A child with at
  least one attribution must have weights summing to 1; a child with none is an *innovation*.

Definitions (population moments throughout: divide by ``N``, never ``N - 1``, because the
identity is a statement about these parents, not an estimate about a larger population):

* fitness ``w_i = sum_c a(c, i)``, so ``sum_i w_i = N_inh`` (number of inherited children) and the
  mean fitness is ``w_bar = N_inh / N_p``;
* offspring trait ``z'_i = sum_c a(c, i) z_c / w_i``, and ``z'_i = z_i`` when ``w_i = 0`` (a parent
  with no offspring contributes nothing to either term, and never a NaN);
* since ``sum_i w_i z'_i = sum_c z_c`` over inherited children, ``E(w z') / w_bar = z_bar_inh``
  and the single-level Price equation reads
  ``w_bar (z_bar_inh - z_bar) = Cov(w, z) + E(w dz)`` with ``dz_i = z'_i - z_i``;
* with groups ``k`` of ``n_k`` parents (group means ``W_k``, ``Z_k``), the law of total covariance
  splits ``Cov(w, z) = Cov_k(W_k, Z_k) + E_k[Cov_k(w, z)]`` with both outer moments weighted by
  ``n_k / N_p``; ``E(w dz)`` needs no split because a size-weighted mean of group means is the
  overall mean.

Normalisation, chosen so that the terms sum to the observed change with nothing left over::

    delta        = z_bar_children - z_bar_parents
    between      = Cov_k(W_k, Z_k)   / w_bar
    within       = E_k[Cov_k(w, z)]  / w_bar
    selection    = between + within
    transmission = E(w dz)           / w_bar
    innovation   = (N_inn / N_c) (z_bar_inn - z_bar_inh)
    delta        = between + within + transmission + innovation     (exactly)

The first three terms explain how the *inherited* children's mean differs from the parents'
mean; the innovation term is how far the innovations pull the children's mean away from that,
because ``z_bar_children = z_bar_inh + (N_inn / N_c)(z_bar_inn - z_bar_inh)``. When no child is
inherited (``N_inh = 0``) there is no fitness to divide by: selection and transmission are 0 and
the innovation term is the whole change, ``z_bar_inn - z_bar_parents``.

Arithmetic: if every trait and weight is an ``int`` or ``fractions.Fraction`` the computation
is pure Python on Fractions and the identity holds with residual exactly 0 (useful for hand
checks and for reviewers who distrust floating point). Anything else goes through numpy in
float64; each child's weights are renormalised to sum to 1 first (they are only checked to
within 1e-9), so the identity then holds to rounding error (about 1e-15 relative).

Speed: float inputs (a GARD step has tens of thousands of molecules) are validated and indexed
column-wise with numpy and dicts built in C (:func:`_prepare_float`), with no Python loop over
the rows; DataFrames with integer ids need no dict at all. That fast path only ever *accepts*
input; anything it does not recognise at once (an error, a Fraction, an odd type) is handed to the
row-by-row :func:`_prepare`, which stays the reference, so error messages and the exact path are
the same whichever way the input came in, and the float terms are the same to the last bit.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import numbers
import operator
import random
import re
import sys
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

__all__ = ["PriceTerms", "price", "permutation_null", "price_from_run", "load_tables", "main"]

WEIGHT_TOLERANCE = 1e-9

_TERMS = ("delta", "selection", "between", "within", "transmission", "innovation", "mean_fitness")


@dataclass(frozen=True)
class PriceTerms:
    """The parts of one step's change in the mean trait; Fractions when the inputs were exact.

    Kept as a plain record so that results can be tabulated across steps or runs
    (``as_dict``) and audited (``check``) without re-running the decomposition.
    """

    delta: Any
    selection: Any
    between: Any
    within: Any
    transmission: Any
    innovation: Any
    mean_fitness: Any
    n_parents: int
    n_children: int
    n_innovations: int

    @property
    def exact(self) -> bool:
        return isinstance(self.delta, Fraction)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> Any:
        """Residual of the identity: exactly 0 for Fraction inputs, rounding error for floats."""
        return self.delta - (self.between + self.within + self.transmission + self.innovation)


# --------------------------------------------------------------------------- input handling


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
        zp = [float(z) for z in zp]
        zc = [float(z) for z in zc]
        # Renormalise so that sum_i w_i z'_i = sum_c z_c holds to rounding, not to 1e-9.
        links = [(c, p, float(a) / float(totals[c])) for c, p, a in links]

    labels: dict[Any, int] = {}
    group_index = [labels.setdefault(g, len(labels)) for g in groups]
    inherited = [c in totals for c in range(len(zc))]
    return _Data(parent_ids, group_index, len(labels), zp, zc, links, inherited, exact)


# --------------------------------------------------------------------------- the fast float path


@dataclass
class _Arrays:
    """A float problem as arrays: what :func:`_terms_float` and :func:`permutation_null` compute on."""

    z: np.ndarray  # parent traits
    g: np.ndarray  # parent -> group index (groups numbered by first appearance)
    n_groups: int
    zc: np.ndarray  # child traits
    c: np.ndarray  # link -> child index
    p: np.ndarray  # link -> parent index
    a: np.ndarray  # link weights, renormalised so that each child's sum to 1
    inherited: np.ndarray  # per child: has at least one link


_FLOAT_TYPES = frozenset({float, np.float64, np.float32, np.float16})
# Types _number takes as numbers: Integral (exact) and Real (float). np.bool_ is neither, so it is left out.
_REAL_TYPES = _FLOAT_TYPES | {int, bool, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                              np.uint64}
_INT_IDS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32)  # fit int64 exactly


def _columns(obj: Any, columns: tuple[str, ...], optional: tuple[str, ...] = ()) -> list | None:
    """Each column as a Series or a list (None: an absent optional one); None when rows are not all alike."""
    if _is_dataframe(obj):
        if any(c not in obj.columns and c not in optional for c in columns):
            return None
        return [obj.get_column(c) if c in obj.columns else None for c in columns]
    if not isinstance(obj, (list, tuple)) or not set(map(type, obj)) <= {tuple, list}:
        return None
    if not obj:
        return [[] for _ in columns]
    lengths = set(map(len, obj))
    if lengths == {len(columns)}:
        names = columns
    elif optional and lengths == {len(columns) - len(optional)}:
        names = tuple(c for c in columns if c not in optional)
    else:
        return None
    # itemgetter, not zip(*obj): no object per row, so no garbage-collector passes over big inputs
    got = {c: list(map(operator.itemgetter(k), obj)) for k, c in enumerate(names)}
    return [got.get(c) for c in columns]


def _floats(col: Any) -> tuple[np.ndarray, bool] | None:
    """(values as float64, whether any value was a float), or None unless every value is a finite number."""
    if isinstance(col, pl.Series):
        if col.null_count():
            return None
        if col.dtype.is_float() or col.dtype.is_integer() or col.dtype == pl.Boolean:
            x, has_float = col.to_numpy().astype(np.float64), col.dtype.is_float()
        elif col.dtype == pl.Object:
            return _floats(col.to_list())
        else:
            return None
    else:
        types = set(map(type, col))
        if not types <= _REAL_TYPES:
            return None
        try:
            x = np.array(col, dtype=np.float64)
        except (OverflowError, TypeError, ValueError):
            return None
        has_float = bool(types & _FLOAT_TYPES)
    return (x, has_float) if np.isfinite(x).all() else None


def _values(col: Any) -> list | tuple:
    return col.to_list() if isinstance(col, pl.Series) else col


def _int_ids(col: Any) -> np.ndarray | None:
    if isinstance(col, pl.Series) and col.dtype in _INT_IDS and not col.null_count():
        return col.to_numpy().astype(np.int64)
    return None


def _lookup(keys: Any, queries: Any) -> np.ndarray | None:
    """Row of each query among ``keys`` (-1: none); None when keys repeat, are missing or unhashable."""
    n = len(keys)
    k, q = _int_ids(keys), _int_ids(queries)
    if k is not None and q is not None:  # integer ids: sort and search, no dict at all
        order = np.argsort(k, kind="stable")
        ks = k[order]
        if n > 1 and bool((ks[1:] == ks[:-1]).any()):
            return None
        pos = np.minimum(np.searchsorted(ks, q), n - 1)
        return np.where(ks[pos] == q, order[pos], -1) if len(q) else np.zeros(0, dtype=np.int64)
    try:  # any hashable ids, matched by Python equality as in _prepare; the loops run in C
        keys = _values(keys)
        index = dict(zip(keys, range(n), strict=True))
        if len(index) != n or None in index:
            return None
        queries = _values(queries)
        return np.fromiter(map(index.get, queries, itertools.repeat(-1)), dtype=np.int64, count=len(queries))
    except TypeError:
        return None


def _group_codes(col: Any, n: int) -> tuple[np.ndarray, int] | None:
    """Group index per parent, groups numbered in order of first appearance (as _prepare numbers them)."""
    if col is None:
        return np.zeros(n, dtype=np.int64), 1
    ints = _int_ids(col)
    if ints is not None:
        labels, first, inverse = np.unique(ints, return_index=True, return_inverse=True)
        rank = np.empty(len(labels), dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(labels))
        return rank[inverse.reshape(-1)], len(labels)
    values = _values(col)
    try:
        code = {g: k for k, g in enumerate(dict.fromkeys(values))}
    except TypeError:
        return None
    return np.fromiter(map(code.__getitem__, values), dtype=np.int64, count=n), len(code)


def _prepare_float(parents: Any, children: Any, attributions: Any) -> _Arrays | None:
    """Column-wise :func:`_prepare` for valid float input; None whenever :func:`_prepare` must look.

    None covers every error (so that :func:`_prepare` raises its own message, naming the row), exact
    input (ints and Fractions only), and any input not in a shape checked here at once. Sums and the
    renormalisation run in the same order as in :func:`_prepare`, so the numbers are the same bits.
    """
    pcols = _columns(parents, ("id", "group", "trait"), optional=("group",))
    ccols = _columns(children, ("id", "trait"))
    acols = _columns(attributions, ("child", "parent", "weight"))
    if pcols is None or ccols is None or acols is None:
        return None
    (pid, group, ptrait), (cid, ctrait), (achild, aparent, aweight) = pcols, ccols, acols
    n_p, n_c, m = len(pid), len(cid), len(achild)
    if not n_p or not n_c:
        return None
    zp, zc, a = _floats(ptrait), _floats(ctrait), _floats(aweight) if m else (np.zeros(0), False)
    if zp is None or zc is None or a is None or not (zp[1] or zc[1] or a[1]):
        return None  # a bad number, or exact input (which keeps the Fraction path)
    (z, _), (zc, _), (a, _) = zp, zc, a
    groups = _group_codes(group, n_p)
    c, p = _lookup(cid, achild), _lookup(pid, aparent)
    if groups is None or c is None or p is None:
        return None
    if m and (bool((c < 0).any()) or bool((p < 0).any()) or bool((a < 0).any())
              or np.unique(c * n_p + p).size != m):
        return None  # unknown ids, negative weights, duplicate links
    totals = np.bincount(c, weights=a, minlength=n_c)
    inherited = np.bincount(c, minlength=n_c) > 0
    if bool((np.abs(totals[inherited] - 1.0) > WEIGHT_TOLERANCE).any()):
        return None
    return _Arrays(z, groups[0], groups[1], zc, c, p, a / totals[c] if m else a, inherited)


def _arrays(d: _Data) -> _Arrays:
    """The float problem that :func:`_prepare` built row by row, as arrays."""
    if d.links:
        c_idx, p_idx, a = (np.asarray(x) for x in zip(*d.links, strict=True))
        a = a.astype(float)
    else:
        c_idx = p_idx = np.zeros(0, dtype=np.int64)
        a = np.zeros(0)
    return _Arrays(np.asarray(d.zp, dtype=float), np.asarray(d.group_index), d.n_groups, np.asarray(d.zc, dtype=float),
                   c_idx, p_idx, a, np.asarray(d.inherited, dtype=bool))


# --------------------------------------------------------------------------- the decomposition


def _fitness(d: _Data) -> tuple[list[Any], list[Any]]:
    """Per-parent (w, z'), with z' = z for a parent without offspring so nothing is NaN."""
    zero = Fraction(0) if d.exact else 0.0
    w = [zero] * len(d.zp)
    wz = [zero] * len(d.zp)
    for c, p, a in d.links:
        w[p] += a
        wz[p] += a * d.zc[c]
    zprime = [wz[i] / w[i] if w[i] != 0 else d.zp[i] for i in range(len(w))]
    return w, zprime


def _finish(exact: bool, n_p: int, n_c: int, n_inh: int, wbar, between_raw, within_raw, trans_raw,
            mean_p, mean_c, mean_inh, mean_inn) -> PriceTerms:
    n_inn = n_c - n_inh
    zero = Fraction(0) if exact else 0.0
    if n_inh == 0:
        between = within = transmission = zero
        innovation = mean_inn - mean_p
    else:
        between, within, transmission = between_raw / wbar, within_raw / wbar, trans_raw / wbar
        innovation = (Fraction(n_inn, n_c) if exact else n_inn / n_c) * (mean_inn - mean_inh) if n_inn else zero
    return PriceTerms(
        delta=mean_c - mean_p, selection=between + within, between=between, within=within,
        transmission=transmission, innovation=innovation, mean_fitness=wbar,
        n_parents=n_p, n_children=n_c, n_innovations=n_inn,
    )


def _terms_exact(d: _Data) -> PriceTerms:
    w, zprime = _fitness(d)
    n = len(w)
    wbar = sum(w, Fraction(0)) / n
    zbar = sum(d.zp, Fraction(0)) / n
    size = [0] * d.n_groups
    wsum = [Fraction(0)] * d.n_groups
    zsum = [Fraction(0)] * d.n_groups
    for i, k in enumerate(d.group_index):
        size[k] += 1
        wsum[k] += w[i]
        zsum[k] += d.zp[i]
    W = [wsum[k] / size[k] for k in range(d.n_groups)]
    Z = [zsum[k] / size[k] for k in range(d.n_groups)]
    between = sum((size[k] * (W[k] - wbar) * (Z[k] - zbar) for k in range(d.n_groups)), Fraction(0)) / n
    within = sum(((w[i] - W[k]) * (d.zp[i] - Z[k]) for i, k in enumerate(d.group_index)), Fraction(0)) / n
    trans = sum((w[i] * (zprime[i] - d.zp[i]) for i in range(n)), Fraction(0)) / n

    def mean(xs):
        xs = list(xs)
        return sum(xs, Fraction(0)) / len(xs) if xs else None

    mean_c = mean(d.zc)
    mean_inh = mean(z for z, inh in zip(d.zc, d.inherited, strict=True) if inh)
    mean_inn = mean(z for z, inh in zip(d.zc, d.inherited, strict=True) if not inh)
    return _finish(True, n, len(d.zc), sum(d.inherited), wbar, between, within, trans, zbar, mean_c, mean_inh,
                   mean_inn)


def _terms_float(d: _Arrays) -> PriceTerms:
    n = len(d.z)
    z, zc, g = d.z, d.zc, d.g
    w = np.bincount(d.p, weights=d.a, minlength=n)
    wz = np.bincount(d.p, weights=d.a * zc[d.c], minlength=n)
    has = w > 0
    zprime = np.where(has, wz / np.where(has, w, 1.0), z)
    size = np.bincount(g, minlength=d.n_groups).astype(float)
    W = np.bincount(g, weights=w, minlength=d.n_groups) / size
    Z = np.bincount(g, weights=z, minlength=d.n_groups) / size
    wbar, zbar = float(w.mean()), float(z.mean())
    between = float(np.sum(size * (W - wbar) * (Z - zbar)) / n)
    within = float(np.mean((w - W[g]) * (z - Z[g])))
    trans = float(np.mean(w * (zprime - z)))
    inh = d.inherited
    n_inh = int(inh.sum())
    mean_inh = float(zc[inh].mean()) if n_inh else None
    mean_inn = float(zc[~inh].mean()) if n_inh < len(zc) else None
    return _finish(False, n, len(zc), n_inh, wbar, between, within, trans, zbar, float(zc.mean()), mean_inh, mean_inn)


def _materialise(rows: Any) -> Any:
    """A one-shot iterable (a generator) read into a list, so that both preparations can see it."""
    if _is_dataframe(rows) or isinstance(rows, (list, tuple, str, bytes)) or not isinstance(rows, Iterable):
        return rows
    return list(rows)


def _prepared(parents: Any, children: Any, attributions: Any) -> _Arrays | _Data:
    """Arrays for float input, the exact row-by-row :class:`_Data` for ints and Fractions; errors raise."""
    parents, children, attributions = (_materialise(x) for x in (parents, children, attributions))
    fast = _prepare_float(parents, children, attributions)
    if fast is not None:
        return fast
    d = _prepare(parents, children, attributions)
    return d if d.exact else _arrays(d)


def price(parents: Any, children: Any, attributions: Any) -> PriceTerms:
    """Decompose one step's change in the mean trait into between, within, transmission, innovation.

    ``parents``: rows ``(id, group, trait)`` (or ``(id, trait)``) or a DataFrame with ``id``,
    ``group`` (optional), ``trait``; ``children``: ``(id, trait)``; ``attributions``:
    ``(child, parent, weight)``. Bad input raises ``ValueError`` naming the offending row rather
    than producing a decomposition that silently does not add up. Float input of any size is
    handled column-wise (DataFrames with integer ids fastest); exact input row by row.
    """
    d = _prepared(parents, children, attributions)
    return _terms_exact(d) if isinstance(d, _Data) else _terms_float(d)


# --------------------------------------------------------------------------- permutation null


def _permutations(rng: Any, n_items: int, n: int) -> Iterable[np.ndarray]:
    """Batches of permutations from whichever kind of generator the caller uses for reproducibility."""
    if rng is None or isinstance(rng, (int, np.integer)):
        rng = np.random.default_rng(rng)
    batch = max(1, min(n, 4_000_000 // max(1, n_items)))
    done = 0
    while done < n:
        b = min(batch, n - done)
        if isinstance(rng, np.random.Generator):
            yield rng.permuted(np.tile(np.arange(n_items), (b, 1)), axis=1)
        elif isinstance(rng, random.Random):
            rows = []
            for _ in range(b):
                perm = list(range(n_items))
                rng.shuffle(perm)
                rows.append(perm)
            yield np.asarray(rows, dtype=np.intp).reshape(b, n_items)
        else:
            raise ValueError(f"rng must be a numpy Generator, a random.Random, an int seed or None, got {rng!r}")
        done += b


def permutation_null(parents: Any, children: Any, attributions: Any, *, n: int = 1000, rng: Any = None) -> dict:
    """How surprising the observed between- and within-group selection is if fitness ignored the trait.

    Each parent's offspring (its fitness, together with its offspring trait) is handed to a
    random parent of the same step; groups and parent traits stay put. Only fitness enters
    the selection terms, so this breaks exactly the trait-fitness association they measure
    while keeping the fitness distribution, the group sizes and the innovations. The null is a
    statistical statement, so it is computed in float64 even for exact inputs.

    Returns ``{"n": n, "between": {...}, "within": {...}}``, each with ``observed``, ``mean``,
    ``sd`` (population sd of the null draws), ``z`` and a two-sided ``p``
    (``(1 + #{|null - mean| >= |observed - mean|}) / (n + 1)``). When the null has no spread
    (one group for between, singleton groups for within, or no inherited children) ``z`` is 0.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    d = _prepared(parents, children, attributions)
    if isinstance(d, _Data):  # exact input: the observed terms stay Fractions, the null is float
        observed = _terms_exact(d)
        w = np.asarray([float(x) for x in _fitness(d)[0]])
        z = np.asarray([float(x) for x in d.zp])
        g, n_k = np.asarray(d.group_index), d.n_groups
    else:
        observed = _terms_float(d)
        w = np.bincount(d.p, weights=d.a, minlength=len(d.z))
        z, g, n_k = d.z, d.g, d.n_groups
    n_p = len(z)
    size = np.bincount(g, minlength=n_k).astype(float)
    wbar, zbar = float(w.mean()), float(z.mean())
    Z = np.bincount(g, weights=z, minlength=n_k) / size
    # With fitness permuted, Cov_k(W_k, Z_k) = E[(w - w_bar)(Z_g - z_bar)] and E_k[Cov_k] = E[(w - w_bar)(z - Z_g)]
    # (both trait factors sum to 0 over the parents), so each draw is two dot products over the
    # parents: O(n_p) per draw and no (n_p x groups) matrix.
    between_axis = (Z[g] - zbar) / n_p
    within_axis = (z - Z[g]) / n_p
    centred = w - wbar

    between_null, within_null = [], []
    for perms in _permutations(rng, n_p, int(n)):
        if wbar == 0:
            between_null.append(np.zeros(len(perms)))
            within_null.append(np.zeros(len(perms)))
            continue
        wp = centred[perms]  # (b, n_p): row r gives parent j the offspring of parent perms[r, j]
        b = np.zeros(len(wp)) if n_k == 1 else wp @ between_axis / wbar
        within = np.zeros(len(wp)) if n_k == n_p else wp @ within_axis / wbar
        between_null.append(b)
        within_null.append(within)

    def summary(obs: Any, draws: list[np.ndarray]) -> dict[str, float]:
        x = np.concatenate(draws)
        obs = float(obs)
        mean, sd = float(x.mean()), float(x.std())
        tol = 1e-9 * (float(np.std(w)) * float(np.std(z)) / wbar if wbar else 0.0) + 1e-300
        dev = abs(obs - mean)
        if sd <= tol:
            zscore = 0.0 if dev <= tol else math.copysign(math.inf, obs - mean)
        else:
            zscore = (obs - mean) / sd
        p = (1 + int(np.sum(np.abs(x - mean) >= dev - tol))) / (len(x) + 1)
        return {"observed": obs, "mean": mean, "sd": sd, "z": zscore, "p": min(1.0, p)}

    return {"n": int(n), "between": summary(observed.between, between_null),
            "within": summary(observed.within, within_null)}


# --------------------------------------------------------------------------- idea runs


def price_from_run(
    ideas: pl.DataFrame,
    trait: pl.DataFrame,
    groups: Mapping[Any, Any] | None,
    parent_step: int,
    child_step: int,
) -> PriceTerms:
    """Price terms between two steps of an idea run (``culturesim.store`` ideas table).

    Only direct links count: a child's parents are the valid ideas of ``parent_step`` among its
    ``parent_ids``, each credited equally (``1/k`` as an exact Fraction), because the runs record
    which ideas were shown, not how much each contributed. A child whose listed parents all lie
    elsewhere is an innovation for this step. Failed ideas (``error`` set or ``text`` null) are
    neither parents nor children. Groups come from ``groups[agent_id]`` of the parent's author,
    i.e. frozen at the parent step (``None``: one group).
    """
    for col in ("step", "agent_id", "idea_id", "parent_ids"):
        if col not in ideas.columns:
            raise ValueError(f"ideas: missing column {col!r}")
    for col in ("idea_id", "value"):
        if col not in trait.columns:
            raise ValueError(f"trait: missing column {col!r}")
    if child_step <= parent_step:
        raise ValueError(f"child_step ({child_step}) must come after parent_step ({parent_step})")

    values: dict[Any, Any] = {}
    for r, (iid, value) in enumerate(trait.select("idea_id", "value").rows()):
        if iid in values:
            raise ValueError(f"trait row {r}: duplicate idea_id {iid!r}")
        values[iid] = value

    valid = ideas
    if "error" in ideas.columns:
        valid = valid.filter(pl.col("error").is_null())
    if "text" in ideas.columns:
        valid = valid.filter(pl.col("text").is_not_null())

    def value_of(iid: Any) -> Any:
        if iid not in values:
            raise ValueError(f"trait: no value for idea {iid!r}")
        return values[iid]

    parents = []
    for iid, agent in valid.filter(pl.col("step") == parent_step).select("idea_id", "agent_id").rows():
        if groups is None:
            group = None
        elif agent in groups:
            group = groups[agent]
        else:
            raise ValueError(f"groups: no group for agent {agent!r} (author of parent idea {iid!r})")
        parents.append((iid, group, value_of(iid)))
    if not parents:
        raise ValueError(f"ideas: no valid ideas at parent_step={parent_step}")
    parent_set = {p[0] for p in parents}

    children, attributions = [], []
    rows = valid.filter(pl.col("step") == child_step).select("idea_id", "parent_ids").rows()
    if not rows:
        raise ValueError(f"ideas: no valid ideas at child_step={child_step}")
    for iid, pids in rows:
        children.append((iid, value_of(iid)))
        linked = list(dict.fromkeys(p for p in (pids or []) if p in parent_set))
        attributions.extend((iid, p, Fraction(1, len(linked))) for p in linked)
    return price(parents, children, attributions)


# --------------------------------------------------------------------------- files and CLI

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
            out.append(float(exact[r]))
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
    try:
        df = pl.read_csv(path, infer_schema=False)
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


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit; we report and return 2
        raise _UsageError(message)


def _json_terms(terms: PriceTerms) -> dict[str, Any]:
    out: dict[str, Any] = {
        "exact": terms.exact,
        "terms": {k: float(getattr(terms, k)) for k in _TERMS},
        "n_parents": terms.n_parents, "n_children": terms.n_children, "n_innovations": terms.n_innovations,
    }
    if terms.exact:
        out["exact_terms"] = {k: f"{getattr(terms, k).numerator}/{getattr(terms, k).denominator}" for k in _TERMS}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``price --parents P.csv --children C.csv --attributions A.csv [--out terms.json]``."""
    parser = _Parser(prog="price", description="Exact Price-equation decomposition of one genealogy step.")
    parser.add_argument("--parents", required=True, help="CSV with columns id, [group,] trait")
    parser.add_argument("--children", required=True, help="CSV with columns id, trait")
    parser.add_argument("--attributions", required=True, help="CSV with columns child, parent, weight")
    parser.add_argument("--out", help="write the terms as JSON here")
    try:
        args = parser.parse_args(argv)
        terms = price(*load_tables(args.parents, args.children, args.attributions))
        lines = []
        for k in ("delta", "between", "within", "transmission", "innovation"):
            v = getattr(terms, k)
            lines.append(f"{k:<13} {v!s:>14}  ({float(v):.6g})" if terms.exact else f"{k:<13} {v:.12g}")
        print("\n".join(lines))
        print(f"n_parents={terms.n_parents} n_children={terms.n_children} n_innovations={terms.n_innovations} "
              f"mean_fitness={terms.mean_fitness!s}")
        if args.out:
            Path(args.out).write_text(json.dumps(_json_terms(terms), indent=2) + "\n")
    except SystemExit as e:  # --help
        return int(e.code or 0)
    except (_UsageError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
