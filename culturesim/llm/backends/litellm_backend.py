"""Any model litellm can reach (``openai/...``, ``ollama/...``, ``hosted_vllm/...``, ...),
one ``acompletion`` per request.

litellm is what makes any provider string work, so it is the default backend; it is
imported lazily (it takes seconds, and ~7 s more offline without the local price map).
culturesim's own models are litellm custom providers too, so that any litellm caller
can name them: ``local/...`` (culturesim/llm/backends/llama_embedded.py) and ``echo/...``
are registered with litellm itself; ``faults/...`` (culturesim/testing/faults.py, tests
only) is registered the first time a backend is made for it, so that the shipped door
imports nothing for testing unless a scenario names it, in any process (tests start
``culturesim run`` in subprocesses).
"""

from __future__ import annotations

import importlib
import os

from culturesim.llm.backends.concurrent import AsyncBackend
from culturesim.llm.limits import server_key
from culturesim.llm.shape import response_format
from culturesim.llm.types import Request
from culturesim.scenario import LLMSpec

_litellm = None
_extra_providers: dict[str, object] = {}

# Providers made on first use, by the module whose make_handler() builds them.
LAZY_PROVIDERS = {"faults": "culturesim.testing.faults"}


def litellm_module():
    """Import litellm once, lazily, with the offline price map and culturesim's providers."""
    global _litellm
    if _litellm is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        os.environ.setdefault("LITELLM_LOG", "ERROR")
        import litellm

        from culturesim.llm.backends import echo, llama_embedded

        litellm.suppress_debug_info = True
        litellm.telemetry = False
        _extra_providers.setdefault(llama_embedded.PROVIDER, llama_embedded.make_handler())
        _extra_providers.setdefault(echo.PROVIDER, echo.make_handler())
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
    """Add a litellm CustomLLM under ``name/...`` (tests use this for scripted models)."""
    litellm_module()
    _extra_providers[name] = handler
    _sync_providers()


def ensure_provider(name: str) -> None:
    """Register a lazily made provider (``faults``) unless one is already registered
    under that name (a test may have put its own instance there)."""
    litellm_module()
    if name in LAZY_PROVIDERS and name not in _extra_providers:
        register_provider(name, importlib.import_module(LAZY_PROVIDERS[name]).make_handler())


# culturesim's own providers read a JSON Schema from response_format (llama.cpp's grammar, echo's JSON).
SCHEMA_PROVIDERS = ("local", "echo")


def sends_schema(model: str) -> bool:
    """True when a request's JSON Schema goes to the provider as ``response_format``: our
    own providers, and those litellm says support it. For the others the retry layer's
    parse-or-reseed is all there is (culturesim/llm/shape.py)."""
    if model.split("/", 1)[0] in SCHEMA_PROVIDERS:
        return True
    try:
        return bool(litellm_module().supports_response_schema(model=model))
    except Exception:  # noqa: BLE001 - an unknown model: litellm cannot say, so we do not send it
        return False


class LiteLLM(AsyncBackend):
    def __init__(self, spec: LLMSpec):
        super().__init__(spec)
        ensure_provider(spec.model.split("/", 1)[0])
        self.sends_schema = sends_schema(spec.model)

    @property
    def remote(self) -> bool:  # type: ignore[override]
        """In-process providers (``local/``, ``echo/`` through litellm) have no server."""
        return server_key(self.spec.model, self.spec.api_base) is not None

    async def call(self, req: Request) -> tuple[str | None, object, str | None]:
        shaped = {"response_format": response_format(req.schema)} if req.schema and self.sends_schema else {}
        response = await litellm_module().acompletion(
            model=self.spec.model,
            messages=list(req.messages),
            temperature=req.temperature,
            top_p=req.top_p,
            max_tokens=req.max_tokens,
            stop=list(req.stop) or None,
            seed=req.seed,
            api_base=self.spec.api_base,
            api_key=self.api_key,
            timeout=self.spec.timeout_s,
            num_retries=0,
            **shaped,
        )
        choice = response.choices[0]
        return choice.message.content, getattr(response, "usage", None), choice.finish_reason

    def retryable(self, exc: BaseException) -> bool:
        """Everything but litellm's permanent errors (refused key, unknown model, a request
        the server will refuse again). An error raised inside a custom provider (a missing
        GGUF file, a prompt longer than the context) reaches us as litellm wraps it,
        ``APIConnectionError``, and is retried like one."""
        exceptions = litellm_module().exceptions
        permanent = (
            exceptions.AuthenticationError,
            exceptions.NotFoundError,
            exceptions.PermissionDeniedError,
            exceptions.ContextWindowExceededError,
            exceptions.BadRequestError,
            exceptions.UnsupportedParamsError,
        )
        return not isinstance(exc, permanent)
