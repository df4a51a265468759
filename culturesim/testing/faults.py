"""``faults/<spec>``: echo's deterministic replies with faults injected, for tests only.

A study that runs for a day must survive a bad response; this backend produces bad
responses on purpose so tests can check that each one ends as a retry, a recorded
failure or a recorded idea, never a lost step. It is not a model and not a benchmark.

The spec is comma-separated ``name=rate`` pairs (rates are probabilities, summing to
at most 1), e.g. ``faults/exc=0.1,timeout=0.05,empty=0.1,long=0.05,badutf8=0.05,drop=0.05``:

- ``exc``      a transient server error (HTTP 503)
- ``bad``      a permanent error (HTTP 400): must not be retried
- ``timeout``  the request timed out (raised at once: tests should not wait out a timeout)
- ``empty``    an empty reply
- ``long``     a reply far over ``max_tokens`` (a server ignoring the limit), finish_reason "length"
- ``badutf8``  text holding lone surrogates, which is what ``json.loads`` makes of a server's
               ``"\\udcff"`` escapes for bytes that were not UTF-8; such text cannot be encoded
- ``drop``     the connection dropped mid-reply, raised as the retryable connection error that
               a real drop gives (tests/test_faults.py also cuts a real loopback connection)

plus ``delay=<seconds>`` of latency per call. Which fault (if any) a call gets is a
function of (messages, seed, n), where n counts earlier calls with the same messages and
seed in this process: the same request fails the same way on its first attempt and may
succeed on a retry, and a fresh process replays the same sequence. :func:`decide` is
that function, so a test can recompute what every attempt met.

It is a litellm custom provider, registered by the door the first time a scenario names
``faults/...`` (culturesim/llm/backends/litellm_backend.py), so it works in any process
a test starts (``culturesim run`` in a subprocess) without shipping it as a backend.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from dataclasses import dataclass, field

from culturesim.llm.backends import echo

FAULTS = ("exc", "bad", "timeout", "empty", "long", "badutf8", "drop")
BAD_TEXT = " \udcff\udcfe "  # lone surrogates, as json.loads returns them for "\udcff\udcfe"


class FaultSpecError(ValueError):
    """A ``faults/...`` model string that cannot be parsed."""


@dataclass(frozen=True)
class Spec:
    rates: dict[str, float] = field(default_factory=dict)
    delay: float = 0.0


def parse(model: str) -> Spec:
    """``exc=0.1,empty=0.05,delay=0.01`` (with or without the ``faults/`` prefix)."""
    text = model.split("/", 1)[1] if model.startswith("faults/") else model
    rates: dict[str, float] = {}
    delay = 0.0
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not sep or not (number >= 0):
            raise FaultSpecError(f"faults/{text}: {part!r} is not name=<number >= 0>")
        if name == "delay":
            delay = number
        elif name in FAULTS:
            rates[name] = number
        else:
            raise FaultSpecError(f"faults/{text}: unknown fault {name!r}; allowed: {', '.join(FAULTS)}, delay")
    if sum(rates.values()) > 1 + 1e-9:
        raise FaultSpecError(f"faults/{text}: rates sum to {sum(rates.values()):g}, more than 1")
    return Spec(rates, delay)


def uniform(messages: list[dict], seed: int, n: int) -> float:
    """A number in [0, 1) fixed by the request and how often it was seen before."""
    blob = json.dumps([messages, int(seed), int(n)], sort_keys=True).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") / 2**64


def decide(spec: Spec, messages: list[dict], seed: int, n: int) -> str | None:
    """The fault the n-th call with these messages and seed meets, or None."""
    u = uniform(messages, seed, n)
    edge = 0.0
    for name in FAULTS:
        edge += spec.rates.get(name, 0.0)
        if u < edge:
            return name
    return None


def long_text(messages: list[dict], seed: int, max_tokens: int) -> str:
    """Echo's reply repeated to about 20 times the token limit."""
    base = echo.reply_text(messages, seed, max_tokens)
    words = base.split()
    return " ".join(words[i % len(words)] for i in range(20 * max(max_tokens, 1)))


def make_handler():
    import litellm
    from litellm.llms.custom_llm import CustomLLM

    class Faults(CustomLLM):
        """Keeps ``calls``: (messages digest, seed, n, fault) for every call, in order."""

        def __init__(self):
            super().__init__()
            self.lock = threading.Lock()
            self.seen: dict[tuple[str, int], int] = {}
            self.calls: list[tuple[str, int, int, str | None]] = []

        def reset(self) -> None:
            with self.lock:
                self.seen.clear()
                self.calls.clear()

        def _next(self, spec: Spec, messages: list[dict], seed: int) -> str | None:
            digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode("utf-8", "surrogatepass")).hexdigest()
            with self.lock:
                n = self.seen.get((digest, seed), 0)
                self.seen[(digest, seed)] = n + 1
                fault = decide(spec, messages, seed, n)
                self.calls.append((digest, seed, n, fault))
            return fault

        def completion(self, *args, **kwargs):
            raise litellm.exceptions.BadRequestError(message="faults/ is async only (LLM.generate)",
                                                     model="faults", llm_provider="faults")

        async def acompletion(self, model, messages, *args, optional_params=None, timeout=None, **kwargs):
            params = optional_params or {}
            seed, max_tokens = int(params.get("seed", 0)), int(params.get("max_tokens", 64))
            try:
                spec = parse(model)
            except FaultSpecError as exc:
                raise litellm.exceptions.BadRequestError(message=str(exc), model=model, llm_provider="faults") from None
            fault = self._next(spec, messages, seed)
            if spec.delay:
                await asyncio.sleep(spec.delay)
            where = dict(model=f"faults/{model}", llm_provider="faults")
            if fault == "exc":
                raise litellm.exceptions.ServiceUnavailableError(message="injected fault exc: server error", **where)
            if fault == "bad":
                raise litellm.exceptions.BadRequestError(message="injected fault bad: request refused", **where)
            if fault == "timeout":
                raise litellm.exceptions.Timeout(message=f"injected fault timeout: no answer within {timeout} s",
                                                 **where)
            if fault == "drop":
                raise litellm.exceptions.APIConnectionError(
                    message="injected fault drop: peer closed connection without sending complete message body",
                    **where)
            text = echo.reply_text(messages, seed, max_tokens)
            finish = "stop"
            if fault == "empty":
                text = ""
            elif fault == "long":
                text, finish = long_text(messages, seed, max_tokens), "length"
            elif fault == "badutf8":
                words = text.split()
                text = " ".join(words[: len(words) // 2]) + BAD_TEXT + " ".join(words[len(words) // 2:])
            prompt = sum(len(m.get("content", "").split()) for m in messages)
            completion = len(text.split())
            return litellm.ModelResponse(
                model=f"faults/{model}",
                choices=[{"message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                usage={"prompt_tokens": prompt, "completion_tokens": completion,
                       "total_tokens": prompt + completion},
            )

    return Faults()
