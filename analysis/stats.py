"""Statistics for comparing conditions of simulation studies.

Simulation studies here compare conditions (say high vs low AI exposure) across replicate runs,
so the unit of replication is the run, sample sizes are small, and the quantities of interest
(diversity, convergence) are rarely normal. Hence the emphasis on rank effect sizes, resampling
tests and intervals, and mixed models with a random intercept per run.

Every function is pure: numpy arrays or polars frames in, numbers or frames out. Randomness comes
only from a ``numpy.random.Generator`` the caller passes in, so a seed replays an analysis exactly.
scipy and statsmodels do the work wherever they already can; what is written out by hand says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats as sps

__all__ = [
    "TestResult",
    "bootstrap_ci",
    "cliffs_delta",
    "compare_conditions",
    "holm",
    "mixed_slopes",
    "sign_flip_test",
    "wald_contrast",
]

_ALTERNATIVES = ("two-sided", "greater", "less")
_BOOT_METHODS = {"percentile": "percentile", "bca": "BCa"}
# 2**16 sign vectors x 16 differences is a few MB; beyond that exact enumeration stops being cheap.
_EXACT_MAX_N = 16
_EXACT_FORCED_MAX_N = 24


def _as_1d(values, name: str) -> np.ndarray:
    """Reject what would otherwise become a silently wrong number (NaN, wrong shape, empty)."""
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


# --------------------------------------------------------------------------------------------------
# Effect size


def cliffs_delta(x, y) -> float:
    """Cliff's delta: P(X > Y) - P(X < Y), ties counting zero.

    A rank effect size suits simulation outputs (bounded, skewed, tie-heavy diversity scores) where a
    difference of means would be dominated by a few runs. Written by hand because neither scipy nor
    statsmodels provides it; it is computed by sorting ``y`` once and binary-searching each ``x``,
    O((n + m) log m) rather than the n*m pair loop, so it stays cheap for long per-step series.
    Positive means ``x`` tends to be larger.
    """
    x = _as_1d(x, "x")
    y = np.sort(_as_1d(y, "y"))
    below = np.searchsorted(y, x, side="left")  # y values strictly less than each x
    above = y.size - np.searchsorted(y, x, side="right")  # y values strictly greater than each x
    return float((below.sum() - above.sum()) / (x.size * y.size))


# --------------------------------------------------------------------------------------------------
# Paired permutation test


@dataclass(frozen=True)
class TestResult:
    """Outcome of a resampling test; ``exact`` says whether the p-value is enumerated or estimated."""

    __test__ = False  # the name starts with "Test"; keep pytest from trying to collect it

    statistic: float
    p_value: float
    n_permutations: int
    exact: bool


def sign_flip_test(
    differences,
    *,
    n_permutations: int = 10_000,
    rng: np.random.Generator | None = None,
    alternative: str = "two-sided",
    exact: bool | None = None,
) -> TestResult:
    """Paired permutation test of a zero mean difference by flipping the signs of the differences.

    For paired designs (the same seed or network run under two conditions) the null hypothesis of no
    effect makes each difference's sign arbitrary; flipping signs needs no normality, which a handful
    of replicate runs cannot justify. By default, with n <= 16 all 2**n sign vectors are enumerated, so the
    p-value is exact and no ``rng`` is needed; otherwise ``n_permutations`` random sign vectors from
    ``rng`` give a Monte Carlo p-value with the +1 correction ((count + 1) / (n_permutations + 1)),
    which keeps it valid (never zero). Written by hand rather than via
    ``scipy.stats.permutation_test(permutation_type="samples")`` so the exact/Monte Carlo switch, the
    +1 correction and the tie tolerance are explicit and fixed here rather than depending on scipy's
    heuristics. Zero differences are allowed: they contribute nothing under any flip.

    ``alternative="greater"`` tests for a positive mean difference, ``"less"`` for a negative one.
    ``exact`` overrides the automatic choice: True enumerates (allowed up to n = 24, 16M sign
    vectors), False forces Monte Carlo, e.g. to check it against the enumeration.
    """
    d = _as_1d(differences, "differences")
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}")
    n = d.size
    observed = float(d.mean())
    # Flipped sums of the same magnitudes can differ from the observed sum by rounding alone; count
    # those as ties (as large as observed) so the p-value is not biased downward.
    tol = 1e-9 * max(1.0, float(np.abs(d).sum()))
    obs_sum = float(d.sum())

    def count_extreme(sums: np.ndarray) -> int:
        if alternative == "two-sided":
            return int(np.count_nonzero(np.abs(sums) >= abs(obs_sum) - tol))
        if alternative == "greater":
            return int(np.count_nonzero(sums >= obs_sum - tol))
        return int(np.count_nonzero(sums <= obs_sum + tol))

    if exact is None:
        exact = n <= _EXACT_MAX_N
    if exact and n > _EXACT_FORCED_MAX_N:
        raise ValueError(f"exact enumeration of 2**{n} sign vectors is too large; use Monte Carlo")
    if exact:
        total = 2**n
        count = 0
        chunk = 2**16  # enumerate in slices so forced large-n enumeration stays within memory
        for start in range(0, total, chunk):
            codes = np.arange(start, min(start + chunk, total), dtype=np.int64)[:, None]
            signs = 1.0 - 2.0 * ((codes >> np.arange(n)) & 1)
            count += count_extreme(signs @ d)
        return TestResult(statistic=observed, p_value=count / total, n_permutations=total, exact=True)

    if rng is None:
        raise ValueError(f"rng is required for the Monte Carlo test (n = {n}; exact only up to {_EXACT_MAX_N})")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be positive, got {n_permutations}")
    count = 0
    batch = max(1, 1_000_000 // n)  # bound memory for long difference vectors
    done = 0
    while done < n_permutations:
        size = min(batch, n_permutations - done)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(size, n))
        count += count_extreme(signs @ d)
        done += size
    p = (count + 1) / (n_permutations + 1)
    return TestResult(statistic=observed, p_value=float(p), n_permutations=n_permutations, exact=False)


# --------------------------------------------------------------------------------------------------
# Bootstrap


def bootstrap_ci(
    x,
    statistic: Callable = np.mean,
    *,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    rng: np.random.Generator,
    method: str = "percentile",
) -> tuple[float, float]:
    """Bootstrap confidence interval for a statistic of one sample of replicate values.

    Delegates to ``scipy.stats.bootstrap``; this wrapper pins the choices that matter for small
    simulation samples: an explicit seeded ``rng`` (so the interval replays), and a choice between
    the plain percentile interval and BCa, which corrects bias and skew at the cost of needing
    variation in the data (BCa on constant data is undefined and comes back as NaN from scipy).
    ``statistic`` is vectorised by scipy when it takes an ``axis`` argument, as numpy reductions do.
    """
    arr = _as_1d(x, "x")
    if arr.size < 2:
        raise ValueError(f"bootstrap needs at least 2 values, got {arr.size}")
    if method not in _BOOT_METHODS:
        raise ValueError(f"method must be one of {tuple(_BOOT_METHODS)}, got {method!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    res = sps.bootstrap(
        (arr,),
        statistic,
        n_resamples=n_boot,
        confidence_level=confidence,
        method=_BOOT_METHODS[method],
        rng=rng,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


# --------------------------------------------------------------------------------------------------
# Multiple comparisons


def holm(p_values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the order given.

    Comparing several conditions against one baseline is a family of tests; Holm controls the
    family-wise error rate like Bonferroni but is uniformly more powerful, and needs no independence
    assumption between the comparisons (they share the baseline). statsmodels'
    ``multipletests(method="holm")`` computes the same thing; this is written out (a sort and a
    running maximum) so bad input (NaN, values outside [0, 1]) is rejected rather than propagated,
    an empty family returns an empty array, and the test suite can use statsmodels as an
    independent reference.
    """
    p = np.asarray(p_values, dtype=float).reshape(-1)
    if p.size == 0:
        return p.copy()
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p_values must lie in [0, 1] and not be NaN")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = (m - np.arange(m)) * p[order]
    adjusted_sorted = np.minimum(np.maximum.accumulate(stepped), 1.0)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted


