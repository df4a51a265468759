"""The openai fast path for OpenAI-compatible servers, against a fake server on loopback.

Every check compares the fast path (openai client on its aiohttp client) with litellm's
path to the same fake server (``fast_path=False``): same bodies on the wire, same
replies, usage, seeds, retries and error kinds. The fake server (culturesim/testing/
fakeserver.py) answers ``reply to seed <seed>`` and injects failures by model name.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest
from conftest import free_port

from culturesim.llm.backends.openai_fast import OpenAIFast, uses_fast_path
from culturesim.llm.client import LLM
from culturesim.llm.types import Request
from culturesim.scenario import LLMSpec
from culturesim.testing.fakeserver import FakeServer

MESSAGES = ({"role": "system", "content": "You are a storyteller."},
            {"role": "user", "content": "Tell a one-sentence story about a lighthouse."})


@pytest.fixture(scope="module")
def server():
    with FakeServer() as srv:
        yield srv


def requests(n, **kw):
    return [Request(messages=MESSAGES, seed=1000 + i, tag=f"r{i}", **kw) for i in range(n)]


def llm(model, base, *, fast=True, **spec):
    spec.setdefault("cache", False)
    spec.setdefault("outage_s", 0)  # these tests look at one batch's failures, not at outages
    return LLM(LLMSpec(model=model, api_base=base, **spec), backoff_s=0.001, max_backoff_s=0.01, fast_path=fast)


def both(server, model, reqs, **spec):
    """Replies of the fast path and of litellm's path, and the bodies each sent.
    Each path starts from a fresh server count of attempts (injected failures are per
    seed); ``server.attempts`` is left as litellm's path saw it, ``attempts_fast`` as the
    fast path's."""
    out = []
    for fast in (True, False):
        server.requests.clear()
        server.attempts.clear()
        replies = llm(model, server.base_url, fast=fast, **spec).generate(reqs)
        out.append((replies, list(server.requests)))
        if fast:
            server.attempts_fast = server.attempts.copy()
    return out


def essentials(reply):
    return (reply.text, reply.model, reply.prompt_tokens, reply.completion_tokens, reply.retries,
            reply.finish_reason, reply.seed, reply.transient, reply.error and reply.error.split(":")[0])


def test_which_models_take_the_fast_path():
    assert uses_fast_path("hosted_vllm/Qwen/Qwen2.5-0.5B-Instruct", "http://h:8000/v1")
    assert uses_fast_path("openai/gpt-x", "http://h:8000/v1")
    assert not uses_fast_path("openai/gpt-x", None)  # OpenAI itself: litellm maps its parameters
    assert not uses_fast_path("ollama/llama3", "http://h:11434")
    assert not uses_fast_path("local/smollm2", None)
    assert not uses_fast_path("openai/", "http://h:8000/v1")
    assert not isinstance(llm("openai/x", None, cache=False).backend, OpenAIFast)


@pytest.mark.parametrize("provider", ["openai", "hosted_vllm"])
def test_same_bodies_and_replies_as_litellm(server, provider):
    reqs = requests(6, max_tokens=12) + [Request(messages=MESSAGES, seed=5, stop=("\n", "."), temperature=0.3)]
    (fast, fast_sent), (slow, slow_sent) = both(server, f"{provider}/x", reqs)
    assert [essentials(r) for r in fast] == [essentials(r) for r in slow]
    # in request order, with the server's own answer and word-count usage
    assert [r.text for r in fast] == [f"reply to seed {q.seed}" for q in reqs]
    words = sum(len(m["content"].split()) for m in MESSAGES)
    assert all(r.prompt_tokens == words and r.completion_tokens == 4 for r in fast)
    # the same JSON on the wire, field for field (order of arrival may differ)
    key = lambda body: body["seed"]  # noqa: E731
    assert sorted(fast_sent, key=key) == sorted(slow_sent, key=key)
    assert len(fast_sent) == len(reqs)


def test_server_errors_are_retried_then_succeed(server):
    (fast, _), (slow, _) = both(server, "openai/fail2", requests(4), retries=3)
    assert [essentials(r) for r in fast] == [essentials(r) for r in slow]
    assert all(r.ok and r.retries == 2 for r in fast)
    # 2 failures + 1 success per seed, on each path
    for seen in (server.attempts_fast, server.attempts):
        assert [seen[("fail2", 1000 + i)] for i in range(4)] == [3] * 4


def test_exhausted_retries_are_recorded_failures(server):
    (fast, _), (slow, _) = both(server, "hosted_vllm/fail99", requests(3), retries=2)
    assert [essentials(r) for r in fast] == [essentials(r) for r in slow]
    assert all(r.text is None and r.error.startswith("InternalServerError") and r.retries == 2 for r in fast)
    for seen in (server.attempts_fast, server.attempts):
        assert [seen[("fail99", 1000 + i)] for i in range(3)] == [3] * 3  # 1 try + 2 retries


