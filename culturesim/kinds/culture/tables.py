"""The culture kind writes only the core's tables (ideas, prompts, agents, edges): it has
no per-step tables of its own."""

TABLES: dict[str, dict] = {}
