"""Batched decoding of the embedded model (culturesim/llm/local_batch.py), for real.

The reference is the one-at-a-time path (``local.chat`` through litellm), on the same
loaded SmolLM2: for the same requests and seeds, batched decoding must give the same
texts, token counts and finish reasons, whichever requests share a batch.
"""

from __future__ import annotations

import pytest

from culturesim.llm.client import LLM
from culturesim.llm.local import PROVIDER_STATE, chat
from culturesim.llm.local_batch import Job, chat_request
from culturesim.llm.types import Request
from culturesim.scenario import LLMSpec

SUBJECTS = ["fox", "lighthouse", "clock", "river", "baker", "island", "mirror"]


def messages(subject: str) -> tuple[dict, ...]:
    return ({"role": "system", "content": "You are a storyteller."},
            {"role": "user", "content": f"Tell a one-sentence story about a {subject}."})


def essentials(reply):
    return (reply.text, reply.prompt_tokens, reply.completion_tokens, reply.finish_reason, reply.error,
            reply.seed, reply.transient, reply.retries)


@pytest.fixture(scope="module")
def one_at_a_time():
    return LLM(LLMSpec(model="local/smollm2", cache=False, max_tokens=16))


@pytest.fixture(scope="module")
def requests():
    reqs = [Request(messages=messages(s), seed=50 + i, max_tokens=16) for i, s in enumerate(SUBJECTS)]
    reqs.append(Request(messages=messages("fox"), seed=50, max_tokens=16, stop=(",", ".")))  # stop strings
    reqs.append(Request(messages=messages("fox"), seed=50, max_tokens=3))  # ends by length early
    return reqs


@pytest.fixture(scope="module")
def reference(one_at_a_time, requests):
    return one_at_a_time.generate(requests)


def test_prompt_tokens_are_those_llama_cpp_evaluates(one_at_a_time):
    llama = PROVIDER_STATE.model("smollm2")
    job = Job(messages=list(messages("owl")), seed=9, max_tokens=4, stop=["\n"])
    captured = PROVIDER_STATE.on_worker(lambda: chat_request(llama, job))
    out = PROVIDER_STATE.on_worker(lambda: chat(llama, job.messages, seed=9, temperature=0.8, top_p=0.95,
                                                max_tokens=4, stop=["\n"]))
    prompt = captured["prompt"]
    assert out["usage"]["prompt_tokens"] == len(prompt)
    assert llama.input_ids[: len(prompt)].tolist() == prompt
    assert captured["seed"] == 9 and captured["repeat_penalty"] == 1.0  # create_chat_completion's default
    assert captured["stop"][0] == "\n"


@pytest.mark.parametrize("slots", [1, 3])
def test_batched_text_is_identical_to_one_at_a_time(requests, reference, slots):
    # 9 requests on 3 slots: slots are refilled as sequences end, so batches mix
    # requests of different lengths and stages
    seen = []
    replies = LLM(LLMSpec(model="local/smollm2", cache=False), batch=slots).generate(requests, seen.append)
    assert [essentials(r) for r in replies] == [essentials(r) for r in reference]
    assert all(r.ok and r.text for r in replies)
    assert len(seen) == len(requests)  # every reply reported once, as it ended
    assert replies[-1].completion_tokens == 3 and replies[-1].finish_reason == "length"
    assert not any(c in replies[-2].text for c in ",.") and replies[-2].finish_reason == "stop"


def test_the_company_a_request_keeps_does_not_change_its_text(requests, reference):
    alone = LLM(LLMSpec(model="local/smollm2", cache=False), batch=3).generate([requests[4]])[0]
    assert essentials(alone) == essentials(reference[4])


def test_a_prompt_longer_than_the_context_is_a_recorded_failure(requests, reference):
    too_long = Request(messages=({"role": "user", "content": "lantern " * 2500},), seed=1, max_tokens=8)
    replies = LLM(LLMSpec(model="local/smollm2", cache=False), batch=3).generate([requests[0], too_long])
    assert essentials(replies[0]) == essentials(reference[0])
    assert replies[1].text is None and "exceed context window" in replies[1].error and replies[1].retries == 0


# A reply in a declared shape (culturesim/llm/shape.py): both paths decode under the grammar
# llama.cpp derives from the JSON Schema, with the same sampler chain, so the same text per seed.
VERDICT = {"type": "object", "additionalProperties": False, "required": ["verdict"],
           "properties": {"verdict": {"enum": ["fine", "poor"]}}}


@pytest.fixture(scope="module")
def shaped_requests():
    from culturesim.llm.shape import with_schema

    asked = [Request(messages=({"role": "user", "content": f"Is a {s} a fine thing? Answer in JSON."},),
                     seed=70 + i, max_tokens=12) for i, s in enumerate(SUBJECTS[:3])]
    return [with_schema(r, VERDICT) for r in asked]


def test_grammar_decoding_gives_json_of_the_shape_and_the_same_text_batched(shaped_requests):
    from culturesim.llm.shape import parse

    spec = LLMSpec(model="local/smollm2", cache=False, retries=0)
    alone = LLM(spec).generate(shaped_requests)
    for reply in alone:  # no retry was needed: the grammar only lets the shape through
        assert reply.ok and reply.retries == 0 and parse(reply.text, shaped_requests[0].schema), reply
    batched = LLM(spec, batch=2).generate(shaped_requests)
    assert [essentials(r) for r in batched] == [essentials(r) for r in alone]


def test_a_grammar_reply_cut_by_max_tokens_is_asked_again_then_an_error(shaped_requests):
    import dataclasses

    from culturesim.llm.shape import MISMATCH

    short = dataclasses.replace(shaped_requests[0], max_tokens=3)  # '{"verdict"' at most: cut short
    reply = LLM(LLMSpec(model="local/smollm2", cache=False, retries=1), batch=2).generate([short])[0]
    assert reply.error == MISMATCH and reply.retries == 1 and reply.text.startswith("{")
