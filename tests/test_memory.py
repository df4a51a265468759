"""Memory (culturesim/agents/memory.py): what ``{history}`` and ``{received_history}`` show,
checked against values worked out by hand on a small chain, the load-time checks of the
placeholders, and resume: a run restored from its recorded steps shows exactly the prompts
an uninterrupted run shows.

The hand-computed tests use a stand-in model whose reply is the request's tag (the idea's
own id, ``s<step>-a<agent>``), so every idea's text says where it came from and a memory can
be written down without running anything. The runner-level tests use the ``echo/`` backend.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from test_old_runs import cut_back  # what a kill after a step leaves, first_step taken into account

from culturesim import runner
from culturesim import scenario as sc
from culturesim.agents.memory import EMPTY_RECEIVED, Memory, MemorySpec
from culturesim.kinds.contract import Door
from culturesim.kinds.culture.model import CultureModel
from culturesim.llm.types import Reply, Request
from culturesim.runner import build_graph
from culturesim.scenario import ScenarioError, validate_data
from culturesim.store import RunDir

TEMPLATE = "H[{history}] R[{received_history}] I[{ideas}]"


def tag_model(fail: set[str] = frozenset()):
    """Replies with the request's tag; the tags in ``fail`` fail (the agent keeps its idea)."""

    def generate(requests: list[Request]) -> list[Reply]:
        return [Reply(text=None, model="tag", error="boom", seed=r.seed) if r.tag in fail
                else Reply(text=r.tag, model="tag", prompt_tokens=1, completion_tokens=1, seed=r.seed)
                for r in requests]

    return generate


def chain_scenario(**extra):
    data = {
        "kind": "culture", "name": "mem", "seed": 3, "steps": 5,
        "population": {"size": 4},
        "network": {"topology": "chain", "directed": True},  # agent i reads i-1; agent 0 no one
        "culture": {"update": "synchronous", "operation": "transform", "prompts": {"transform": TEMPLATE}},
        "memory": {"own": 2, "received": 2},
    }
    data.update(extra)
    return validate_data(data, "test")


def run_model(scenario, generate, steps=None) -> tuple[CultureModel, list[dict], list[dict]]:
    model = CultureModel(scenario, build_graph(scenario, None), Door.of(generate), "r")
    ideas, prompts = [], []
    for _ in range(model.first_step, (steps or scenario.steps) + 1):
        record = model.step()
        ideas += record.ideas
        prompts += record.prompts
    return model, ideas, prompts


def user_messages(prompts: list[dict]) -> dict[tuple[int, int], str]:
    return {(p["step"], p["agent_id"]): json.loads(p["messages"])[-1]["content"] for p in prompts}


def test_history_and_received_history_on_a_chain_by_hand():
    _, _, prompts = run_model(chain_scenario(), tag_model())
    shown = user_messages(prompts)
    # step 1: nobody holds an idea yet, every agent creates (the create prompt has no memory)
    assert "H[" not in shown[(1, 2)]
    # agent 2 reads agent 1. History: its own last two ideas, the newest being the one it holds;
    # received: what agent 1 showed it in the two steps before (at step s it was shown s{s-1}-a1)
    assert shown[(2, 2)] == f"H[1. s1-a2] R[{EMPTY_RECEIVED}] I[s1-a1]"
    assert shown[(3, 2)] == "H[1. s1-a2\n2. s2-a2] R[1. s1-a1] I[s2-a1]"
    assert shown[(4, 2)] == "H[1. s2-a2\n2. s3-a2] R[1. s1-a1\n2. s2-a1] I[s3-a1]"
    assert shown[(5, 2)] == "H[1. s3-a2\n2. s4-a2] R[1. s2-a1\n2. s3-a1] I[s4-a1]"
    # agent 0 reads no one: it retells its own idea, and never receives anything
    assert shown[(4, 0)] == f"H[1. s2-a0\n2. s3-a0] R[{EMPTY_RECEIVED}] I[s3-a0]"


