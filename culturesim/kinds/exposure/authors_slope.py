"""The slope of collective diversity over trials as Ashkinaze et al. fitted it, so the
paper's slope figures can be set beside a run's on one scale.

This kind's own slope (``measures._slopes``) is the mean pairwise distance of one trial's
ideas across chains on every trial, with a random intercept per item. The authors' final
analysis fits instead, per item x condition x trial, the *median* pairwise distance times
100 on the number of ideas at that trial (``nobs``) and ``condition * trial``, with a random
intercept per item and the control as reference level, on trials after the sixth only:
by then the six examples each participant sees are all ideas of earlier participants, none
of the seed ideas the chains started from. In lme4 terms::

    lmer(100*median_pw_dist ~ nobs + condition*trial_no + (1|item) + trial_no,
         data = ag %>% filter(trial_no > 6))

Here the same model is a statsmodels MixedLM (REML, as lmer's default) and its answer per
condition is the slope over trials: the trial coefficient for the control, plus that
condition's interaction for the others, with the standard error of that sum from the
fixed-effect covariance (L' V L).

``analysis.stats.mixed_slopes`` cannot state this model: it enters every covariate as
``covariate * C(condition)``, whereas the authors enter ``nobs`` once, as a main effect.

Where ``nobs`` adds nothing to the fixed-effect design (every trial has as many ideas, as in
a run where no participant fails, so ``nobs`` is a multiple of the intercept) it is left
out: the design spans the same space with or without it, so the slopes are the same, and
the fit stays identified.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from analysis.stats import _check_columns, _fit_mixedlm, wald_contrast

__all__ = ["AUTHORS_FORMULA", "SEEDS_EXHAUSTED", "authors_slopes"]

# Trials up to this one still show seed ideas to some participant (6 examples a trial).
SEEDS_EXHAUSTED = 6
AUTHORS_FORMULA = "100*median_pw_dist ~ nobs + condition*trial_no + (1|item), trial_no > 6"


def authors_slopes(trials: pl.DataFrame, *, reference: str = "control", median: str = "diversity_median",
                   nobs: str = "n_ideas", trial: str = "trial", condition: str = "condition",
                   group: str = "item") -> tuple[dict[str, dict], str]:
    """Per condition, the slope of ``100 * median`` over trials from the authors' model.

    ``trials`` has one row per item x condition x trial (``measures.trial_diversity``).
    Returns ``({condition: {"slope", "slope_se", "converged", "n_obs"}}, "")`` or, when
    there is no slope to give, ``({}, reason)``: no trial after the sixth, fewer than two
    items for the random intercept, one trial only, or a fit that fails. A non-finite slope
    or se is returned as None, never NaN. ``reference`` is the model's reference level where
    present (the first condition in sorted order otherwise); the slopes do not depend on it.
    """
    import patsy

    _check_columns(trials, [median, nobs, trial, condition, group])
    kept = trials.filter(pl.col(trial) > SEEDS_EXHAUSTED)
    if kept.height == 0:
        return {}, f"authors' slope: no trial after the {SEEDS_EXHAUSTED}th (their model drops the seed trials)"
    if kept[group].n_unique() < 2:
        return {}, f"authors' slope: a random intercept per {group} needs 2 or more, got {kept[group].n_unique()}"
    if kept[trial].n_unique() < 2:
        return {}, f"authors' slope: one trial after the {SEEDS_EXHAUSTED}th only, no slope"
    levels = sorted(kept[condition].unique().to_list())
    first = reference if reference in levels else levels[0]
    order = [first, *(c for c in levels if c != first)]
    code_of = {level: k for k, level in enumerate(order)}
    data = pl.DataFrame({
        "_y": 100.0 * kept[median].cast(pl.Float64),
        "_n": kept[nobs].cast(pl.Float64),
        "_t": kept[trial].cast(pl.Float64),
        "_c": kept[condition].replace_strict(code_of, return_dtype=pl.Int64),
        "_group": kept[group].cast(pl.String),
    }).to_pandas()
    if not np.all(np.isfinite(data[["_y", "_n", "_t"]].to_numpy())):
        return {}, "authors' slope: a median distance, count or trial is missing or not finite"
    many = len(order) > 1
    rest = "C(_c) * _t" if many else "_t"
    with_n = np.asarray(patsy.dmatrix(f"_n + {rest}", data))
    without_n = np.asarray(patsy.dmatrix(rest, data))
    formula = f"_y ~ _n + {rest}"
    if np.linalg.matrix_rank(with_n) == np.linalg.matrix_rank(without_n):
        formula = f"_y ~ {rest}"  # nobs lies in the span of the rest: same model, same slopes
    try:
        result, converged, _messages = _fit_mixedlm(formula, data)
    except Exception as exc:  # noqa: BLE001 - the report says why, rather than dying
        return {}, f"authors' slope: mixed model not fitted ({type(exc).__name__}: {exc})"
    names = list(result.fe_params.index)
    beta = result.fe_params.to_numpy()
    cov = result.cov_params().loc[names, names].to_numpy()
    out = {}
    for level, code in code_of.items():
        contrast = np.zeros(len(names))
        contrast[names.index("_t")] = 1.0
        if code > 0:
            contrast[names.index(f"C(_c)[T.{code}]:_t")] = 1.0
        slope, se, _z, _p = wald_contrast(contrast, beta, cov)
        out[level] = {"slope": slope if math.isfinite(slope) else None,
                      "slope_se": se if math.isfinite(se) and se > 0 else None,
                      "converged": converged, "n_obs": int((kept[condition] == level).sum())}
    return out, ""
