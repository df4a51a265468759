"""The exact decomposition: :class:`PriceTerms` and :func:`price`.

Every term here is defined so that the identity holds *exactly*, not approximately, and
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

Normalisation, chosen so that the terms sum to the observed change with nothing left over.
With ``m = N_inn / N_c`` the share of the children that are innovations (new entrants without
parents among these parents), two forms of the innovation term are offered
(``innovation_form``):

* ``"immigration"`` (the default, the form readers know): the immigration form of the
  generalised Price equation, Kerr & Godfrey-Smith (2009), "Generalization of the Price
  equation for evolutionary change", *Evolution* 63(2): 531-536. The offspring generation is
  a share ``1 - m`` of inherited children and a share ``m`` of immigrants; selection and
  transmission are weighted by the inherited share and the immigrants pull the mean by how
  far they are from the *parents*::

      delta        = z_bar_children - z_bar_parents
      between      = (1 - m) Cov_k(W_k, Z_k)  / w_bar
      within       = (1 - m) E_k[Cov_k(w, z)] / w_bar
      transmission = (1 - m) E(w dz)          / w_bar
      innovation   = m (z_bar_inn - z_bar_parents)

* ``"residual"``: selection and transmission unweighted (they explain the inherited children's
  mean exactly, as in Price's closed-population equation) and innovation is what is left,
  how far the innovations pull the children's mean away from the inherited children's::

      between      = Cov_k(W_k, Z_k)  / w_bar
      within       = E_k[Cov_k(w, z)] / w_bar
      transmission = E(w dz)          / w_bar
      innovation   = m (z_bar_inn - z_bar_inh)

Both are exact, because ``z_bar_children = (1 - m) z_bar_inh + m z_bar_inn`` and
``z_bar_inh - z_bar_parents = (Cov(w, z) + E(w dz)) / w_bar``::

    delta = between + within + transmission + innovation     (exactly, in either form)
    selection = between + within

They agree when there are no innovations (``m = 0``). The immigration form is the default so
that a term called "selection" means what it means in the literature: the change selection
makes in the *whole* offspring generation, which it only partly makes when a share ``m`` of
that generation came from elsewhere. When no child is inherited (``N_inh = 0``, ``m = 1``)
there is no fitness to divide by: selection and transmission are 0 and the innovation term is
the whole change, ``z_bar_inn - z_bar_parents``, in both forms. Every result records its form
(:attr:`PriceTerms.innovation_form`).

Arithmetic: if every trait and weight is an ``int`` or ``fractions.Fraction`` the computation
is pure Python on Fractions and the identity holds with residual exactly 0 (useful for hand
checks and for reviewers who distrust floating point). Anything else goes through numpy in
float64; each child's weights are renormalised to sum to 1 first (they are only checked to
within 1e-9), so the identity then holds to rounding error (about 1e-15 relative).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from analysis.price.fast import _Arrays, _arrays, _prepare_float
from analysis.price.rows import _Data, _is_dataframe, _prepare

_TERMS = ("delta", "selection", "between", "within", "transmission", "innovation", "mean_fitness")
# The two forms of the innovation term (see the module docstring); the first is the default.
INNOVATION_FORMS = ("immigration", "residual")
FORM_SOURCES = {
    "immigration": "Kerr & Godfrey-Smith 2009, Evolution 63(2):531-536: selection and transmission weighted by "
                   "the inherited share 1 - m, innovation m (z_new - z_parents)",
    "residual": "selection and transmission of the inherited children unweighted, innovation m (z_new - z_inherited)",
}


def check_form(innovation_form: str) -> str:
    """The form, or a one-line ValueError naming the allowed ones."""
    if innovation_form not in INNOVATION_FORMS:
        raise ValueError(f"unknown innovation_form {innovation_form!r}; allowed: {', '.join(INNOVATION_FORMS)}")
    return innovation_form


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
    innovation_form: str = "immigration"  # which form of the innovation term (module docstring)

    @property
    def exact(self) -> bool:
        return isinstance(self.delta, Fraction)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> Any:
        """Residual of the identity: exactly 0 for Fraction inputs, rounding error for floats."""
        return self.delta - (self.between + self.within + self.transmission + self.innovation)


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
            mean_p, mean_c, mean_inh, mean_inn, innovation_form: str = "immigration") -> PriceTerms:
    n_inn = n_c - n_inh
    zero = Fraction(0) if exact else 0.0
    if n_inh == 0:
        between = within = transmission = zero
        innovation = mean_inn - mean_p
    else:
        between, within, transmission = between_raw / wbar, within_raw / wbar, trans_raw / wbar
        m = Fraction(n_inn, n_c) if exact else n_inn / n_c
        if innovation_form == "immigration":  # Kerr & Godfrey-Smith (2009): weight by the inherited share
            kept = 1 - m
            between, within, transmission = kept * between, kept * within, kept * transmission
            innovation = m * (mean_inn - mean_p) if n_inn else zero
        else:
            innovation = m * (mean_inn - mean_inh) if n_inn else zero
    terms = PriceTerms(
        delta=mean_c - mean_p, selection=between + within, between=between, within=within,
        transmission=transmission, innovation=innovation, mean_fitness=wbar,
        n_parents=n_p, n_children=n_c, n_innovations=n_inn, innovation_form=innovation_form,
    )
    if not exact:
        _require_finite(terms)
    return terms


def _require_finite(terms: PriceTerms) -> None:
    """Float arithmetic on traits near the largest float overflows to inf (and inf - inf to nan): such
    terms neither add up nor mean anything, so they are refused, never returned."""
    bad = [k for k in _TERMS if not math.isfinite(getattr(terms, k))]
    if bad:
        shown = ", ".join(f"{k}={getattr(terms, k)}" for k in bad)
        raise ValueError(f"the decomposition overflows float arithmetic ({shown}): the traits are too large; "
                         f"rescale the trait (divide it by a constant, e.g. 1e6) and decompose again")


def _terms_exact(d: _Data, innovation_form: str = "immigration") -> PriceTerms:
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
                   mean_inn, innovation_form)


def _terms_float(d: _Arrays, innovation_form: str = "immigration") -> PriceTerms:
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused as a whole by _finish
        return _terms_float_raw(d, innovation_form)


def _terms_float_raw(d: _Arrays, innovation_form: str) -> PriceTerms:
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
    return _finish(False, n, len(zc), n_inh, wbar, between, within, trans, zbar, float(zc.mean()), mean_inh, mean_inn,
                   innovation_form)


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


def price(parents: Any, children: Any, attributions: Any, *, innovation_form: str = "immigration") -> PriceTerms:
    """Decompose one step's change in the mean trait into between, within, transmission, innovation.

    ``innovation_form``: ``"immigration"`` (default; Kerr & Godfrey-Smith 2009, selection and
    transmission weighted by the inherited share ``1 - m``, innovation ``m (z_new - z_parents)``)
    or ``"residual"`` (selection and transmission of the inherited children unweighted, innovation
    ``m (z_new - z_inherited)``); the module docstring has both. The result records which.

    ``parents``: rows ``(id, group, trait)`` (or ``(id, trait)``) or a DataFrame with ``id``,
    ``group`` (optional), ``trait``; ``children``: ``(id, trait)``; ``attributions``:
    ``(child, parent, weight)``. Bad input raises ``ValueError`` naming the offending row rather
    than producing a decomposition that silently does not add up. Float input of any size is
    handled column-wise (DataFrames with integer ids fastest); exact input row by row.
    """
    check_form(innovation_form)
    d = _prepared(parents, children, attributions)
    return _terms_exact(d, innovation_form) if isinstance(d, _Data) else _terms_float(d, innovation_form)
