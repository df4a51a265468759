"""Paper vs this run for matechoice (culturesim.kinds.matechoice.paper_compare): our figures
on a hand-made run table, checked against numpy (differences, an independent bootstrap),
scipy and statsmodels (the Holm-adjusted Mann-Whitney p) and counts worked out by hand;
the comparison rows; and `culturesim report` on a tiny real sweep printing the table."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from culturesim.kinds.matechoice.measures import MEASURES, table_of_runs
from culturesim.kinds.matechoice.paper import DIVERSITY, FIGURES, PAPER_INSTANCES
from culturesim.kinds.matechoice.paper_compare import (compare, figures_for, instance_label, our_figures,
                                                       success_count)
from culturesim.scenario import validate_data
from sweep_inline import run_inline

MODES = ("tournament", "random", "pimp")
PROBLEMS = ("koza1", "nguyen7", "pagie1")
RATES = (0.05, 0.2)

# Successes per mode (tournament, random, pimp) in each instance, 4 runs a mode. PIMP's rate
# is above both in koza1@0.05 (3/4 > 1/4, 2/4), nguyen7@0.2 (4/4 > 0, 3/4) and pagie1@0.05
# (1/4 > 0, 0): three instances. Not in koza1@0.2 (a tie with tournament), nguyen7@0.05
# (below random) or pagie1@0.2 (all zero).
SUCCESSES = {("koza1", 0.05): (1, 2, 3), ("koza1", 0.2): (2, 0, 2), ("nguyen7", 0.05): (1, 3, 2),
             ("nguyen7", 0.2): (0, 3, 4), ("pagie1", 0.05): (0, 0, 1), ("pagie1", 0.2): (0, 0, 0)}
RUNS_PER_MODE = 4


def runs_by_hand(instances=SUCCESSES, seed: int = 5) -> pl.DataFrame:
    """A run table as measures.run_table makes it: PIMP's tree edit distance drawn around 12,
    tournament's around 8, random's around 11 (so both differences are positive on average)."""
    rng = np.random.default_rng(seed)
    centre = {"tournament": 8.0, "random": 11.0, "pimp": 12.0}
    rows = []
    for (problem, rate), successes in instances.items():
        for mode, hits in zip(MODES, successes, strict=True):
            for i in range(RUNS_PER_MODE):
                row = {m: float(rng.normal(10, 1)) for m in MEASURES}
                row.update({"run_id": f"{problem}-{rate}-{mode}-{i}", "problem": problem, "mutation": "subtree",
                            "mutation_rate": rate, "mode": mode, "success": float(i < hits), "generations": 5,
                            DIVERSITY: float(rng.normal(centre[mode], 1.5))})
                rows.append(row)
    return pl.DataFrame(rows)


def test_success_count_worked_by_hand():
    table = table_of_runs(runs_by_hand())
    assert success_count(table) == (3, 6)
    ours = our_figures(runs_by_hand(), table, seed=0, n_boot=200)
    row = ours.filter(pl.col("key") == "success_instances").row(0, named=True)
    assert row["value"] == 3 and row["label"] == "6 instance(s) here" and "3 of the 6" in row["note"]
    # the paper's six instances: same scale, so the difference is ours - 3 = 0
    got = compare(ours, 6).filter(pl.col("key") == "success_instances").row(0, named=True)
    assert got["difference"] == 0 and got["covers"] is None and got["agrees"] is None
    assert got["paper"] == "3"


def test_success_count_leaves_out_instances_without_all_three_modes():
    runs = runs_by_hand().filter(~((pl.col("problem") == "koza1") & (pl.col("mode") == "random")))
    table = table_of_runs(runs)
    assert success_count(table) == (2, 4)  # koza1's two instances lack random; koza1@0.05 counted before
    got = compare(our_figures(runs, table, n_boot=200), 4).filter(pl.col("key") == "success_instances")
    row = got.row(0, named=True)
    assert row["ours"] == 2 and row["difference"] is None and "scales differ" in row["note"]


def independent_bootstrap(a: np.ndarray, b: np.ndarray, n: int = 40_000, seed: int = 99) -> tuple[float, float]:
    """Percentile interval of mean(a) - mean(b), each side resampled on its own, in plain numpy."""
    rng = np.random.default_rng(seed)
    ra = a[rng.integers(0, a.size, (n, a.size))].mean(axis=1)
    rb = b[rng.integers(0, b.size, (n, b.size))].mean(axis=1)
    return tuple(np.percentile(ra - rb, [2.5, 97.5]))


def test_diversity_differences_intervals_and_tests_against_numpy_scipy_statsmodels():
    runs = runs_by_hand()
    table = table_of_runs(runs)
    ours = our_figures(runs, table, seed=7)
    assert ours.filter(pl.col("key").str.starts_with("diversity_diff")).height == 2 * len(SUCCESSES)
    for (problem, rate), _ in SUCCESSES.items():
        group = runs.filter((pl.col("problem") == problem) & (pl.col("mutation_rate") == rate))
        sample = {m: group.filter(pl.col("mode") == m)[DIVERSITY].to_numpy() for m in MODES}
        pairs = list(itertools.combinations(MODES, 2))
        raw = [stats.mannwhitneyu(sample[a], sample[b], alternative="two-sided").pvalue for a, b in pairs]
        holm = dict(zip(pairs, multipletests(raw, method="holm")[1], strict=True))
        label = instance_label(["problem", "mutation", "mutation_rate"], [problem, "subtree", rate])
        assert label == f"{problem}, subtree mutation at {rate:g}"
        for baseline in ("tournament", "random"):
            row = ours.filter((pl.col("key") == f"diversity_diff:{baseline}") & (pl.col("label") == label)).row(
                0, named=True)
            assert row["value"] == pytest.approx(sample["pimp"].mean() - sample[baseline].mean())
            low, high = independent_bootstrap(sample["pimp"], sample[baseline])
            width = high - low
            assert row["ci_low"] == pytest.approx(low, abs=0.05 * width)
            assert row["ci_high"] == pytest.approx(high, abs=0.05 * width)
            p = holm[(baseline, "pimp")]
            assert f"Holm Mann-Whitney p = {p:.3g}" in row["note"] and f"4 PIMP, 4 {baseline}" in row["note"]
    # the seed replays the intervals and another seed moves them
    again = our_figures(runs, table, seed=7)
    other = our_figures(runs, table, seed=8)
    assert again.equals(ours)
    assert not other["ci_low"].equals(ours["ci_low"])


def test_constant_samples_give_a_point_interval_and_single_runs_no_interval():
    runs = runs_by_hand({("koza1", 0.1): (1, 1, 1)}).with_columns(
        pl.when(pl.col("mode") == "pimp").then(5.0).otherwise(2.0).alias(DIVERSITY))
    ours = our_figures(runs, table_of_runs(runs), n_boot=500)
    row = ours.filter(pl.col("key") == "diversity_diff:tournament").row(0, named=True)
    assert (row["value"], row["ci_low"], row["ci_high"]) == (3.0, 3.0, 3.0)
    one = runs.filter((pl.col("mode") != "pimp") | (pl.col("run_id").str.ends_with("-0")))
    row = our_figures(one, table_of_runs(one)).filter(pl.col("key") == "diversity_diff:random").row(0, named=True)
    assert row["value"] == 3.0 and row["ci_low"] is None and "no CI under 2 runs" in row["note"]


def test_comparison_rows_agree_where_the_interval_lies_above_zero():
    runs = runs_by_hand().with_columns(  # PIMP far above both everywhere
        pl.when(pl.col("mode") == "pimp").then(pl.col(DIVERSITY) + 50).otherwise(pl.col(DIVERSITY)).alias(DIVERSITY))
    got = compare(our_figures(runs, table_of_runs(runs), n_boot=500), 6)
    assert set(got["key"]) == {f.key for f in FIGURES}
    diversity = got.filter(pl.col("key").str.starts_with("diversity_diff"))
    assert diversity.height == 12 and diversity["agrees"].to_list() == [True] * 12
    assert diversity["difference"].null_count() == 12  # a direction only: no difference
    assert set(diversity["paper"]) == {"increase"} and set(diversity["source"]) == {"abstract"}


def test_only_the_paper_number_of_instances_is_on_its_scale():
    assert PAPER_INSTANCES == 6
    scale = {n: next(f for f in figures_for(n) if f.key == "success_instances").same_scale for n in (1, 4, 6, 9)}
    assert scale == {1: False, 4: False, 6: True, 9: False}
    assert [f.same_scale for f in figures_for(4) if f.key != "success_instances"] == [False, False]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    sc = validate_data({
        "kind": "matechoice", "name": "s", "seed": 2, "steps": 2,
        "matechoice": {"population": 16, "diversity_sample": 6, "record_individuals": False,
                       "problem": {"name": "koza1", "success_threshold": 0.3}},
        "sweep": {"grid": {"matechoice.mode": list(MODES)}, "replicates": 3}}, "test")
    return run_inline(sc, folder)


def test_culturesim_report_prints_paper_vs_this_run(sweep_dir, capsys, monkeypatch):
    from culturesim.cli import main

    monkeypatch.setenv("COLUMNS", "400")  # a console wide enough that no cell wraps

    assert main(["report", str(sweep_dir), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert out.index("Paper vs this run") > out.index("Kruskal")
    for text in ("PIMP vs tournament", "PIMP vs random", "increase", "1 instance(s) here",
                 "[1] abstract: 'a more diverse set of solutions", "arXiv:2303.17441"):
        assert text in out, text
    # our difference, read straight from the runs' generation tables
    index = pl.read_parquet(sweep_dir / "sweep.parquet")
    final = {m: [] for m in MODES}
    for run_id, mode in zip(index["run_id"], index["matechoice.mode"], strict=True):
        final[mode].append(pl.read_parquet(sweep_dir / run_id / "generations.parquet").sort("step")[DIVERSITY][-1])
    for baseline in ("tournament", "random"):
        assert f"{np.mean(final['pimp']) - np.mean(final[baseline]):+.3f}" in out


def test_report_of_one_run_says_what_it_cannot_compare(sweep_dir, capsys, monkeypatch):
    from culturesim.cli import main

    monkeypatch.setenv("COLUMNS", "400")

    one = next(p for p in sweep_dir.iterdir() if p.is_dir())
    assert main(["report", str(one)]) == 0
    out = capsys.readouterr().out
    assert "Paper vs this run" in out and "no matching condition" in out
