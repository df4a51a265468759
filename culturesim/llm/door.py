"""The one door to language models: ``LLM.generate(requests) -> replies``, in order.

A scenario names a model by a litellm model string (``openai/...``, ``hosted_vllm/...``
with ``api_base``, ``local/smollm2``, ``echo/x``, ...). The door is a stack of layers,
each a small module that does one thing for every backend:

    cache (cache.py)  ->  outage wait (outage.py)  ->  retries (retry.py)  ->  one backend

A cached request never reaches the layers below; the outage layer waits only when every
reply of a batch says the server is down; the retry layer asks again what may not fail
the same way. The backend (culturesim/llm/backends/) is chosen once, from the model
string, by :func:`backend_for`; it only sends attempts. A whole step's requests arrive
together and go down the stack as one batch; a request that still fails comes back as a
Reply with ``error`` set. Nothing loops forever and nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from culturesim.llm.backends import Backend
from culturesim.llm.cache import Cached, ResponseCache
from culturesim.llm.outage import OutageWait
from culturesim.llm.retry import Retry
from culturesim.llm.types import Layer, Reply, Request
from culturesim.scenario import LLMSpec


def backend_for(spec: LLMSpec, *, fast_path: bool = True, batch: int | None = None) -> Backend:
    """The backend a model string names.

    ``local/...`` is the embedded model (batched when ``batch``, else ``llm.batch``, is
    above 1); with ``fast_path`` (the default), ``echo/...`` is answered in process and an
    OpenAI-compatible server named by ``api_base`` is called with the openai client, both
    without litellm's per-call cost; everything else goes through litellm.
    ``fast_path=False`` sends those two through litellm too (tests and benches compare)."""
    from culturesim.llm.backends.openai_fast import uses_fast_path

    provider = spec.model.split("/", 1)[0]
    if provider == "local":
        slots = int(batch if batch is not None else spec.batch)
        if slots > 1:
            from culturesim.llm.backends.llama_batched import LlamaBatched

            return LlamaBatched(spec, slots)
        from culturesim.llm.backends.llama_embedded import LlamaEmbedded

        return LlamaEmbedded(spec)
    if fast_path and provider == "echo" and not spec.api_base:
        from culturesim.llm.backends.echo import Echo

        return Echo(spec)
    if fast_path and uses_fast_path(spec.model, spec.api_base):
        from culturesim.llm.backends.openai_fast import OpenAIFast

        return OpenAIFast(spec)
    from culturesim.llm.backends.litellm_backend import LiteLLM

    return LiteLLM(spec)


class LLM:
    """A model endpoint with its sampling defaults, concurrency cap, retries and cache.

    ``backend`` replaces the one :func:`backend_for` would choose (tests use it to see
    what reaches a backend); ``backoff_s``/``max_backoff_s`` are the retry layer's."""

    def __init__(self, spec: LLMSpec, *, cache_path: Path | None = None, backoff_s: float = 0.5,
                 max_backoff_s: float = 20.0, fast_path: bool = True, batch: int | None = None,
                 backend: Backend | None = None):
        self.spec = spec
        self.backend = backend if backend is not None else backend_for(spec, fast_path=fast_path, batch=batch)
        self.cache = ResponseCache(cache_path) if (spec.cache and cache_path) else None
        layer: Layer = Retry(self.backend, retries=spec.retries, backoff_s=backoff_s, max_backoff_s=max_backoff_s)
        if self.backend.remote:  # an in-process model has no server to wait for
            layer = OutageWait(layer, outage_s=spec.outage_s)
        if self.cache:
            layer = Cached(layer, self.cache, model=spec.model, api_base=spec.api_base)
        self.layers = layer

    def generate(self, requests: list[Request], on_reply: Callable[[Reply], None] | None = None) -> list[Reply]:
        """Answer every request; replies come back in request order."""
        if not requests:
            return []
        return self.layers.generate(requests, on_reply)

    def close(self) -> None:
        if self.cache:
            self.cache.close()
        self.backend.close()
