"""An httpx transport over aiohttp, for the openai client of the fast path (backends/openai_fast.py).

Measured on these machines (bench/client_overhead.py, 1,000 requests at concurrency 64
to a loopback server): the openai client on its default httpx/httpcore pool spends
~3.4 ms of CPU per chat completion, most of it in httpcore's pool bookkeeping (every
queued request scans every connection) and anyio socket attribute lookups; on this
transport it spends ~1.5 ms, and ~0.9 ms when the body is posted as-is (no TypedDict
transform). The openai client keeps doing what it is good at (status errors, response
types); aiohttp only moves bytes. openai's own ``DefaultAioHttpClient`` does the same
but needs the ``httpx-aiohttp`` package, which is not installed here.

Errors are translated to httpx's, so the openai client raises its usual
``APITimeoutError`` and ``APIConnectionError``.
"""

from __future__ import annotations

import aiohttp
import httpx

# aiohttp decompresses and frames the body itself; these would mislead httpx.
_DROP = {"content-encoding", "content-length", "transfer-encoding"}


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (one keep-alive pool, no connection cap: the caller's
    semaphore is the cap), created on first use on the running loop."""

    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), trust_env=True)
        return self.session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        t = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(total=None, connect=t.get("connect"), sock_read=t.get("read"))
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                   if k.lower() not in (b"content-length", b"accept-encoding", b"transfer-encoding")]
        try:
            async with self._session().request(request.method, str(request.url), headers=headers,
                                               data=request.content, timeout=timeout) as resp:
                body = await resp.read()
                kept = [(k, v) for k, v in resp.headers.items() if k.lower() not in _DROP]
                return httpx.Response(resp.status, headers=kept, content=body, request=request)
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc

    async def aclose(self) -> None:
        if self.session is not None and not self.session.closed:
            await self.session.close()