def test_a_failed_reply_adds_nothing_and_an_idea_shown_twice_is_remembered_once():
    # agent 1's request of step 2 fails: it keeps s1-a1, which agent 2 is then shown at steps 2 and 3
    _, _, prompts = run_model(chain_scenario(), tag_model(fail={"s2-a1"}))
    shown = user_messages(prompts)
    assert shown[(3, 1)] == "H[1. s1-a1] R[1. s1-a0] I[s2-a0]"
    assert shown[(4, 2)] == "H[1. s2-a2\n2. s3-a2] R[1. s1-a1] I[s3-a1]"
    assert shown[(5, 2)] == "H[1. s3-a2\n2. s4-a2] R[1. s1-a1\n2. s3-a1] I[s4-a1]"


def test_seed_ideas_are_remembered_and_memory_sizes_are_independent():
    scenario = chain_scenario(memory={"own": 3, "received": 1},
                              culture={"update": "synchronous", "operation": "transform",
                                       "seed_ideas": ["alpha", "beta"], "prompts": {"transform": TEMPLATE}})
    _, _, prompts = run_model(scenario, tag_model())
    shown = user_messages(prompts)
    # step 0 hands agent k the seed k % 2: agent 1 holds "beta", agent 0 "alpha"
    assert shown[(1, 1)] == f"H[1. beta] R[{EMPTY_RECEIVED}] I[alpha]"
    assert shown[(2, 1)] == "H[1. beta\n2. s1-a1] R[1. alpha] I[s1-a0]"
    assert shown[(4, 1)] == "H[1. s1-a1\n2. s2-a1\n3. s3-a1] R[1. s2-a0] I[s3-a0]"


SETTINGS = {
    "chain": {},
    "asynchronous combine on a ring": {
        "network": {"topology": "ring", "params": {"k": 1}}, "population": {"size": 6},
        "culture": {"update": "asynchronous", "operation": "combine", "seed_ideas": ["one", "two"],
                    "social": {"sample": "k", "k": 1},
                    "prompts": {"combine": "{received_history} // {history} // {ideas}"}},
        "memory": {"own": 2, "received": 3},
    },
}


@pytest.mark.parametrize("name", SETTINGS)
def test_a_model_restored_after_any_step_shows_the_same_prompts(name):
    scenario = chain_scenario(**SETTINGS[name])
    fail = {"s2-a1", "s3-a4"}
    _, rows, prompts = run_model(scenario, tag_model(fail))
    for done in range(1, scenario.steps):
        restored = CultureModel(scenario, build_graph(scenario, None), Door.of(tag_model(fail)), "r")
        restored.restore([r for r in rows if r["step"] <= done])
        later = []
        for _ in range(done + 1, scenario.steps + 1):
            later += restored.step().prompts
        assert later == [p for p in prompts if p["step"] > done], f"restored after step {done}"


def test_memory_restore_alone_rebuilds_what_the_live_run_kept():
    model, rows, _ = run_model(chain_scenario(), tag_model({"s3-a2"}), steps=4)
    rebuilt = Memory(MemorySpec(own=2, received=2))
    rebuilt.restore(rows)
    for agent in range(4):
        assert rebuilt.history(agent) == model.memory.history(agent)
        assert rebuilt.received(agent, 5) == model.memory.received(agent, 5)
    assert [m.text for m in rebuilt.history(2)] == ["s2-a2", "s4-a2"]
    assert [m.text for m in rebuilt.received(3, 5)] == ["s2-a2"]  # agent 2 held s2-a2 at steps 3 and 4


# --- load-time checks ----------------------------------------------------------------------
def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def base(**extra) -> dict:
    data = {"kind": "culture", "name": "m", "steps": 2, "population": {"size": 3}, "llm": {"model": "echo/x"}}
    data.update(extra)
    return data


