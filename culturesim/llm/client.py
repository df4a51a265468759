"""The one door to language models: ``LLM.generate(requests) -> replies``, in order.

Every provider goes through litellm, so a scenario can name any model string litellm
knows (``openai/...``, ``hosted_vllm/...`` with ``api_base``, ``local/smollm2``, ...).
One exception, for speed: an OpenAI-compatible server named by ``api_base``
(``openai/<m>`` or ``hosted_vllm/<m>``, e.g. vLLM) is called with the ``openai``
client directly, through one shared connection pool. litellm costs ~2.3 ms of CPU per
call on these machines, which in front of a fast server is the bottleneck
(bench/client_overhead.py); the request body sent is the same as litellm's. Likewise
``echo/...`` (culturesim's own instant stand-in) is answered in process without litellm,
so that scale benchmarks measure the simulation, not litellm.
A whole step's requests arrive together; they are sent concurrently up to the
scenario's cap, retried with backoff on transient errors, and a request that still
fails comes back as a Reply with ``error`` set. Nothing loops forever and nothing is
dropped silently.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from culturesim.llm.cache import ResponseCache
from culturesim.llm.limits import shared_limit
from culturesim.llm.types import Reply, Request
from culturesim.scenario import LLMSpec
from culturesim.store import clean_text

_litellm = None
_extra_providers: dict[str, object] = {}
_loop: asyncio.AbstractEventLoop | None = None
_openai_clients: dict[tuple[str, str], tuple[asyncio.AbstractEventLoop, object]] = {}

# Providers whose api_base speaks OpenAI's chat-completions API as litellm sends it.
OPENAI_COMPATIBLE = ("openai", "hosted_vllm")


def event_loop() -> asyncio.AbstractEventLoop:
    """One loop per process for every LLM: litellm binds its logging worker and HTTP
    clients to the loop they first ran on, and a closed loop would strand them."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    return _loop


@dataclass(frozen=True)
class _Usage:
    prompt_tokens: int
    completion_tokens: int


class EmptyReply(Exception):
    """The model answered with nothing; worth a retry with another seed."""


def litellm_module():
    """Import litellm once, lazily (it takes seconds), with the offline price map."""
    global _litellm
    if _litellm is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        os.environ.setdefault("LITELLM_LOG", "ERROR")
        import litellm

        from culturesim.llm import echo, faults, local

        litellm.suppress_debug_info = True
        litellm.telemetry = False
        _extra_providers.setdefault(local.PROVIDER, local.make_handler())
        _extra_providers.setdefault("echo", echo.make_handler())
        _extra_providers.setdefault("faults", faults.make_handler())  # tests only: injected faults
        _litellm = litellm
        _sync_providers()
    return _litellm


def _sync_providers() -> None:
    _litellm.custom_provider_map = [
        {"provider": name, "custom_handler": handler} for name, handler in _extra_providers.items()
    ]
    # litellm only reads custom_provider_map when it registers handlers
    from litellm.utils import custom_llm_setup

    custom_llm_setup()


def register_provider(name: str, handler) -> None:
    """Add a litellm CustomLLM under ``name/...`` (tests use this for fault injection)."""
    litellm_module()
    _extra_providers[name] = handler
    _sync_providers()


def api_key_for(api_key_env: str | None, api_base: str | None) -> str | None:
    """The key from the named variable; local OpenAI-compatible servers need none,
    but the openai client refuses to start without one, so they get a placeholder."""
    if api_key_env:
        return os.environ.get(api_key_env)
    if api_base and not os.environ.get("OPENAI_API_KEY"):
        return "not-needed"
    return None


def uses_fast_path(model: str, api_base: str | None) -> bool:
    """True for ``openai/<m>`` or ``hosted_vllm/<m>`` with an ``api_base``: a server we can
    call with the openai client directly. Without api_base, ``openai/...`` is OpenAI
    itself, where litellm's per-model parameter mapping is worth its cost."""
    provider, _, name = model.partition("/")
    return bool(api_base) and bool(name) and provider in OPENAI_COMPATIBLE


