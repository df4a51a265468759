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
"""

from __future__ import annotations

import argparse
import json
import math
import numbers
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


def _finish(d: _Data, wbar, between_raw, within_raw, trans_raw, mean_p, mean_c, mean_inh, mean_inn) -> PriceTerms:
    n_c = len(d.zc)
    n_inh = sum(d.inherited)
    n_inn = n_c - n_inh
    zero = Fraction(0) if d.exact else 0.0
    if n_inh == 0:
        between = within = transmission = zero
        innovation = mean_inn - mean_p
    else:
        between, within, transmission = between_raw / wbar, within_raw / wbar, trans_raw / wbar
        innovation = (Fraction(n_inn, n_c) if d.exact else n_inn / n_c) * (mean_inn - mean_inh) if n_inn else zero
    return PriceTerms(
        delta=mean_c - mean_p, selection=between + within, between=between, within=within,
        transmission=transmission, innovation=innovation, mean_fitness=wbar,
        n_parents=len(d.zp), n_children=n_c, n_innovations=n_inn,
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
    return _finish(d, wbar, between, within, trans, zbar, mean_c, mean_inh, mean_inn)


def _terms_float(d: _Data) -> PriceTerms:
    n = len(d.zp)
    z = np.asarray(d.zp, dtype=float)
    zc = np.asarray(d.zc, dtype=float)
    if d.links:
        c_idx, p_idx, a = (np.asarray(x) for x in zip(*d.links, strict=True))
        a = a.astype(float)
        w = np.bincount(p_idx, weights=a, minlength=n)
        wz = np.bincount(p_idx, weights=a * zc[c_idx], minlength=n)
    else:
        w = np.zeros(n)
        wz = np.zeros(n)
    has = w > 0
    zprime = np.where(has, wz / np.where(has, w, 1.0), z)
    g = np.asarray(d.group_index)
    size = np.bincount(g, minlength=d.n_groups).astype(float)
    W = np.bincount(g, weights=w, minlength=d.n_groups) / size
    Z = np.bincount(g, weights=z, minlength=d.n_groups) / size
    wbar, zbar = float(w.mean()), float(z.mean())
    between = float(np.sum(size * (W - wbar) * (Z - zbar)) / n)
    within = float(np.mean((w - W[g]) * (z - Z[g])))
    trans = float(np.mean(w * (zprime - z)))
    inh = np.asarray(d.inherited, dtype=bool)
    mean_inh = float(zc[inh].mean()) if inh.any() else None
    mean_inn = float(zc[~inh].mean()) if (~inh).any() else None
    return _finish(d, wbar, between, within, trans, zbar, float(zc.mean()), mean_inh, mean_inn)


def price(parents: Any, children: Any, attributions: Any) -> PriceTerms:
    """Decompose one step's change in the mean trait into between, within, transmission, innovation.

    ``parents``: rows ``(id, group, trait)`` (or ``(id, trait)``) or a DataFrame with ``id``,
    ``group`` (optional), ``trait``; ``children``: ``(id, trait)``; ``attributions``:
    ``(child, parent, weight)``. Bad input raises ``ValueError`` naming the offending row rather
    than producing a decomposition that silently does not add up.
    """
    d = _prepare(parents, children, attributions)
    return _terms_exact(d) if d.exact else _terms_float(d)


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
    d = _prepare(parents, children, attributions)
    observed = _terms_exact(d) if d.exact else _terms_float(d)
    w_list, _ = _fitness(d)
    w = np.asarray([float(x) for x in w_list])
    z = np.asarray([float(x) for x in d.zp])
    g = np.asarray(d.group_index)
    n_p, n_k = len(z), d.n_groups
    size = np.bincount(g, minlength=n_k).astype(float)
    wbar, zbar = float(w.mean()), float(z.mean())
    Z = np.bincount(g, weights=z, minlength=n_k) / size
    onehot = np.zeros((n_p, n_k))
    onehot[np.arange(n_p), g] = 1.0

    between_null, within_null = [], []
    for perms in _permutations(rng, n_p, int(n)):
        wp = w[perms]  # (b, n_p)
        if wbar == 0:
            between_null.append(np.zeros(len(wp)))
            within_null.append(np.zeros(len(wp)))
            continue
        W = (wp @ onehot) / size  # group mean fitness under this permutation
        b = ((W - wbar) * size) @ (Z - zbar) / n_p / wbar
        total = (wp @ (z - zbar)) / n_p / wbar
        if n_k == 1:
            b = np.zeros(len(wp))
        within = np.zeros(len(wp)) if n_k == n_p else total - b
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
        raise ValueError(f"{what} file {path}: cannot read CSV ({e})") from None
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
