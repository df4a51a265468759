"""Per-idea mixed models of exposure runs, with a random intercept per participant.

Ashkinaze et al. (2024) model each response's outcome with condition, its interactions
with the trial number and with the participant's self-rated creativity, and random
intercepts for the participant (who answered several items) and the chain. Here each
such model is a statsmodels MixedLM, REML, with one grouping factor (statsmodels fits one;
the participant where participants did several trials, else the chain), and its answer is
the slope of the outcome on one variable within each condition: the reference condition's
coefficient plus its interaction, with the standard error of that sum from the fixed-effect
covariance (L' V L) and a Wald z. Other variables enter as ``variable * C(condition)``
terms, as the paper enters trial number.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from analysis.stats import _check_columns, mixed_slopes

__all__ = ["SLOPES_SCHEMA", "condition_slopes"]

SLOPES_SCHEMA = {"condition": pl.String, "slope": pl.Float64, "se": pl.Float64, "z": pl.Float64,
                 "p_value": pl.Float64, "n_obs": pl.Int64, "n_groups": pl.Int64, "converged": pl.Boolean,
                 "fit_warnings": pl.String}


def condition_slopes(frame: pl.DataFrame, *, value: str, x: str, condition: str = "condition",
                     group: str = "participant", covariates: Sequence[str] = ()) -> pl.DataFrame:
    """Per-condition slope of ``value`` on ``x`` from ``value ~ x * C(condition) [+ cov *
    C(condition) ...]`` with a random intercept per ``group``: :func:`analysis.stats.mixed_slopes`
    (statsmodels MixedLM, REML, the first condition in sorted order the reference), refusing
    up front what per-idea data can make unidentifiable. One row per condition: condition,
    slope, se, z, p_value (Wald, two-sided), n_obs, n_groups, converged, fit_warnings.
    ValueError when the frame cannot identify the model (fewer than two groups, nulls, a
    constant ``x``)."""
    _check_columns(frame, [value, x, condition, group, *covariates])
    if frame[group].n_unique() < 2:
        raise ValueError(f"a random intercept per {group!r} needs at least 2 groups, got {frame[group].n_unique()}")
    if frame[x].cast(pl.Float64).n_unique() < 2:
        raise ValueError(f"{x!r} takes one value only: no slope to estimate")
    fitted = mixed_slopes(frame, value=value, step=x, condition=condition, group=group, covariates=covariates)
    return fitted.select(list(SLOPES_SCHEMA)).cast(SLOPES_SCHEMA)
