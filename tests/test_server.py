"""Any OpenAI-compatible server works: llama-cpp-python's own server on loopback,
serving SmolLM2, reached through litellm's ``openai/`` provider with ``api_base``."""

from __future__ import annotations

import polars as pl
import pytest
from conftest import free_port, llama_server

from culturesim import runner
from culturesim import scenario as sc
from culturesim.llm.client import LLM
from culturesim.llm.types import Request
from culturesim.scenario import LLMSpec


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with llama_server(tmp_path_factory.mktemp("server") / "server.log") as base:
        yield base


def test_generate_through_openai_compatible_server(server):
    llm = LLM(LLMSpec(model="openai/smollm2", api_base=server, cache=False, max_tokens=16, concurrency=4))
    messages = ({"role": "user", "content": "Name a colour."},)
    replies = llm.generate([Request(messages=messages, seed=s, max_tokens=16, tag=str(s)) for s in (1, 2, 1)])
    assert all(r.ok and r.text for r in replies), [r.error for r in replies]
    assert all(0 < r.completion_tokens <= 16 and r.prompt_tokens > 0 for r in replies)


def test_scenario_runs_through_the_server(server, tmp_path):
    scen = tmp_path / "served.yaml"
    scen.write_text(f"""\
kind: culture
name: served
seed: 5
steps: 2
population: {{size: 3}}
network: {{topology: complete}}
llm: {{model: openai/smollm2, api_base: "{server}", max_tokens: 16, cache: false, concurrency: 3}}
""")
    run = runner.start(sc.load(scen), out=tmp_path / "out", show_progress=False)
    ideas = pl.read_parquet(run.path / "ideas.parquet")
    assert ideas.height == 6 and ideas["error"].null_count() == 6
    assert ideas["text"].str.len_chars().min() > 0
    assert (ideas["model"] == "openai/smollm2").all()


def test_server_down_is_a_recorded_failure_not_a_hang(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    llm = LLM(LLMSpec(model="openai/smollm2", api_base=dead, cache=False, retries=1, timeout_s=5, outage_s=0),
              backoff_s=0.01)
    reply = llm.generate([Request(messages=({"role": "user", "content": "hi"},), seed=1)])[0]
    assert not reply.ok and reply.retries == 1 and "Connection" in reply.error
