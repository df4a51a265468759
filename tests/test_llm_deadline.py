"""``llm.timeout_s`` is a deadline for a whole request, against a real loopback server
that trickles its reply (culturesim/testing/fakeserver.py, ``trickle<S>`` models).

The clients' own timeouts bound each read: a server sending a byte every 0.1 s answers
every read in time and, before the deadline, held a request forever. Each generate runs in
a daemon thread so that a hang fails the test instead of hanging the suite.
"""

from __future__ import annotations

import threading
import time

import pytest

from culturesim.llm.client import LLM
from culturesim.llm.types import Request
from culturesim.scenario import LLMSpec
from culturesim.testing.fakeserver import FakeServer

MESSAGES = ({"role": "user", "content": "Tell a one-sentence story."},)
TIMEOUT_S = 0.6
RETRIES = 1
BACKOFF_S = 0.01


@pytest.fixture(scope="module")
def server():
    with FakeServer() as srv:
        yield srv


def generate_within(llm: LLM, requests: list[Request], limit_s: float):
    """(replies, seconds), or fail if the generate is still running after ``limit_s``."""
    out: dict = {}

    def go() -> None:
        start = time.monotonic()
        out["replies"] = llm.generate(requests)
        out["took"] = time.monotonic() - start

    worker = threading.Thread(target=go, daemon=True)
    worker.start()
    worker.join(limit_s)
    assert not worker.is_alive(), f"the request was still running after {limit_s} s: timeout_s is no deadline"
    return out["replies"], out["took"]


@pytest.mark.parametrize("fast", [True, False], ids=["openai_fast", "litellm"])
@pytest.mark.parametrize("model", ["trickle0.1", "tricklehead0.1"])
def test_a_trickling_server_is_cut_off_at_the_deadline(server, fast, model):
    llm = LLM(LLMSpec(model=f"openai/{model}", api_base=server.base_url, timeout_s=TIMEOUT_S,
                      retries=RETRIES, outage_s=0, cache=False),
              backoff_s=BACKOFF_S, max_backoff_s=BACKOFF_S, fast_path=fast)
    requests = [Request(messages=MESSAGES, seed=s) for s in (1, 2)]
    # every attempt gets timeout_s, the retry waits its backoff; slack for a loaded machine
    bound = TIMEOUT_S * (RETRIES + 1) + BACKOFF_S * 2 + 6.0
    replies, took = generate_within(llm, requests, limit_s=bound + 10)
    assert took < bound, f"{took:.1f} s for two attempts of {TIMEOUT_S} s"
    for reply in replies:
        assert reply.text is None and reply.retries == RETRIES
        assert reply.error.startswith("Timeout") and "timeout_s=0.6" in reply.error
        assert reply.transient  # the outage layer may wait for such a server
        assert TIMEOUT_S * 0.9 < reply.latency_s < TIMEOUT_S + 3.0
    # the client hung up: the server stops trickling those replies
    deadline = time.monotonic() + 5
    while server.trickling and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.trickling == 0


def test_the_deadline_leaves_a_prompt_server_alone(server):
    """A server that answers within the deadline is unaffected (and a slow one, beyond it,
    is a retryable timeout as before)."""
    llm = LLM(LLMSpec(model="openai/slow0.1", api_base=server.base_url, timeout_s=TIMEOUT_S, retries=0,
                      outage_s=0, cache=False), fast_path=True)
    replies = llm.generate([Request(messages=MESSAGES, seed=7)])
    assert replies[0].ok and replies[0].text == "reply to seed 7"
