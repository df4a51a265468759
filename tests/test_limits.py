"""Limits: memory stays bounded as a run gets longer, and a full disk leaves the last
complete step intact, says so in the manifest, and a resume after space is freed ends
with the results of an uninterrupted run.

The full measurement (1,000 agents x 100 steps) is bench/memory.py; here the same run is
measured at two lengths in fresh processes and its growth per step extrapolated.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import uuid
from pathlib import Path

import polars as pl
import pytest
import yaml

from culturesim import runner, store
from culturesim import scenario as sc
from culturesim.store import RESERVE_NAME, TEMP_SUFFIX, RunDir, StepWriteError

GIB = 1024**3
PEAK = """
import resource, sys
from pathlib import Path
from culturesim import runner, scenario as sc
runner.start(sc.load(sys.argv[1]), out=sys.argv[2], show_progress=False)
# VmHWM is this program's own peak; ru_maxrss would also carry the forking parent's (pytest's,
# over 1 GiB once torch is loaded), since Linux keeps it across exec
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
print(int(hwm[0].split()[1]) * 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def write_scenario(folder: Path, **changes) -> Path:
    data = {"kind": "culture", "name": "limits", "seed": 9, "steps": 30, "population": {"size": 20},
            "network": {"topology": "ring", "params": {"k": 2}}, "llm": {"model": "echo/x"},
            "output": {"run_id": "limits"}}
    data.update(changes)
    path = folder / f"limits-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def peak_rss(tmp_path: Path, steps: int) -> int:
    path = write_scenario(tmp_path, steps=steps, population={"size": 1000},
                          llm={"model": "echo/x", "concurrency": 256})
    done = subprocess.run([sys.executable, "-c", PEAK, str(path), str(tmp_path / f"out{steps}")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split()[-1])


@pytest.mark.slow
def test_memory_of_a_1000_agent_run_grows_slowly_with_its_length(tmp_path):
    short, long = 3, 18
    p_short, p_long = peak_rss(tmp_path, short), peak_rss(tmp_path, long)
    per_step = max(p_long - p_short, 0) / (long - short)
    at_100 = p_short + per_step * (100 - short)
    assert p_long < GIB and at_100 < GIB, (p_short, p_long, per_step)
    # a step's records are ~0.1 MB on disk: a run that kept them all in memory would grow
    # by megabytes per step (compaction with pl.concat did: 1.6 MB per step, measured)
    assert per_step < 1.0 * 1024**2, per_step


def comparable(run: RunDir) -> pl.DataFrame:
    return run.ideas().drop("latency_s", "cached").sort("step", "agent_id")


def assert_last_complete_step_intact(run: RunDir, agents: int) -> list[int]:
    steps = run.completed_steps()
    assert steps == list(range(1, len(steps) + 1)) and steps
    for path in run.path.rglob("*.parquet"):
        pl.read_parquet(path)
    ideas = run.ideas()
    assert ideas.height == agents * len(steps) and ideas.select("step", "agent_id").n_unique() == ideas.height
    assert not list(run.path.rglob(f".*{TEMP_SUFFIX}"))  # the failed write left nothing behind
    return steps


def test_disk_full_while_writing_a_step_is_said_and_resumable(tmp_path, monkeypatch):
    """ENOSPC raised by the writer itself, half-way through a step's ideas part."""
    path = write_scenario(tmp_path)
    real_atomic = store._atomic

    def atomic(target: Path, write):
        if target.parent.name == "steps" and target.name == "00004.parquet":
            def half_then_full(handle):
                handle.write(b"PAR1" + bytes(100))
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_atomic(target, half_then_full)
        return real_atomic(target, write)

    monkeypatch.setattr(store, "_atomic", atomic)
    with pytest.raises(StepWriteError) as caught:
        runner.start(sc.load(path), out=tmp_path / "out", show_progress=False)
    run = RunDir(tmp_path / "out" / "limits")
    manifest = run.read_manifest()
    assert manifest["status"] == "failed" and manifest["error"] == f"StepWriteError: {caught.value}"
    for words in ("step 4 was not written", "No space left on device", "steps 1-3 are complete",
                  f"culturesim run --resume {run.path}"):
        assert words in manifest["error"]
    assert assert_last_complete_step_intact(run, 20) == [1, 2, 3]
    assert not (run.path / RESERVE_NAME).exists()  # given back with the final status

    monkeypatch.setattr(store, "_atomic", real_atomic)  # space freed
    runner.resume(run.path, show_progress=False)
    reference = runner.start(sc.load(path), out=tmp_path / "reference", show_progress=False)
    assert run.read_manifest()["status"] == "done"
    assert comparable(run).equals(comparable(reference))


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (needs root and mount); a ballast file leaves ~250 KiB of it free."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        (disk / "ballast").write_bytes(bytes(2 * 1024**2 - 250 * 1024))
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_really_full_disk_fails_the_run_cleanly_and_resume_completes_it(tmp_path, small_disk):
    path = write_scenario(tmp_path)
    cli = [sys.executable, "-m", "culturesim.cli", "run"]
    first = subprocess.run([*cli, str(path), "--out", str(small_disk / "out"), "-q"], capture_output=True,
                           text=True, timeout=300)
    run = RunDir(small_disk / "out" / "limits")
    manifest = json.loads(run.manifest_path.read_text())
    assert first.returncode == 1 and manifest["status"] == "failed", (first.stderr, manifest["status"])
    assert "No space left on device" in manifest["error"] or "disk is full" in manifest["error"]
    assert manifest["error"].splitlines()[0] in first.stderr
    steps = assert_last_complete_step_intact(run, 20)
    assert len(steps) < 30

    (small_disk / "ballast").unlink()
    again = subprocess.run([*cli, "--resume", str(run.path), "-q"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    reference = runner.start(sc.load(path), out=tmp_path / "reference", show_progress=False)
    assert run.read_manifest()["status"] == "done"
    assert comparable(run).equals(comparable(reference))