# --------------------------------------------------------------------------------------------------
# Mixed model slopes


def _check_columns(frame: pl.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks column(s) {missing}; it has {frame.columns}")
    nulls = [c for c in columns if frame[c].null_count() > 0]
    if nulls:
        raise ValueError(f"column(s) {nulls} contain nulls; drop or fill them first")


def _fit_mixedlm(formula: str, data):
    """Fit, turning statsmodels' warnings into data instead of console noise.

    Gradient optimisers stall when the between-run variance sits at zero (common in simulations where
    runs differ only by noise); a derivative-free refit (Powell) then converges to the same fixed
    effects, so it is tried before declaring non-convergence. Returns the result, whether the final
    fit converged with a usable (positive-definite) Hessian, and the final fit's warning messages.
    """
    import statsmodels.formula.api as smf

    def attempt(**kwargs):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = smf.mixedlm(formula, data, groups=data["_group"]).fit(reml=True, **kwargs)
        messages = list(dict.fromkeys(str(w.message) for w in caught))
        hessian_ok = not any("not positive definite" in m for m in messages)
        return result, bool(result.converged) and hessian_ok, messages

    result, converged, messages = attempt()
    if not converged:
        try:
            retry = attempt(method=["powell"])
        except (np.linalg.LinAlgError, ValueError):  # keep the first fit, flagged as not converged
            retry = (None, False, [])
        if retry[1]:
            result, converged, messages = retry
    return result, converged, messages


def wald_contrast(contrast: np.ndarray, beta: np.ndarray, cov: np.ndarray) -> tuple[float, float, float, float]:
    """Estimate, standard error, Wald z and two-sided normal p of the linear combination
    ``contrast @ beta`` of fitted coefficients: a condition's slope is the reference slope plus
    its interaction, and the variance of that sum is L' V L (exact for a linear combination),
    not the sum of the two variances. A non-positive variance gives se 0 and z, p NaN."""
    contrast = np.asarray(contrast, dtype=np.float64)
    estimate = float(contrast @ beta)
    se = float(np.sqrt(max(float(contrast @ cov @ contrast), 0.0)))
    z = estimate / se if se > 0 else float("nan")
    p = float(2 * sps.norm.sf(abs(z))) if np.isfinite(z) else float("nan")
    return estimate, se, z, p


def mixed_slopes(
    frame: pl.DataFrame,
    *,
    value: str,
    step: str = "step",
    condition: str = "condition",
    group: str = "run_id",
    baseline=None,
    covariates: Sequence[str] = (),
) -> pl.DataFrame:
    """Per-condition slope of ``value`` over ``step`` from a mixed model with a random intercept per group.

    Repeated measures within a run are not independent, so regressing over all rows would overstate
    precision; a random intercept per run (or chain) absorbs the run-to-run offset and tests the
    trend against the right noise. The model is statsmodels MixedLM ``value ~ step * C(condition)``
    (REML) with the first condition in sorted order as reference. Each condition's slope is the
    reference slope plus its interaction; its standard error comes from the fitted fixed-effect
    covariance of that sum (L' V L, exact for a linear combination), with a Wald z and two-sided
    normal p-value. With one condition the model is just ``value ~ step``.

    Returns one row per condition: condition, slope, se, z, p_value, n_groups (groups observed in that
    condition), n_obs, converged (optimiser converged with a positive-definite Hessian) and
    fit_warnings (statsmodels' messages, e.g. a random-intercept variance on the boundary at zero,
    kept as data instead of printed).

    With ``baseline`` (one of the conditions), each row also has its slope's difference from the
    baseline's slope from the same fit: slope_diff, diff_se (L' V L with L the difference of the two
    contrasts), diff_z and diff_p (Wald, two-sided); null on the baseline's own row. The model is the
    same whichever condition is its reference, so the slopes do not depend on the baseline.

    Each of ``covariates`` enters as ``covariate * C(condition)`` (its own slope per condition),
    so ``step``'s slope is read with them held fixed.
    """
    _check_columns(frame, [value, step, condition, group, *covariates])
    n_groups_total = frame[group].n_unique()
    if n_groups_total < 2:
        raise ValueError(
            f"mixed_slopes needs at least 2 groups in {group!r} to estimate a random intercept, "
            f"got {n_groups_total}"
        )
    levels = sorted(frame[condition].unique().to_list())
    if baseline is not None and baseline not in levels:
        raise ValueError(f"baseline {baseline!r} not among conditions {levels}")
    code_of = {level: i for i, level in enumerate(levels)}
    # Internal column names keep the formula safe whatever the caller's names or condition labels.
    data = pl.DataFrame(
        {
            "_y": frame[value].cast(pl.Float64),
            "_t": frame[step].cast(pl.Float64),
            "_c": frame[condition].replace_strict(code_of, return_dtype=pl.Int64),
            "_group": frame[group].cast(pl.String),
            **{f"_v{k}": frame[cov].cast(pl.Float64) for k, cov in enumerate(covariates)},
        }
    ).to_pandas()
    if not np.all(np.isfinite(data.drop(columns=["_c", "_group"]).to_numpy())):
        names = f"{value!r} and {step!r}" if not covariates else str([value, step, *covariates])
        raise ValueError(f"columns {names} must be finite")

    many = len(levels) > 1
    terms = ["_t * C(_c)" if many else "_t"]
    terms += [(f"_v{k} * C(_c)" if many else f"_v{k}") for k in range(len(covariates))]
    result, converged, messages = _fit_mixedlm("_y ~ " + " + ".join(terms), data)
    names = list(result.fe_params.index)
    beta = result.fe_params.to_numpy()
    cov = result.cov_params().loc[names, names].to_numpy()

    def contrast_of(code: int) -> np.ndarray:
        contrast = np.zeros(len(names))
        contrast[names.index("_t")] = 1.0
        if code > 0:
            contrast[names.index(f"_t:C(_c)[T.{code}]")] = 1.0
        return contrast

    def wald(contrast: np.ndarray) -> tuple[float, float, float, float]:
        return wald_contrast(contrast, beta, cov)

    rows = []
    for level, code in code_of.items():
        contrast = contrast_of(code)
        slope, se, z, p = wald(contrast)
        in_level = frame.filter(pl.col(condition) == level)
        diff = {}
        if baseline is not None:
            if level == baseline:
                diff = {"slope_diff": None, "diff_se": None, "diff_z": None, "diff_p": None}
            else:
                d, d_se, d_z, d_p = wald(contrast - contrast_of(code_of[baseline]))
                diff = {"slope_diff": d, "diff_se": d_se, "diff_z": d_z, "diff_p": d_p}
        rows.append(
            {
                "condition": level,
                "slope": slope,
                "se": se,
                "z": z,
                "p_value": p,
                "n_groups": in_level[group].n_unique(),
                "n_obs": in_level.height,
                "converged": converged,
                "fit_warnings": "; ".join(messages),
                **diff,
            }
        )
    schema = {"slope_diff": pl.Float64, "diff_se": pl.Float64, "diff_z": pl.Float64, "diff_p": pl.Float64}
    return pl.DataFrame(rows, schema_overrides={k: v for k, v in schema.items() if baseline is not None})


# --------------------------------------------------------------------------------------------------
# Condition comparison


def _diff_of_means(a, b, axis=-1):
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def compare_conditions(
    frame: pl.DataFrame,
    *,
    value: str,
    condition: str,
    baseline,
    group: str | None = "run_id",
    rng: np.random.Generator,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    n_permutations: int = 10_000,
) -> pl.DataFrame:
    """Compare each condition with a baseline across replicate runs: effect sizes, CI and tests.

    The replicate run is the unit of replication, so rows are first averaged per (condition, group);
    several rows per run (steps, agents) would otherwise count as independent evidence. Pass
    ``group=None`` when every row already is one independent unit. For each non-baseline condition:
    sample sizes, means, difference of means (condition minus baseline), Cliff's delta (condition vs
    baseline), a bootstrap percentile CI of the difference (each side resampled separately, via
    ``scipy.stats.bootstrap``), an unpaired permutation p-value for the difference of means
    (condition labels shuffled, via ``scipy.stats.permutation_test``, exact when the number of
    relabellings does not exceed ``n_permutations``), and Holm-adjusted p-values across the
    comparisons. All resampling draws from ``rng`` in condition order, so a seed replays the table.
    """
    cols = [value, condition] + ([group] if group is not None else [])
    _check_columns(frame, cols)
    if group is not None:
        units = frame.group_by([condition, group], maintain_order=True).agg(pl.col(value).cast(pl.Float64).mean())
    else:
        units = frame.select(pl.col(condition), pl.col(value).cast(pl.Float64))
    levels = units[condition].unique(maintain_order=True).to_list()
    if baseline not in levels:
        raise ValueError(f"baseline {baseline!r} not among conditions {levels}")
    others = [c for c in levels if c != baseline]
    try:
        others = sorted(others)
    except TypeError:
        pass
    if not others:
        raise ValueError("no condition besides the baseline to compare")

    def values_of(level) -> np.ndarray:
        arr = units.filter(pl.col(condition) == level)[value].to_numpy()
        arr = _as_1d(arr, f"{value} for condition {level!r}")
        if arr.size < 2:
            raise ValueError(f"condition {level!r} has {arr.size} unit(s); need at least 2 to compare")
        return arr

    base = values_of(baseline)
    rows = []
    for level in others:
        vals = values_of(level)
        ci = sps.bootstrap(
            (vals, base),
            _diff_of_means,
            n_resamples=n_boot,
            confidence_level=confidence,
            method="percentile",
            rng=rng,
        ).confidence_interval
        perm = sps.permutation_test(
            (vals, base),
            _diff_of_means,
            permutation_type="independent",
            n_resamples=n_permutations,
            alternative="two-sided",
            rng=rng,
        )
        rows.append(
            {
                "condition": level,
                "n_baseline": base.size,
                "n": vals.size,
                "mean_baseline": float(base.mean()),
                "mean": float(vals.mean()),
                "diff": float(vals.mean() - base.mean()),
                "cliffs_delta": cliffs_delta(vals, base),
                "ci_low": float(ci.low),
                "ci_high": float(ci.high),
                "p_value": float(perm.pvalue),
            }
        )
    out = pl.DataFrame(rows)
    return out.with_columns(pl.Series("p_holm", holm(out["p_value"].to_numpy())))
