"""``echo/<name>``: an instant, deterministic stand-in for a language model.

For what needs thousands of calls (sweep benchmarks, scheduling and resume tests) a
real model would measure the model, not culturesim. The reply is a function of the
request alone (messages and seed): a few words drawn from the prompt's ideas and a
small vocabulary, so ideas still mix and drift like text, but nothing is generated.
``echo/delay-0.05`` waits 0.05 s per request, to stand for a server's latency.
Never mistake its output for model behaviour.

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
        text = reply_text(messages, req.seed, req.max_tokens)
        return text, _Usage(prompt_words(messages), len(text.split())), "stop"

    def retryable(self, exc: BaseException) -> bool:
        return True  # nothing here fails but a bug, which a retry shows again, counted


def make_handler():
    import litellm
    from litellm.llms.custom_llm import CustomLLM

    def respond(model, messages, optional_params):
        text = reply_text(messages, int(optional_params.get("seed", 0)), int(optional_params.get("max_tokens", 64)))
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
