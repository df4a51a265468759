"""``echo/<name>``: an instant, deterministic stand-in for a language model.

For what needs thousands of calls (sweep benchmarks, scheduling and resume tests) a
real model would measure the model, not culturesim. The reply is a function of the
request alone (messages and seed): a few words drawn from the prompt's ideas and a
small vocabulary, so ideas still mix and drift like text, but nothing is generated.
``echo/delay-0.05`` waits 0.05 s per request, to stand for a server's latency.
Never mistake its output for model behaviour.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re

import numpy as np

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


def make_handler():
    import litellm
    from litellm.llms.custom_llm import CustomLLM

    def respond(model, messages, optional_params):
        text = reply_text(messages, int(optional_params.get("seed", 0)), int(optional_params.get("max_tokens", 64)))
        prompt = sum(len(m.get("content", "").split()) for m in messages)
        completion = len(text.split())
        return litellm.ModelResponse(
            model=f"echo/{model}",
            choices=[{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            usage={"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        )

    class Echo(CustomLLM):
        def completion(self, model, messages, *args, optional_params=None, **kwargs):
            return respond(model, messages, optional_params or {})

        async def acompletion(self, model, messages, *args, optional_params=None, **kwargs):
            delay = delay_of(model)
            if delay:
                await asyncio.sleep(delay)
            return respond(model, messages, optional_params or {})

    return Echo()
