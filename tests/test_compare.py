"""Comparing a sweep's conditions (analysis.compare, ``culturesim compare``) on a real echo sweep.

The sweep is the app tests' one (2 conditions x 3 replicates, 4 steps, echo/ model, TF-IDF
metrics). Every number is checked three ways: the CLI's CSV, the function both the CLI and
the app call, and an independent computation (Cliff's delta by a double loop, means by hand,
the slopes by statsmodels' MixedLM fitted here with the baseline as reference).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest_app import make_run, make_sweep, measure

from analysis.compare import compare_sweep

pytestmark = pytest.mark.timeout(600)
PARAM = "culture.operation"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cmp") / "results"
    root.mkdir()
    for rid in make_sweep(root / "grid-sweep"):
        measure(root / rid)
    return root / "grid-sweep"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "culturesim.cli", "compare", *args], capture_output=True, text=True,
                          timeout=300)


def by_hand(sweep: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per-run last-step diversity and the per-step series, read straight from the files."""
    index = pl.read_parquet(sweep / "sweep.parquet").select("run_id", pl.col(PARAM).alias("cond"))
    rows = []
    for rid in index["run_id"]:
        m = pl.read_parquet(sweep / rid / "metrics.parquet")
        m = m.filter((pl.col("metric") == "diversity") & pl.col("step").is_not_null())
        rows.append(m.select(pl.lit(rid).alias("run_id"), "step", "value"))
    steps = pl.concat(rows).join(index, on="run_id")
    last = steps.filter(pl.col("step") == pl.col("step").max().over("run_id"))
    return last, steps


def cliffs_by_loop(x, y) -> float:
    return sum((a > b) - (a < b) for a in x for b in y) / (len(x) * len(y))


def mixedlm_slopes(steps: pl.DataFrame, baseline: str) -> dict[str, tuple[float, float, float]]:
    """condition -> (slope, slope - baseline's slope, its p) from statsmodels, baseline as reference."""
    import statsmodels.formula.api as smf

    data = steps.to_pandas()
    with warnings.catch_warnings():  # a between-run variance at zero: the fixed effects still hold
        warnings.simplefilter("ignore")
        fit = smf.mixedlm(f"value ~ step * C(cond, Treatment(reference='{baseline}'))", data,
                          groups=data["run_id"]).fit(reml=True)
    out = {baseline: (fit.fe_params["step"], None, None)}
    for name in fit.fe_params.index:
        if name.startswith("step:"):
            level = name.split("[T.")[1].rstrip("]")
            out[level] = (fit.fe_params["step"] + fit.fe_params[name], fit.fe_params[name], fit.pvalues[name])
    return out


@pytest.mark.parametrize("baseline", ["combine", "transform"])
def test_cli_csv_equals_the_function_and_an_independent_computation(sweep, tmp_path, baseline):
    out = tmp_path / "cmp.csv"
    done = cli(str(sweep), "--baseline", f"{PARAM}={baseline}", "--csv", str(out))
    assert done.returncode == 0, done.stderr
    assert "effect sizes" in done.stdout and "slopes over steps" in done.stdout
    csv = pl.read_csv(out)
    tables, unmeasured, metric, embedder = compare_sweep(sweep, baseline=f"{PARAM}={baseline}")
    assert (unmeasured, metric, embedder) == ([], "diversity", "tfidf")
    effects = csv.filter(pl.col("table") == "effects")
    slopes = csv.filter(pl.col("table") == "slopes")
    for column in ("diff", "cliffs_delta", "ci_low", "ci_high", "p_value", "p_holm"):
        assert effects[column].to_list() == pytest.approx(tables.effects[column].to_list(), rel=1e-12)
    for column in ("slope", "ci_low", "ci_high", "p_value", "diff_p_holm"):
        got, want = (f[column].cast(pl.Float64).fill_null(float("nan")).to_list() for f in (slopes, tables.slopes))
        assert got == pytest.approx(want, rel=1e-12, nan_ok=True)
    assert "diff_p_holm" in done.stdout

    last, steps = by_hand(sweep)
    other = "transform" if baseline == "combine" else "combine"
    base = last.filter(pl.col("cond") == baseline)["value"].to_list()
    vals = last.filter(pl.col("cond") == other)["value"].to_list()
    row = effects.row(0, named=True)
    assert (row["parameter"], row["baseline"], row["condition"], row["n"]) == (PARAM, baseline, other, 3)
    assert row["diff"] == pytest.approx(np.mean(vals) - np.mean(base), abs=1e-12)
    assert row["cliffs_delta"] == pytest.approx(cliffs_by_loop(vals, base), abs=1e-12)
    assert row["ci_low"] <= row["diff"] <= row["ci_high"]

    reference = mixedlm_slopes(steps, baseline)
    assert slopes["condition"].to_list() == ["combine", "transform"]
    for r in slopes.iter_rows(named=True):
        slope, diff, p = reference[r["condition"]]
        assert r["slope"] == pytest.approx(slope, abs=1e-6)
        assert r["ci_low"] < r["slope"] < r["ci_high"]
        assert r["n_runs"] == 3 and r["n_obs"] == 12
        if r["condition"] == baseline:
            assert r["slope_diff"] is None and r["diff_p"] is None and r["diff_p_holm"] is None
        else:
            assert r["slope_diff"] == pytest.approx(diff, abs=1e-6)
            assert r["diff_p"] == pytest.approx(p, abs=1e-4)
            assert r["diff_p_holm"] == r["diff_p"]  # a family of one test: Holm changes nothing
            assert r["diff_ci_low"] < r["slope_diff"] < r["diff_ci_high"]


