"""Where callers have always found the door: ``from culturesim.llm.client import LLM``.

The door itself is culturesim/llm/door.py (layers) and culturesim/llm/backends/ (one
module per way of reaching a model); the names below are what code outside the door
imports from here (the CLI, the runner, analysis' embeddings, tests, benches).
"""

from __future__ import annotations

from culturesim.llm.backends import api_key_for
from culturesim.llm.backends.concurrent import event_loop
from culturesim.llm.backends.litellm_backend import litellm_module, register_provider
from culturesim.llm.backends.openai_fast import uses_fast_path
from culturesim.llm.door import LLM

__all__ = ["LLM", "api_key_for", "event_loop", "litellm_module", "register_provider", "uses_fast_path"]
