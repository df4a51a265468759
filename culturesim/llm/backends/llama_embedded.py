"""``local/<name>``: the embedded model (llama.cpp in process), one request at a time.

The model is a litellm custom provider (:func:`make_handler`), so ``local/smollm2`` is a
model string like any other, for the door and for any litellm caller; the backend
sends through litellm like :class:`~culturesim.llm.backends.litellm_backend.LiteLLM`,
and a failure is recorded as litellm names it (``APIConnectionError: litellm.
APIConnectionError: ...``), as recorded runs have it. litellm's ~2 ms per call is
nothing beside a decode of hundreds of milliseconds.

What differs from a server: the llama.cpp thread serves one request at a time
(culturesim/llm/local.py), so queueing more would only blur latencies; and there is no
server to wait for, so the retry layer asks again at once and no outage is waited out.
"""

from __future__ import annotations

import asyncio

from culturesim.llm.backends.litellm_backend import LiteLLM
from culturesim.llm.local import PROVIDER_STATE
from culturesim.scenario import LLMSpec

PROVIDER = "local"


class LlamaEmbedded(LiteLLM):
    remote = False

    def __init__(self, spec: LLMSpec):
        super().__init__(spec)
        PROVIDER_STATE.configure(n_threads=spec.n_threads, n_ctx=spec.n_ctx)

    @property
    def concurrency(self) -> int:
        return 1


def make_handler():
    """The litellm CustomLLM for ``local/...`` (built lazily: litellm imports slowly)."""
    import litellm
    from litellm.llms.custom_llm import CustomLLM

    class LocalLLM(CustomLLM):
        def completion(self, model, messages, api_base, custom_prompt_dict, model_response,
                       print_verbose, encoding, api_key, logging_obj, optional_params,
                       acompletion=None, litellm_params=None, logger_fn=None, headers=None,
                       timeout=None, client=None):
            return litellm.ModelResponse(**PROVIDER_STATE.complete(model, messages, optional_params))

        async def acompletion(self, *args, **kwargs):
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(PROVIDER_STATE.executor, lambda: self.completion(*args, **kwargs))

    return LocalLLM()