def openai_client(api_base: str, api_key: str | None):
    """One ``AsyncOpenAI`` (one connection pool) per server and key, on the process loop.

    It moves bytes with aiohttp (culturesim/llm/transport.py: ~3x less CPU per call
    than its default httpx pool). Its own retries are off: ours count and record every
    attempt. The pool has no cap of its own: ``LLM._run`` runs at most ``concurrency``
    requests at once."""
    loop = event_loop()
    key = (api_base, api_key or "")
    held = _openai_clients.get(key)
    if held is None or held[0] is not loop:
        import httpx
        import openai

        from culturesim.llm.transport import AiohttpTransport

        client = openai.AsyncOpenAI(base_url=api_base, api_key=api_key or "not-needed", max_retries=0,
                                    http_client=httpx.AsyncClient(transport=AiohttpTransport()))
        held = _openai_clients[key] = (loop, client)
        if len(_openai_clients) == 1:
            atexit.register(_close_openai_clients)
    return held[1]


def _close_openai_clients() -> None:
    """Close the pools at exit while the loop is whole (aiohttp warns about open sessions)."""
    for loop, client in list(_openai_clients.values()):
        if not loop.is_closed() and not loop.is_running():
            loop.run_until_complete(client.close())
    _openai_clients.clear()


def _classify_openai(exc: BaseException) -> bool:
    """True if an error of the openai client is worth retrying (litellm's rule, same classes)."""
    import openai

    permanent = (openai.AuthenticationError, openai.NotFoundError, openai.PermissionDeniedError,
                 openai.BadRequestError)
    return not isinstance(exc, permanent)


