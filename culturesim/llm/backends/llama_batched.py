"""``local/<name>`` with ``llm.batch`` > 1: the embedded model decoding several requests
together (culturesim/llm/local_batch.py), with the same text per seed as one at a time.

It does not go through litellm: litellm takes one request per call, and the point is to
hand llama.cpp a whole step at once. A request that cannot run (a prompt longer than
the context) is a recorded failure and is not asked again: it would fail the same way.
Replies reach ``on_attempt`` on the calling thread as each sequence ends.
"""

from __future__ import annotations

import queue

from culturesim.llm.backends import OnAttempt
from culturesim.llm.local import PROVIDER_STATE
from culturesim.llm.local_batch import Job, Result
from culturesim.llm.types import Reply, Request
from culturesim.scenario import LLMSpec


class LlamaBatched:
    remote = False

    def __init__(self, spec: LLMSpec, slots: int):
        self.model = spec.model
        self.name = spec.model.split("/", 1)[1]
        self.slots = slots
        PROVIDER_STATE.configure(n_threads=spec.n_threads, n_ctx=spec.n_ctx)

    def send(self, requests: list[Request], on_attempt: OnAttempt | None = None) -> list[Reply]:
        if not requests:
            return []
        decoder = PROVIDER_STATE.decoder(self.name, self.slots)
        jobs = [Job(messages=list(r.messages), seed=r.seed, temperature=r.temperature, top_p=r.top_p,
                    max_tokens=r.max_tokens, stop=list(r.stop), schema=r.schema) for r in requests]
        done: queue.Queue = queue.Queue()
        report = lambda k, res: done.put((k, res))  # noqa: E731 - from the llama.cpp thread
        future = PROVIDER_STATE.executor.submit(decoder.generate, jobs, report)
        replies: list[Reply | None] = [None] * len(requests)
        for _ in jobs:
            while True:
                try:
                    k, res = done.get(timeout=0.5)
                    break
                except queue.Empty:
                    if future.done():
                        future.result()  # a crash of the decoder itself surfaces here
            replies[k] = self._reply(requests[k], res)
            if on_attempt:
                on_attempt(k, replies[k])
        future.result()
        return replies  # type: ignore[return-value]

    def _reply(self, req: Request, res: Result) -> Reply:
        if res.error:
            return Reply(text=None, model=self.model, latency_s=res.latency_s, error=res.error, seed=req.seed)
        return Reply(text=(res.text or "").strip(), model=self.model, prompt_tokens=res.prompt_tokens,
                     completion_tokens=res.completion_tokens, latency_s=res.latency_s,
                     finish_reason=res.finish_reason, seed=req.seed)

    def close(self) -> None:
        """The decoder belongs to the process's llama.cpp thread (freed at exit)."""
