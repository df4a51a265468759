"""The runner's contract with kinds that have no language model (GP, GARD, ...).

A minimal kind defined here (a seeded random walk) exercises the path every such kind
takes: no LLM opened, per-step tables written and compacted, progress by steps, and a
resume that replays the finished steps so the result equals an uninterrupted run.
"""

from __future__ import annotations

from typing import Annotated, Literal

import mesa
import networkx as nx
import numpy as np
import polars as pl
import pytest
from pydantic import Field

from culturesim import runner
from culturesim import scenario as sc
from culturesim.kinds import Kind, register, unregister
from culturesim.kinds.contract import KindModel, StepRecord
from culturesim.store import RunDir, RunError

WALK_SCHEMA = {"step": pl.Int64, "walker": pl.Int64, "position": pl.Float64}
TABLES = {"walk": WALK_SCHEMA}  # this module is also the kind's tables module


class WalkSpec(sc.Strict):
    walkers: Annotated[int, Field(strict=True, ge=1, le=1000)] = 5
    fail_at: int | None = None


class WalkScenario(sc.Strict):
    kind: Literal["walk"]
    name: str
    seed: int = 0
    steps: int
    output: sc.OutputSpec = Field(default_factory=sc.OutputSpec)
    sweep: sc.SweepSpec | None = None
    walk: WalkSpec = Field(default_factory=WalkSpec)

    def cross_checks(self):
        return []


class WalkModel(KindModel, mesa.Model):
    uses_llm = False
    resume = "replay"
    progress = "steps"

    def __init__(self, scenario, graph, llm, run_id="", *, base_dir=None):
        super().__init__(seed=scenario.seed)
        assert llm is None  # no LLM for this kind
        self.scenario = scenario
        self.rng = np.random.default_rng(scenario.seed)
        self.position = np.zeros(scenario.walk.walkers)
        self.first_step = 1
        self.done = 0
        self.fail_at = scenario.walk.fail_at

    @classmethod
    def build_graph(cls, scenario, base_dir=None):
        graph = nx.Graph()
        graph.add_nodes_from(range(scenario.walk.walkers))
        return graph

    @property
    def next_step(self):
        return self.first_step + self.done

    def tables(self):
        return TABLES

    def agents_table(self):
        return [{"agent_id": i, "community": None} for i in range(len(self.position))]

    def _advance(self):
        self.position += self.rng.normal(size=self.position.size)
        self.done += 1

    def step(self):
        step = self.next_step
        if self.fail_at == step:
            raise RuntimeError(f"stopped at step {step} on purpose")
        self._advance()
        return StepRecord(tables={"walk": [{"step": step, "walker": i, "position": float(p)}
                                           for i, p in enumerate(self.position)]})

    def replay(self, completed):
        for _ in range(completed):
            self._advance()


@pytest.fixture
def walk_kind():
    register(Kind(name="walk", schema=f"{__name__}:WalkScenario", model=f"{__name__}:WalkModel", tables=__name__))
    yield
    unregister("walk")


def scenario(**walk):
    return sc.validate_data({"kind": "walk", "name": "walk", "seed": 7, "steps": 6, "walk": walk}, "test")


def test_a_kind_without_llm_runs_and_compacts_its_tables(walk_kind, tmp_path):
    run = runner.start(scenario(), out=tmp_path, show_progress=False)
    manifest = run.read_manifest()
    assert manifest["status"] == "done" and manifest["llm"] is None
    table = pl.read_parquet(run.path / "walk.parquet")
    assert table.height == 6 * 5 and sorted(table["step"].unique()) == list(range(1, 7))
    assert not (tmp_path / ".cache" / "llm.sqlite").exists()  # no LLM was opened
    # the positions are the seeded walk, computed here another way
    expected = np.cumsum(np.random.default_rng(7).normal(size=(6, 5)), axis=0)
    np.testing.assert_allclose(table.sort("step", "walker")["position"].to_numpy().reshape(6, 5), expected)


def test_resume_replays_the_finished_steps(walk_kind, tmp_path):
    whole = runner.start(scenario(), out=tmp_path / "a", show_progress=False)
    broken = scenario(fail_at=4)
    with pytest.raises(RuntimeError, match="on purpose"):
        runner.start(broken, out=tmp_path / "b", show_progress=False)
    (path,) = [p for p in (tmp_path / "b").iterdir() if p.is_dir() and not p.name.startswith(".")]
    run = RunDir(path)
    assert run.read_manifest()["status"] == "failed" and run.completed_steps() == [1, 2, 3]
    # the user fixes the cause; the run continues from step 4 with the same random stream
    manifest = run.read_manifest()
    manifest["scenario"]["walk"]["fail_at"] = None
    run.write_manifest(manifest)
    runner.resume(path, show_progress=False)
    assert run.read_manifest()["status"] == "done"
    a = pl.read_parquet(whole.path / "walk.parquet").sort("step", "walker")
    b = pl.read_parquet(run.path / "walk.parquet").sort("step", "walker")
    assert a.equals(b)


def test_validate_reports_no_llm(walk_kind, tmp_path, capsys):
    from culturesim.cli import main

    path = tmp_path / "walk.yaml"
    path.write_text("kind: walk\nname: w\nsteps: 3\n")
    assert main(["validate", str(path)]) == 0
    assert "no LLM" in capsys.readouterr().out


def test_a_run_being_written_cannot_be_resumed_by_another_process(walk_kind, tmp_path):
    """One writer per run: a second resume would interleave its steps with the first's."""
    import subprocess
    import sys

    broken = scenario(fail_at=3)
    with pytest.raises(RuntimeError):
        runner.start(broken, out=tmp_path, show_progress=False)
    (path,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time\n"
        f"h = open({str(path / '.lock')!r}, 'a+'); fcntl.flock(h.fileno(), fcntl.LOCK_EX)\n"
        "h.seek(0); h.truncate(); h.write('process 4242 on elsewhere'); h.flush()\n"
        "print('held', flush=True); time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunError, match="being written by process 4242 on elsewhere"):
            runner.resume(path, show_progress=False)
    finally:
        holder.kill()
        holder.wait()
    # the writer gone (its lock released by the kernel), the resume goes ahead
    manifest = RunDir(path).read_manifest()
    manifest["scenario"]["walk"]["fail_at"] = None
    RunDir(path).write_manifest(manifest)
    runner.resume(path, show_progress=False)
    assert RunDir(path).read_manifest()["status"] == "done"