def test_the_baseline_defaults_to_the_first_value_and_flips_the_signs(sweep):
    first, *_ = compare_sweep(sweep)
    chosen, *_ = compare_sweep(sweep, baseline=f"{PARAM}=transform")
    assert first.baselines == {PARAM: "combine"} and chosen.baselines == {PARAM: "transform"}
    assert first.effects["diff"][0] == pytest.approx(-chosen.effects["diff"][0])
    assert first.effects["cliffs_delta"][0] == pytest.approx(-chosen.effects["cliffs_delta"][0])
    diffs = [d for d in first.slopes["slope_diff"].to_list() if d is not None]
    flipped = [d for d in chosen.slopes["slope_diff"].to_list() if d is not None]
    assert diffs == pytest.approx([-d for d in flipped], abs=1e-6)
    # the slopes themselves do not depend on the baseline
    assert first.slopes["slope"].to_list() == pytest.approx(chosen.slopes["slope"].to_list(), abs=1e-6)


def test_another_metric_and_summary(sweep, tmp_path):
    tables, _, metric, _ = compare_sweep(sweep, "vendi_score", summary="mean")
    assert metric == "vendi_score"
    _, steps = by_hand(sweep)
    runs = {}
    for rid in steps["run_id"].unique():
        m = pl.read_parquet(sweep / rid / "metrics.parquet")
        runs[rid] = m.filter((pl.col("metric") == "vendi_score") & pl.col("step").is_not_null())["value"].mean()
    for r in tables.per_run.iter_rows(named=True):
        assert r["value"] == pytest.approx(runs[r["run_id"]])


