"""What goes into and comes out of the one door to language models.

Requests are plain data so that a step can compose them without I/O, a cache can key on
them, and a run can record exactly what each agent saw.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Request:
    messages: tuple[dict, ...]
    seed: int
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 64
    stop: tuple[str, ...] = ()
    tag: str = ""  # caller's label (e.g. idea id); not sent, not part of the cache key
    # the key of the model (llm block) the request goes to, "" = the scenario's own ``llm``
    # (Door.route); not sent, not part of the cache key: each model's cache layer keys on its model
    route: str = ""
    # The canonical JSON text of a JSON Schema the reply must satisfy (culturesim/llm/shape.py);
    # None: free text. In the cache key only when set, so free-text keys stay as they were.
    schema: str | None = None

    def cache_key(self, model: str, api_base: str | None) -> str:
        """Everything that changes the output, and nothing that does not."""
        payload = {
            "model": model,
            "api_base": api_base or "",
            "messages": list(self.messages),
            "seed": self.seed,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
        }
        if self.schema is not None:
            payload["schema"] = self.schema
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class Reply:
    text: str | None
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False
    retries: int = 0
    error: str | None = None
    finish_reason: str | None = None
    seed: int | None = None  # the seed the reply was decoded with (a retry of an empty reply reseeds)
    transient: bool = False  # failed on a server that may come back: the outage layer waits for it
    retryable: bool = False  # failed in a way another attempt may not repeat (the retry layer asks again)

    @property
    def ok(self) -> bool:
        return self.error is None


class Layer(Protocol):
    """What each layer of the door (culturesim/llm/door.py) offers the one above it:
    final replies in request order, each reported to ``on_reply`` as it is final."""

    def generate(self, requests: list[Request], on_reply: Callable[[Reply], None] | None = None) -> list[Reply]: ...
