"""Backends: the last layer of the LLM door, one module per way of reaching a model.

A backend has one job: send one attempt of each request of a batch and return one
Reply per request, in request order. It does not retry, wait out outages or consult
the cache: those are the layers above it (culturesim/llm/door.py composes them), so
every backend gets the same policy and no backend re-implements it. What a backend
must say about a failure is what only it can know: whether another attempt might
succeed (``Reply.retryable``) and whether the server looks down (``Reply.transient``).
An answer with no text is returned as an answer (``text == ""``): whether that is worth
another seed is the retry layer's rule.

- ``litellm_backend``: any litellm model string (and culturesim's litellm providers)
- ``openai_fast``: an OpenAI-compatible server named by ``api_base`` (vLLM), without litellm
- ``echo``: ``echo/...``, an instant deterministic stand-in, in process
- ``llama_embedded``: ``local/...``, llama.cpp in process, one request at a time
- ``llama_batched``: ``local/...`` with ``llm.batch`` > 1, several sequences decoded together
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

from culturesim.llm.types import Reply, Request

OnAttempt = Callable[[int, Reply], None]
"""Called with (index in the batch, reply) as each request's attempt ends."""


class Backend(Protocol):
    model: str
    remote: bool
    """True when the model sits behind a server that may recover given time: the retry
    layer backs off before asking again and the outage layer waits for it. An in-process
    model answers the same way at once, so waiting would only slow a run down."""

    def send(self, requests: list[Request], on_attempt: OnAttempt | None = None) -> list[Reply]: ...

    def close(self) -> None: ...


def describe(exc: BaseException) -> str:
    """``ClassName: first line of the message``, at most 500 characters: what a run records."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:500]


# What a server that is down or restarting raises, by class name (litellm's, openai's,
# aiohttp's and Python's), so that only those make the door wait out an outage: a
# server that answers, however badly, is not down.
_UNREACHABLE = {"APIConnectionError", "APITimeoutError", "Timeout", "InternalServerError",
                "ServiceUnavailableError", "ConnectionError", "ServerDisconnectedError",
                "ClientConnectorError", "TimeoutError"}


def server_unreachable(exc: BaseException) -> bool:
    return any(cls.__name__ in _UNREACHABLE for cls in type(exc).__mro__)


def api_key_for(api_key_env: str | None, api_base: str | None) -> str | None:
    """The key from the named variable; local OpenAI-compatible servers need none,
    but the openai client refuses to start without one, so they get a placeholder."""
    if api_key_env:
        return os.environ.get(api_key_env)
    if api_base and not os.environ.get("OPENAI_API_KEY"):
        return "not-needed"
    return None
