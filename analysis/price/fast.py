"""The float path: the three inputs checked and indexed column-wise, fast enough for a GARD step.

Speed: float inputs (a GARD step has tens of thousands of molecules) are validated and indexed
column-wise with numpy and dicts built in C (:func:`_prepare_float`), with no Python loop over
the rows; DataFrames with integer ids need no dict at all. That fast path only ever *accepts*
input; anything it does not recognise at once (an error, a Fraction, an odd type) is handed to the
row-by-row :func:`analysis.price.rows._prepare`, which stays the reference, so error messages and
the exact path are the same whichever way the input came in, and the float terms are the same to
the last bit.
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from analysis.price.rows import WEIGHT_TOLERANCE, _Data, _is_dataframe


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