def test_a_memory_placeholder_with_memory_off_is_one_line_naming_file_line_and_key(tmp_path):
    path = write(tmp_path, base(culture={"prompts": {"combine": "{ideas} and {history}"}}))
    with pytest.raises(ScenarioError) as err:
        sc.load(path)
    [line] = err.value.problems
    assert line.startswith(f"{path}:") and "culture.prompts.combine" in line and "memory.own is 0" in line
    int(line.split(":")[1])  # a line number


def test_memory_that_no_template_shows_is_refused(tmp_path):
    path = write(tmp_path, base(memory={"own": 0, "received": 2}))
    with pytest.raises(ScenarioError) as err:
        sc.load(path)
    assert "memory.received" in err.value.problems[0] and "{received_history}" in err.value.problems[0]


def test_memory_placeholders_in_a_group_template_are_checked_and_accepted(tmp_path):
    group = {"creative": {"prompts": {"transform": "{received_history} {ideas}"}}}
    path = write(tmp_path, base(population={"size": 3, "mix": {"creative": 1}},
                                culture={"groups": group}))
    with pytest.raises(ScenarioError, match="culture.groups.creative.prompts.transform"):
        sc.load(path)
    loaded = sc.load(path, ["memory.received=1"])
    assert loaded.memory.received == 1 and loaded.memory.own == 0
    with pytest.raises(ScenarioError, match="unknown placeholder"):  # create never shows memory
        sc.load(write(tmp_path, base(culture={"prompts": {"create": "{history}"}}, memory={"own": 1})))
    with pytest.raises(ScenarioError, match="memory.own"):
        sc.load(path, ["memory.own=-1", "memory.received=1"])


# --- the runner: a killed run resumes with the same prompts ------------------------------
def scenario_file(tmp_path: Path, run_id: str) -> Path:
    data = base(
        name="mem", seed=11, steps=6, population={"size": 5}, network={"topology": "ring", "params": {"k": 1}},
        culture={"update": "asynchronous", "operation": "combine",
                 "prompts": {"combine": "Before: {history}\nHeard: {received_history}\nNow: {ideas}"}},
        memory={"own": 2, "received": 2}, output={"run_id": run_id},
    )
    return write(tmp_path, data)


def test_a_killed_run_resumes_with_the_prompts_of_an_uninterrupted_one(tmp_path):
    whole = runner.start(sc.load(scenario_file(tmp_path, "whole")), out=tmp_path / "a", show_progress=False)
    expected = whole.prompts().sort("step", "agent_id")
    assert expected.filter(pl.col("step") == 3)["messages"].str.contains("Heard: 1. ").all()
    for keep in (2, 4):
        copy = tmp_path / f"b{keep}" / "whole"  # another results folder: no reply cache, all recomputed
        shutil.copytree(whole.path, copy)
        cut_back(copy, keep)
        resumed = runner.resume(copy, show_progress=False)
        assert resumed.prompts().sort("step", "agent_id").equals(expected)
        assert resumed.read_manifest()["status"] == "done"



def test_a_run_killed_by_sigkill_resumes_with_the_same_prompts(tmp_path):
    """A real kill: ``culturesim run`` on a slow stand-in model is SIGKILLed once a few steps
    are on disk, then resumed; its prompts equal those of an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    path = scenario_file(tmp_path, "killed")
    text = path.read_text().replace("echo/x", "echo/delay-0.05")
    path.write_text(text)
    out = tmp_path / "k"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "culturesim.cli", "run", str(path), "--out", str(out), "-q"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    run = RunDir(out / "killed")
    deadline = time.monotonic() + 120
    while len(run.completed_steps() if run.steps_dir.is_dir() else []) < 3 and proc.poll() is None:
        assert time.monotonic() < deadline, "the run did not get to step 3"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = run.completed_steps()
    assert 3 <= len(done) < 6 and run.read_manifest()["status"] == "running"  # killed mid-run
    runner.resume(run.path, show_progress=False)
    whole = runner.start(sc.load(path, ["output.run_id=whole"]), out=tmp_path / "w", show_progress=False)
    assert run.prompts().sort("step", "agent_id").drop("run_id").equals(
        whole.prompts().sort("step", "agent_id").drop("run_id"))
