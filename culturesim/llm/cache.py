"""The cache layer: an on-disk response cache, so that rerunning a scenario costs no
model time.

It is the door's outermost layer: a request it answers never reaches the outage wait,
the retries or a backend. Keys are ``Request.cache_key`` (everything that changes the
output, and nothing that does not). SQLite gives atomic writes and safe concurrent
readers for free; a crash mid-write leaves the cache consistent. Only successful
replies are stored: a failure must be retried on the next run, never replayed.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from culturesim.llm.types import Layer, Reply, Request


class ResponseCache:
    """One SQLite file shared by every run of a results folder, and so by a sweep's worker
    processes at once: WAL (readers never wait for a writer), a busy timeout, and writes in
    ``BEGIN IMMEDIATE`` transactions retried with backoff while another process holds the
    lock ("database is locked" is a wait, never a failed run)."""

    RETRY_S = 120.0  # how long a busy cache is waited for before the error is let through

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        # autocommit: transactions are begun explicitly, so a write takes the lock up front
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self._retry(lambda: self._db.execute("PRAGMA busy_timeout=30000"))
        self._retry(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
        self._retry(lambda: self._db.execute(
            "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
            "prompt_tokens INTEGER, completion_tokens INTEGER, finish_reason TEXT, meta TEXT)"
        ))

    def _retry(self, op):
        delay, deadline = 0.005, time.monotonic() + self.RETRY_S
        while True:
            try:
                return op()
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if not busy or time.monotonic() > deadline:
                    raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.25)

    def get_many(self, keys: list[str]) -> dict[str, Reply]:
        found: dict[str, Reply] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._retry(lambda chunk=chunk, marks=marks: self._db.execute(
                    f"SELECT key, text, prompt_tokens, completion_tokens, finish_reason, meta "
                    f"FROM replies WHERE key IN ({marks})",
                    chunk,
                ).fetchall())
                for key, text, pt, ct, finish, meta in rows:
                    found[key] = Reply(
                        text=text,
                        model=json.loads(meta).get("model", ""),
                        prompt_tokens=pt or 0,
                        completion_tokens=ct or 0,
                        cached=True,
                        finish_reason=finish,
                    )
        return found

    def put_many(self, items: list[tuple[str, Reply]]) -> None:
        rows = [
            (k, r.text, r.prompt_tokens, r.completion_tokens, r.finish_reason, json.dumps({"model": r.model}))
            for k, r in items
            if r.ok and r.text is not None
        ]
        if not rows:
            return

        def write():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

        with self._lock:
            self._retry(write)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Cached:
    """Answers what ``store`` holds, in request order, and reports those hits to
    ``on_reply`` first; asks ``inner`` for the rest and stores its successes."""

    def __init__(self, inner: Layer, store: ResponseCache, *, model: str, api_base: str | None):
        self.inner = inner
        self.store = store
        self.model = model
        self.api_base = api_base

    def generate(self, requests: list[Request], on_reply: Callable[[Reply], None] | None = None) -> list[Reply]:
        keys = [r.cache_key(self.model, self.api_base) for r in requests]
        hits = self.store.get_many(keys)
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
            fresh = self.inner.generate([requests[i] for i in todo], on_reply)
            for i, reply in zip(todo, fresh, strict=True):
                replies[i] = reply
            self.store.put_many([(keys[i], replies[i]) for i in todo])
        return replies  # type: ignore[return-value]
