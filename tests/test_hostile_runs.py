"""Run folders under stress (issue 18): two writers racing for one run id, sweep names that
point outside the results folder, step files gone missing, manifests that are not manifests,
many processes on one reply cache, and a SIGTERM in the middle of a run. Each ends in one
clear line or a consistent folder, never a mixed run or a raw traceback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from culturesim import cli, runner
from culturesim import scenario as sc
from culturesim.store import TEMP_SUFFIX, WRITE_PAUSE_ENV, RunDir, RunError, list_runs

ROOT = Path(__file__).resolve().parents[1]


def scenario_data(**changes) -> dict:
    data = {
        "kind": "culture", "name": "hostile", "seed": 1, "steps": 3,
        "population": {"size": 4}, "network": {"topology": "ring"},
        "llm": {"model": "echo/x"}, "output": {"run_id": "same"},
    }
    data.update(changes)
    return data


def write_scenario(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump(scenario_data(**changes)))
    return path


def make_run(out: Path, **changes) -> RunDir:
    return runner.start(sc.validate_data(scenario_data(**changes), "test"), out=out, show_progress=False)


def one_line(err: str, *words: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    assert all(w in lines[0] for w in words), (words, lines[0])
    return lines[0]


def texts(run: RunDir) -> list[tuple]:
    return sorted(run.ideas().select("step", "agent_id", "text").rows())


# ------------------------------------------------------------------------------ 1. one run id, two starts

# Both processes import culturesim first and then wait for one file, so that they reach
# runner.start together (importing takes seconds on a loaded machine, and a late one would
# only meet the early "already holds a run" check).
AT_THE_SIGNAL = """
import os, sys, time
import culturesim.cli, culturesim.runner, culturesim.kinds.culture.model
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.005)
sys.exit(culturesim.cli.main(sys.argv[2:]))
"""


def test_two_processes_starting_one_run_id_make_one_run(tmp_path):
    scenario = write_scenario(tmp_path, steps=4, population={"size": 6}, llm={"model": "echo/delay-0.05"})
    out, go = tmp_path / "out", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", AT_THE_SIGNAL, str(go), "run", str(scenario), "--out", str(out),
                               "-q", "--set", f"seed={seed}"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    time.sleep(3)  # both have imported culturesim (or nearly): let them go together
    go.touch()
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    [(_, _, loser_err)] = [r for r in results if r[0] == 2]
    one_line(loser_err, str(out / "same"))
    assert "already holds a run" in loser_err or "is being written by" in loser_err
    run = RunDir(out / "same")
    manifest = run.read_manifest()
    assert manifest["status"] == "done"
    winner_seed = manifest["seeds"]["run"]
    reference = make_run(tmp_path / "ref", seed=winner_seed, steps=4, population={"size": 6})
    assert texts(run) == texts(reference)  # the ideas are the winner's run, whole, and only it


def test_a_start_that_finds_the_run_made_under_the_lock_is_refused(tmp_path, monkeypatch):
    """The race made deterministic: between the first check and the lock another start
    makes the whole run. The second one must not write over it."""
    out = tmp_path / "out"
    real = runner.make_model
    raced = []

    def make_model_racing(*args, **kwargs):
        if not raced:
            raced.append(True)
            make_run(out, seed=7)  # the other writer: it finishes first
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "make_model", make_model_racing)
    with pytest.raises(RunError, match="already holds a run"):
        runner.start(sc.validate_data(scenario_data(seed=8), "test"), out=out, show_progress=False)
    run = RunDir(out / "same")
    assert run.read_manifest()["seeds"]["run"] == 7
    assert texts(run) == texts(make_run(tmp_path / "ref", seed=7))


# ------------------------------------------------------------------------------ 2, 3. sweep folder and workers


@pytest.mark.parametrize("name", ["../../escaped", "ABSOLUTE"])
def test_a_sweep_folder_stays_inside_output_dir_whatever_the_name(tmp_path, name, capsys):
    outside = tmp_path / "elsewhere"
    name = str(outside / "abs") if name == "ABSOLUTE" else name
    results = tmp_path / "a" / "b" / "results"
    scenario = write_scenario(tmp_path, name=name, steps=1, output={"dir": str(results)},
                              sweep={"grid": {"culture.operation": ["combine"]}})
    code = cli.main(["sweep", str(scenario), "-q"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    [sweep_json] = list(tmp_path.rglob("sweep.json"))
    assert sweep_json.resolve().is_relative_to(results.resolve()), sweep_json
    assert sweep_json.parent.parent.resolve() == results.resolve()
    assert not outside.exists() and not (tmp_path / "escaped-sweep").exists()


def test_a_run_id_and_a_sweep_folder_are_made_safe_by_one_helper():
    from culturesim.store import safe_name

    for name in ("../../x", "/etc/passwd", "..", "", "a b/c"):
        safe = safe_name(name)
        assert "/" not in safe and safe not in ("", ".", "..") and not safe.startswith(".")
        assert runner.new_run_id(name).startswith(safe + "-")


@pytest.mark.parametrize("workers", ["0", "-3"])
def test_workers_below_one_is_refused_before_anything_is_written(tmp_path, workers, capsys):
    folder = tmp_path / "sweep"
    scenario = write_scenario(tmp_path, sweep={"grid": {"culture.operation": ["combine"]}})
    code = cli.main(["sweep", str(scenario), "--out", str(folder), "--workers", workers, "-q"])
    assert code == 2
    one_line(capsys.readouterr().err, "--workers")
    assert not folder.exists()


# ------------------------------------------------------------------------------ 4. resume with a missing step


def interrupted_run(tmp_path: Path, steps: int = 6) -> RunDir:
    """A run stopped after all its steps were written but before it was compacted."""
    run = make_run(tmp_path / "out", steps=steps)
    for table in run.path.glob("*.parquet"):
        if table.stem not in ("agents", "edges"):
            table.unlink()
    run.update_manifest(status="interrupted")
    return run


def test_resume_refuses_a_run_with_a_missing_step_file(tmp_path, capsys):
    run = interrupted_run(tmp_path)
    run.step_path(4).unlink()
    code = cli.main(["run", "--resume", str(run.path), "-q"])
    one_line(capsys.readouterr().err, "steps/00004.parquet", "missing", "start the scenario again")
    assert code == 2
    assert run.read_manifest()["status"] == "interrupted"  # untouched: nothing resumed, nothing compacted
    assert not (run.path / "ideas.parquet").exists()


def test_resume_refuses_when_the_last_recorded_step_is_gone(tmp_path, capsys):
    run = interrupted_run(tmp_path)
    run.step_path(6).unlink()  # steps 1-5 contiguous, but the manifest says 6 were completed
    assert cli.main(["run", "--resume", str(run.path), "-q"]) == 2
    one_line(capsys.readouterr().err, "steps/00006.parquet", "missing")


def test_resume_of_a_whole_interrupted_run_still_works(tmp_path):
    run = interrupted_run(tmp_path)
    run.update_manifest(steps_completed=5)  # the manifest lags the last step by one after a crash
    assert cli.main(["run", "--resume", str(run.path), "-q"]) == 0
    assert run.read_manifest()["status"] == "done" and run.completed_steps() == [1, 2, 3, 4, 5, 6]


def test_two_kills_each_before_the_manifest_update_still_resume(tmp_path, monkeypatch):
    """A kill between a step's files and the manifest's update leaves the manifest one step
    behind; the resume takes the count from the disk, so a second such kill in the next
    session leaves it one behind again, not two (which the check refuses as a mismatch).
    Found by tests/test_crash_resume.py's random kills."""
    real = RunDir.update_manifest
    kill_at = {3, 4}

    def update_manifest(self, **changes):
        if "status" not in changes and changes.get("steps_completed") in kill_at:  # the per-step update
            kill_at.discard(changes["steps_completed"])
            raise KeyboardInterrupt  # the process dies here: the step is on disk, the manifest behind
        return real(self, **changes)

    monkeypatch.setattr(RunDir, "update_manifest", update_manifest)
    with pytest.raises(KeyboardInterrupt):
        make_run(tmp_path / "out", steps=6)
    run = RunDir(tmp_path / "out" / "same")
    assert run.completed_steps() == [1, 2, 3] and run.read_manifest()["steps_completed"] == 2
    with pytest.raises(KeyboardInterrupt):
        runner.resume(run.path, show_progress=False)
    assert run.completed_steps() == [1, 2, 3, 4] and run.read_manifest()["steps_completed"] == 3
    monkeypatch.setattr(RunDir, "update_manifest", real)
    assert runner.resume(run.path, show_progress=False).read_manifest()["status"] == "done"
    assert run.completed_steps() == [1, 2, 3, 4, 5, 6] and run.ideas().height == 6 * 4


