"""The retry layer: each request asked again while its failure may not repeat, up to
``llm.retries`` times, so that a day-long study is not spoiled by a flaky second.

One policy for every backend, so that a run's ``retries`` and ``seed`` columns mean the
same whichever backend answered:
- a reply with no text is a failure worth another *seed* (a deterministic model would
  repeat itself): the next attempt uses ``(seed + 1_000_003) % 2**32``;
- so is a reply to a request with a JSON Schema (``Request.schema``) that does not parse
  against it (parse-or-reseed, culturesim/llm/shape.py): a provider that cannot constrain
  its decoding, or a grammar-decoded reply cut short by ``max_tokens``. The last such
  reply keeps its text, with ``error`` set to ``shape.MISMATCH``;
- a failure the backend calls retryable (``Reply.retryable``) is asked again with the
  same seed; any other failure (a refused key, a bad request) is final at once;
- the last attempt's reply is the one recorded, its ``retries`` the attempts before it.

Requests are retried in rounds: a round sends every request still pending as one
batch to the backend, so batching backends (llama.cpp) keep their batches. Before each
round, a backend behind a server is given time to recover: ``backoff_s``, doubling each
round up to ``max_backoff_s``, jittered by half either way; an in-process model is
asked again at once.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable

from culturesim.llm.backends import Backend
from culturesim.llm.shape import MISMATCH, matches
from culturesim.llm.types import Reply, Request

EMPTY = "EmptyReply: the model returned an empty reply"
RESEED = 1_000_003


def reseed(seed: int) -> int:
    return (seed + RESEED) % 2**32


class Retry:
    def __init__(self, backend: Backend, *, retries: int, backoff_s: float = 0.5, max_backoff_s: float = 20.0,
                 sleep: Callable[[float], None] = time.sleep):
        self.backend = backend
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.sleep = sleep

    def generate(self, requests: list[Request], on_reply: Callable[[Reply], None] | None = None) -> list[Reply]:
        """Every request's final reply, in request order; ``on_reply`` as each is final."""
        final: list[Reply | None] = [None] * len(requests)
        asked = list(requests)  # what the next attempt of each request sends (its seed may change)
        pending = list(range(len(requests)))  # indices still without a final reply
        last = self.retries
        jitter = random.Random(requests[0].seed if requests else 0)
        for attempt in range(last + 1):
            if attempt and self.backend.remote:
                delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
                self.sleep(delay * (0.5 + jitter.random()))
            again: list[int] = []

            def settle(k: int, reply: Reply, batch: list[int] = pending, attempt: int = attempt,
                       again: list[int] = again) -> None:
                i = batch[k]
                reply.retries = attempt
                empty = reply.ok and not reply.text
                misshaped = reply.ok and not empty and asked[i].schema is not None and not matches(
                    reply.text, asked[i].schema)
                if empty:
                    reply = Reply(text=None, model=reply.model, latency_s=reply.latency_s, retries=attempt,
                                  error=EMPTY, seed=reply.seed, retryable=True)
                elif misshaped:
                    reply = dataclasses.replace(reply, error=MISMATCH, retryable=True)
                if reply.ok or not reply.retryable or attempt == last:
                    final[i] = reply
                    if on_reply:
                        on_reply(reply)
                    return
                if empty or misshaped:
                    asked[i] = dataclasses.replace(asked[i], seed=reseed(asked[i].seed))
                again.append(i)

            self.backend.send([asked[i] for i in pending], settle)
            if not again:
                break
            pending = sorted(again)
        return final  # type: ignore[return-value]
