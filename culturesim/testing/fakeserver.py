"""A FAKE OpenAI-compatible chat-completions server, for benchmarks and tests only.

It generates nothing: every answer is ``"reply to seed <seed>"``, returned at once, with
word counts standing in for token usage. It exists to measure what stands between
culturesim and a fast server (client overhead), and to inject the failures a real
server has (500s, timeouts, empty replies, bad requests) on purpose. Never mistake
its output for model behaviour.

The behaviour is chosen by the request's model name (without provider prefix):

- ``fail<N>``: HTTP 500 for the first N attempts of each seed, then a reply;
- ``slow<S>``: waits S seconds before answering (for client timeouts);
- ``empty``: an empty assistant message;
- ``bad``: HTTP 400 (a permanent error);
- ``trickle<S>``: headers at once, then a body that never ends, one byte every S seconds
  (each read is quick, the reply never complete: what a per-read timeout never catches);
- ``tricklehead<S>``: the status line, then header bytes one every S seconds, forever;
- anything else: the instant reply.

A request with ``response_format`` of type ``json_schema`` (what the door sends for a
request with a schema) is answered with a JSON value of that schema's shape, made as
the echo backend makes it (as vLLM's guided decoding would), unless the model is
``unshaped``, which ignores the schema like a server without guided decoding. Every
request body is kept in ``FakeServer.requests``, so tests can see what was sent.

It is a bare asyncio protocol rather than a web framework so that the server costs
far less per request than the clients it measures (HTTP/1.1 keep-alive, Content-Length
or chunked bodies). Run it in a thread (``FakeServer().start()``) or, to keep its
CPU time apart from the client's, as a process:
``python -m culturesim.testing.fakeserver [--port P]`` prints ``http://127.0.0.1:P/v1``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import sys
import threading

from culturesim.llm.backends.echo import shaped_text
from culturesim.llm.shape import schema_of_response_format

_FAIL = re.compile(r"fail(\d+)")
_SLOW = re.compile(r"slow([0-9.]+)")
_TRICKLE = re.compile(r"trickle(head)?([0-9.]+)")
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}


def answer(body: dict, attempts: collections.Counter) -> tuple[int, dict, float]:
    """(status, JSON payload, delay in seconds) for one chat-completions request body."""
    model = str(body.get("model", ""))
    seed = body.get("seed")
    attempts[(model, seed)] += 1
    fail = _FAIL.fullmatch(model)
    if fail and attempts[(model, seed)] <= int(fail.group(1)):
        return 500, {"error": {"message": "injected failure", "type": "server_error", "code": 500}}, 0.0
    if model == "bad":
        return 400, {"error": {"message": "injected bad request", "type": "invalid_request_error",
                               "code": 400}}, 0.0
    slow = _SLOW.fullmatch(model)
    text = "" if model == "empty" else f"reply to seed {seed}"
    schema = schema_of_response_format(body.get("response_format"))
    if text and schema is not None and model != "unshaped":
        text = shaped_text(schema, list(body.get("messages", [])), int(seed or 0), int(body.get("max_tokens") or 64))
    prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    completion = len(text.split())
    payload = {
        "id": f"chatcmpl-fake-{seed}",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }
    return 200, payload, float(slow.group(1)) if slow else 0.0


class _Connection(asyncio.Protocol):
    def __init__(self, server: FakeServer):
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            parsed = _parse(self.buffer)
            if parsed is None:
                return
            used, method, path, body, headers = parsed
            del self.buffer[:used]
            self.server.handle(self.transport, method, path, body, headers)


def _parse(buf: bytearray) -> tuple[int, str, str, bytes, dict] | None:
    """One complete HTTP/1.1 request from the front of ``buf``, or None if incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    method, path, _ = head[0].split(" ", 2)
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    start = end + 4
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body, pos = bytearray(), start
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
            if len(buf) < eol + 2 + size + 2:
                return None
            body += buf[eol + 2: eol + 2 + size]
            pos = eol + 2 + size + 2
            if size == 0:
                return pos, method, path, bytes(body), headers
    length = int(headers.get("content-length", 0))
    if len(buf) < start + length:
        return None
    return start + length, method, path, bytes(buf[start: start + length]), headers


class FakeServer:
    """The fake server; ``requests`` keeps the last bodies it received and ``headers`` their
    headers, names lowercased (for tests: which key a client sent)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, keep: int = 1000):
        self.host, self.port = host, port
        self.attempts: collections.Counter = collections.Counter()
        self.requests: collections.deque = collections.deque(maxlen=keep)
        self.headers: collections.deque = collections.deque(maxlen=keep)
        self.served = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.trickling = 0  # replies now being trickled (they end when the client hangs up)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def handle(self, transport, method: str, path: str, raw: bytes, headers: dict | None = None) -> None:
        self.served += 1
        if method == "GET" and path.endswith("/models"):
            self._send(transport, 200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
            return
        if method != "POST" or not path.endswith("/chat/completions"):
            self._send(transport, 404, {"error": {"message": f"no route {method} {path}", "code": 404}})
            return
        body = json.loads(raw)
        self.requests.append(body)
        self.headers.append(headers or {})
        trickle = _TRICKLE.fullmatch(str(body.get("model", "")))
        if trickle:
            self._trickle(transport, bool(trickle.group(1)), float(trickle.group(2)))
            return
        status, payload, delay = answer(body, self.attempts)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if delay:
            self._loop.call_later(delay, self._reply, transport, status, payload)
        else:
            self._reply(transport, status, payload)

    def _reply(self, transport, status: int, payload: dict) -> None:
        self.in_flight -= 1
        self._send(transport, status, payload)

    def _trickle(self, transport, in_head: bool, every_s: float) -> None:
        """A reply that never completes: one byte every ``every_s`` seconds until the client
        hangs up (a header line of ``x``s, or a JSON body promised 1 GB long)."""
        if in_head:
            transport.write(b"HTTP/1.1 200 OK\r\nx-pad: ")
        else:
            transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                            b"content-length: 1000000000\r\n\r\n{")
        self.trickling += 1

        def drip() -> None:
            if transport.is_closing():
                self.trickling -= 1
                return
            transport.write(b"x" if in_head else b" ")
            self._loop.call_later(every_s, drip)

        self._loop.call_later(every_s, drip)

    @staticmethod
    def _send(transport, status: int, payload: dict) -> None:
        if transport.is_closing():
            return  # the client gave up (timeout) before we answered
        data = json.dumps(payload).encode()
        transport.write(
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(data)}\r\n\r\n".encode() + data
        )

    async def serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(lambda: _Connection(self), self.host, self.port, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]

    def start(self) -> FakeServer:
        """Serve from a daemon thread with its own event loop; returns once listening."""
        ready = threading.Event()

        def run():
            loop = asyncio.new_event_loop()
            loop.run_until_complete(self.serve())
            ready.set()
            loop.run_forever()
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            loop.close()

        self._thread = threading.Thread(target=run, name="fakeserver", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop and self._thread:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    server = FakeServer(args.host, args.port, keep=0)

    async def run():
        await server.serve()
        print(server.base_url, flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