def test_bad_requests_are_not_retried(server):
    (fast, _), (slow, _) = both(server, "openai/bad", requests(2), retries=5)
    assert [essentials(r) for r in fast] == [essentials(r) for r in slow]
    assert all(r.error.startswith("BadRequestError") and r.retries == 0 for r in fast)
    assert sum(server.attempts_fast.values()) == sum(server.attempts.values()) == 2


def test_timeouts_are_retried_and_named_as_litellm_names_them(server):
    (fast, _), (slow, _) = both(server, "openai/slow0.6", requests(2), retries=1, timeout_s=0.2)
    assert [essentials(r) for r in fast] == [essentials(r) for r in slow]
    assert all(r.error.startswith("Timeout") and r.retries == 1 for r in fast)
    assert all(0.15 < r.latency_s < 0.5 for r in fast)


def test_empty_replies_are_retried_with_another_seed(server):
    (fast, _), (slow, _) = both(server, "openai/empty", requests(1), retries=2)
    assert [essentials(r) for r in fast] == [essentials(r) for r in slow]
    assert fast[0].error.startswith("EmptyReply")
    for seen in (server.attempts_fast, server.attempts):
        assert sorted(s for _, s in seen) == [(1000 + k * 1_000_003) % 2**32 for k in range(3)]


def test_unreachable_server_is_a_recorded_connection_error():
    base = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    fast = llm("openai/x", base, retries=1, outage_s=0).generate(requests(2))
    slow = llm("openai/x", base, retries=1, outage_s=0, fast=False).generate(requests(2))
    assert all(r.error.startswith("APIConnectionError") and r.retries == 1 for r in fast)
    # litellm retries it as often but calls it InternalServerError; the openai name is kept
    assert [r.retries for r in slow] == [1, 1] and all(r.text is None and r.error for r in slow)


def test_concurrency_cap_holds_on_the_fast_path(server):
    deadline = time.monotonic() + 5
    while server.in_flight and time.monotonic() < deadline:  # late answers to timed-out requests
        time.sleep(0.05)
    server.max_in_flight = 0
    replies = llm("openai/slow0.05", server.base_url, concurrency=4).generate(requests(24))
    assert all(r.ok for r in replies)
    assert server.max_in_flight == 4


def test_cache_answers_the_second_time_without_the_server(server, tmp_path):
    cached = LLM(LLMSpec(model="hosted_vllm/x", api_base=server.base_url), cache_path=tmp_path / "c.sqlite")
    before = server.served
    a = cached.generate(requests(5))
    b = cached.generate(requests(5))
    assert server.served - before == 5
    assert [r.text for r in a] == [r.text for r in b] and all(r.cached for r in b) and not any(r.cached for r in a)
    cached.close()


def test_fast_path_does_not_import_litellm(server):
    code = textwrap.dedent(f"""
        import sys
        from culturesim.llm.client import LLM
        from culturesim.llm.types import Request
        from culturesim.scenario import LLMSpec
        llm = LLM(LLMSpec(model="hosted_vllm/x", api_base="{server.base_url}", cache=False))
        reply = llm.generate([Request(messages=({{"role": "user", "content": "hi"}},), seed=3)])[0]
        assert reply.text == "reply to seed 3", reply
        print("litellm" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert "Unclosed" not in out.stderr  # the shared pool is closed at exit


def test_an_outage_longer_than_the_retries_is_ridden_out(capsys):
    """Every request fails while nothing listens; the server comes up 2.5 s later (past the
    per-request retries) and the batch is sent again with the same seeds."""
    port = free_port()
    server = FakeServer(port=port)
    timer = threading.Timer(2.5, server.start)
    timer.start()
    try:
        replies = llm("openai/x", f"http://127.0.0.1:{port}/v1", retries=1, outage_s=60).generate(requests(3))
    finally:
        timer.join()
        server.stop()
    assert all(r.ok for r in replies), [r.error for r in replies]
    assert [r.text for r in replies] == [f"reply to seed {r.seed}" for r in replies]
    assert "the server may be down" in capsys.readouterr().err


def test_an_outage_is_given_up_after_outage_s():
    base = f"http://127.0.0.1:{free_port()}/v1"
    started = time.monotonic()
    replies = llm("openai/x", base, retries=0, outage_s=3).generate(requests(2))
    assert all(r.error.startswith("APIConnectionError") for r in replies)
    assert 3 <= time.monotonic() - started < 15
