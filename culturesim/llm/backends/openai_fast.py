"""An OpenAI-compatible server named by ``api_base`` (``openai/<m>`` or ``hosted_vllm/<m>``,
e.g. vLLM), called with the ``openai`` client directly instead of through litellm.

litellm costs ~2.3 ms of CPU per call on these machines, which in front of a fast server
is the bottleneck (bench/client_overhead.py). The request body sent is the one litellm
sends (tests/test_client_fastpath.py compares them field for field), and failures are
named as litellm names them, so a run reads the same whichever path sent it.

One ``AsyncOpenAI`` per server and key, on the process's event loop, moving bytes with
openai's own aiohttp client (``DefaultAioHttpClient``, the ``openai[aiohttp]`` extra):
its default httpx pool spends most of its CPU in pool bookkeeping at high concurrency
(measured: bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import atexit

from culturesim.llm.backends import describe
from culturesim.llm.backends.concurrent import AsyncBackend, event_loop
from culturesim.llm.shape import response_format
from culturesim.llm.types import Request

# Providers whose api_base speaks OpenAI's chat-completions API as litellm sends it.
OPENAI_COMPATIBLE = ("openai", "hosted_vllm")

# No cap of the pool's own: the backend runs at most ``concurrency`` requests at once
# (at most 4096, LLMSpec's bound); aiohttp's default would cap it at 100.
_MAX_CONNECTIONS = 4096

_clients: dict[tuple[str, str, int], tuple[asyncio.AbstractEventLoop, object]] = {}


def uses_fast_path(model: str, api_base: str | None) -> bool:
    """True for ``openai/<m>`` or ``hosted_vllm/<m>`` with an ``api_base``: a server we can
    call with the openai client directly. Without api_base, ``openai/...`` is OpenAI
    itself, where litellm's per-model parameter mapping is worth its cost."""
    provider, _, name = model.partition("/")
    return bool(api_base) and bool(name) and provider in OPENAI_COMPATIBLE


def http_client():
    """openai's aiohttp-backed HTTP client, as the fast path configures it (bench/ uses it too)."""
    import httpx2
    import openai

    return openai.DefaultAioHttpClient(limits=httpx2.Limits(max_connections=_MAX_CONNECTIONS,
                                                            max_keepalive_connections=_MAX_CONNECTIONS))


def openai_client(api_base: str, api_key: str | None):
    """One ``AsyncOpenAI`` (one connection pool) per server and key, on the calling thread's loop.
    Its own retries are off: the retry layer counts and records every attempt."""
    loop = event_loop()
    key = (api_base, api_key or "", id(loop))  # one per loop: a mixed population drives models from threads
    held = _clients.get(key)
    if held is None or held[0] is not loop:
        import openai

        client = openai.AsyncOpenAI(base_url=api_base, api_key=api_key or "not-needed", max_retries=0,
                                    http_client=http_client())
        held = _clients[key] = (loop, client)
        if len(_clients) == 1:
            atexit.register(_close_clients)
    return held[1]


def _close_clients() -> None:
    """Close the pools at exit while the loop is whole (aiohttp warns about open sessions)."""
    for loop, client in list(_clients.values()):
        if not loop.is_closed() and not loop.is_running():
            loop.run_until_complete(client.close())
    _clients.clear()


def _connection_failed(exc: BaseException) -> bool:
    """True if aiohttp failed to connect or lost the connection without timing out.

    openai's aiohttp adapter maps aiohttp's errors to httpx2's by the first matching
    class, so a refused connection (``ClientConnectorError``, a ``ClientConnectionError``)
    becomes ``httpx2.ConnectTimeout`` and openai raises ``APITimeoutError`` for it."""
    import aiohttp

    seen = exc.__cause__
    while seen is not None:
        if isinstance(seen, aiohttp.ClientConnectionError) and not isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__
    return False


class OpenAIFast(AsyncBackend):
    async def call(self, req: Request) -> tuple[str | None, object, str | None]:
        """One try: the body litellm sends (stop only when set).

        ``post`` rather than ``chat.completions.create``: the body is already plain JSON,
        and create's TypedDict transform of it cost ~0.6 ms per call (profiled)."""
        from openai.types.chat import ChatCompletion

        client = openai_client(self.spec.api_base, self.api_key)
        body = {
            "model": self.spec.model.split("/", 1)[1],
            "messages": list(req.messages),
            "temperature": req.temperature,
            "top_p": req.top_p,
            "max_tokens": req.max_tokens,
            "seed": req.seed,
        }
        if req.stop:
            body["stop"] = list(req.stop)
        if req.schema:  # vLLM's guided decoding (and OpenAI's structured outputs) read this
            body["response_format"] = response_format(req.schema)
        response = await client.post("/chat/completions", body=body, cast_to=ChatCompletion,
                                     options={"timeout": self.spec.timeout_s})
        choice = response.choices[0]
        return choice.message.content, response.usage, choice.finish_reason

    def retryable(self, exc: BaseException) -> bool:
        """litellm's rule, on the same classes: all but a refused key, an unknown model and
        a request the server refuses."""
        import openai

        permanent = (openai.AuthenticationError, openai.NotFoundError, openai.PermissionDeniedError,
                     openai.BadRequestError)
        return not isinstance(exc, permanent)

    def describe(self, exc: BaseException) -> str:
        """Named as litellm names the same failure: a timeout is ``Timeout``; a connection
        that failed is ``APIConnectionError``, whatever the adapter mapped it to."""
        import openai

        if isinstance(exc, openai.APITimeoutError):
            if _connection_failed(exc):
                return describe(openai.APIConnectionError(request=exc.request))
            return describe(exc).replace(type(exc).__name__, "Timeout", 1)
        return describe(exc)
