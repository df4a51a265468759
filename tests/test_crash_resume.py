"""SIGKILL at any moment loses nothing: `culturesim run` and `culturesim sweep` are killed
again and again (between steps, in the middle of a Parquet or manifest write, while
starting, while compacting) and rerun each time. At every kill point every file on disk
is readable and every completed step is whole; in the end the results equal those of an
uninterrupted run with the same seed, with no row missing and none twice.

Writes are slowed by store.py's test hook (a pause between writing a temporary file and
renaming it into place), so a kill can be aimed at the middle of a write and seen to
land there: the killed writer's temporary file is still on disk afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from culturesim import runner
from culturesim import scenario as sc
from culturesim.store import TEMP_SUFFIX, WRITE_PAUSE_ENV, RunDir
from culturesim.sweep import Sweep

AGENTS, STEPS = 6, 30
PAUSE_S = "0.1"  # wide enough that a poll on a loaded 2-core machine still lands inside a write
VOLATILE = ("latency_s", "cached")  # timing, and whether a reply came from the cache


def scenario_file(tmp_path: Path, sweep: bool = False) -> Path:
    data = {
        "kind": "culture", "name": "crash", "seed": 5, "steps": 8 if sweep else STEPS,
        "population": {"size": AGENTS, "mix": {"creative": 0.5, "not_creative": 0.5}},
        "network": {"topology": "ring"},
        "llm": {"model": "echo/delay-0.02"},
        "culture": {"update": "asynchronous"},
        "output": {"run_id": "crash"},
    }
    if sweep:
        del data["output"]["run_id"]
        data["sweep"] = {"grid": {"culture.operation": ["combine", "transform"]}, "replicates": 2}
    path = tmp_path / "crash.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# Starting Python and importing culturesim takes seconds on a loaded 2-core machine, and
# this test starts the CLI two dozen times. So most rounds fork it from a process that has
# imported it already: the child runs exactly what `python -m culturesim.cli` runs
# (culturesim.cli.main) in a session of its own, and is killed by process group. The first
# and last rounds are real `python -m culturesim.cli` processes.
FORKSERVER = """
import json, os, sys
import culturesim.cli, culturesim.runner, culturesim.kinds.culture.model, culturesim.sweep
for line in sys.stdin:
    request = json.loads(line)
    if "wait" in request:
        _, status = os.waitpid(request["wait"], 0)
        print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
        continue
    pid = os.fork()
    if pid == 0:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.environ.update(request["env"])
        os._exit(culturesim.cli.main(request["argv"]))
    print(json.dumps(pid), flush=True)
"""


class ForkServer:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", FORKSERVER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def ask(self, request: dict):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


class Forked:
    """A forked `culturesim` with the small part of Popen's interface the rounds use."""

    def __init__(self, server: ForkServer, args: list[str]):
        self.server = server
        self.pid = server.ask({"argv": args, "env": {WRITE_PAUSE_ENV: PAUSE_S}})
        self.returncode = None
        self.stderr = None

    def poll(self):
        if self.returncode is None and _ended(self.pid):
            self.returncode = self.server.ask({"wait": self.pid})  # the fork server reaps its child
        return self.returncode

    def wait(self):
        while self.poll() is None:
            time.sleep(0.005)
        return self.returncode


