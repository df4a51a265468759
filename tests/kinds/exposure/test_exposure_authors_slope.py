"""The authors' slope of collective diversity (culturesim.kinds.exposure.authors_slope)
against the same model fitted directly with statsmodels' formula interface, the formula
written out here as the authors wrote it in lme4, and the SE of a condition's slope worked
out by hand from the covariance of the coefficients."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import statsmodels.formula.api as smf

from culturesim.kinds.exposure.authors_slope import SEEDS_EXHAUSTED, authors_slopes

ITEMS = ("tire", "shoe", "brick", "pants")
CONDITIONS = ("control", "high_undisclosed", "low_disclosed")
TREND = {"control": -0.004, "low_disclosed": 0.001, "high_undisclosed": 0.005}


def trials_frame(seed: int = 0, *, last: int = 14, constant_n: bool = False) -> pl.DataFrame:
    """Per item x condition x trial: a median distance with an item offset, a trend per
    condition and noise, and a count of ideas that varies (or not)."""
    rng = np.random.default_rng(seed)
    offset = dict(zip(ITEMS, rng.normal(0, 0.03, len(ITEMS)), strict=True))
    rows = []
    for item in ITEMS:
        for condition in CONDITIONS:
            for trial in range(1, last + 1):
                n = 7 if constant_n else int(rng.integers(4, 8))
                median = 0.55 + offset[item] + TREND[condition] * trial + 0.002 * n + rng.normal(0, 0.01)
                rows.append({"item": item, "condition": condition, "trial": trial, "n_ideas": n,
                             "diversity_median": median})
    return pl.DataFrame(rows)


def direct_fit(frame: pl.DataFrame, formula: str):
    df = frame.filter(pl.col("trial") > 6).to_pandas()
    df["y"] = 100 * df["diversity_median"]
    return smf.mixedlm(formula, df, groups=df["item"]).fit(reml=True)


AUTHORS = "y ~ n_ideas + C(condition, Treatment(reference='control')) * trial"


def by_hand(fit) -> dict[str, tuple[float, float]]:
    """Control: the trial coefficient; another condition: trial + its interaction, with
    var = V[t,t] + V[i,i] + 2 V[t,i]."""
    params, cov = fit.fe_params, fit.cov_params()
    out = {"control": (params["trial"], math.sqrt(cov.loc["trial", "trial"]))}
    for c in CONDITIONS[1:]:
        inter = f"C(condition, Treatment(reference='control'))[T.{c}]:trial"
        var = cov.loc["trial", "trial"] + cov.loc[inter, inter] + 2 * cov.loc["trial", inter]
        out[c] = (params["trial"] + params[inter], math.sqrt(var))
    return out


def test_slopes_and_ses_match_a_direct_statsmodels_fit():
    frame = trials_frame()
    got, reason = authors_slopes(frame)
    assert reason == "" and set(got) == set(CONDITIONS)
    fit = direct_fit(frame, AUTHORS)
    assert fit.converged
    for condition, (slope, se) in by_hand(fit).items():
        assert got[condition]["slope"] == pytest.approx(slope, rel=1e-4, abs=1e-6), condition
        assert got[condition]["slope_se"] == pytest.approx(se, rel=1e-4), condition
        assert got[condition]["n_obs"] == len(ITEMS) * (14 - SEEDS_EXHAUSTED)
    # the trends were built in: 100 x (-0.004, +0.005) per trial, well inside 4 se
    assert abs(got["control"]["slope"] + 0.4) < 4 * got["control"]["slope_se"]
    assert abs(got["high_undisclosed"]["slope"] - 0.5) < 4 * got["high_undisclosed"]["slope_se"]


def test_only_trials_after_the_sixth_count():
    frame = trials_frame()
    got, _ = authors_slopes(frame)
    # rewrite every seed trial: nothing changes
    scrambled = frame.with_columns(pl.when(pl.col("trial") <= SEEDS_EXHAUSTED).then(pl.lit(1.9))
                                   .otherwise(pl.col("diversity_median")).alias("diversity_median"))
    again, _ = authors_slopes(scrambled)
    for c in CONDITIONS:
        assert again[c]["slope"] == pytest.approx(got[c]["slope"], rel=1e-9)
    # while a fit on every trial gives other slopes
    every = smf.mixedlm(AUTHORS, frame.to_pandas().assign(y=lambda d: 100 * d["diversity_median"]),
                        groups=frame["item"].to_list()).fit(reml=True)
    assert every.fe_params["trial"] != pytest.approx(got["control"]["slope"], rel=1e-3)


def test_no_trial_after_the_sixth_gives_no_slope_and_a_reason():
    got, reason = authors_slopes(trials_frame(last=SEEDS_EXHAUSTED))
    assert got == {} and "no trial after the 6th" in reason
    one_item, reason = authors_slopes(trials_frame().filter(pl.col("item") == "tire"))
    assert one_item == {} and "2 or more" in reason
    one_trial, reason = authors_slopes(trials_frame(last=7))
    assert one_trial == {} and "one trial" in reason


def test_a_constant_count_is_absorbed_by_the_intercept():
    frame = trials_frame(constant_n=True)
    got, reason = authors_slopes(frame)
    assert reason == ""
    fit = direct_fit(frame, "y ~ C(condition, Treatment(reference='control')) * trial")
    for condition, (slope, se) in by_hand(fit).items():
        assert got[condition]["slope"] == pytest.approx(slope, rel=1e-4, abs=1e-6)
        assert got[condition]["slope_se"] == pytest.approx(se, rel=1e-4)


def test_one_condition_and_missing_columns():
    frame = trials_frame().filter(pl.col("condition") == "low_disclosed")
    got, reason = authors_slopes(frame)
    fit = direct_fit(frame, "y ~ n_ideas + trial")
    assert reason == "" and list(got) == ["low_disclosed"]
    assert got["low_disclosed"]["slope"] == pytest.approx(fit.fe_params["trial"], rel=1e-4)
    assert got["low_disclosed"]["slope_se"] == pytest.approx(fit.bse_fe["trial"], rel=1e-4)
    with pytest.raises(ValueError, match="n_ideas"):
        authors_slopes(frame.drop("n_ideas"))
