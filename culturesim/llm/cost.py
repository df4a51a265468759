"""Tokens per model, an estimated cost, and the run's token budget.

Every model reply a run records is a row of its ideas table with its ``model``,
``prompt_tokens`` and ``completion_tokens``, so a run's usage is a sum over those rows: the
same on disk after a kill as in the process that wrote them. :class:`Usage` keeps that sum
per model while a run goes, and the runner writes it into the manifest after each step.

Costs come from litellm's own price table (``litellm.cost_per_token``, which reads
``litellm.model_cost``), priced per model string. A model that costs nothing to call is
never looked up, so a run on one never imports litellm (seconds, see DESIGN.md): the
embedded model (``local/``), the ``echo/`` stand-in, the test backends, and every model
reached through an ``api_base`` (a server of one's own: vLLM, llama.cpp). A hosted model
litellm has no price for gets ``None`` (unknown), never a made-up zero.

Every recorded reply counts, whether or not it came from the reply cache: a run's usage
and its budget stop are then the same whatever the cache held, so a resumed or repeated run
stops at the same step. (The cost is therefore what the run's replies cost when first asked.)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

FREE_PROVIDERS = ("local", "echo", "faults")  # in-process models and test stand-ins


def served_models(scenario: dict | None) -> set[str]:
    """Model strings the resolved scenario reaches through an ``api_base`` (its own servers),
    wherever an llm block sits in it (the scenario's, a group's, a kind's second model)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("model"), str) and node.get("api_base"):
                found.add(node["model"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(scenario)
    return found


def is_free(model: str, served: set[str]) -> bool:
    return model.split("/", 1)[0] in FREE_PROVIDERS or model in served


def price(model: str, prompt_tokens: int, completion_tokens: int, served: set[str]) -> float | None:
    """Estimated US dollars for these tokens on ``model``; 0 for free models, None when
    litellm's price table does not know the model."""
    if is_free(model, served):
        return 0.0
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download of the price map
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import litellm

    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    except Exception:  # noqa: BLE001 - litellm raises several kinds for a model it cannot price
        return None
    return float(prompt_cost) + float(completion_cost)


class Usage:
    """Requests and tokens per model over a run's recorded rows, and their estimated cost."""

    def __init__(self, served: set[str] | None = None):
        self.served = served or set()
        self.models: dict[str, dict[str, int]] = {}

    def add(self, rows: Iterable[dict]) -> None:
        """Count idea rows that came from a model (rows without one, like seed ideas, do not)."""
        for row in rows:
            model = row.get("model")
            if not model:
                continue
            entry = self.models.setdefault(model, {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0})
            entry["requests"] += 1
            entry["prompt_tokens"] += int(row.get("prompt_tokens") or 0)
            entry["completion_tokens"] += int(row.get("completion_tokens") or 0)

    @property
    def total_tokens(self) -> int:
        return sum(e["prompt_tokens"] + e["completion_tokens"] for e in self.models.values())

    def as_manifest(self) -> dict[str, dict]:
        """``manifest.usage``: per model, requests, tokens and ``cost_usd`` (None: no price known)."""
        return {model: {**e, "cost_usd": price(model, e["prompt_tokens"], e["completion_tokens"], self.served)}
                for model, e in sorted(self.models.items())}

    @classmethod
    def of_run(cls, run, scenario: dict | None) -> Usage:
        """The usage recorded in a run folder's idea rows (a ``store.RunDir``)."""
        import polars as pl

        usage = cls(served_models(scenario))
        files = run.table_files("ideas")
        if not files:
            return usage
        frame = (pl.scan_parquet(files).filter(pl.col("model").is_not_null()).group_by("model")
                 .agg(requests=pl.len(), prompt_tokens=pl.col("prompt_tokens").sum(),
                      completion_tokens=pl.col("completion_tokens").sum()).collect())
        for row in frame.iter_rows(named=True):
            usage.models[row["model"]] = {key: int(row[key] or 0)
                                          for key in ("requests", "prompt_tokens", "completion_tokens")}
        return usage


def budget_reason(total_tokens: int, cap: int | None, step: int) -> str | None:
    """Why a run stops after ``step`` for its token budget; None while it is within it."""
    if cap is None or total_tokens < cap:
        return None
    return (f"token budget: {total_tokens} tokens used by step {step}, llm.max_total_tokens is {cap}")


def summary(manifest: dict) -> tuple[str, str]:
    """How ``culturesim runs`` and the app show a manifest's usage: tokens per model, and
    the estimated cost ("?" when a model has no known price; "" when nothing is known).
    A manifest written before usage was recorded shows its total token count only."""
    usage = manifest.get("usage")
    if not isinstance(usage, dict) or not usage:
        counts = manifest.get("counts") if isinstance(manifest.get("counts"), dict) else {}
        tokens = sum(v for k, v in counts.items() if k in ("prompt_tokens", "completion_tokens") and isinstance(v, int))
        return (f"{tokens:,}" if tokens else "", "")
    parts, cost, known = [], 0.0, True
    for model, entry in usage.items():
        if not isinstance(entry, dict):
            continue
        tokens = sum(v for k, v in entry.items() if k in ("prompt_tokens", "completion_tokens") and isinstance(v, int))
        parts.append(f"{model}: {tokens:,}" if len(usage) > 1 else f"{tokens:,}")
        value = entry.get("cost_usd")
        if isinstance(value, int | float):
            cost += value
        else:
            known = False
    return "; ".join(parts), (f"${cost:.4f}" if known else f"${cost:.4f}+?" if cost else "?")
