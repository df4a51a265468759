"""The LLM door: order, seeds, cache, retries, failures, concurrency, and its layers.

Fault injection needs a backend that fails on purpose, so a small litellm CustomLLM
is registered under ``faulty/...``: it fails or answers according to the model name
and counts what it saw. The embedded SmolLM2 is used wherever real text matters. Each
layer (cache, outage wait, retry) is also checked on its own against a scripted
backend that records every batch it is sent.
"""

from __future__ import annotations

import asyncio
import collections
import time

import litellm
import pytest

from culturesim.llm.client import LLM, register_provider
from culturesim.llm.door import backend_for
from culturesim.llm.local import PROVIDER_STATE
from culturesim.llm.outage import OutageWait
from culturesim.llm.retry import EMPTY, Retry
from culturesim.llm.types import Reply, Request
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


# --- the layers, each seen from a scripted backend ---------------------------------------

class Scripted:
    """A backend that answers each request by ``answer(request, batch number)`` and keeps
    the seeds of every batch it was sent."""

    model = "scripted/x"

    def __init__(self, answer, remote: bool = True):
        self.answer = answer
        self.remote = remote
        self.batches: list[list[int]] = []

    def send(self, requests, on_attempt=None):
        self.batches.append([r.seed for r in requests])
        replies = [self.answer(r, len(self.batches)) for r in requests]
        for k, reply in enumerate(replies):
            if on_attempt:
                on_attempt(k, reply)
        return replies

    def close(self):
        self.closed = True


def answered(req, text=None):
    return Reply(text=f"reply to seed {req.seed}" if text is None else text, model="scripted/x", seed=req.seed)


def down(req):
    return Reply(text=None, model="scripted/x", error="APIConnectionError: down", seed=req.seed,
                 retryable=True, transient=True)


def refused(req):
    return Reply(text=None, model="scripted/x", error="BadRequestError: no", seed=req.seed)


def seeds(*values):
    return [Request(messages=MESSAGES, seed=s) for s in values]


def test_a_cache_hit_reaches_no_other_layer(tmp_path):
    backend = Scripted(lambda r, n: answered(r) if n == 1 else down(r))
    llm = LLM(LLMSpec(model="scripted/x", retries=3, outage_s=60), cache_path=tmp_path / "c.sqlite", backend=backend)
    llm.generate(seeds(1, 2))
    seen = []
    again = llm.generate(seeds(2, 1), seen.append)  # the backend is down now: only the cache can answer
    assert backend.batches == [[1, 2]]
    assert [(r.text, r.cached, r.seed) for r in again] == [("reply to seed 2", True, 2), ("reply to seed 1", True, 1)]
    assert seen == again
    backend.answer = lambda r, n: answered(r)
    mixed = llm.generate(seeds(3, 1, 4), seen.append)
    assert backend.batches[-1] == [3, 4]  # only the misses go down the stack
    assert [(r.seed, r.cached) for r in mixed] == [(3, False), (1, True), (4, False)]
    assert [r.seed for r in seen[2:]] == [1, 3, 4]  # hits are reported first
    llm.close()
    assert backend.closed


def test_the_retry_layer_reseeds_empty_replies_and_asks_again_only_what_failed():
    backend = Scripted(lambda r, n: answered(r, "" if r.seed == 5 else None) if r.seed % 2 or n > 1 else down(r),
                       remote=False)
    seen = []
    replies = LLM(LLMSpec(model="scripted/x", retries=3), backend=backend).generate(seeds(2, 5, 7, 4), seen.append)
    assert backend.batches == [[2, 5, 7, 4], [2, 1_000_008, 4]]  # failures keep their seed, empties get another
    assert [(r.seed, r.retries, r.text) for r in replies] == [
        (2, 1, "reply to seed 2"), (1_000_008, 1, "reply to seed 1000008"), (7, 0, "reply to seed 7"),
        (4, 1, "reply to seed 4")]
    assert sorted(r.seed for r in seen) == sorted(r.seed for r in replies)  # final replies only, once each