def _ended(pid: int) -> bool:
    """A child of another process that has exited is a zombie until that process reaps it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def launch(*args: str, server: ForkServer | None = None):
    if server is not None:
        return Forked(server, [*args, "-q"])
    env = {**os.environ, WRITE_PAUSE_ENV: PAUSE_S}
    return subprocess.Popen([sys.executable, "-m", "culturesim.cli", *args, "-q"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def temporaries(folder: Path) -> list[Path]:
    return list(folder.rglob(f".*{TEMP_SUFFIX}")) if folder.exists() else []


def check_on_disk(folder: Path, agents: int = AGENTS) -> int:
    """Every Parquet and JSON file under ``folder`` reads; each run's completed steps are
    1..k with every agent once, prompts included. Returns the steps completed in all."""
    for path in folder.rglob("*.parquet"):
        pl.read_parquet(path)
    for path in folder.rglob("*.json"):
        json.loads(path.read_text())
    total = 0
    for manifest in folder.rglob("manifest.json"):
        run = RunDir(manifest.parent)
        steps = run.completed_steps()
        assert steps == list(range(1, len(steps) + 1)), steps
        for table in (run.ideas(), run.prompts()):
            assert table.height == agents * len(steps)
            assert table.select("step", "agent_id").n_unique() == table.height
        total += len(steps)
    return total


def comparable(table: pl.DataFrame) -> pl.DataFrame:
    return table.drop(VOLATILE, strict=False).sort("step", "agent_id")


def same_results(path: Path, reference: Path) -> None:
    got, want = RunDir(path), RunDir(reference)
    assert got.read_manifest()["status"] == "done"
    assert comparable(got.ideas()).equals(comparable(want.ideas()))
    assert comparable(got.prompts()).equals(comparable(want.prompts()))
    assert not temporaries(path)


def in_group(pgid: int) -> list[int]:
    """Live processes of a process group (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def elapsed(seconds: float):
    """A kill condition: this many seconds after the round starts (armed by its first call)."""
    start: list[float] = []

    def condition() -> bool:
        start.append(time.monotonic())
        return start[-1] - start[0] >= seconds
    return condition


class Killer:
    """Runs a command until a condition on the folder holds, then SIGKILLs its process group."""

    def __init__(self, folder: Path, server: ForkServer | None = None):
        self.folder = folder
        self.server = server
        self.kills = 0
        self.mid_write = 0

    def round(self, args: list[str], condition, timeout: float = 120, fork: bool = True, group: bool = True) -> bool:
        """True if the process was killed, False if it finished first. With ``group`` False
        only the process itself is killed, and what it started must die with it."""
        proc = launch(*args, server=self.server if fork else None)
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if condition():
                try:
                    (os.killpg if group else os.kill)(proc.pid, signal.SIGKILL)
                except ProcessLookupError:  # it ended between poll() and the kill: it finished first
                    assert proc.wait() == 0, proc.returncode
                    return False
                proc.wait()
                while left := in_group(proc.pid):
                    assert time.monotonic() < deadline, f"processes outlived the one killed: {left}"
                    time.sleep(0.05)
                self.kills += 1
                if temporaries(self.folder):
                    self.mid_write += 1  # the kill landed between a write and its rename
                return True
            assert time.monotonic() < deadline, "the command neither finished nor met the kill condition"
            time.sleep(0.002)
        assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else proc.returncode
        return False


@pytest.fixture(scope="module")
def forkserver():
    server = ForkServer()
    yield server
    server.close()


def test_run_killed_at_22_points_resumes_to_the_uninterrupted_result(tmp_path, forkserver):
    path = scenario_file(tmp_path)
    out = tmp_path / "out"
    run = out / "crash"
    rng = np.random.default_rng(3)
    killer = Killer(run, forkserver)

    def done_steps() -> int:
        return len(RunDir(run).completed_steps())

    def writing(where: str, name: str = "") -> bool:
        return any(p.parent.name == where and p.name.startswith(f".{name}") for p in temporaries(run))

    def writing_step(where: str, first: int) -> bool:
        """A step file of step ``first`` or later is being written. Later steps count too: on a
        loaded machine one poll can take longer than a write's pause and miss step ``first``."""
        return any(p.parent.name == where and p.name[1:6].isdigit() and int(p.name[1:6]) >= first
                   for p in temporaries(run))

    def after(steps: int, delay: float):
        started = []

        def condition():
            if done_steps() < steps:
                return False
            started.append(time.monotonic())
            return time.monotonic() - started[0] >= delay
        return condition

    # kill points: while setting up, at random moments, and inside each kind of write
    # (kinds 0-4 below, each aimed at the next step or the one after when its round starts)
    plan = [lambda: writing("crash", "agents") or writing("crash", "edges")]
    plan += [i % 5 for i in range(17)]
    plan += ["prompts.parquet", "ideas.parquet"]  # while compacting
    for item in plan:
        args = ["run", "--resume", str(run)] if RunDir(run).exists() else ["run", str(path), "--out", str(out)]
        if callable(item):
            condition = item
        elif isinstance(item, str):
            condition = (lambda name: lambda: writing("crash", name))(item)
        else:
            step = done_steps() + 1 + int(rng.integers(0, 2))
            condition = {
                0: lambda s=step: done_steps() >= s - 1 and writing_step("steps", s),
                1: lambda s=step: done_steps() >= s - 1 and writing_step("prompts", s),
                2: lambda s=step: done_steps() >= s and writing("crash", "manifest"),
                3: after(step, float(rng.uniform(0, 0.05))),
                4: elapsed(float(rng.uniform(0.0, 0.6))),
            }[item]
        real = item is plan[0]  # the first start is a real process, the rest are forked
        assert killer.round(args, condition, fork=not real), f"the run finished before kill point {item}"
        check_on_disk(out)
    # two more at random moments, then the last resume runs to the end
    for wait in rng.uniform(0.1, 1.0, size=2):
        killer.round(["run", "--resume", str(run)], elapsed(wait), fork=False)
        check_on_disk(out)
    finished = not killer.round(["run", "--resume", str(run)], lambda: False, fork=False)
    assert finished and killer.kills >= 20 and killer.mid_write >= 10, (killer.kills, killer.mid_write)
    assert len(RunDir(run).read_manifest()["sessions"]) >= 15

    reference = runner.start(sc.load(path), out=tmp_path / "reference", show_progress=False)
    same_results(run, reference.path)
    assert check_on_disk(out) == STEPS


@pytest.mark.slow
def test_sweep_killed_repeatedly_resumes_to_the_uninterrupted_results(tmp_path, forkserver):
    path = scenario_file(tmp_path, sweep=True)
    folder = tmp_path / "sweep"
    killer = Killer(folder, forkserver)
    args = ["sweep", str(path), "--out", str(folder), "--workers", "2"]

    def steps_done() -> int:
        return sum(len(RunDir(m.parent).completed_steps()) for m in folder.glob("*/manifest.json"))

    def writing_step() -> bool:
        return any(p.parent.name == "steps" for p in temporaries(folder))

    progress = []
    for i, condition in enumerate([
        lambda: any(p.name.startswith(".sweep.parquet") for p in temporaries(folder)),  # the index, at start
        lambda: steps_done() >= 3 and writing_step(),
        lambda: steps_done() >= 10,  # only the sweep process, below: its workers must end with it
        lambda: steps_done() >= 18 and writing_step(),
        lambda: steps_done() >= 26 and any(p.name.startswith(".ideas") for p in temporaries(folder)),
    ]):
        assert killer.round(args, condition, group=i != 2)
        progress.append(check_on_disk(folder))
    assert not killer.round(args, lambda: False, fork=False)
    assert progress == sorted(progress) and killer.mid_write >= 3

    index = pl.read_parquet(folder / "sweep.parquet")
    assert index.height == 4 and set(index["status"]) == {"done"}
    for spec in Sweep(sc.load(path), tmp_path / "unused").runs:  # each run alone, never interrupted
        reference = runner.start(sc.validate_data(spec.scenario, spec.run_id), out=tmp_path / "reference",
                                 show_progress=False)
        same_results(folder / spec.run_id, reference.path)