def _describe_openai(exc: BaseException) -> str:
    """Like ``_describe``, named as litellm names the same failure, so a run's error
    column reads the same whichever path sent the request."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return _describe(exc).replace(type(exc).__name__, "Timeout", 1)
    return _describe(exc)


# What a server that is down or restarting raises, by class name (litellm's, openai's,
# aiohttp's and Python's), so that only those make generate() wait out an outage: a
# server that answers, however badly, is not down.
_UNREACHABLE = {"APIConnectionError", "APITimeoutError", "Timeout", "InternalServerError",
                "ServiceUnavailableError", "ConnectionError", "ServerDisconnectedError",
                "ClientConnectorError", "TimeoutError"}


def _server_unreachable(exc: BaseException) -> bool:
    return any(cls.__name__ in _UNREACHABLE for cls in type(exc).__mro__)


def _classify(exc: BaseException) -> bool:
    """True if the error is worth retrying."""
    litellm = litellm_module()
    permanent = (
        litellm.exceptions.AuthenticationError,
        litellm.exceptions.NotFoundError,
        litellm.exceptions.PermissionDeniedError,
        litellm.exceptions.ContextWindowExceededError,
        litellm.exceptions.BadRequestError,
        litellm.exceptions.UnsupportedParamsError,
    )
    if isinstance(exc, EmptyReply):
        return True
    if isinstance(exc, permanent):
        return False
    from culturesim.llm.local import LocalModelError

    return not isinstance(exc, LocalModelError)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:500]


class LLM:
    """A model endpoint with its sampling defaults, concurrency cap, retries and cache."""

    def __init__(self, spec: LLMSpec, *, cache_path: Path | None = None,
                 backoff_s: float = 0.5, max_backoff_s: float = 20.0, fast_path: bool = True,
                 batch: int | None = None):
        self.spec = spec
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        # fast_path=False sends OpenAI-compatible servers through litellm too (tests compare both)
        self.fast = fast_path and uses_fast_path(spec.model, spec.api_base)
        self.direct_echo = fast_path and spec.model.startswith("echo/") and not spec.api_base
        self._api_key: str | None = None
        # embedded model only: decode this many requests together (local_batch.py)
        self.batch = int(batch if batch is not None else getattr(spec, "batch", 1) or 1)
        self.cache = ResponseCache(cache_path) if (spec.cache and cache_path) else None
        if spec.model.startswith("local/"):
            from culturesim.llm.local import PROVIDER_STATE

            PROVIDER_STATE.configure(n_threads=spec.n_threads, n_ctx=spec.n_ctx)

    @property
    def concurrency(self) -> int:
        """The embedded model serves one request at a time; queueing more only blurs latency."""
        return 1 if self.spec.model.startswith("local/") else self.spec.concurrency

    @property
    def api_key(self) -> str | None:
        return api_key_for(self.spec.api_key_env, self.spec.api_base)

    def generate(self, requests: list[Request], on_reply: Callable[[Reply], None] | None = None) -> list[Reply]:
        """Answer every request; replies come back in request order."""
        if not requests:
            return []
        self._api_key = self.api_key  # read the environment once per call, not once per request
        # keys hash each request's JSON: only worth it when there is a cache to ask
        model, base = self.spec.model, self.spec.api_base
        keys = [r.cache_key(model, base) for r in requests] if self.cache else [""] * len(requests)
        hits = self.cache.get_many(keys) if self.cache else {}
        replies: list[Reply | None] = [None] * len(requests)
        todo = []
        for i, (req, key) in enumerate(zip(requests, keys, strict=True)):
            if key in hits:
                hit = hits[key]
                hit.seed = req.seed
                replies[i] = hit
                if on_reply:
                    on_reply(hit)
            else:
                todo.append(i)
        if todo:
            fresh = self._through_outages([requests[i] for i in todo], on_reply)
            for i, reply in zip(todo, fresh, strict=True):
                replies[i] = reply
            if self.cache:
                self.cache.put_many([(keys[i], replies[i]) for i in todo])
        return replies  # type: ignore[return-value]

    def _send(self, requests: list[Request], on_reply) -> list[Reply]:
        if self.batch > 1 and self.spec.model.startswith("local/"):
            return self._run_local_batch(requests, on_reply)
        return event_loop().run_until_complete(self._run(requests, on_reply))

    def _through_outages(self, requests: list[Request], on_reply) -> list[Reply]:
        """Send; while *every* request failed on errors a server can recover from (refused
        connections, timeouts, 5xx: a server restarting), wait and send them again, up to
        ``llm.outage_s`` seconds in all. Per-request retries ride out seconds of trouble;
        this rides out a restart, so a day-long study is not ended by one. The requests go
        again with their own seeds, so the run is the one an outage-free run would give."""
        waited, pause = 0.0, 2.0
        while True:
            replies = self._send(requests, on_reply)
            down = all(not r.ok and r.transient for r in replies)
            if not down or waited >= self.spec.outage_s:
                return replies
            wait = min(pause, self.spec.outage_s - waited)
            print(f"every request failed ({replies[0].error}); the server may be down: sending the "
                  f"{len(requests)} request(s) again in {wait:.0f} s (waited {waited:.0f} of "
                  f"llm.outage_s={self.spec.outage_s:.0f} s)", file=sys.stderr, flush=True)
            time.sleep(wait)
            waited += wait
            pause = min(pause * 2, 30.0)

    async def _run(self, requests: list[Request], on_reply) -> list[Reply]:
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
                    reply = await self._with_retries(requests[i])
                else:
                    await asyncio.to_thread(shared.acquire)
                    try:
                        reply = await self._with_retries(requests[i])
                    finally:
                        await asyncio.to_thread(shared.release)
                replies[i] = reply
                if on_reply:
                    on_reply(reply)

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(requests)))))
        return replies  # type: ignore[return-value]

    def _run_local_batch(self, requests: list[Request], on_reply) -> list[Reply]:
        """The embedded model, ``self.batch`` sequences decoded together.

        Same accounting as one at a time: an empty reply is retried with the next seed,
        up to ``retries`` times; a request that cannot run (prompt longer than the
        context) is a recorded failure, not retried: it would fail the same way. Replies
        reach ``on_reply`` on this thread as each sequence ends."""
        import queue

        from culturesim.llm.local import PROVIDER_STATE
        from culturesim.llm.local_batch import Job

        name = self.spec.model.split("/", 1)[1]
        decoder = PROVIDER_STATE.decoder(name, self.batch)
        seeds = [r.seed for r in requests]
        replies: list[Reply | None] = [None] * len(requests)
        pending = list(range(len(requests)))
        attempts = self.spec.retries + 1
        for attempt in range(attempts):
            jobs = [Job(messages=list(requests[i].messages), seed=seeds[i], temperature=requests[i].temperature,
                        top_p=requests[i].top_p, max_tokens=requests[i].max_tokens, stop=list(requests[i].stop))
                    for i in pending]
            done: queue.Queue = queue.Queue()
            report = lambda k, res, sink=done: sink.put((k, res))  # noqa: E731 - from the llama.cpp thread
            future = PROVIDER_STATE.executor.submit(decoder.generate, jobs, report)
            retry = []
            for _ in jobs:
                while True:
                    try:
                        k, res = done.get(timeout=0.5)
                        break
                    except queue.Empty:
                        if future.done():
                            future.result()  # a crash of the decoder itself surfaces here
                i = pending[k]
                text = (res.text or "").strip()
                if res.error is None and not text and attempt < attempts - 1:
                    seeds[i] = (seeds[i] + 1_000_003) % 2**32  # as _with_retries does
                    retry.append(i)
                    continue
                error = res.error or (None if text else "EmptyReply: the model returned an empty reply")
                reply = Reply(text=None if error else text, model=self.spec.model, retries=attempt,
                              prompt_tokens=res.prompt_tokens if not error else 0,
                              completion_tokens=res.completion_tokens if not error else 0,
                              latency_s=res.latency_s, finish_reason=None if error else res.finish_reason,
                              error=error, seed=seeds[i])
                replies[i] = reply
                if on_reply:
                    on_reply(reply)
            future.result()
            pending = retry
            if not pending:
                break
        return replies  # type: ignore[return-value]

    async def _litellm_attempt(self, req: Request, seed: int) -> tuple[str | None, object, object]:
        """One try through litellm: (content, usage, finish_reason)."""
        response = await litellm_module().acompletion(
            model=self.spec.model,
            messages=list(req.messages),
            temperature=req.temperature,
            top_p=req.top_p,
            max_tokens=req.max_tokens,
            stop=list(req.stop) or None,
            seed=seed,
            api_base=self.spec.api_base,
            api_key=self.api_key,
            timeout=self.spec.timeout_s,
            num_retries=0,
        )
        choice = response.choices[0]
        return choice.message.content, getattr(response, "usage", None), choice.finish_reason

    async def _openai_attempt(self, req: Request, seed: int) -> tuple[str | None, object, object]:
        """One try with the openai client: the body litellm sends (stop only when set).

        ``post`` rather than ``chat.completions.create``: the body is already plain JSON,
        and create's TypedDict transform of it cost ~0.6 ms per call (profiled)."""
        from openai.types.chat import ChatCompletion

        client = openai_client(self.spec.api_base, self._api_key)
        body = {
            "model": self.spec.model.split("/", 1)[1],
            "messages": list(req.messages),
            "temperature": req.temperature,
            "top_p": req.top_p,
            "max_tokens": req.max_tokens,
            "seed": seed,
        }
        if req.stop:
            body["stop"] = list(req.stop)
        response = await client.post("/chat/completions", body=body, cast_to=ChatCompletion,
                                     options={"timeout": self.spec.timeout_s})
        choice = response.choices[0]
        return choice.message.content, response.usage, choice.finish_reason

    async def _echo_attempt(self, req: Request, seed: int) -> tuple[str | None, object, object]:
        """One try of ``echo/...`` in process: what its litellm handler answers, minus litellm."""
        from culturesim.llm import echo

        delay = echo.delay_of(self.spec.model.split("/", 1)[1])
        if delay:
            await asyncio.sleep(delay)
        messages = list(req.messages)
        text = echo.reply_text(messages, seed, req.max_tokens)
        prompt = sum(len(m.get("content", "").split()) for m in messages)
        return text, _Usage(prompt, len(text.split())), "stop"

    async def _with_retries(self, req: Request) -> Reply:
        if self.fast:
            attempt_once, classify, describe = self._openai_attempt, _classify_openai, _describe_openai
        elif self.direct_echo:
            attempt_once, classify, describe = self._echo_attempt, _classify, _describe
        else:
            attempt_once, classify, describe = self._litellm_attempt, _classify, _describe
        seed = req.seed
        attempts = self.spec.retries + 1
        jitter = None
        for attempt in range(attempts):
            start = time.perf_counter()
            try:
                content, usage, finish_reason = await attempt_once(req, seed)
                # a server's escapes for bytes that were not UTF-8 arrive as lone surrogates,
                # which no writer (Parquet, JSON, the cache) can encode: U+FFFD, as a decoder would
                text = clean_text((content or "").strip())
                if not text:
                    raise EmptyReply("the model returned an empty reply")
                return Reply(
                    text=text,
                    model=self.spec.model,
                    prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                    completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                    latency_s=time.perf_counter() - start,
                    retries=attempt,
                    finish_reason=finish_reason,
                    seed=seed,
                )
            except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded reply
                retry = isinstance(exc, EmptyReply) or classify(exc)
                if not retry or attempt == attempts - 1:
                    # "transient": a server that may come back; generate() rides out an outage
                    return Reply(text=None, model=self.spec.model, retries=attempt,
                                 latency_s=time.perf_counter() - start, error=describe(exc),
                                 seed=seed, transient=retry and _server_unreachable(exc))
                if isinstance(exc, EmptyReply):
                    # a deterministic backend would repeat itself with the same seed
                    seed = (seed + 1_000_003) % 2**32
                jitter = jitter or random.Random(req.seed)
                delay = min(self.max_backoff_s, self.backoff_s * 2**attempt)
                await asyncio.sleep(delay * (0.5 + jitter.random()))
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self.cache:
            self.cache.close()
