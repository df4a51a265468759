"""Batched decoding for the embedded model: several requests decoded together by llama.cpp.

One request at a time, llama.cpp multiplies each weight matrix by a single token's
vector per step, and on a CPU that is bound by reading the weights. Decoding ``slots``
sequences together reads the weights once per step for all of them (llama.cpp's
low-level batch API: one ``llama_batch`` holding one token per sequence, each with its
own ``seq_id``, and one ``llama_decode`` per token step). Slots are refilled as soon
as a sequence ends (continuous batching), so a long reply does not hold the others.

What a request gets is meant to be what ``local.chat`` gives it one at a time:
- its prompt tokens, stop strings and sampling parameters come from llama-cpp-python's
  own chat handler (called with a stand-in ``create_completion`` that records them);
- its sampler is llama-cpp-python's own chain (``Llama._init_sampler``: penalties,
  the JSON Schema's grammar when the request has one (``local.grammar_for``), top-k 40,
  typical, top-p, min-p 0.05, temperature, then ``dist`` seeded with the request's seed),
  one chain per sequence;
- its end follows ``Llama._create_completion``: end-of-generation token, stop strings
  (cut before the first one), ``max_tokens``, and the same hold-back for a UTF-8
  character split across tokens;
- its KV cache is its own (``kv_unified=False``: one stream per sequence, cleared
  before each request), so no request reads another's tokens.

Whether the text is identical to one-at-a-time for the same seed depends on whether
llama.cpp's kernels give bit-identical logits for a batch of several tokens and for
one; tests/test_local_batch.py checks it on SmolLM2 and bench/embedded_batch.py
reports it. Everything here runs on the provider's single llama.cpp thread.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


class _Captured(Exception):  # noqa: N818 - a signal, not an error
    def __init__(self, kwargs: dict):
        super().__init__("captured")
        self.kwargs = kwargs


class _Recorder:
    """Looks like the ``Llama`` to a chat handler, but records ``create_completion``'s
    arguments instead of generating."""

    def __init__(self, llama):
        self._llama = llama

    def __getattr__(self, name):
        return getattr(self._llama, name)

    def create_completion(self, **kwargs):
        raise _Captured(kwargs)


@dataclass
class Job:
    """One request: the chat messages and the sampling of ``local.chat``."""

    messages: list[dict]
    seed: int
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 64
    stop: list[str] = field(default_factory=list)
    schema: str | None = None  # canonical JSON Schema text: decode under its grammar


@dataclass
class Result:
    text: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    latency_s: float = 0.0
    error: str | None = None


@dataclass
class _Seq:
    index: int
    prompt: list[int]
    stops: list[bytes]
    max_tokens: int
    sampler: object
    start: float
    completion: list[int] = field(default_factory=list)
    multibyte_fix: int = 0
    last: int = 0
    result: Result | None = None


def chat_request(llama, job: Job) -> dict:
    """What ``llama.create_chat_completion`` would pass to ``create_completion``:
    prompt tokens, stop strings and sampling parameters, with its defaults (which are
    not the chat handlers' own: repeat_penalty 1.0 there, 1.1 in the handlers)."""
    from llama_cpp import Llama

    from culturesim.llm.local import grammar_for

    try:
        Llama.create_chat_completion(_Recorder(llama), messages=job.messages, temperature=job.temperature,
                                     top_p=job.top_p, stop=list(job.stop) or None, seed=job.seed,
                                     max_tokens=job.max_tokens,
                                     grammar=grammar_for(job.schema) if job.schema else None)
    except _Captured as captured:
        return captured.kwargs
    raise RuntimeError("the chat handler did not call create_completion")  # pragma: no cover


class BatchDecoder:
    """A second llama.cpp context on the same loaded weights, with ``slots`` sequences."""

    def __init__(self, llama, slots: int):
        import llama_cpp
        from llama_cpp import _internals as internals

        self.llama = llama
        self.slots = slots
        self.n_ctx_seq = llama.n_ctx()
        params = type(llama.context_params).from_buffer_copy(llama.context_params)
        params.n_ctx = self.n_ctx_seq * slots
        params.n_seq_max = slots
        params.kv_unified = False  # one KV stream per sequence: attention never mixes requests
        self.ctx = internals.LlamaContext(model=llama._model, params=params, verbose=False)
        self.batch = internals.LlamaBatch(n_tokens=max(llama.n_batch, slots), embd=0, n_seq_max=1, verbose=False)
        self.memory = llama_cpp.llama_get_memory(self.ctx.ctx)
        self._capi = llama_cpp

    def close(self) -> None:
        self.batch.close()
        self.ctx.close()

    # --- llama.cpp calls --------------------------------------------------------------
    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """One ``llama_decode`` of (token, position, seq_id, wants_logits) entries."""
        b = self.batch.batch
        b.n_tokens = len(entries)
        for i, (token, pos, seq, logits) in enumerate(entries):
            b.token[i] = token
            b.pos[i] = pos
            b.seq_id[i][0] = seq
            b.n_seq_id[i] = 1
            b.logits[i] = logits
        self.ctx.decode(self.batch)

    def _prefill(self, slot: int, prompt: list[int]) -> None:
        """The prompt into the slot's own cleared stream, in ``n_batch`` chunks with the
        last token of each chunk asking for logits (as ``Llama.eval`` does)."""
        self._capi.llama_memory_seq_rm(self.memory, slot, -1, -1)
        n_batch = self.llama.n_batch
        for start in range(0, len(prompt), n_batch):
            chunk = prompt[start:start + n_batch]
            self._decode([(t, start + i, slot, i == len(chunk) - 1) for i, t in enumerate(chunk)])

    # --- one request's bookkeeping -------------------------------------------------------
    def _begin(self, index: int, job: Job) -> _Seq:
        request = chat_request(self.llama, job)
        prompt = list(request["prompt"])
        if len(prompt) >= self.n_ctx_seq:
            raise ValueError(f"Requested tokens ({len(prompt)}) exceed context window of {self.n_ctx_seq}")
        max_tokens = request.get("max_tokens")
        if max_tokens is None or max_tokens <= 0:
            max_tokens = self.n_ctx_seq - len(prompt)
        max_tokens = min(max_tokens, self.n_ctx_seq - len(prompt))
        stop = request.get("stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        llama = self.llama
        llama.set_seed(request["seed"])
        sampler = llama._init_sampler(
            top_k=request.get("top_k", 40), top_p=request.get("top_p", 0.95), min_p=request.get("min_p", 0.05),
            typical_p=request.get("typical_p", 1.0), temp=request.get("temperature", 0.8),
            repeat_penalty=request.get("repeat_penalty", 1.0),
            frequency_penalty=request.get("frequency_penalty", 0.0),
            presence_penalty=request.get("presence_penalty", 0.0), tfs_z=request.get("tfs_z", 1.0),
            mirostat_mode=request.get("mirostat_mode", 0), mirostat_tau=request.get("mirostat_tau", 5.0),
            mirostat_eta=request.get("mirostat_eta", 0.1), grammar=request.get("grammar"),
        )
        return _Seq(index, prompt, [s.encode("utf-8") for s in stop], max_tokens, sampler, time.perf_counter())

    def _take(self, seq: _Seq, token: int) -> bool:
        """Account one sampled token the way ``Llama._create_completion`` does; True when
        the sequence has ended (its ``result`` is set)."""
        llama = self.llama
        finish = None
        if self._capi.llama_vocab_is_eog(llama._model.vocab, token):
            text, finish = llama.detokenize(seq.completion, prev_tokens=seq.prompt), "stop"
        else:
            seq.completion.append(token)
            text = llama.detokenize(seq.completion, prev_tokens=seq.prompt)
            for k, char in enumerate(text[-3:]):
                k = 3 - k
                for num, pattern in ((2, 192), (3, 224), (4, 240)):
                    if num > k and pattern & char == pattern:
                        seq.multibyte_fix = num - k
            if seq.multibyte_fix > 0:
                seq.multibyte_fix -= 1
            else:
                hits = [s for s in seq.stops if s in text]
                if hits:
                    text, finish = text[: text.index(hits[0])], "stop"
                elif len(seq.completion) >= seq.max_tokens:
                    finish = "length"
        if finish is None:
            seq.last = token
            return False
        seq.result = Result(text.decode("utf-8", errors="ignore"), len(seq.prompt), len(seq.completion), finish,
                            time.perf_counter() - seq.start)
        return True

    # --- the loop -------------------------------------------------------------------------
    def generate(self, jobs: list[Job], on_result: Callable[[int, Result], None] | None = None) -> list[Result]:
        """Every job's result, in order; ``on_result(index, result)`` as each one ends."""
        results: list[Result | None] = [None] * len(jobs)
        waiting = deque(enumerate(jobs))
        free = deque(range(self.slots))
        active: dict[int, _Seq] = {}

        def finish(index: int, result: Result) -> None:
            results[index] = result
            if on_result:
                on_result(index, result)

        while waiting or active:
            while waiting and free:
                index, job = waiting.popleft()
                slot = free.popleft()
                try:
                    seq = self._begin(index, job)
                    self._prefill(slot, seq.prompt)
                    ended = self._take(seq, seq.sampler.sample(self.ctx, -1))
                except Exception as exc:  # noqa: BLE001 - a request that cannot run is a recorded failure
                    finish(index, Result(None, error=f"{type(exc).__name__}: {exc}"[:500]))
                    free.append(slot)
                    continue
                if ended:
                    finish(index, seq.result)
                    free.append(slot)
                else:
                    active[slot] = seq
            if not active:
                continue
            order = list(active.items())
            self._decode([(seq.last, len(seq.prompt) + len(seq.completion) - 1, slot, True) for slot, seq in order])
            for i, (slot, seq) in enumerate(order):
                if self._take(seq, seq.sampler.sample(self.ctx, i)):
                    finish(seq.index, seq.result)
                    del active[slot]
                    free.append(slot)
        return results  # type: ignore[return-value]
