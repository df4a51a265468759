"""The one door to language models: ``LLM.generate(requests) -> replies``, in order.

Every provider goes through litellm, so a scenario can name any model string litellm
knows (``openai/...``, ``hosted_vllm/...`` with ``api_base``, ``local/smollm2``, ...).
A whole step's requests arrive together; they are sent concurrently up to the
scenario's cap, retried with backoff on transient errors, and a request that still
fails comes back as a Reply with ``error`` set. Nothing loops forever and nothing is
dropped silently.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

from culturesim.llm.cache import ResponseCache
from culturesim.llm.limits import shared_limit
from culturesim.llm.types import Reply, Request
from culturesim.scenario import LLMSpec

_litellm = None
_extra_providers: dict[str, object] = {}
_loop: asyncio.AbstractEventLoop | None = None


def event_loop() -> asyncio.AbstractEventLoop:
    """One loop per process for every LLM: litellm binds its logging worker and HTTP
    clients to the loop they first ran on, and a closed loop would strand them."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    return _loop


class EmptyReply(Exception):
    """The model answered with nothing; worth a retry with another seed."""


def litellm_module():
    """Import litellm once, lazily (it takes seconds), with the offline price map."""
    global _litellm
    if _litellm is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        os.environ.setdefault("LITELLM_LOG", "ERROR")
        import litellm

        from culturesim.llm import echo, local

        litellm.suppress_debug_info = True
        litellm.telemetry = False
        _extra_providers.setdefault(local.PROVIDER, local.make_handler())
        _extra_providers.setdefault("echo", echo.make_handler())
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
                 backoff_s: float = 0.5, max_backoff_s: float = 20.0):
        self.spec = spec
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
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
        keys = [r.cache_key(self.spec.model, self.spec.api_base) for r in requests]
        hits = self.cache.get_many(keys) if self.cache else {}
        replies: list[Reply | None] = [None] * len(requests)
        todo = []
        for i, (req, key) in enumerate(zip(requests, keys, strict=True)):
            if key in hits:
                hit = hits[key]
                hit.extra["seed"] = req.seed
                replies[i] = hit
                if on_reply:
                    on_reply(hit)
            else:
                todo.append(i)
        if todo:
            fresh = event_loop().run_until_complete(self._run([requests[i] for i in todo], on_reply))
            for i, reply in zip(todo, fresh, strict=True):
                replies[i] = reply
            if self.cache:
                self.cache.put_many([(keys[i], replies[i]) for i in todo])
        return replies  # type: ignore[return-value]

    async def _run(self, requests: list[Request], on_reply) -> list[Reply]:
        gate = asyncio.Semaphore(self.concurrency)
        shared = shared_limit(self.spec.model, self.spec.api_base)

        async def one(req: Request) -> Reply:
            async with gate:
                if shared is None:
                    reply = await self._with_retries(req)
                else:
                    await asyncio.to_thread(shared.acquire)
                    try:
                        reply = await self._with_retries(req)
                    finally:
                        await asyncio.to_thread(shared.release)
            if on_reply:
                on_reply(reply)
            return reply

        return await asyncio.gather(*(one(r) for r in requests))

    async def _with_retries(self, req: Request) -> Reply:
        litellm = litellm_module()
        jitter = random.Random(req.seed)
        seed = req.seed
        attempts = self.spec.retries + 1
        last_error = ""
        for attempt in range(attempts):
            start = time.perf_counter()
            try:
                response = await litellm.acompletion(
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
                text = (choice.message.content or "").strip()
                if not text:
                    raise EmptyReply("the model returned an empty reply")
                usage = getattr(response, "usage", None)
                return Reply(
                    text=text,
                    model=self.spec.model,
                    prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                    completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                    latency_s=time.perf_counter() - start,
                    retries=attempt,
                    finish_reason=choice.finish_reason,
                    extra={"seed": seed},
                )
            except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded reply
                last_error = _describe(exc)
                if not _classify(exc) or attempt == attempts - 1:
                    return Reply(text=None, model=self.spec.model, retries=attempt,
                                 latency_s=time.perf_counter() - start, error=last_error,
                                 extra={"seed": seed})
                if isinstance(exc, EmptyReply):
                    # a deterministic backend would repeat itself with the same seed
                    seed = (seed + 1_000_003) % 2**32
                delay = min(self.max_backoff_s, self.backoff_s * 2**attempt)
                await asyncio.sleep(delay * (0.5 + jitter.random()))
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self.cache:
            self.cache.close()
