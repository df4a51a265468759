"""Faults from the model lose nothing: under injected faults a culture run completes,
every agent-step ends as an idea or a recorded failure with its reason and retry count,
and a real server killed and restarted mid-run does not end the run.

The faults come from ``faults/<spec>`` (culturesim/testing/faults.py), whose choice of fault
is a pure function of the request and attempt, so each row's retries and outcome are
recomputed here from the recorded prompt, independently of the client's bookkeeping.
What only a socket can do (a reply cut off mid-body, bytes that are not UTF-8) comes
from a small loopback HTTP server below.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import llama_server

from culturesim import runner
from culturesim import scenario as sc
from culturesim.llm.client import LLM
from culturesim.llm.types import Request
from culturesim.population import request_seed
from culturesim.scenario import LLMSpec
from culturesim.testing import faults

SPEC = "exc=0.08,bad=0.02,timeout=0.05,empty=0.06,long=0.04,drop=0.05"  # 30% of attempts
AGENTS, STEPS, RETRIES, MAX_CHARS = 24, 5, 3, 600


def scenario(tmp_path: Path, model: str, steps: int = STEPS, agents: int = AGENTS, k: int = 2, **llm) -> sc.Scenario:
    data = {
        "kind": "culture", "name": "faults", "seed": 17, "steps": steps,
        "population": {"size": agents},
        "network": {"topology": "ring", "params": {"k": k}},
        "llm": {"model": model, "cache": False, "retries": RETRIES, "max_tokens": 24, **llm},
        "culture": {"social": {"max_chars": MAX_CHARS}},
        "output": {"run_id": "faulty"},
    }
    path = tmp_path / "faults.yaml"
    path.write_text(yaml.safe_dump(data))
    return sc.load(path)


@pytest.fixture
def quick_backoff(monkeypatch):
    """Retries as the client does them, without half-second sleeps between them."""
    monkeypatch.setattr(runner, "LLM", functools.partial(LLM, backoff_s=0.001, max_backoff_s=0.005))


def expected_outcome(spec: faults.Spec, messages: list[dict], seed: int, seen: collections.Counter):
    """What the client's policy makes of the faults this request meets: (fault of the
    last attempt or None, retries, seed of the last attempt)."""
    for attempt in range(RETRIES + 1):
        n = seen[(json.dumps(messages, sort_keys=True), seed)]
        seen[(json.dumps(messages, sort_keys=True), seed)] += 1
        fault = faults.decide(spec, messages, seed, n)
        if fault in (None, "long", "badutf8"):
            return fault, attempt, seed
        if fault == "bad" or attempt == RETRIES:
            return fault, attempt, seed
        if fault == "empty":  # the client asks again with another seed
            seed = (seed + 1_000_003) % 2**32
    raise AssertionError("unreachable")


def test_fault_rates_are_the_spec_and_bad_specs_are_named():
    spec, draws = faults.parse(f"faults/{SPEC},delay=0.01"), 20_000
    seen = collections.Counter(faults.decide(spec, [{"role": "user", "content": "x"}], seed, 0)
                               for seed in range(draws))
    for name, rate in {**spec.rates, None: 1 - sum(spec.rates.values())}.items():
        sigma = (rate * (1 - rate) / draws) ** 0.5
        assert abs(seen[name] / draws - rate) < 4 * sigma, (name, seen[name])
    assert spec.delay == 0.01
    for bad, words in [("exc=0.7,empty=0.6", "sum to 1.3"), ("oops=0.1", "unknown fault 'oops'"),
                       ("exc", "'exc' is not name="), ("exc=-1", "not name=")]:
        with pytest.raises(faults.FaultSpecError, match=words):
            faults.parse(f"faults/{bad}")


FRESH_PROCESS = """
import sys
from culturesim.llm.client import LLM
from culturesim.llm.types import Request
from culturesim.scenario import LLMSpec
requests = [Request(messages=({"role": "user", "content": "hi"},), seed=s) for s in range(40)]
LLM(LLMSpec(model="echo/x", cache=False)).generate(requests)
print("culturesim.testing.faults" in sys.modules, "litellm" in sys.modules)
replies = LLM(LLMSpec(model="faults/bad=0.5", cache=False, retries=0, outage_s=0)).generate(requests)
print(sum("injected fault bad" in (r.error or "") for r in replies), sum(r.ok for r in replies))
"""


def test_faults_models_work_in_a_fresh_process_and_only_they_load_the_testing_module():
    """Runs started in subprocesses name ``faults/...`` with nothing registered by hand."""
    out = subprocess.run([sys.executable, "-c", FRESH_PROCESS], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    spec = faults.parse("bad=0.5")
    bad = sum(faults.decide(spec, [{"role": "user", "content": "hi"}], s, 0) == "bad" for s in range(40))
    assert 5 < bad < 35
    assert out.stdout.split() == ["False", "False", str(bad), str(40 - bad)]


def test_a_run_under_30_percent_faults_completes_and_accounts_for_every_agent_step(tmp_path, quick_backoff):
    handler = faults.make_handler()
    from culturesim.llm import client

    client.register_provider("faults", handler)
    run = runner.start(scenario(tmp_path, f"faults/{SPEC}"), out=tmp_path / "out", show_progress=False)
    manifest = run.read_manifest()
    ideas = pl.read_parquet(run.path / "ideas.parquet").sort("step", "agent_id")
    prompts = pl.read_parquet(run.path / "prompts.parquet").sort("step", "agent_id")

    assert manifest["status"] == "done"
    keys = [(s, a) for s in range(1, STEPS + 1) for a in range(AGENTS)]
    assert ideas.select("step", "agent_id").rows() == keys  # one row per agent-step: none skipped, none twice
    assert prompts.select("step", "agent_id").rows() == keys
    has_text, has_error = ideas["text"].is_not_null(), ideas["error"].is_not_null()
    assert (has_text ^ has_error).all()  # an idea or a failure, never both or neither
    assert manifest["counts"]["failures"] == int(has_error.sum()) and manifest["counts"]["ideas"] == int(has_text.sum())

    spec = faults.parse(SPEC)
    seen: collections.Counter = collections.Counter()
    met = collections.Counter()
    for row, messages in zip(ideas.iter_rows(named=True), prompts["messages"], strict=True):
        first_seed = request_seed(17, row["step"], row["agent_id"])
        fault, retries, seed = expected_outcome(spec, json.loads(messages), first_seed, seen)
        met[fault] += 1
        assert (row["retries"], row["seed"]) == (retries, seed), row
        if fault in (None, "long"):
            assert row["error"] is None and row["text"]
        elif fault == "empty":
            assert row["error"].startswith("EmptyReply")
        else:
            assert f"injected fault {fault}" in row["error"], row["error"]
    assert sum(r + 1 for r in ideas["retries"]) == len(handler.calls)  # every attempt counted once
    assert ideas["retries"].max() >= 2 and met["bad"] >= 1 and met["long"] >= 1  # the faults really happened

    failed = set(ideas.filter(has_error)["idea_id"])
    assert failed and not failed & set(ideas["parent_ids"].explode().drop_nulls())  # a failure is nobody's parent
    long_ideas = ideas.filter(pl.col("text").str.len_chars() > 4 * MAX_CHARS)
    assert long_ideas.height >= 1  # an over-long reply is kept as the idea the model gave ...
    for messages in prompts["messages"]:  # ... but what others are shown of it stays in the budget
        assert len(json.loads(messages)[-1]["content"]) <= MAX_CHARS + 200


def test_text_that_cannot_be_encoded_is_recorded_not_fatal(tmp_path, quick_backoff):
    """Lone surrogates (from a server's ``\\udcff`` escapes) once stopped a run at its next
    step; they must end as U+FFFD in the idea, the prompts that show it and the files."""
    run = runner.start(scenario(tmp_path, "faults/badutf8=0.3"), out=tmp_path / "out", show_progress=False)
    ideas = pl.read_parquet(run.path / "ideas.parquet")
    prompts = pl.read_parquet(run.path / "prompts.parquet")
    assert run.read_manifest()["status"] == "done" and ideas["error"].is_null().all()
    assert ideas["text"].str.contains("\ufffd").sum() >= 1
    assert prompts["messages"].str.contains("\ufffd").sum() >= 1  # shown to neighbours as recorded
    assert not any(0xD800 <= ord(c) <= 0xDFFF for t in ideas["text"] for c in t)


# --- a server that misbehaves on the wire ------------------------------------------------
class WireFaults(BaseHTTPRequestHandler):
    """OpenAI chat completions whose model name picks the misbehaviour: ``drop`` cuts the
    first attempt of each seed off mid-body (then answers), ``bytes`` always answers with
    bytes that are not UTF-8, ``escape`` with a ``\\udcff`` JSON escape."""

    protocol_version = "HTTP/1.1"
    attempts: collections.Counter = collections.Counter()

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        mode, seed = body["model"], body.get("seed")
        self.attempts[(mode, seed)] += 1
        payload = json.dumps({
            "id": "x", "object": "chat.completion", "created": 0, "model": mode,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": f"story {seed} MARK end"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        }).encode()
        payload = payload.replace(b"MARK", {"bytes": b"\xff\xfe", "escape": b"\\udcff"}.get(mode, b"MARK"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if mode == "drop" and self.attempts[(mode, seed)] == 1:
            self.wfile.write(payload[: len(payload) // 3])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def wire():
    server = ThreadingHTTPServer(("127.0.0.1", 0), WireFaults)
    WireFaults.attempts.clear()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def ask(base: str, mode: str, fast: bool, n: int = 3):
    llm = LLM(LLMSpec(model=f"openai/{mode}", api_base=base, cache=False, retries=2, outage_s=0), fast_path=fast,
              backoff_s=0.001, max_backoff_s=0.005)
    reqs = [Request(messages=({"role": "user", "content": "tell"},), seed=100 + i) for i in range(n)]
    return llm.generate(reqs)


@pytest.mark.parametrize("fast", [True, False], ids=["openai-client", "litellm"])
def test_a_reply_cut_off_mid_body_is_retried_and_counted(wire, fast):
    replies = ask(wire, "drop", fast)
    assert [r.text for r in replies] == [f"story {100 + i} MARK end" for i in range(3)]
    assert [r.retries for r in replies] == [1, 1, 1]
    assert all(WireFaults.attempts[("drop", 100 + i)] == 2 for i in range(3))


@pytest.mark.parametrize("fast", [True, False], ids=["openai-client", "litellm"])
def test_bytes_that_are_not_utf8_end_as_a_recorded_failure(wire, fast):
    replies = ask(wire, "bytes", fast)
    assert all(r.text is None and "decode" in r.error and r.retries == 2 for r in replies)


@pytest.mark.parametrize("fast", [True, False], ids=["openai-client", "litellm"])
def test_surrogate_escapes_from_a_server_become_replacement_characters(wire, fast):
    replies = ask(wire, "escape", fast)
    assert [r.text for r in replies] == [f"story {100 + i} \ufffd end" for i in range(3)]


# --- a real server killed and restarted mid-run -------------------------------------------
class Relay:
    """A TCP relay on a fixed loopback port to whichever server is current, so the run
    keeps one api_base while the server behind it is killed and replaced. With no
    server behind it, connections are accepted and closed at once, like a dead host."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.target: int | None = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client, self.target), daemon=True).start()

    def _serve(self, client, target):
        try:
            upstream = socket.create_connection(("127.0.0.1", target)) if target else None
        except OSError:
            upstream = None
        if upstream is None:
            client.close()
            return

        def pump(a, b):
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
        pump(client, upstream)

    def close(self):
        self.listener.close()


def server_pid(port: int) -> int:
    """The llama server process listening on ``port`` (conftest keeps its Popen to itself)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"serve" in argv and b"--port" in argv and argv[argv.index(b"--port") + 1] == str(port).encode():
                return int(entry.name)
    raise AssertionError(f"no server on port {port}")


@pytest.mark.slow
def test_a_server_killed_and_restarted_mid_run_does_not_end_the_run(tmp_path):
    relay = Relay()
    killed_at = {}
    try:
        with llama_server(tmp_path / "first.log") as first:
            relay.target = int(first.rsplit(":", 1)[1].split("/")[0])
            # the retry budget (0.5+1+2+4+8 s of backoff, jittered) must cover the restart
            scen = scenario(tmp_path, "openai/smollm2", steps=3, agents=3, k=1, retries=5, concurrency=2, max_tokens=8,
                            api_base=f"http://127.0.0.1:{relay.port}/v1")
            outcome = {}

            def go():
                try:
                    outcome["run"] = runner.start(scen, out=tmp_path / "out", show_progress=False)
                except BaseException as exc:  # noqa: BLE001 - the assertion below reports it
                    outcome["error"] = exc

            worker = threading.Thread(target=go)
            worker.start()
            steps = tmp_path / "out" / "faulty" / "steps"
            deadline = time.monotonic() + 120
            while not (steps / "00001.parquet").exists():
                assert worker.is_alive() and time.monotonic() < deadline, outcome
                time.sleep(0.01)
            os.kill(server_pid(relay.target), signal.SIGKILL)  # mid-run, while step 2 is being asked
            relay.target = None
            killed_at["step"] = len(list(steps.glob("0*.parquet")))
        with llama_server(tmp_path / "second.log") as second:
            relay.target = int(second.rsplit(":", 1)[1].split("/")[0])
            worker.join(timeout=300)
    finally:
        relay.close()
    assert "error" not in outcome, outcome.get("error")
    run = outcome["run"]
    ideas = run.ideas().sort("step", "agent_id")
    assert run.read_manifest()["status"] == "done" and killed_at["step"] < 3
    assert ideas.select("step", "agent_id").rows() == [(s, a) for s in range(1, 4) for a in range(3)]
    assert (ideas["text"].is_not_null() ^ ideas["error"].is_not_null()).all()
    assert ideas.filter(pl.col("step") > killed_at["step"])["retries"].max() >= 1  # the outage was felt
