"""Replies in a declared shape (culturesim/llm/shape.py): schemas checked at load, the schema in
the cache key, parse-or-reseed in the retry layer, ``response_format`` to OpenAI-compatible
servers and through litellm, and the culture kind's ``reply_schema``.

All on echo/ and the fake server (deterministic stand-ins that generate nothing); the
embedded model's grammar is tested in tests/test_local_batch.py."""

from __future__ import annotations

import hashlib
import json

import polars as pl
import pytest
import yaml

from culturesim import cli, runner
from culturesim import scenario as sc
from culturesim.llm import shape
from culturesim.llm.client import LLM
from culturesim.llm.retry import reseed
from culturesim.llm.types import Request
from culturesim.scenario import LLMSpec
from culturesim.testing.fakeserver import FakeServer

IDEA = {"type": "object", "properties": {"idea": {"type": "string"}, "mood": {"enum": ["calm", "wild"]}},
        "required": ["idea", "mood"], "additionalProperties": False}


def req(seed: int, schema=IDEA, **kw) -> Request:
    r = Request(messages=({"role": "user", "content": f"Tell a story about lantern number {seed}."},), seed=seed, **kw)
    return shape.with_schema(r, schema) if schema is not None else r


# ------------------------------------------------------------------ the schema itself


def test_canonical_text_is_sorted_and_compact():
    assert shape.canonical({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == '{"a":[1,{"c":3,"d":2}],"b":1}'
    assert shape.check_schema(IDEA) == shape.canonical(IDEA)


@pytest.mark.parametrize("schema, words, path", [
    ({"type": "object", "properties": {"x": {"type": "strin"}}}, ["not a valid JSON Schema"],
     ("properties", "x", "type")),
    ({"type": "object", "required": "x"}, ["not a valid JSON Schema"], ("required",)),
    ({"type": "string"}, ['"type": "object"'], ("type",)),
    (["not", "a", "mapping"], ["must be a mapping"], ()),
])
def test_bad_schemas_are_refused_with_where(schema, words, path):
    with pytest.raises(shape.SchemaError) as caught:
        shape.check_schema(schema)
    assert all(w in str(caught.value) for w in words) and caught.value.path == path


def test_parse_reads_only_json_of_the_shape():
    text = shape.canonical(IDEA)
    assert shape.parse(' {"idea": "a boat", "mood": "calm"}\n', text) == {"idea": "a boat", "mood": "calm"}
    assert shape.parse('```json\n{"idea": "x", "mood": "wild"}\n```', text) == {"idea": "x", "mood": "wild"}
    for bad in ('{"idea": "x"}', '{"idea": "x", "mood": "sad"}', '{"idea": "x", "mood": "calm"', "a boat", "", None):
        assert shape.parse(bad, text) is None


def test_cache_key_changes_only_when_a_schema_is_asked():
    plain = req(3, schema=None)
    payload = {"model": "m", "api_base": "", "messages": list(plain.messages), "seed": 3, "temperature": 0.8,
               "top_p": 0.95, "max_tokens": 64, "stop": []}
    before = hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    assert plain.cache_key("m", None) == before  # free-text keys are those recorded caches hold
    assert req(3).cache_key("m", None) != before
    other = shape.with_schema(plain, {**IDEA, "required": ["idea"]})
    assert other.cache_key("m", None) != req(3).cache_key("m", None)


# ------------------------------------------------------------------ parse-or-reseed


def test_echo_answers_a_schema_request_in_its_shape():
    replies = LLM(LLMSpec(model="echo/x", cache=False)).generate([req(s) for s in range(20)])
    assert all(r.ok and r.retries == 0 and shape.matches(r.text, shape.canonical(IDEA)) for r in replies)
    free = LLM(LLMSpec(model="echo/x", cache=False)).generate([req(1, schema=None)])[0]
    assert shape.parse(free.text, shape.canonical(IDEA)) is None  # no schema: free text as before


@pytest.mark.parametrize("pattern", [
    r"^(take|pick up|go to) [a-z]+( [a-z]+){0,5}$", r"^[A-Z][a-z]{2,4}-[0-9]+$", r"ab?c*(d|ef)+", r"^x{2,3}[0-9]$"])
def test_echo_writes_strings_that_match_a_pattern(pattern):
    import re

    schema = {"type": "object", "properties": {"goal": {"type": "string", "pattern": pattern}}, "required": ["goal"]}
    replies = LLM(LLMSpec(model="echo/x", cache=False)).generate([req(s, schema=schema) for s in range(30)])
    goals = [json.loads(r.text)["goal"] for r in replies]
    assert all(r.ok and r.retries == 0 for r in replies)
    assert all(re.search(pattern, g) for g in goals) and len(set(goals)) > 1  # drawn, not one fixed string


def test_a_pattern_echo_cannot_write_is_refused_not_faked():
    import numpy as np

    from culturesim.llm.backends.echo_pattern import matching

    with pytest.raises(ValueError):
        matching(r"(?=a)b", np.random.default_rng(0), [])  # a lookahead nothing can satisfy
    assert matching(r"^[a-z]+$", np.random.default_rng(0), ["lantern", "Fox", "x1"]) == "lantern"  # heard word


def test_a_reply_out_of_shape_is_asked_again_with_a_new_seed():
    # echo/misshape-0.5 answers plain text to about half the (request, seed) pairs, decided by a
    # hash of the pair: the same request always misses or always fits, a new seed draws again
    llm = LLM(LLMSpec(model="echo/misshape-0.5", cache=False, retries=6))
    requests = [req(s) for s in range(40)]
    replies = llm.generate(requests)
    assert all(r.ok and shape.matches(r.text, requests[0].schema) for r in replies)
    retried = [(q, r) for q, r in zip(requests, replies, strict=True) if r.retries]
    assert 5 < len(retried) < 35
    for q, r in retried:  # each retry reseeded, and the reply says with which seed
        seed = q.seed
        for _ in range(r.retries):
            seed = reseed(seed)
        assert r.seed == seed
    again = llm.generate(requests)
    assert [(r.text, r.seed, r.retries) for r in again] == [(r.text, r.seed, r.retries) for r in replies]


def test_a_reply_never_in_shape_ends_as_an_error_that_keeps_its_text():
    replies = LLM(LLMSpec(model="echo/misshape-1", cache=False, retries=2)).generate([req(1), req(2, schema=None)])
    assert replies[0].error == shape.MISMATCH and replies[0].retries == 2 and replies[0].text
    assert replies[0].seed == reseed(reseed(1))
    assert replies[1].ok and replies[1].retries == 0  # a free-text request is not checked


def test_only_replies_in_shape_are_cached(tmp_path):
    spec = LLMSpec(model="echo/misshape-1", retries=0)
    first = LLM(spec, cache_path=tmp_path / "c.sqlite")
    assert not first.generate([req(1)])[0].ok
    first.close()
    second = LLM(spec, cache_path=tmp_path / "c.sqlite")
    assert not second.generate([req(1)])[0].cached


# ------------------------------------------------------------------ servers and litellm


def test_response_format_goes_to_an_openai_compatible_server():
    with FakeServer() as server:
        llm = LLM(LLMSpec(model="hosted_vllm/m", api_base=server.base_url, cache=False, retries=0))
        replies = llm.generate([req(4), req(5, schema=None)])
        by_seed = {body["seed"]: body for body in server.requests}
        shaped, free = by_seed[4], by_seed[5]
        assert shaped["response_format"] == {"type": "json_schema", "json_schema": {
            "name": "reply", "schema": IDEA, "strict": True}}
        assert "response_format" not in free
        assert shape.matches(replies[0].text, shape.canonical(IDEA)) and replies[1].text == "reply to seed 5"


def test_a_server_that_ignores_the_schema_gets_reseeded_then_an_error():
    with FakeServer() as server:
        llm = LLM(LLMSpec(model="openai/unshaped", api_base=server.base_url, cache=False, retries=1),
                  backoff_s=0.0)
        reply = llm.generate([req(7)])[0]
    assert reply.error == shape.MISMATCH and reply.text == f"reply to seed {reseed(7)}"
    assert [b["seed"] for b in server.requests] == [7, reseed(7)]


def test_litellm_sends_the_schema_where_the_provider_takes_it():
    from culturesim.llm.backends.litellm_backend import sends_schema

    assert sends_schema("local/smollm2") and sends_schema("echo/x")
    assert sends_schema("openai/gpt-4o")  # litellm.supports_response_schema says so
    assert not sends_schema("ollama/llama3")  # parse-or-reseed only
    replies = LLM(LLMSpec(model="echo/x", cache=False), fast_path=False).generate([req(s) for s in range(3)])
    assert all(r.ok and shape.matches(r.text, shape.canonical(IDEA)) for r in replies)


# ------------------------------------------------------------------ the culture kind


CULTURE = {
    "kind": "culture", "name": "shaped", "seed": 3, "steps": 2,
    "population": {"size": 4, "mix": {"neutral": 1.0}},
    "network": {"topology": "ring", "params": {"k": 1}},
    "llm": {"model": "echo/x", "cache": False},
    "culture": {"reply_schema": IDEA, "reply_field": "idea"},
}


def write(tmp_path, data) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("culture, words", [
    ({"reply_schema": {**IDEA, "properties": {"idea": {"type": "strin"}}}, "reply_field": "idea"},
     ["culture.reply_schema.properties.idea.type", "not a valid JSON Schema"]),
    ({"reply_schema": {**IDEA, "required": "idea"}, "reply_field": "idea"}, ["culture.reply_schema.required"]),
    ({"reply_schema": IDEA, "reply_field": "idee"}, ["culture.reply_field", "did you mean 'idea'"]),
    ({"reply_schema": IDEA}, ["culture.reply_schema", "needs reply_field"]),
    ({"reply_field": "idea"}, ["culture.reply_field", "no reply_schema"]),
    ({"reply_schema": IDEA, "reply_field": "mood"}, ["culture.reply_schema.properties.mood", '"type": "string"']),
    ({"reply_schema": {**IDEA, "required": ["mood"]}, "reply_field": "idea"}, ["under \"required\""]),
])
def test_a_bad_reply_schema_is_one_line_with_file_line_and_key_and_exit_2(tmp_path, capsys, culture, words):
    path = write(tmp_path, {**CULTURE, "culture": culture})
    for argv in (["validate", path], ["run", path, "--out", str(tmp_path / "out"), "-q"]):
        assert cli.main(argv) == 2
        line = one_line(capsys.readouterr().err)
        assert "s.yaml:" in line and all(w in line for w in words), line
    assert not (tmp_path / "out").exists()


def test_a_good_reply_schema_loads(tmp_path, capsys):
    assert cli.main(["validate", write(tmp_path, CULTURE)]) == 0
    loaded = sc.load(write(tmp_path, CULTURE))
    assert loaded.culture.reply_schema == IDEA and loaded.culture.reply_field == "idea"


def test_culture_ideas_are_the_reply_field_and_the_prompts_keep_the_json(tmp_path):
    run = runner.start(sc.validate_data(CULTURE, "test"), out=tmp_path, show_progress=False)
    ideas = run.ideas().sort("idea_id")
    prompts = run.prompts().sort("idea_id")
    assert ideas.height == 8 and ideas["error"].null_count() == 8
    for idea, messages in zip(ideas["text"], prompts["messages"], strict=True):
        reply = json.loads(messages)[-1]
        assert reply["role"] == "assistant" and json.loads(reply["content"])["idea"] == idea
    # the ideas shown at step 2 are step 1's idea fields, not their JSON
    step2 = [json.loads(m)[1]["content"] for m in prompts.filter(pl.col("step") == 2)["messages"]]
    assert all("{" not in text for text in step2)
    first = ideas.filter(pl.col("step") == 1)["text"].to_list()
    assert all(any(idea in text for idea in first) for text in step2)
