"""The LLM door: order, seeds, cache, retries, failures, concurrency.

Fault injection needs a backend that fails on purpose, so a small litellm CustomLLM
is registered under ``faulty/...``: it fails or answers according to the model name
and counts what it saw. The embedded SmolLM2 is used wherever real text matters.
"""

from __future__ import annotations

import asyncio
import collections
import time

import litellm
import pytest

from culturesim.llm.client import LLM, register_provider
from culturesim.llm.local import PROVIDER_STATE
from culturesim.llm.types import Request
from culturesim.scenario import LLMSpec

MESSAGES = ({"role": "system", "content": "You are a storyteller."},
            {"role": "user", "content": "Tell a one-sentence story about a lighthouse."})


class Faulty(litellm.CustomLLM):
    """fail<N>: N transient failures per seed, then success; empty: always empty;
    bad: a permanent error; slow: succeeds after a pause, tracking concurrency."""

    def __init__(self):
        super().__init__()
        self.attempts = collections.Counter()
        self.seeds = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def acompletion(self, model, messages, *args, optional_params=None, **kwargs):
        seed = optional_params.get("seed")
        self.seeds.append(seed)
        self.attempts[(model, seed)] += 1
        if model.startswith("fail"):
            if self.attempts[(model, seed)] <= int(model[4:]):
                raise litellm.exceptions.APIConnectionError(message="injected drop", llm_provider="faulty",
                                                            model=model)
        elif model == "bad":
            raise litellm.exceptions.BadRequestError(message="injected bad request", model=model,
                                                     llm_provider="faulty")
        elif model == "slow":
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            await asyncio.sleep(0.02)
            self.in_flight -= 1
        text = "" if model == "empty" else f"reply to seed {seed}"
        return litellm.ModelResponse(choices=[{"message": {"role": "assistant", "content": text},
                                               "finish_reason": "stop"}],
                                     usage={"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9})


@pytest.fixture
def faulty():
    handler = Faulty()
    register_provider("faulty", handler)
    return handler


def requests(n, **kw):
    return [Request(messages=MESSAGES, seed=1000 + i, tag=f"r{i}", **kw) for i in range(n)]


def fast_llm(model, **spec):
    spec.setdefault("outage_s", 0)  # these tests look at one batch's failures, not at outages
    return LLM(LLMSpec(model=model, cache=False, **spec), backoff_s=0.001, max_backoff_s=0.01)


def test_transient_errors_are_retried_and_counted(faulty):
    replies = fast_llm("faulty/fail2", retries=3).generate(requests(5))
    assert all(r.ok for r in replies)
    assert [r.retries for r in replies] == [2] * 5
    assert [r.text for r in replies] == [f"reply to seed {1000 + i}" for i in range(5)]  # in request order


def test_retries_end_in_a_recorded_failure_not_a_loop(faulty):
    replies = fast_llm("faulty/fail9", retries=2).generate(requests(3))
    assert all(not r.ok and r.text is None for r in replies)
    assert all("APIConnectionError" in r.error and r.retries == 2 for r in replies)
    assert sum(faulty.attempts.values()) == 9  # 3 requests x (1 try + 2 retries)


def test_permanent_errors_are_not_retried(faulty):
    replies = fast_llm("faulty/bad", retries=5).generate(requests(2))
    assert all("BadRequestError" in r.error and r.retries == 0 for r in replies)
    assert sum(faulty.attempts.values()) == 2


def test_empty_replies_are_retried_with_another_seed(faulty):
    replies = fast_llm("faulty/empty", retries=2).generate(requests(1))
    assert not replies[0].ok and "empty" in replies[0].error
    assert len(set(faulty.seeds)) == 3  # a deterministic backend would repeat itself otherwise


def test_concurrency_cap_is_respected(faulty):
    llm = fast_llm("faulty/slow", concurrency=4)
    start = time.perf_counter()
    replies = llm.generate(requests(40))
    elapsed = time.perf_counter() - start
    assert all(r.ok for r in replies)
    assert faulty.max_in_flight == 4
    assert elapsed < 40 * 0.02  # concurrent, not one at a time


def test_cache_returns_identical_replies_and_is_keyed_by_seed(faulty, tmp_path):
    llm = LLM(LLMSpec(model="faulty/slow"), cache_path=tmp_path / "c.sqlite")
    first = llm.generate(requests(3))
    again = llm.generate(requests(3))
    assert [r.text for r in again] == [r.text for r in first]
    assert all(r.cached for r in again) and not any(r.cached for r in first)
    assert len(faulty.seeds) == 3  # the second call reached no model
    other = llm.generate([Request(messages=MESSAGES, seed=7)])
    assert not other[0].cached
    off = LLM(LLMSpec(model="faulty/slow", cache=False), cache_path=tmp_path / "c.sqlite")
    assert not any(r.cached for r in off.generate(requests(3)))


def test_failures_are_not_cached(faulty, tmp_path):
    llm = LLM(LLMSpec(model="faulty/fail1", retries=0, outage_s=0), cache_path=tmp_path / "c.sqlite",
              backoff_s=0.001)
    assert not llm.generate(requests(1))[0].ok
    second = llm.generate(requests(1))[0]
    assert second.ok and not second.cached


# --- the embedded model, for real -----------------------------------------------------

@pytest.fixture(scope="module")
def smol():
    return LLM(LLMSpec(model="local/smollm2", cache=False, max_tokens=24))


def test_embedded_model_is_deterministic_per_seed_and_keeps_order(smol):
    reqs = [Request(messages=MESSAGES, seed=s, max_tokens=24, tag=str(s)) for s in (11, 12, 11)]
    replies = smol.generate(reqs)
    assert all(r.ok and r.text for r in replies)
    assert replies[0].text == replies[2].text  # same seed, same text, even with another call between
    assert replies[0].text != replies[1].text
    assert all(r.completion_tokens > 0 and r.prompt_tokens > 0 and r.latency_s > 0 for r in replies)
    assert [r.seed for r in replies] == [11, 12, 11]


def test_embedded_model_loads_without_amx_extra_buffers(smol):
    llama = PROVIDER_STATE.model("smollm2")
    assert llama.model_params.use_extra_bufts is False


def test_embedded_model_respects_max_tokens_and_stop(smol):
    short = smol.generate([Request(messages=MESSAGES, seed=3, max_tokens=5)])[0]
    assert short.completion_tokens <= 5
    stopped = smol.generate([Request(messages=MESSAGES, seed=3, max_tokens=24, stop=(" ",))])[0]
    assert " " not in stopped.text.strip()
