"""What the backends that make one async call per request share: the process's event
loop, and ``concurrency`` workers that send a batch's requests under the cap.

A subclass says how to make one call (``call``) and how to read its failures
(``retryable``, ``describe``); this base turns each call into a Reply, times it, holds
the sweep-wide limit on the server (culturesim/llm/limits.py) around it, and ends it at
``llm.timeout_s``: the clients' own timeouts (httpx's, aiohttp's) bound each *read*, so a
server that trickles a byte a second would otherwise hold a request forever.
"""

from __future__ import annotations

import asyncio
import threading
import time
from abc import ABC, abstractmethod

from culturesim.llm.backends import OnAttempt, api_key_for, describe, server_unreachable
from culturesim.llm.limits import shared_limit
from culturesim.llm.types import Reply, Request
from culturesim.scenario import LLMSpec
from culturesim.store import clean_text

_loops = threading.local()


def event_loop() -> asyncio.AbstractEventLoop:
    """One loop per thread, kept for the thread's life: litellm binds its logging worker and
    HTTP clients to the loop they first ran on, and a closed loop would strand them. A
    run's own model is driven from the main thread; each other model of a mixed population
    from a thread of its own (Door.generate), so each backend always meets the same loop."""
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
    return loop


class AsyncBackend(ABC):
    """A batch sent as concurrent async calls, one per request, in request order."""

    remote = True

    def __init__(self, spec: LLMSpec):
        self.spec = spec
        self.model = spec.model
        self.api_key: str | None = None

    @property
    def concurrency(self) -> int:
        return self.spec.concurrency

    @abstractmethod
    async def call(self, req: Request) -> tuple[str | None, object, str | None]:
        """One try: (content, usage with prompt_tokens/completion_tokens, finish_reason)."""

    @abstractmethod
    def retryable(self, exc: BaseException) -> bool:
        """True if another attempt might not fail the same way."""

    def describe(self, exc: BaseException) -> str:
        return describe(exc)

    def send(self, requests: list[Request], on_attempt: OnAttempt | None = None) -> list[Reply]:
        if not requests:
            return []
        # the environment is read once per batch, not once per request
        self.api_key = api_key_for(self.spec.api_key_env, self.spec.api_base)
        return event_loop().run_until_complete(self._send(requests, on_attempt))

    async def _send(self, requests: list[Request], on_attempt: OnAttempt | None) -> list[Reply]:
        """``concurrency`` workers take the requests in order from one shared iterator.

        The same cap and start order as one task per request behind a semaphore, without
        100,000 tasks for 100,000 agents (each a Task object, a weakref and a semaphore
        wake-up: ~25 us and ~1 KB apiece, measured by bench/scale.py)."""
        shared = shared_limit(self.spec.model, self.spec.api_base)
        replies: list[Reply | None] = [None] * len(requests)
        todo = iter(range(len(requests)))  # one event loop thread: workers share it safely

        async def worker() -> None:
            for i in todo:
                if shared is None:
                    reply = await self._attempt(requests[i])
                else:
                    await asyncio.to_thread(shared.acquire)
                    try:
                        reply = await self._attempt(requests[i])
                    finally:
                        await asyncio.to_thread(shared.release)
                replies[i] = reply
                if on_attempt:
                    on_attempt(i, reply)

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(requests)))))
        return replies  # type: ignore[return-value]

    async def _attempt(self, req: Request) -> Reply:
        start = time.perf_counter()
        try:
            if self.remote:
                # the deadline of the whole attempt: connect, send, headers and body
                content, usage, finish_reason = await asyncio.wait_for(self.call(req), self.spec.timeout_s)
            else:  # an in-process model cannot be cut off mid-decode; it needs no deadline
                content, usage, finish_reason = await self.call(req)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded reply
            if self.remote and isinstance(exc, TimeoutError):
                # the deadline (or a client's timeout surfacing as Python's): a server that may
                # answer in time on another try, or be back after an outage
                return Reply(text=None, model=self.model, latency_s=time.perf_counter() - start,
                             error=f"Timeout: no complete reply within llm.timeout_s={self.spec.timeout_s:g} s",
                             seed=req.seed, retryable=True, transient=True)
            retry = self.retryable(exc)
            return Reply(text=None, model=self.model, latency_s=time.perf_counter() - start,
                         error=self.describe(exc), seed=req.seed, retryable=retry,
                         transient=retry and server_unreachable(exc))
        # a server's escapes for bytes that were not UTF-8 arrive as lone surrogates, which
        # no writer (Parquet, JSON, the cache) can encode: U+FFFD, as a decoder would
        return Reply(
            text=clean_text((content or "").strip()),
            model=self.model,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            latency_s=time.perf_counter() - start,
            finish_reason=finish_reason,
            seed=req.seed,
        )

    def close(self) -> None:  # noqa: B027 - nothing to free: pools are per process, closed at exit
        """Nothing per backend."""
