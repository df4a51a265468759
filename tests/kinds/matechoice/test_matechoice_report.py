"""The study report over a real (tiny) sweep folder: rates, finals and tests recomputed
from the runs' own tables with scipy and statsmodels."""

from __future__ import annotations

import io
import itertools

import numpy as np
import polars as pl
import pytest
from rich.console import Console
from scipy import stats
from statsmodels.stats.multitest import multipletests

from culturesim.kinds.matechoice.measures import print_report, report_table
from culturesim.scenario import validate_data
from sweep_inline import run_inline


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    sc = validate_data({
        "kind": "matechoice", "name": "s", "seed": 1, "steps": 3,
        "matechoice": {"population": 24, "diversity_sample": 6, "record_individuals": False,
                       "problem": {"name": "koza1", "success_threshold": 0.3}},
        "sweep": {"grid": {"matechoice.mode": ["tournament", "random", "pimp"]}, "replicates": 4}}, "test")
    return run_inline(sc, folder)


def finals(folder) -> pl.DataFrame:
    index = pl.read_parquet(folder / "sweep.parquet")
    rows = []
    for run_id, mode in zip(index["run_id"], index["matechoice.mode"], strict=True):
        g = pl.read_parquet(folder / run_id / "generations.parquet").sort("step")
        rows.append({"mode": mode, "success": float(g["success"].any()),
                     "unique_structures": float(g["unique_structures"][-1]),
                     "fitness_entropy": g["fitness_entropy"][-1]})
    return pl.DataFrame(rows)


def test_report_rates_finals_and_tests(sweep_dir):
    table = report_table(sweep_dir)
    truth = finals(sweep_dir)
    assert set(table["mode"]) == {"tournament", "random", "pimp"}
    assert table.filter(pl.col("measure") == "success")["n"].to_list() == [4, 4, 4]
    for measure in ("success", "unique_structures", "fitness_entropy"):
        rows = table.filter(pl.col("measure") == measure)
        samples = {m: truth.filter(pl.col("mode") == m)[measure].to_numpy() for m in ("tournament", "random", "pimp")}
        for row in rows.iter_rows(named=True):
            assert row["mean"] == pytest.approx(samples[row["mode"]].mean())
            assert row["median"] == pytest.approx(np.median(samples[row["mode"]]))
        values = list(samples.values())
        if len(np.unique(np.concatenate(values))) > 1:
            assert rows["kruskal_p"][0] == pytest.approx(stats.kruskal(*values).pvalue)
        pairs = list(itertools.combinations(samples, 2))
        raw = [stats.mannwhitneyu(samples[a], samples[b], alternative="two-sided").pvalue for a, b in pairs]
        adjusted = multipletests(raw, method="holm")[1]
        for (a, b), p in zip(pairs, adjusted, strict=True):
            got = rows.filter(pl.col("mode") == a)[f"p_vs_{b}"][0]
            assert got == pytest.approx(p)
            assert rows.filter(pl.col("mode") == b)[f"p_vs_{a}"][0] == pytest.approx(p)
        assert rows.filter(pl.col("mode") == "pimp")["p_vs_pimp"][0] is None
    pref = table.filter(pl.col("measure") == "pref_mean_size")
    assert pref.filter(pl.col("mode") == "tournament")["n"][0] == 0  # no preferences outside PIMP


def test_report_of_one_run_and_printing(sweep_dir):
    one = next(p for p in sweep_dir.iterdir() if p.is_dir())
    table = report_table(one)
    assert table["n"].max() == 1 and table["kruskal_p"].null_count() == table.height
    out = io.StringIO()
    print_report(report_table(sweep_dir), Console(file=out, width=200))
    text = out.getvalue()
    assert "tournament vs random" in text and "unique_structures" in text and "problem=koza1" in text


def test_report_refuses_a_folder_without_runs(tmp_path):
    with pytest.raises(ValueError, match="no finished matechoice run"):
        report_table(tmp_path)


def test_culturesim_report_prints_the_mode_table_of_a_sweep(sweep_dir, capsys):
    from culturesim.cli import main

    assert main(["report", str(sweep_dir)]) == 0
    out = capsys.readouterr().out
    for mode in ("tournament", "random", "pimp"):
        assert f"{mode} (n=4)" in out
    assert "Kruskal" in out and "success" in out


def test_culturesim_report_refuses_a_folder_of_other_kinds(tmp_path, capsys):
    from culturesim.cli import main

    assert main(["report", str(tmp_path)]) == 2
    assert "no run of a reported kind" in capsys.readouterr().err
