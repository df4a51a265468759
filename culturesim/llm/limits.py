"""One concurrency limit per LLM server across every process of a sweep.

Each run caps its own requests (``llm.concurrency``), but a sweep runs several runs at
once against the same server; without a shared limit they would multiply its load.
A shared limit is any object with blocking ``acquire()`` and ``release()`` (a
multiprocessing Manager semaphore for the local engine, a Ray actor for Ray), installed
in each worker process under the server's key before its run starts.
"""

from __future__ import annotations

from typing import Protocol


class SharedLimit(Protocol):
    def acquire(self) -> object: ...

    def release(self) -> object: ...


_installed: dict[str, SharedLimit] = {}


def server_key(model: str, api_base: str | None) -> str | None:
    """The server a model string reaches; None for in-process models, which need no limit."""
    if model.startswith(("local/", "echo/")) and not api_base:
        return None
    return api_base or model.split("/", 1)[0]


def install(limits: dict[str, SharedLimit]) -> None:
    _installed.clear()
    _installed.update(limits)


def shared_limit(model: str, api_base: str | None) -> SharedLimit | None:
    key = server_key(model, api_base)
    return _installed.get(key) if key else None
