"""Two backends at once in one culture run: the embedded SmolLM2 (in process) for half the
population and a llama.cpp server on loopback (llama-cpp-python's own server, serving the same
GGUF file) for the other half. Each agent's model is recorded in agents.parquet and on each of
its ideas; a run SIGKILLed after its first step resumes to exactly the ideas and prompts of an
uninterrupted run (each in a results folder of its own, so neither reads the other's cache)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import llama_server

from culturesim.store import RunDir

ROOT = Path(__file__).resolve().parents[1]
SERVED = [1, 3, 5]
VOLATILE = ("latency_s", "cached")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with llama_server(tmp_path_factory.mktemp("server") / "server.log", "--n-threads", "1") as base:
        yield base


def scenario(tmp_path: Path, base: str) -> Path:
    data = {
        "kind": "culture", "name": "two-backends", "seed": 11, "steps": 3,
        "population": {"size": 6, "mix": {"creative": 0.5, "neutral": 0.5}},
        "network": {"topology": "ring"},
        "llm": {"model": "local/smollm2", "max_tokens": 8, "n_threads": 1},
        "groups": {"served": {"ids": SERVED, "llm": {"model": "openai/smollm2", "api_base": base,
                                                       "temperature": 0.0, "concurrency": 3}}},
        "output": {"run_id": "mixed"},
    }
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "culturesim.cli", *args, "-q"], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)


def comparable(table: pl.DataFrame) -> pl.DataFrame:
    return table.drop(VOLATILE, strict=False).sort("step", "agent_id")


def test_two_backends_record_each_agents_model_and_resume_identically(server, tmp_path):
    path = scenario(tmp_path, server)
    reference = cli("run", str(path), "--out", str(tmp_path / "reference"))
    assert reference.wait(timeout=600) == 0, reference.stderr.read()[-2000:]
    ref = RunDir(tmp_path / "reference" / "mixed")

    agents = pl.read_parquet(ref.path / "agents.parquet").sort("agent_id")
    want = ["openai/smollm2" if i in SERVED else "local/smollm2" for i in range(6)]
    assert agents["model"].to_list() == want
    assert agents["group"].to_list() == ["served" if i in SERVED else None for i in range(6)]
    ideas = ref.ideas().sort("step", "agent_id")
    assert ideas.height == 18 and ideas["error"].null_count() == 18
    assert ideas["model"].to_list() == want * 3  # the model that answered each agent
    assert ideas["text"].null_count() == 0

    # killed after its first step (written), then resumed: the same ideas and prompts
    out = tmp_path / "killed"
    killed = cli("run", str(path), "--out", str(out))
    first_step = out / "mixed" / "steps" / "00001.parquet"
    deadline = time.monotonic() + 600
    while not first_step.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    run = RunDir(out / "mixed")
    assert run.read_manifest()["status"] == "running", "the run ended before it could be killed"
    assert 1 <= len(run.completed_steps()) < 3
    resumed = cli("run", "--resume", str(run.path))
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()[-2000:]
    assert run.read_manifest()["status"] == "done"
    assert comparable(run.ideas()).equals(comparable(ref.ideas()))
    assert comparable(run.prompts()).equals(comparable(ref.prompts()))
    assert pl.read_parquet(run.path / "agents.parquet").equals(pl.read_parquet(ref.path / "agents.parquet"))
