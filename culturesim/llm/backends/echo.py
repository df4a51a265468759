"""``echo/<name>``: an instant, deterministic stand-in for a language model.

For what needs thousands of calls (sweep benchmarks, scheduling and resume tests) a
real model would measure the model, not culturesim. The reply is a function of the
request alone (messages and seed): a few words drawn from the prompt's ideas and a
small vocabulary, so ideas still mix and drift like text, but nothing is generated.
``echo/delay-0.05`` waits 0.05 s per request, to stand for a server's latency.
Never mistake its output for model behaviour.

A request with a JSON Schema (``Request.schema``) gets a JSON value built from the
schema (:func:`shaped_text`: each property filled from the same seeded draws, a string
with a ``pattern`` made to match it), as a model decoding under the schema's grammar
would answer. ``echo/misshape-0.5`` stands for a provider without constrained
decoding: for a schema request it answers plain text instead of JSON with probability
0.5, drawn from (messages, seed) alone, so the same request always misses or always
fits, and a retry with a new seed draws again. That is how the tests exercise the
parse-or-reseed retry deterministically.

The door answers it in process (:class:`Echo`), so that scale benchmarks measure the
simulation, not litellm; it is also a litellm provider (:func:`make_handler`) for any
litellm caller, and for the door with ``fast_path=False`` (bench/scale.py compares both).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass

import numpy as np

from culturesim.llm.backends.concurrent import AsyncBackend
from culturesim.llm.backends.echo_pattern import matching
from culturesim.llm.types import Request

PROVIDER = "echo"

VOCABULARY = ("fox river lantern sailor clock tower lemon tree storm harbour child map bridge winter song garden "
              "stone letter moon baker dream mirror island forest train key").split()
_WORD = re.compile(r"[A-Za-z]+")


def reply_text(messages: list[dict], seed: int, max_tokens: int) -> str:
    digest = hashlib.sha256(json.dumps([messages, seed], sort_keys=True).encode("utf-8")).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    heard = [w.lower() for w in _WORD.findall(messages[-1]["content"]) if len(w) > 3] if messages else []
    size = int(min(max_tokens, rng.integers(6, 16)))
    words = [
        heard[rng.integers(len(heard))] if heard and rng.random() < 0.6 else VOCABULARY[rng.integers(len(VOCABULARY))]
        for _ in range(size)
    ]
    return " ".join(words).capitalize() + "."


def delay_of(model: str) -> float:
    match = re.fullmatch(r"delay-([0-9.]+)", model)
    return float(match.group(1)) if match else 0.0


def misshape_of(model: str) -> float:
    match = re.fullmatch(r"misshape-([0-9.]+)", model)
    return min(1.0, float(match.group(1))) if match else 0.0


def _instance(schema: dict, rng: np.random.Generator, words: list[str]):
    """A value of ``schema``'s shape (the subset of JSON Schema the kinds use)."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][int(rng.integers(len(schema["enum"])))]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        return {k: _instance(v, rng, words) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        items = schema.get("items") or {"type": "string"}
        low = int(schema.get("minItems", 1))
        size = int(rng.integers(low, max(low, int(schema.get("maxItems", low + 2))) + 1))
        if schema.get("uniqueItems") and "enum" in items and size <= len(items["enum"]):
            return [items["enum"][int(k)] for k in rng.permutation(len(items["enum"]))[:size]]
        return [_instance(items, rng, words) for _ in range(size)]
    if kind in ("integer", "number"):
        low, high = int(schema.get("minimum", 1)), int(schema.get("maximum", 5))
        return int(rng.integers(low, high + 1))
    if kind == "boolean":
        return bool(rng.random() < 0.5)
    if kind == "string":
        if "pattern" in schema:
            return matching(schema["pattern"], rng, words)
        return " ".join(words[int(rng.integers(len(words)))] for _ in range(int(rng.integers(2, 6)))).capitalize()
    return None


def shaped_text(schema_text: str, messages: list[dict], seed: int, max_tokens: int) -> str:
    """A JSON reply of the schema's shape, a function of (schema, messages, seed) alone."""
    digest = hashlib.sha256(json.dumps([messages, seed, schema_text], sort_keys=True).encode("utf-8")).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    words = reply_text(messages, seed, max_tokens).rstrip(".").lower().split() or list(VOCABULARY)
    return json.dumps(_instance(json.loads(schema_text), rng, words), ensure_ascii=False)


def answer(model: str, messages: list[dict], seed: int, max_tokens: int, schema: str | None) -> str:
    """Echo's reply to one request (``model`` without the ``echo/`` prefix)."""
    if schema is not None:
        digest = hashlib.sha256(json.dumps([messages, seed, "misshape"]).encode("utf-8")).digest()
        if int.from_bytes(digest[:8], "little") / 2**64 >= misshape_of(model):
            return shaped_text(schema, messages, seed, max_tokens)
    return reply_text(messages, seed, max_tokens)


def prompt_words(messages: list[dict]) -> int:
    """Word counts stand in for token usage."""
    return sum(len(m.get("content", "").split()) for m in messages)


@dataclass(frozen=True)
class _Usage:
    prompt_tokens: int
    completion_tokens: int


class Echo(AsyncBackend):
    """``echo/...`` answered in process: what its litellm handler answers, minus litellm."""

    remote = False

    async def call(self, req: Request) -> tuple[str | None, object, str | None]:
        delay = delay_of(self.model.split("/", 1)[1])
        if delay:
            await asyncio.sleep(delay)
        messages = list(req.messages)
        text = answer(self.model.split("/", 1)[1], messages, req.seed, req.max_tokens, req.schema)
        return text, _Usage(prompt_words(messages), len(text.split())), "stop"

    def retryable(self, exc: BaseException) -> bool:
        return True  # nothing here fails but a bug, which a retry shows again, counted


def make_handler():
    import litellm
    from litellm.llms.custom_llm import CustomLLM

    from culturesim.llm.shape import schema_of_response_format

    def respond(model, messages, optional_params):
        text = answer(model, messages, int(optional_params.get("seed", 0)), int(optional_params.get("max_tokens", 64)),
                      schema_of_response_format(optional_params.get("response_format")))
        prompt = prompt_words(messages)
        completion = len(text.split())
        return litellm.ModelResponse(
            model=f"echo/{model}",
            choices=[{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            usage={"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        )

    class EchoLLM(CustomLLM):
        def completion(self, model, messages, *args, optional_params=None, **kwargs):
            return respond(model, messages, optional_params or {})

        async def acompletion(self, model, messages, *args, optional_params=None, **kwargs):
            delay = delay_of(model)
            if delay:
                await asyncio.sleep(delay)
            return respond(model, messages, optional_params or {})

    return EchoLLM()
