"""Tests for analysis.stats: every number is checked against one computed another way."""

import itertools

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from analysis.stats import (
    TestResult,
    bootstrap_ci,
    cliffs_delta,
    compare_conditions,
    holm,
    mixed_slopes,
    sign_flip_test,
)

# --------------------------------------------------------------------------------------------------
# cliffs_delta


def brute_cliffs(x, y):
    return sum(np.sign(a - b) for a in x for b in y) / (len(x) * len(y))


@pytest.mark.parametrize("seed", range(5))
def test_cliffs_delta_matches_double_loop_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, size=rng.integers(1, 40))  # small range: many ties within and across
    y = rng.integers(0, 6, size=rng.integers(1, 40))
    assert cliffs_delta(x, y) == pytest.approx(brute_cliffs(x, y), abs=1e-12)


def test_cliffs_delta_extremes_and_antisymmetry():
    rng = np.random.default_rng(1)
    low, high = rng.normal(0, 1, 25), rng.normal(10, 1, 30)
    assert cliffs_delta(high, low) == 1.0
    assert cliffs_delta(low, high) == -1.0
    same = rng.normal(size=20)
    assert cliffs_delta(same, same) == 0.0
    x, y = rng.normal(size=17), rng.normal(0.3, 1, size=23)
    assert cliffs_delta(x, y) == pytest.approx(-cliffs_delta(y, x))


def test_cliffs_delta_rejects_empty_and_nan():
    with pytest.raises(ValueError, match="empty"):
        cliffs_delta([], [1.0])
    with pytest.raises(ValueError, match="empty"):
        cliffs_delta([1.0], [])
    with pytest.raises(ValueError, match="NaN"):
        cliffs_delta([1.0, np.nan], [1.0])


# --------------------------------------------------------------------------------------------------
# sign_flip_test


def hand_sign_flip_p(d, alternative):
    """Enumerate every sign vector with itertools, independently of the implementation's bit trick."""
    d = np.asarray(d, float)
    obs = d.mean()
    means = np.array([np.dot(s, d) / d.size for s in itertools.product([-1, 1], repeat=d.size)])
    eps = 1e-12
    if alternative == "two-sided":
        hits = np.abs(means) >= abs(obs) - eps
    elif alternative == "greater":
        hits = means >= obs - eps
    else:
        hits = means <= obs + eps
    return hits.mean()


def test_sign_flip_tiny_example_by_hand():
    # sums of ±1±2±3: 6, 4, 2, 0, 0, -2, -4, -6; only ±6 are as extreme as the observed 6
    res = sign_flip_test([1, 2, 3])
    assert isinstance(res, TestResult)
    assert res.exact and res.n_permutations == 8
    assert res.statistic == 2.0
    assert res.p_value == 2 / 8
    assert sign_flip_test([1, 2, 3], alternative="greater").p_value == 1 / 8
    assert sign_flip_test([1, 2, 3], alternative="less").p_value == 1.0


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_sign_flip_exact_matches_enumeration_with_zeros(alternative):
    d = np.array([0.4, -0.1, 0.0, 1.3, 0.7, 0.0, -0.2, 0.9, 0.5])
    res = sign_flip_test(d, alternative=alternative)
    assert res.exact
    assert res.p_value == pytest.approx(hand_sign_flip_p(d, alternative), abs=1e-12)


def test_sign_flip_monte_carlo_close_to_exact():
    d = np.random.default_rng(3).normal(0.4, 1.0, size=12)
    exact = sign_flip_test(d)
    mc = sign_flip_test(d, exact=False, n_permutations=20_000, rng=np.random.default_rng(4))
    assert exact.exact and not mc.exact
    assert exact.p_value == pytest.approx(hand_sign_flip_p(d, "two-sided"), abs=1e-12)
    # binomial SE at 20k draws is below 0.0036; allow ~4 SE
    assert mc.p_value == pytest.approx(exact.p_value, abs=0.015)


def test_sign_flip_monte_carlo_reproducible_and_needs_rng():
    d = np.random.default_rng(5).normal(0.2, 1.0, size=30)
    a = sign_flip_test(d, n_permutations=2_000, rng=np.random.default_rng(42))
    b = sign_flip_test(d, n_permutations=2_000, rng=np.random.default_rng(42))
    assert a == b
    assert not a.exact and a.n_permutations == 2_000
    # the +1 correction: the p-value is (count + 1) / (n + 1), so a multiple of 1/2001
    assert (a.p_value * 2001) == pytest.approx(round(a.p_value * 2001))
    with pytest.raises(ValueError, match="rng"):
        sign_flip_test(d)


def test_sign_flip_all_zero_differences_give_p_one():
    assert sign_flip_test(np.zeros(5)).p_value == 1.0
    assert sign_flip_test(np.zeros(30), n_permutations=500, rng=np.random.default_rng(0)).p_value == 1.0


def test_sign_flip_rejects_bad_alternative():
    with pytest.raises(ValueError, match="alternative"):
        sign_flip_test([1.0, 2.0], alternative="bigger")


