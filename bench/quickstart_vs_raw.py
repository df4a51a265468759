"""Quickstart throughput through culturesim versus a plain llama-cpp-python loop.

Runs scenarios/quickstart.yaml (cache off), then replays the exact messages and seeds
that run sent, one at a time, through llama-cpp-python directly, and prints ideas/s and
tokens/s for both and their ratio, measured in this one process. The replay must give
the same texts: that checks culturesim adds no hidden state to what the model sees.

    python bench/quickstart_vs_raw.py [--set population.size=6 ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import polars as pl

from culturesim import runner
from culturesim import scenario as sc
from culturesim.llm.client import litellm_module
from culturesim.llm.local import PROVIDER_STATE, load_llama, smollm2_path

ROOT = Path(__file__).resolve().parent.parent


def raw_llama_loop(raw, table: pl.DataFrame, llm) -> tuple[list[str], int]:
    """The baseline: plain llama-cpp-python, one request at a time, on the prompts and seeds
    a culturesim run recorded (``table``: its ideas joined with their messages)."""
    texts, tokens = [], 0
    for row in table.iter_rows(named=True):
        raw.reset()
        out = raw.create_chat_completion(
            messages=json.loads(row["messages"]), seed=row["seed"], temperature=llm.temperature,
            top_p=llm.top_p, max_tokens=llm.max_tokens, stop=llm.stop or None,
        )
        texts.append(out["choices"][0]["message"]["content"].strip())
        tokens += out["usage"]["completion_tokens"]
    return texts, tokens


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "quickstart.yaml"))
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    scenario = sc.load(args.scenario, [*args.set, "llm.cache=false"])
    llm = scenario.llm

    # One-time costs (litellm's import, loading both models) stay out of the timing:
    # we compare stepping, not start-up.
    litellm_module()
    PROVIDER_STATE.configure(n_threads=llm.n_threads, n_ctx=llm.n_ctx)
    PROVIDER_STATE.model("smollm2")
    # Both run on the provider's llama.cpp thread: OpenMP teams are per thread, and a
    # second thread driving llama.cpp would slow both (see culturesim/llm/local.py).
    raw = PROVIDER_STATE.on_worker(lambda: load_llama(smollm2_path(), n_threads=llm.n_threads, n_ctx=llm.n_ctx))

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = runner.start(scenario, out=tmp, show_progress=False)
        ours_s = time.perf_counter() - start
        ideas = run.ideas().filter(pl.col("source") == "llm").sort("step", "agent_id")
        prompts = run.prompts().select("idea_id", "messages")
    table = ideas.join(prompts, on="idea_id", how="left", maintain_order="left")

    def raw_loop():
        return raw_llama_loop(raw, table, llm)

    start = time.perf_counter()
    raw_texts, raw_tokens = PROVIDER_STATE.on_worker(raw_loop)
    raw_s = time.perf_counter() - start

    n = table.height
    ours_tokens = int(table["completion_tokens"].sum())
    same = sum(a == b for a, b in zip(raw_texts, table["text"].to_list(), strict=True))
    print(f"requests: {n} ({scenario.population.size} agents x {scenario.steps} steps), "
          f"identical texts: {same}/{n}")
    print(f"culturesim run : {n / ours_s:6.2f} ideas/s  {ours_tokens / ours_s:7.1f} tokens/s  ({ours_s:.1f} s)")
    print(f"raw llama-cpp  : {n / raw_s:6.2f} ideas/s  {raw_tokens / raw_s:7.1f} tokens/s  ({raw_s:.1f} s)")
    print(f"ratio culturesim/raw (ideas/s): {(n / ours_s) / (n / raw_s):.3f}")


if __name__ == "__main__":
    main()
