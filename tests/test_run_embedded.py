"""End to end on the real embedded model: the CLI, the results on disk, reproducibility,
Ctrl-C, SIGKILL and resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from culturesim import runner
from culturesim import scenario as sc
from culturesim.store import RunDir

SCENARIO = """\
kind: culture
name: e2e
seed: 7
steps: 4
population:
  size: 4
  mix: {creative: 0.5, not_creative: 0.5}
network:
  topology: ring
  params: {k: 1}
llm:
  model: local/smollm2
  max_tokens: 20
  cache: false
culture:
  operation: combine
"""


def cli(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "culturesim.cli", *args], capture_output=True, text=True,
                          timeout=600, **kw)


def texts(run_path: Path) -> list[tuple]:
    ideas = RunDir(run_path).ideas().sort("step", "agent_id")
    return list(ideas.select("idea_id", "text", "parent_ids", "operation", "seed").iter_rows())


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scen") / "e2e.yaml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture(scope="module")
def reference(scenario_file, tmp_path_factory) -> Path:
    """An uninterrupted run, in process."""
    out = tmp_path_factory.mktemp("ref")
    return runner.start(sc.load(scenario_file), out=out, show_progress=False).path


def test_cli_run_writes_complete_results(scenario_file, tmp_path):
    done = cli("run", str(scenario_file), "--out", str(tmp_path), "--set", "steps=2", "--set", "name=cli run")
    assert done.returncode == 0, done.stderr
    run_path = Path(done.stdout.strip().splitlines()[-1])
    assert run_path.parent == tmp_path
    ideas = pl.read_parquet(run_path / "ideas.parquet")
    assert ideas.height == 2 * 4
    assert sorted(ideas.select("step", "agent_id").rows()) == [(s, a) for s in (1, 2) for a in range(4)]
    assert ideas["text"].str.strip_chars().str.len_chars().min() > 0
    assert ideas["error"].null_count() == ideas.height
    known = set(ideas["idea_id"])
    step_of = dict(zip(ideas["idea_id"], ideas["step"], strict=True))
    for row in ideas.iter_rows(named=True):
        assert all(p in known and step_of[p] < row["step"] for p in row["parent_ids"])
        assert (row["step"] == 1) == (row["parent_ids"] == [])
    assert (ideas["completion_tokens"] > 0).all() and (ideas["latency_s"] > 0).all()
    prompts = pl.read_parquet(run_path / "prompts.parquet")
    assert set(prompts["idea_id"]) == known
    first = json.loads(prompts.filter(pl.col("idea_id") == "s2-a0")["messages"][0])
    assert first[0]["role"] == "system" and "s1" not in first[1]["content"]
    for parent in ideas.filter(pl.col("idea_id") == "s2-a0")["parent_ids"][0]:
        parent_text = ideas.filter(pl.col("idea_id") == parent)["text"][0]
        assert parent_text in first[1]["content"]  # what the agent saw is on record
    manifest = json.loads((run_path / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["steps_completed"] == 2
    assert manifest["scenario"]["name"] == "cli run" and manifest["scenario"]["llm"]["cache"] is False
    assert manifest["versions"]["llama_cpp_python"] and manifest["versions"]["litellm"]
    assert manifest["counts"]["ideas"] == 8
    assert pl.read_parquet(run_path / "agents.parquet").height == 4
    assert pl.read_parquet(run_path / "edges.parquet").height == 4
    listing = cli("runs", str(tmp_path))
    assert run_path.name in listing.stdout and "done" in listing.stdout


def test_same_scenario_and_seed_give_identical_texts(scenario_file, reference, tmp_path):
    again = runner.start(sc.load(scenario_file), out=tmp_path, show_progress=False).path
    assert texts(again) == texts(reference)
    other = runner.start(sc.load(scenario_file, ["seed=8"]), out=tmp_path, show_progress=False).path
    assert [t[1] for t in texts(other)] != [t[1] for t in texts(reference)]


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def start_cli(scenario_file: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "culturesim.cli", "run", str(scenario_file), "--out", str(out), "-q",
         "--set", "output.run_id=victim"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_sigkill_then_resume_matches_uninterrupted_run(scenario_file, reference, tmp_path):
    proc = start_cli(scenario_file, tmp_path)
    run_path = tmp_path / "victim"
    wait_for(run_path / "steps" / "00002.parquet", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    manifest = json.loads((run_path / "manifest.json").read_text())
    assert manifest["status"] == "running"  # killed: nobody could say otherwise
    assert 2 <= len(RunDir(run_path).completed_steps()) < 4
    for part in (run_path / "steps").iterdir():
        pl.read_parquet(part)  # every file on disk is complete and readable
    resumed = cli("run", "--resume", str(run_path), "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert texts(run_path) == texts(reference)
    manifest = json.loads((run_path / "manifest.json").read_text())
    assert manifest["status"] == "done" and len(manifest["sessions"]) == 2
    again = cli("run", "--resume", str(run_path))
    assert again.returncode == 2 and "already complete" in again.stderr


def test_ctrl_c_stops_after_the_step_and_resume_finishes(scenario_file, reference, tmp_path):
    proc = start_cli(scenario_file, tmp_path)
    run_path = tmp_path / "victim"
    wait_for(run_path / "steps" / "00001.parquet", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    manifest = json.loads((run_path / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert manifest["steps_completed"] == len(RunDir(run_path).completed_steps()) < 4
    assert cli("run", "--resume", str(run_path), "-q").returncode == 0
    assert texts(run_path) == texts(reference)


def test_rerun_with_cache_costs_no_model_time(scenario_file, tmp_path):
    first = runner.start(sc.load(scenario_file, ["llm.cache=true", "steps=2"]), out=tmp_path, show_progress=False)
    start = time.perf_counter()
    second = runner.start(sc.load(scenario_file, ["llm.cache=true", "steps=2"]), out=tmp_path, show_progress=False)
    elapsed = time.perf_counter() - start
    assert texts(second.path) == texts(first.path)
    assert second.ideas()["cached"].all() and not first.ideas()["cached"].any()
    assert elapsed < 5
    assert (tmp_path / ".cache" / "llm.sqlite").is_file()


def test_existing_run_folder_is_never_overwritten(scenario_file, tmp_path):
    overrides = ["steps=1", "output.run_id=fixed"]
    runner.start(sc.load(scenario_file, overrides), out=tmp_path, show_progress=False)
    before = (tmp_path / "fixed" / "ideas.parquet").read_bytes()
    clash = cli("run", str(scenario_file), "--out", str(tmp_path), *sum((["--set", o] for o in overrides), []))
    assert clash.returncode == 2 and "already holds a run" in clash.stderr
    assert (tmp_path / "fixed" / "ideas.parquet").read_bytes() == before


def test_quickstart_scenario_validates_and_is_small():
    quick = sc.load(Path(__file__).parent.parent / "scenarios" / "quickstart.yaml")
    assert quick.llm.model == "local/smollm2"
    assert quick.population.size * quick.steps <= 60  # keeps it under 3 minutes on 2 cores