# --------------------------------------------------------------------------------------------------
# bootstrap_ci


def test_bootstrap_ci_contains_true_mean():
    x = np.random.default_rng(6).normal(5.0, 1.0, size=200)
    low, high = bootstrap_ci(x, rng=np.random.default_rng(7), n_boot=2_000)
    assert low < 5.0 < high
    assert low < x.mean() < high
    # about ±1.96 standard errors of the mean
    assert high - low == pytest.approx(2 * 1.96 / np.sqrt(200), rel=0.2)


@pytest.mark.parametrize("method, scipy_method", [("percentile", "percentile"), ("bca", "BCa")])
def test_bootstrap_ci_agrees_with_scipy(method, scipy_method):
    x = np.random.default_rng(8).exponential(2.0, size=40)
    ours = bootstrap_ci(x, np.median, confidence=0.9, n_boot=3_000, rng=np.random.default_rng(9), method=method)
    ref = sps.bootstrap(
        (x,), np.median, confidence_level=0.9, n_resamples=3_000, method=scipy_method, rng=np.random.default_rng(9)
    ).confidence_interval
    assert ours == pytest.approx((ref.low, ref.high))
    assert ours[0] < ours[1]


def test_bootstrap_ci_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_ci([1.0], rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="method"):
        bootstrap_ci([1.0, 2.0, 3.0], rng=np.random.default_rng(0), method="basic")


# --------------------------------------------------------------------------------------------------
# holm

HOLM_CASES = [
    [0.01, 0.02, 0.03, 0.04],
    [0.04, 0.01, 0.03, 0.02],  # unsorted
    [0.5, 0.001, 0.2, 0.049, 0.049, 0.8],  # unsorted with ties
    [0.3, 0.6, 0.9],  # adjusted values capped at 1
    [0.0, 1.0],
    [0.07],
]


@pytest.mark.parametrize("p", HOLM_CASES)
def test_holm_matches_statsmodels(p):
    ours = holm(p)
    ref = multipletests(p, method="holm")[1]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    assert np.all(ours <= 1.0) and np.all(ours >= np.asarray(p))


def test_holm_is_monotone_in_the_order_of_the_raw_p_values():
    p = np.random.default_rng(10).uniform(0, 0.2, size=15)
    adj = holm(p)
    order = np.argsort(p)
    assert np.all(np.diff(adj[order]) >= 0)
    np.testing.assert_allclose(adj, multipletests(p, method="holm")[1])


def test_holm_edge_cases():
    assert holm([]).size == 0
    with pytest.raises(ValueError):
        holm([0.1, np.nan])
    with pytest.raises(ValueError):
        holm([0.1, 1.5])


# --------------------------------------------------------------------------------------------------
# mixed_slopes


