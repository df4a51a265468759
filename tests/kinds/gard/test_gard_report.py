"""Paper vs this run for gard (culturesim.kinds.gard.paper_compare and .report): the schema's
defaults against the authors' transcribed ones; Spearman's rho and its Fisher-z interval
against scipy and a hand computation; the response's t interval against scipy; the
comparison's agrees/covers on hand-made figures; the per-run table of a tiny real sweep
recomputed from its parquet files; and `culturesim report` on it and on a folder without
a gard run."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats
from scipy.spatial.distance import cosine as cosine_distance

from culturesim import cli
from culturesim.kinds.gard import measures
from culturesim.kinds.gard.model import chemistry
from culturesim.kinds.gard.paper import AUTHORS_CODE, AUTHORS_DEFAULTS, FIGURES
from culturesim.kinds.gard.paper_compare import (
    RUN_SCHEMA,
    TOO_FEW,
    compare,
    our_figures,
    run_table,
    spearman_ci,
    target_share,
)
from culturesim.kinds.paper_figures import PaperFigure
from culturesim.scenario import load, validate_data
from culturesim.store import RunDir
from sweep_inline import run_inline

QUICK = Path(__file__).resolve().parents[3] / "scenarios" / "gard_quick.yaml"


def test_schema_defaults_are_the_authors_tgs_parameters_v10():
    assert AUTHORS_CODE[2] == "86dff6320d5ae91b4e831471079ff46749b14df9"
    s = validate_data({"kind": "gard", "name": "x", "steps": 1}, "test")
    g = s.gard
    for key in ("n_types", "n_max", "mu", "sigma", "k_f", "k_b", "rho"):
        assert getattr(g, key) == AUTHORS_DEFAULTS[key], key
    assert chemistry(s).n_min == AUTHORS_DEFAULTS["n_min"] == 50
    assert measures.COMPOSOME_THRESHOLD == AUTHORS_DEFAULTS["composome_threshold"]
    assert tuple(inspect.signature(measures.compotypes).parameters["ks"].default) == AUTHORS_DEFAULTS["ks"]


def test_figures_are_abstract_directions_with_a_verbatim_place():
    assert {f.key for f in FIGURES} == {"composomes_vs_pmc", "selection_response", "selection_response_vs_pmc"}
    for f in FIGURES:
        assert f.source == "abstract" and f.value is None and f.direction == "+"
        assert f.where.startswith("abstract: '")


def test_spearman_and_its_interval_by_hand():
    x, y = [1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5]
    rho, low, high, note = spearman_ci(x, y)
    # ranks differ by 1 everywhere: 1 - 6 * 6 / (6 * 35)
    assert rho == pytest.approx(1 - 36 / 210) == pytest.approx(stats.spearmanr(x, y).statistic)
    z, se = math.atanh(rho), math.sqrt((1 + rho**2 / 2) / 3)
    q = stats.norm.ppf(0.975)
    assert (low, high) == pytest.approx((math.tanh(z - q * se), math.tanh(z + q * se)))
    assert low < rho < high and "n = 6" in note
    # ties: scipy's average ranks
    x2, y2 = [0.1, 0.5, 0.5, 2.0, 3.0], [1, 1, 2, 5, 3]
    assert spearman_ci(x2, y2)[0] == pytest.approx(stats.spearmanr(x2, y2).statistic)


@pytest.mark.parametrize("x, y, rho, has_ci, note", [
    ([1, 1, 2, 2], [1, 2, 3, 4], None, False, TOO_FEW),              # two networks only
    ([1, 2, 3, 4], [2, 2, 2, 2], None, False, "the same value in every run"),
    ([1, 2, 3], [1, 3, 2], 0.5, False, "n < 4"),                     # 1 - 6 * 2 / 24
    ([1, 2, 3, 4], [1, 2, 3, 9], 1.0, False, "|rho| = 1"),
])
def test_spearman_edges(x, y, rho, has_ci, note):
    got, low, high, why = spearman_ci(x, y)
    assert (got is None) == (rho is None) and (rho is None or got == pytest.approx(rho))
    assert (low is not None) == has_ci and (high is not None) == has_ci
    assert note in why


def test_target_share_by_hand():
    dense = np.array([[3, 4, 0], [4, 3, 0], [0, 0, 5], [3, 4, 1]], dtype=float)
    target = np.array([3.0, 4.0, 0.0])
    # H: 1, 24/25 = 0.96, 0, 25/sqrt(26)/5 = 0.98: three of four above 0.9
    assert target_share(dense, target) == pytest.approx(0.75)
    assert target_share(dense, target, threshold=0.97) == pytest.approx(0.5)
    assert target_share(np.zeros((0, 3)), target) is None


def hand_table() -> pl.DataFrame:
    rows = [  # run_id, mode, network, pmc, splits, composome_share, compotypes, target, neutral, response, note
        ("a", "population", "n1", 0.5, 10, 0.5, 1, None, None, None, ""),
        ("b", "population", "n2", 1.0, 10, 0.5, 2, None, None, None, ""),
        ("c", "lineage", "n3", 2.0, 10, 0.5, 2, None, None, None, ""),
        ("d", "population", "n4", 4.0, 10, 0.5, 4, None, None, None, ""),
        ("e", "population", "n5", 8.0, 10, 0.5, 5, None, None, None, ""),
        ("s1", "selection", "n1", 0.5, 10, 0.5, 9, 0.3, 0.2, 0.1, ""),   # selection rows: not in the diversity rho
        ("s2", "selection", "n2", 1.0, 10, 0.5, 0, 0.5, 0.3, 0.2, ""),
        ("s3", "selection", "n3", 2.0, 10, 0.5, 0, 0.4, 0.45, -0.05, ""),
        ("s4", "selection", "n9", 3.0, 10, 0.5, 0, 0.4, None, None, "no twin"),
    ]
    return pl.DataFrame(rows, schema=RUN_SCHEMA, orient="row")


def test_our_figures_from_a_hand_made_run_table():
    ours = {r["key"]: r for r in our_figures(hand_table()).iter_rows(named=True)}
    div = ours["composomes_vs_pmc"]
    pmc, k = [0.5, 1.0, 2.0, 4.0, 8.0], [1, 2, 2, 4, 5]
    assert div["value"] == pytest.approx(stats.spearmanr(pmc, k).statistic)
    assert div["label"] == "5 neutral run(s)" and div["ci_low"] < div["value"] < div["ci_high"]
    resp = ours["selection_response"]
    r = np.array([0.1, 0.2, -0.05])
    low, high = stats.t.interval(0.95, 2, loc=r.mean(), scale=stats.sem(r))
    assert (resp["value"], resp["ci_low"], resp["ci_high"]) == pytest.approx((r.mean(), low, high))
    assert "2 of 3 positive" in resp["note"]
    vs = ours["selection_response_vs_pmc"]
    # ranks of r: 2, 3, 1 against 1, 2, 3: 1 - 6 * (1 + 1 + 4) / 24
    assert vs["value"] == pytest.approx(-0.5) == pytest.approx(stats.spearmanr([0.5, 1.0, 2.0], r).statistic)
    assert vs["ci_low"] is None and "n < 4" in vs["note"]


def test_our_figures_without_selection_or_networks():
    few = hand_table().filter(pl.col("run_id").is_in(["a", "b"]))
    ours = {r["key"]: r for r in our_figures(few).iter_rows(named=True)}
    assert ours["composomes_vs_pmc"]["value"] is None and ours["composomes_vs_pmc"]["note"] == TOO_FEW
    assert "no selection run here" in ours["selection_response"]["note"]
    lonely = hand_table().filter(pl.col("run_id") == "s4")
    ours = {r["key"]: r for r in our_figures(lonely).iter_rows(named=True)}
    assert "same network" in ours["selection_response_vs_pmc"]["note"]


def test_comparison_rows_on_hand_made_figures():
    hand = (
        PaperFigure(key="composomes_vs_pmc", measure="m", contrast="c", statistic="rho", direction="+",
                    where="w1", source="abstract"),
        PaperFigure(key="selection_response", measure="m", contrast="c", statistic="mean", direction="0",
                    where="w2", source="abstract"),
        PaperFigure(key="selection_response_vs_pmc", measure="m", contrast="c", statistic="rho", direction="-",
                    where="w3", source="abstract"),
    )
    got = {r["key"]: r for r in compare(our_figures(hand_table()), hand).iter_rows(named=True)}
    # rho 0.9747 with CI (0.458, 0.999): above 0, so "+": agrees; a direction-only "+" has nothing to cover
    assert got["composomes_vs_pmc"]["agrees"] is True and got["composomes_vs_pmc"]["covers"] is None
    # mean response 0.083 with t CI (-0.23, 0.40) holds 0: "no effect" covered and agreed
    assert got["selection_response"]["covers"] is True and got["selection_response"]["agrees"] is True
    # rho -0.5 without CI: judged by its sign, "-" as the hand figure's
    assert got["selection_response_vs_pmc"]["agrees"] is True and got["selection_response_vs_pmc"]["covers"] is None
    # against the real (all "+") figures: -0.5 disagrees by sign; the response's CI holds 0, so the
    # increase is neither shown nor refuted (agrees left open, said in the note)
    real = {r["key"]: r for r in compare(our_figures(hand_table())).iter_rows(named=True)}
    assert real["selection_response_vs_pmc"]["agrees"] is False
    assert real["selection_response"]["agrees"] is None and real["selection_response"]["covers"] is None
    assert "our CI holds 0" in real["selection_response"]["note"]
    assert real["composomes_vs_pmc"]["agrees"] is True


# --------------------------------------------------------------------------- a real tiny sweep


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gard-sweep")
    sc = load(QUICK, ["steps=2", "gard.assemblies=6", "gard.n_types=20", "gard.n_max=30",
                      "gard.selection.burn_in=20",
                      'sweep={"grid": {"gard.beta_seed": [1, 2, 3, 4], "gard.mode": ["population", "selection"]}}'])
    return run_inline(sc, folder)


def test_run_table_recomputed_from_the_parquet_files(sweep_dir):
    index = pl.read_parquet(sweep_dir / "sweep.parquet")
    runs = [RunDir(sweep_dir / rid) for rid in index["run_id"]]
    table = run_table(runs)
    assert table.height == 8
    seeds = dict(zip(index["run_id"], index["gard.beta_seed"], strict=True))
    by_network: dict[str, set] = {}
    for rid, network in zip(table["run_id"], table["network"], strict=True):
        by_network.setdefault(network, set()).add(seeds[rid])
    assert len(by_network) == 4 and all(len(s) == 1 for s in by_network.values())  # one network per beta_seed
    for row in table.iter_rows(named=True):
        beta = pl.read_parquet(sweep_dir / row["run_id"] / "beta.parquet").sort("i", "j")["beta"].to_numpy()
        beta = beta.reshape(20, 20)
        assert row["pmc"] == pytest.approx(beta.sum() / (20 * np.trace(beta)))
        splits = pl.read_parquet(sweep_dir / row["run_id"] / "assemblies.parquet")
        assert row["splits"] == splits.height == 12
        sim = splits["similarity_to_parent"].drop_nulls().to_numpy()
        assert row["composome_share"] == pytest.approx((sim > 0.9).mean())
        if row["mode"] == "population":
            assert row["selection_response"] is None
            continue
        target = pl.read_parquet(sweep_dir / row["run_id"] / "target.parquet")
        twin = index.filter((pl.col("gard.beta_seed") == seeds[row["run_id"]]) & (pl.col("gard.mode") == "population"))
        shares = []
        for rid in (row["run_id"], twin["run_id"][0]):
            a = pl.read_parquet(sweep_dir / rid / "assemblies.parquet")
            t = np.zeros(20)
            t[target["type"].to_numpy()] = target["count"].to_numpy()
            near = 0
            for types, counts in zip(a["types"].to_list(), a["counts"].to_list(), strict=True):
                n = np.zeros(20)
                n[types] = counts
                near += (1 - cosine_distance(n, t)) > 0.9
            shares.append(near / a.height)
        assert (row["target_share"], row["neutral_share"]) == pytest.approx(tuple(shares))
        assert row["selection_response"] == pytest.approx(shares[0] - shares[1])


def test_cli_report_prints_paper_vs_this_run(sweep_dir, capsys):
    assert cli.main(["report", str(sweep_dir)]) == 0
    out = capsys.readouterr().out
    assert "Paper vs this run" in out and "GARD runs" in out
    assert "only networks with high mutual catalysis propensity (pmc) allowed for an augmented diversity" in out
    assert "Markovitch & Lancet (2012)" in out


def test_cli_report_of_one_run_says_why_not(sweep_dir, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # the note fits its cell on one line
    one = next(p for p in sorted(sweep_dir.iterdir()) if p.is_dir())
    assert cli.main(["report", str(one)]) == 0
    out = capsys.readouterr().out
    assert TOO_FEW in out


def test_a_run_without_a_finished_step_is_left_out(sweep_dir, tmp_path, capsys):
    one = next(p for p in sorted(sweep_dir.iterdir()) if p.is_dir())
    waiting = tmp_path / "waiting"
    waiting.mkdir()
    (waiting / "manifest.json").write_bytes((one / "manifest.json").read_bytes())
    table = run_table([RunDir(one), RunDir(waiting)])
    row = table.filter(pl.col("run_id") == "waiting").row(0, named=True)
    assert row["pmc"] is None and "no step finished" in row["note"]
    assert our_figures(table)["note"][0] == TOO_FEW
    with pytest.raises(ValueError, match="no gard run with a finished step"):
        run_table([RunDir(waiting)])
    assert cli.main(["report", str(waiting)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no gard run with a finished step among waiting" in err[0]


def test_cli_report_without_a_gard_run_is_one_line(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no run of a reported kind here" in err[0]
    assert "gard" in err[0]