# ------------------------------------------------------------------------------ 5. unreadable manifests

BAD_MANIFESTS = {
    "list": b"[1, 2, 3]",
    "bytes": bytes(range(256)),
    "not-json": b"{not json",
    "number": b"42",
}


@pytest.mark.parametrize("kind", sorted(BAD_MANIFESTS))
def test_read_manifest_of_a_bad_file_is_one_line_run_error(tmp_path, kind):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_bytes(BAD_MANIFESTS[kind])
    with pytest.raises(RunError) as caught:
        RunDir(tmp_path / "bad").read_manifest()
    assert "unreadable manifest" in str(caught.value) and "\n" not in str(caught.value)


def results_with_bad_manifests(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    make_run(out)
    for kind, content in BAD_MANIFESTS.items():
        (out / kind).mkdir()
        (out / kind / "manifest.json").write_bytes(content)
    return out


def test_runs_lists_the_good_run_and_each_unreadable_one(tmp_path, capsys):
    out = results_with_bad_manifests(tmp_path)
    listed = {run.run_id: m for run, m in list_runs(out)}
    assert listed["same"]["status"] == "done"
    for kind in BAD_MANIFESTS:
        assert listed[kind]["status"] == "unreadable" and "unreadable manifest" in listed[kind]["error"]
    assert cli.main(["runs", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "same" in printed and printed.count("unreadable:") == len(BAD_MANIFESTS)
    for kind in BAD_MANIFESTS:
        assert str(out / kind / "manifest.json") in printed


def test_report_skips_unreadable_runs_with_a_warning(tmp_path, capsys):
    out = results_with_bad_manifests(tmp_path)
    code = cli.main(["report", str(out), "--embedder", "tfidf"])
    printed = capsys.readouterr()
    assert code == 0 and "Traceback" not in printed.err  # the good (culture) run is reported
    assert printed.err.count("warning: skipped") == len(BAD_MANIFESTS)
    assert "LLM-Culture measures" in printed.out
    shutil.rmtree(out / "same")
    code = cli.main(["report", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err  # no run of a reported kind: said in one line
    assert err.count("warning: skipped") == len(BAD_MANIFESTS)
    assert "no run of a reported kind" in err


@pytest.mark.parametrize("content", [BAD_MANIFESTS["bytes"], BAD_MANIFESTS["list"], b'{"status": "running"}',
                                     b'{"kind": "culture"}'])
def test_resume_of_a_bad_manifest_is_one_line(tmp_path, content, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_bytes(content)
    assert cli.main(["run", "--resume", str(tmp_path / "bad"), "-q"]) == 2
    one_line(capsys.readouterr().err, "manifest")


# ------------------------------------------------------------------------------ 6. one reply cache, many writers

# Each round opens the cache afresh, as each run of a sweep does, and the processes start
# together on a new file: opening (WAL, the table) and writing all meet other writers.
CACHE_WRITER = """
import os, sys, time
from pathlib import Path
from culturesim.llm.cache import ResponseCache
from culturesim.llm.types import Reply
path, who, rounds, go = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
while not os.path.exists(go):
    time.sleep(0.001)
for i in range(rounds):
    cache = ResponseCache(path)
    keys = [f"{who}-{i}-{j}" for j in range(5)]
    cache.put_many([(k, Reply(text=k, model="echo/x")) for k in keys])
    got = cache.get_many(keys + [f"{(who + 1) % WRITERS}-{i}-0"])
    assert all(got[k].text == k for k in keys), (who, i)
    cache.close()
"""
WRITERS, ROUNDS = 6, 300


@pytest.mark.parametrize("attempt", range(3))  # the lock is met by chance: three fresh files
def test_many_processes_share_one_reply_cache(tmp_path, attempt):
    path, go = tmp_path / ".cache" / "llm.sqlite", tmp_path / "go"
    code = CACHE_WRITER.replace("WRITERS", str(WRITERS))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), str(who), str(ROUNDS), str(go)], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True) for who in range(WRITERS)]
    time.sleep(2)
    go.touch()
    errors = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
    assert all(code == 0 for code, _ in errors), [err[-300:] for _, err in errors]
    from culturesim.llm.cache import ResponseCache

    cache = ResponseCache(path)
    keys = [f"{who}-{i}-{j}" for who in range(WRITERS) for i in range(ROUNDS) for j in range(5)]
    found = cache.get_many(keys)
    cache.close()
    assert len(found) == len(keys) and all(found[k].text == k for k in keys)


# ------------------------------------------------------------------------------ 7. SIGTERM mid-run


def test_sigterm_mid_run_leaves_an_interrupted_resumable_run(tmp_path):
    scenario = write_scenario(tmp_path, steps=40, llm={"model": "echo/delay-0.05"})
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "culturesim.cli", "run", str(scenario), "--out", str(out), "-q"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = RunDir(out / "same")
    deadline = time.monotonic() + 120
    while len(run.completed_steps()) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)
    code = proc.wait(timeout=60)
    manifest = run.read_manifest()
    assert code == cli.EXIT_INTERRUPTED, proc.communicate()
    assert manifest["status"] == "interrupted" and manifest["ended_at"], json.dumps(manifest)[:500]
    # the signal may land between step 2's files and the manifest's update: one step behind
    assert 1 <= manifest["steps_completed"] < 40
    assert runner.resume(run.path, show_progress=False).read_manifest()["status"] == "done"
    ideas = run.ideas()
    assert ideas.height == 40 * 4 and ideas.select("step", "agent_id").is_duplicated().sum() == 0
    assert pl.Series(run.completed_steps()).to_list() == list(range(1, 41))


def test_sigterm_during_the_first_manifest_write_leaves_an_interrupted_resumable_run(tmp_path):
    """The signal handlers cover a run from its first manifest write, not from its first step:
    a SIGTERM aimed (with the store's write pause) at the manifest being written, before any
    step, ends the run ``interrupted`` with its end time, and ``--resume`` completes it. Before,
    the default SIGTERM killed the process there, leaving a half-made folder no one could resume."""
    scenario = write_scenario(tmp_path, steps=3)
    out = tmp_path / "out"
    env = {**os.environ, WRITE_PAUSE_ENV: "1.5"}
    proc = subprocess.Popen([sys.executable, "-m", "culturesim.cli", "run", str(scenario), "--out", str(out), "-q"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = RunDir(out / "same")
    deadline = time.monotonic() + 120
    while not list(run.path.glob(f".manifest.json.*{TEMP_SUFFIX}")):  # the manifest, mid-write
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGTERM)
    code = proc.wait(timeout=60)
    _, err = proc.communicate()
    assert code == cli.EXIT_INTERRUPTED, err
    manifest = run.read_manifest()
    assert manifest["status"] == "interrupted" and manifest["ended_at"], json.dumps(manifest)[:500]
    assert manifest["steps_completed"] == 0 and run.completed_steps() == []
    assert not list(run.path.glob(f"**/*{TEMP_SUFFIX}"))
    assert runner.resume(run.path, show_progress=False).read_manifest()["status"] == "done"
    assert run.completed_steps() == [1, 2, 3] and run.ideas().height == 3 * 4


class _Killed(Exception):
    """What the process's own SIGTERM disposition does in the test below (it would die)."""


def test_sigterm_just_after_the_manifest_is_in_place_is_recorded(tmp_path, monkeypatch):
    """In process: the SIGTERM is sent the moment the first manifest is renamed into place,
    before any step. The test's own handler stands for the process's default (death): if the
    run's handler is not installed yet, the manifest is left ``running`` with no end time."""
    from culturesim import store

    sent = []
    real = store.RunDir.write_manifest

    def write_manifest(self, manifest):
        real(self, manifest)
        if not sent:
            sent.append(manifest["status"])
            os.kill(os.getpid(), signal.SIGTERM)  # handled before the next bytecode

    def default(signum, frame):
        raise _Killed

    monkeypatch.setattr(store.RunDir, "write_manifest", write_manifest)
    previous = signal.signal(signal.SIGTERM, default)
    try:
        with pytest.raises(KeyboardInterrupt):
            make_run(tmp_path / "out")
        assert signal.getsignal(signal.SIGTERM) is default  # the run's handler only while it runs
    finally:
        signal.signal(signal.SIGTERM, previous)
    run = RunDir(tmp_path / "out" / "same")
    manifest = run.read_manifest()
    assert sent == ["running"] and manifest["status"] == "interrupted" and manifest["ended_at"]
    assert run.completed_steps() == []
    monkeypatch.setattr(store.RunDir, "write_manifest", real)
    assert runner.resume(run.path, show_progress=False).read_manifest()["status"] == "done"
    assert run.completed_steps() == [1, 2, 3]