def simulate_runs(slopes, *, runs_per_condition=10, steps=15, intercept_sd=1.0, noise_sd=0.1, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for condition, slope in slopes.items():
        for r in range(runs_per_condition):
            offset = rng.normal(0.0, intercept_sd)
            for t in range(steps):
                rows.append(
                    {
                        "chain": f"{condition}-{r}",
                        "exposure": condition,
                        "t": t,
                        "diversity": 2.0 + offset + slope * t + rng.normal(0.0, noise_sd),
                    }
                )
    return pl.DataFrame(rows)


def test_mixed_slopes_recovers_known_slopes():
    # condition labels with spaces and dashes must not break the model formula
    truth = {"high AI": 0.5, "low-AI": -0.2}
    frame = simulate_runs(truth)
    out = mixed_slopes(frame, value="diversity", step="t", condition="exposure", group="chain")
    assert out.height == 2
    assert set(out.columns) >= {"condition", "slope", "se", "z", "p_value", "n_groups", "converged"}
    for row in out.iter_rows(named=True):
        assert row["slope"] == pytest.approx(truth[row["condition"]], abs=0.01)
        assert 0 < row["se"] < 0.01
        assert row["z"] == pytest.approx(row["slope"] / row["se"])
        assert row["p_value"] < 1e-6
        assert row["n_groups"] == 10
        assert row["converged"]


def test_mixed_slopes_single_condition_matches_ols_without_run_effect():
    frame = simulate_runs({"only": 0.3}, runs_per_condition=8, steps=10, intercept_sd=0.0, seed=1)
    out = mixed_slopes(frame, value="diversity", step="t", condition="exposure", group="chain")
    assert out.height == 1
    ols = sps.linregress(frame["t"].to_numpy(), frame["diversity"].to_numpy())
    slope_polyfit = np.polyfit(frame["t"].to_numpy(), frame["diversity"].to_numpy(), 1)[0]
    assert out["slope"][0] == pytest.approx(slope_polyfit, abs=1e-8)
    # with no run-level variance the mixed-model standard error is close to the OLS one
    assert out["se"][0] == pytest.approx(ols.stderr, rel=0.1)
    assert out["n_groups"][0] == 8


def test_mixed_slopes_difference_from_a_chosen_baseline_matches_statsmodels():
    """slope_diff / diff_se / diff_p for each condition against the baseline are the interaction
    coefficient, its SE and p of statsmodels' own fit with that baseline as reference."""
    import statsmodels.formula.api as smf

    truth = {"a": 0.1, "b": 0.4, "c": 0.1}
    frame = simulate_runs(truth, runs_per_condition=6, steps=8, seed=3)
    out = mixed_slopes(frame, value="diversity", step="t", condition="exposure", group="chain", baseline="b")
    data = frame.to_pandas()
    ref = smf.mixedlm("diversity ~ t * C(exposure, Treatment(reference='b'))", data,
                      groups=data["chain"]).fit(reml=True)
    for row in out.iter_rows(named=True):
        if row["condition"] == "b":
            assert row["slope_diff"] is None and row["diff_p"] is None
            continue
        name = f"t:C(exposure, Treatment(reference='b'))[T.{row['condition']}]"
        assert row["slope_diff"] == pytest.approx(ref.fe_params[name], abs=1e-5)
        assert row["diff_se"] == pytest.approx(ref.bse_fe[name], rel=1e-3)
        assert row["diff_p"] == pytest.approx(ref.pvalues[name], abs=1e-6)
        assert row["slope_diff"] == pytest.approx(truth[row["condition"]] - truth["b"], abs=0.02)
    with pytest.raises(ValueError, match="baseline 'z' not among"):
        mixed_slopes(frame, value="diversity", step="t", condition="exposure", group="chain", baseline="z")


def test_mixed_slopes_needs_two_groups():
    frame = simulate_runs({"a": 0.3, "b": 0.1}, runs_per_condition=1)
    frame = frame.with_columns(pl.lit("run-0").alias("chain"))
    with pytest.raises(ValueError, match="at least 2 groups"):
        mixed_slopes(frame, value="diversity", step="t", condition="exposure", group="chain")


def test_mixed_slopes_names_missing_columns():
    frame = simulate_runs({"a": 0.3}, runs_per_condition=3, steps=4)
    with pytest.raises(ValueError, match="run_id"):
        mixed_slopes(frame, value="diversity", step="t", condition="exposure")


# --------------------------------------------------------------------------------------------------
# compare_conditions


def simulate_replicates(seed=0, runs=12, rows_per_run=5):
    rng = np.random.default_rng(seed)
    shifts = {"low": 0.0, "mid": 0.0, "high": 2.0}
    rows = []
    for condition, shift in shifts.items():
        for r in range(runs):
            run_mean = 1.0 + shift + rng.normal(0.0, 1.0)
            for _ in range(rows_per_run):
                rows.append({"condition": condition, "run_id": f"{condition}{r}", "div": run_mean + rng.normal(0, 0.3)})
    return pl.DataFrame(rows)


def test_compare_conditions_flags_only_the_shifted_condition():
    frame = simulate_replicates()
    out = compare_conditions(
        frame, value="div", condition="condition", baseline="low", rng=np.random.default_rng(11), n_boot=2_000,
        n_permutations=2_000,
    )
    rows = {r["condition"]: r for r in out.iter_rows(named=True)}
    assert set(rows) == {"mid", "high"}

    # per-run means computed independently: rows are aggregated to one value per run
    def run_means(c):
        sub = frame.filter(pl.col("condition") == c)
        return np.array([sub.filter(pl.col("run_id") == g)["div"].mean() for g in sub["run_id"].unique()])

    base = run_means("low")
    for name, row in rows.items():
        vals = run_means(name)
        assert row["n"] == 12 and row["n_baseline"] == 12
        assert row["diff"] == pytest.approx(vals.mean() - base.mean())
        assert row["cliffs_delta"] == pytest.approx(brute_cliffs(vals, base))
        assert row["ci_low"] < row["diff"] < row["ci_high"]
        # the permutation p-value agrees roughly with Welch's t-test on normal data
        welch = sps.ttest_ind(vals, base, equal_var=False).pvalue
        assert row["p_value"] == pytest.approx(welch, abs=0.05)

    np.testing.assert_allclose(out["p_holm"].to_numpy(), multipletests(out["p_value"].to_numpy(), method="holm")[1])
    high, mid = rows["high"], rows["mid"]
    assert high["p_holm"] < 0.01
    assert high["ci_low"] > 0 and high["ci_low"] < 2.0 < high["ci_high"]
    assert high["cliffs_delta"] > 0.7
    assert mid["p_holm"] > 0.2
    assert mid["ci_low"] < 0 < mid["ci_high"]


def test_compare_conditions_reproducible_and_validates():
    frame = simulate_replicates(seed=2, runs=6, rows_per_run=2)
    kwargs = dict(value="div", condition="condition", baseline="low", n_boot=500, n_permutations=500)
    a = compare_conditions(frame, rng=np.random.default_rng(3), **kwargs)
    b = compare_conditions(frame, rng=np.random.default_rng(3), **kwargs)
    assert a.equals(b)
    with pytest.raises(ValueError, match="baseline"):
        compare_conditions(frame, value="div", condition="condition", baseline="none", rng=np.random.default_rng(0))