def one_error(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_bad_inputs_end_in_one_clear_line(sweep, tmp_path):
    one_error(cli(str(tmp_path / "nowhere")), "not a sweep folder")
    one_error(cli(str(next(sweep.glob("*/manifest.json")).parent)), "not a sweep folder")
    one_error(cli(str(sweep), "--metric", "nonsense"), "unknown metric 'nonsense'", "diversity")
    one_error(cli(str(sweep), "--baseline", f"{PARAM}=mutate"), "matches no condition", "combine, transform")
    one_error(cli(str(sweep), "--baseline", "steps=4"), "swept parameter", PARAM)
    one_error(cli(str(sweep), "--baseline", "combine"), "key=value")
    one_error(cli(str(sweep), "--embedder", "minilm"), "no run measured with embedder 'minilm'", "tfidf")


def test_an_unmeasured_sweep_with_no_measure_says_to_run_analyze(sweep, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(sweep, bare)
    for metrics in bare.glob("*/metrics.parquet"):
        metrics.unlink()
    one_error(cli(str(bare), "--no-measure"), "not measured", f"culturesim analyze {bare}")
    assert not list(bare.glob("*/metrics.parquet"))  # --no-measure measured nothing
    # one run not measured: compared on the others, the one left out named on stderr
    runs = sorted(p.parent.name for p in sweep.glob("*/manifest.json"))
    for rid in runs[1:]:
        shutil.copy(sweep / rid / "metrics.parquet", bare / rid / "metrics.parquet")
    done = cli(str(bare), "--no-measure", "--csv", str(tmp_path / "part.csv"))
    assert done.returncode == 0, done.stderr
    assert "1 run(s) not measured" in done.stderr and runs[0] in done.stderr
    effects = pl.read_csv(tmp_path / "part.csv").filter(pl.col("table") == "effects").row(0, named=True)
    assert sorted([effects["n_baseline"], effects["n"]]) == [2, 3]


def test_a_sweep_that_varies_nothing_is_refused(tmp_path):
    folder = tmp_path / "reps"
    folder.mkdir()
    make_run(folder, "r0")
    measure(folder / "r0")
    pl.DataFrame({"run_id": ["r0"], "cell": [0], "replicate": [0], "seed": [1], "status": ["done"],
                  "error": [None]}).write_parquet(folder / "sweep.parquet")
    one_error(cli(str(folder)), "varies no parameter")


def test_compare_measures_the_unmeasured_runs_first(sweep, tmp_path):
    """What ``culturesim measure`` does, in --embedder's space, then the same tables as a sweep
    measured beforehand; a run that is not done is left unmeasured and named."""
    import json

    bare = tmp_path / "bare"
    shutil.copytree(sweep, bare)
    for metrics in bare.glob("*/metrics.parquet"):
        metrics.unlink()
    runs = sorted(p.parent.name for p in sweep.glob("*/manifest.json"))
    manifest = bare / runs[0] / "manifest.json"
    stopped = json.loads(manifest.read_text()) | {"status": "stopped"}
    manifest.write_text(json.dumps(stopped))

    done = cli(str(bare), "--embedder", "tfidf", "--csv", str(tmp_path / "measured.csv"))
    assert done.returncode == 0, done.stderr
    assert f"measuring {len(runs) - 1} unmeasured run(s) of {bare}" in done.stderr
    assert "1 run(s) not measured" in done.stderr and runs[0] in done.stderr
    assert sorted(p.parent.name for p in bare.glob("*/metrics.parquet")) == runs[1:]
    for rid in runs[1:]:
        state = json.loads((bare / rid / "measure.json").read_text())
        assert (state["status"], state["embedder"]) == ("done", "tfidf")
    # the numbers are those of the same runs measured beforehand (conftest_app.measure)
    part = tmp_path / "part"
    shutil.copytree(sweep, part)
    (part / runs[0] / "metrics.parquet").unlink()
    expected, *_ = compare_sweep(part, embedder="tfidf")
    csv = pl.read_csv(tmp_path / "measured.csv")
    for name, frame in (("effects", expected.effects), ("slopes", expected.slopes)):
        mine = csv.filter(pl.col("table") == name)
        for column in ("diff", "cliffs_delta", "slope", "slope_diff", "diff_p_holm"):
            if column in frame.columns:
                got, want = (f[column].cast(pl.Float64).fill_null(float("nan")).to_list() for f in (mine, frame))
                assert got == pytest.approx(want, rel=1e-9, nan_ok=True), (name, column)

    # measured now: a second compare measures nothing; -q says nothing while measuring
    again = cli(str(bare), "--embedder", "tfidf")
    assert again.returncode == 0 and "measuring" not in again.stderr
    (bare / runs[1] / "metrics.parquet").unlink()
    quiet = cli(str(bare), "--embedder", "tfidf", "-q")
    assert quiet.returncode == 0, quiet.stderr
    assert "measuring" not in quiet.stderr and (bare / runs[1] / "metrics.parquet").is_file()


def test_slope_differences_are_holm_adjusted_within_a_parameter():
    """Four conditions against a baseline: diff_p is statsmodels' Wald p of the interaction
    (baseline as reference) and diff_p_holm its multipletests(method="holm") over the family."""
    import statsmodels.formula.api as smf
    from statsmodels.stats.multitest import multipletests

    from analysis.compare import baselines_for, slopes

    rng = np.random.default_rng(7)
    trend = {"0": 0.0, "1": 0.01, "2": 0.02, "3": 0.006}  # p of about 0.01, 0.0002, 0.003: three Holm steps
    index_rows, metric_rows = [], []
    for cond, slope in trend.items():
        for rep in range(4):
            rid = f"x{cond}-r{rep}"
            index_rows.append({"run_id": rid, "x": int(cond)})
            offset = rng.normal(0, 0.05)
            for step in range(1, 7):
                metric_rows.append({"run_id": rid, "step": step, "metric": "diversity",
                                    "value": 0.5 + offset + slope * step + rng.normal(0, 0.05), "embedder": "tfidf"})
    index, metrics = pl.DataFrame(index_rows), pl.DataFrame(metric_rows)
    table = slopes(index, metrics, "diversity", baselines_for(index, "x=0"))
    assert table["condition"].to_list() == ["0", "1", "2", "3"]

    data = metrics.join(index, on="run_id").with_columns(pl.col("x").cast(pl.String)).to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.mixedlm("value ~ step * C(x, Treatment(reference='0'))", data, groups=data["run_id"]).fit(reml=True)
    p = {name.split("[T.")[1].rstrip("]"): fit.pvalues[name] for name in fit.fe_params.index
         if name.startswith("step:")}
    conditions = ["1", "2", "3"]
    _, holm_p, _, _ = multipletests([p[c] for c in conditions], method="holm")
    rows = {r["condition"]: r for r in table.iter_rows(named=True)}
    assert rows["0"]["diff_p"] is None and rows["0"]["diff_p_holm"] is None
    for c, want in zip(conditions, holm_p, strict=True):
        assert rows[c]["diff_p"] == pytest.approx(p[c], rel=1e-3, abs=1e-10)
        assert rows[c]["diff_p_holm"] == pytest.approx(want, rel=1e-3, abs=1e-10)
    # by hand: the k-th smallest p times (3 - k), here without the running maximum taking over
    ranked = sorted(conditions, key=lambda c: rows[c]["diff_p"])
    for k, c in enumerate(ranked):
        assert rows[c]["diff_p_holm"] == pytest.approx((3 - k) * rows[c]["diff_p"], rel=1e-12)
    assert rows[ranked[0]]["diff_p_holm"] > rows[ranked[0]]["diff_p"]
