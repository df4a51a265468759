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

import numpy as np
import polars as pl
import scipy.stats as sps

from analysis.stats import _check_columns, _fit_mixedlm

__all__ = ["SLOPES_SCHEMA", "condition_slopes"]

SLOPES_SCHEMA = {"condition": pl.String, "slope": pl.Float64, "se": pl.Float64, "z": pl.Float64,
                 "p_value": pl.Float64, "n_obs": pl.Int64, "n_groups": pl.Int64, "converged": pl.Boolean,
                 "fit_warnings": pl.String}


def condition_slopes(frame: pl.DataFrame, *, value: str, x: str, condition: str = "condition",
                     group: str = "participant", covariates: Sequence[str] = ()) -> pl.DataFrame:
    """Per-condition slope of ``value`` on ``x`` from ``value ~ x * C(condition) [+ cov *
    C(condition) ...]`` with a random intercept per ``group`` (statsmodels MixedLM, REML;
    the first condition in sorted order is the reference). One row per condition:
    condition, slope, se, z, p_value (Wald, two-sided), n_obs, n_groups, converged,
    fit_warnings. ValueError when the frame cannot identify the model (fewer than two
    groups, nulls, a constant ``x``)."""
    columns = [value, x, condition, group, *covariates]
    _check_columns(frame, columns)
    if frame[group].n_unique() < 2:
        raise ValueError(f"a random intercept per {group!r} needs at least 2 groups, got {frame[group].n_unique()}")
    if frame[x].cast(pl.Float64).n_unique() < 2:
        raise ValueError(f"{x!r} takes one value only: no slope to estimate")
    levels = sorted(frame[condition].unique().to_list())
    code_of = {level: i for i, level in enumerate(levels)}
    data = {"_y": frame[value].cast(pl.Float64), "_x": frame[x].cast(pl.Float64),
            "_c": frame[condition].replace_strict(code_of, return_dtype=pl.Int64),
            "_group": frame[group].cast(pl.String)}
    for k, cov in enumerate(covariates):
        data[f"_v{k}"] = frame[cov].cast(pl.Float64)
    pdf = pl.DataFrame(data).to_pandas()
    if not np.all(np.isfinite(pdf.drop(columns=["_c", "_group"]).to_numpy())):
        raise ValueError(f"columns {[value, x, *covariates]} must be finite")
    many = len(levels) > 1
    terms = ["_x * C(_c)" if many else "_x"]
    terms += [(f"_v{k} * C(_c)" if many else f"_v{k}") for k in range(len(covariates))]
    result, converged, messages = _fit_mixedlm("_y ~ " + " + ".join(terms), pdf)
    names = list(result.fe_params.index)
    beta = result.fe_params.to_numpy()
    cov = result.cov_params().loc[names, names].to_numpy()
    rows = []
    for level, code in code_of.items():
        contrast = np.zeros(len(names))
        contrast[names.index("_x")] = 1.0
        if code > 0:
            contrast[names.index(f"_x:C(_c)[T.{code}]")] = 1.0
        slope = float(contrast @ beta)
        se = float(np.sqrt(max(float(contrast @ cov @ contrast), 0.0)))
        z = slope / se if se > 0 else float("nan")
        in_level = frame.filter(pl.col(condition) == level)
        rows.append({"condition": level, "slope": slope, "se": se, "z": z,
                     "p_value": float(2 * sps.norm.sf(abs(z))) if np.isfinite(z) else float("nan"),
                     "n_obs": in_level.height, "n_groups": in_level[group].n_unique(), "converged": converged,
                     "fit_warnings": "; ".join(messages)})
    return pl.DataFrame(rows, schema=SLOPES_SCHEMA)
