"""The exposure quick scenario, shrunk, end to end on the embedded model: the CLI run,
then `culturesim report` printing every measure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl

QUICK = Path(__file__).resolve().parents[3] / "scenarios" / "exposure_quick.yaml"


def test_quick_scenario_runs_and_reports(tmp_path):
    shrink = ["exposure.items=[tire]", "exposure.trials_per_participant=1", "exposure.chains=2", "steps=2",
              "exposure.ai_pool.size=5",
              "llm.max_tokens=72", "output.run_id=quick"]  # a JSON reply needs room
    run = subprocess.run([sys.executable, "-m", "culturesim.cli", "run", str(QUICK), "--out", str(tmp_path), "-q",
                          *sum((["--set", s] for s in shrink), [])], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    folder = tmp_path / "quick"
    ideas = pl.read_parquet(folder / "ideas.parquet")
    assert ideas.filter(pl.col("source") == "ai").height == 5
    assert ideas.filter(pl.col("source") == "llm").height == 1 * 5 * 2 * 2
    report = subprocess.run([sys.executable, "-m", "culturesim.cli", "report", str(folder)],
                            capture_output=True, text=True, timeout=900)
    assert report.returncode == 0, report.stderr
    for condition in ("control", "low_disclosed", "low_undisclosed", "high_disclosed", "high_undisclosed"):
        assert condition in report.stdout
    table = pl.read_parquet(folder / "report.parquet")
    for column in ("diversity_mean", "diversity_median", "diversity_resampled", "slope", "delta_vs_control",
                   "diff_ci_low", "diff_ci_high", "originality_mean", "semantic_distance_mean", "adoption_mean"):
        assert column in table.columns
    assert table.filter(pl.col("condition") != "control")["delta_vs_control"].is_not_null().all()
    assert table["diversity_mean"].is_not_null().all() and table["semantic_distance_mean"].is_not_null().all()
    assert table.filter(pl.col("condition").str.starts_with("high"))["adoption_mean"].is_not_null().all()
    assert table["judge_model"].to_list()[0] == "local/smollm2"