def test_the_retry_layer_gives_up_on_permanent_errors_and_after_the_last_retry():
    backend = Scripted(lambda r, n: refused(r) if r.seed == 1 else answered(r, ""), remote=False)
    replies = LLM(LLMSpec(model="scripted/x", retries=2), backend=backend).generate(seeds(1, 2))
    assert backend.batches == [[1, 2], [1_000_005], [2_000_008]]
    assert (replies[0].error, replies[0].retries) == ("BadRequestError: no", 0)
    assert (replies[1].error, replies[1].retries, replies[1].seed) == (EMPTY, 2, 2_000_008)
    assert replies[1].text is None and replies[1].retryable and not replies[1].transient


@pytest.mark.parametrize("remote", [True, False])
def test_the_retry_layer_backs_off_only_before_a_server(remote):
    slept = []
    retry = Retry(Scripted(lambda r, n: down(r) if n < 4 else answered(r), remote=remote), retries=5,
                  backoff_s=1.0, max_backoff_s=3.0, sleep=slept.append)
    assert all(r.ok and r.retries == 3 for r in retry.generate(seeds(1, 2)))
    if remote:
        assert len(slept) == 3 and all(0.5 * d <= s <= 1.5 * d for s, d in zip(slept, [1, 2, 3], strict=True))
    else:
        assert slept == []


def test_the_outage_layer_waits_while_every_reply_says_the_server_is_down(capsys):
    slept = []
    backend = Scripted(lambda r, n: down(r) if n <= 2 else answered(r))
    replies = OutageWait(Retry(backend, retries=0), outage_s=60, sleep=slept.append).generate(seeds(1, 2))
    assert backend.batches == [[1, 2]] * 3 and slept == [2.0, 4.0]
    assert all(r.ok for r in replies)
    assert "the server may be down" in capsys.readouterr().err


def test_the_outage_layer_gives_up_after_outage_s():
    slept = []
    layer = OutageWait(Retry(Scripted(lambda r, n: down(r)), retries=0), outage_s=7, sleep=slept.append)
    assert all(r.transient for r in layer.generate(seeds(1)))
    assert slept == [2.0, 4.0, 1.0]


@pytest.mark.parametrize("answer", [lambda r, n: down(r) if r.seed == 1 else answered(r),  # one answer: up
                                    lambda r, n: down(r) if r.seed == 1 else refused(r)])  # an answer, a refusal
def test_the_outage_layer_does_not_wait_when_any_reply_is_not_transient(answer):
    slept = []
    backend = Scripted(answer)
    OutageWait(Retry(backend, retries=0), outage_s=60, sleep=slept.append).generate(seeds(1, 2))
    assert backend.batches == [[1, 2]] and slept == []


def test_an_in_process_backend_has_no_outage_to_wait_for():
    backend = Scripted(lambda r, n: down(r), remote=False)
    replies = LLM(LLMSpec(model="scripted/x", retries=0, outage_s=1), backend=backend).generate(seeds(1, 2))
    assert backend.batches == [[1, 2]] and all(r.transient for r in replies)


def test_which_backend_a_model_string_names():
    def kind(model, **kw):
        return type(backend_for(LLMSpec(model=model, api_base=kw.pop("api_base", None)), **kw)).__name__

    assert kind("echo/x") == "Echo" and kind("echo/x", fast_path=False) == "LiteLLM"
    assert kind("hosted_vllm/m", api_base="http://h/v1") == "OpenAIFast"
    assert kind("hosted_vllm/m", api_base="http://h/v1", fast_path=False) == "LiteLLM"
    assert kind("openai/gpt-x") == "LiteLLM" and kind("faults/empty=0.1") == "LiteLLM"
    assert kind("local/smollm2") == "LlamaEmbedded" and kind("local/smollm2", batch=2) == "LlamaBatched"
