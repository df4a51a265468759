"""What a declared reply shape costs on the embedded model: quickstart with a culture reply
schema against without, in the same process, printing ideas/s of each and their ratio.

With ``culture.reply_schema`` every request is decoded under the grammar llama.cpp derives
from the schema (culturesim/llm/local.py, ``grammar_for``): the grammar sampler runs over
the vocabulary at every token, and the reply carries JSON around the idea. Both passes run
scenarios/quickstart.yaml (cache off, ``llm.retries: 0`` so a reply cut short by
``max_tokens`` is counted, not re-asked) on the provider's one llama.cpp thread, with the
model loaded before timing. Prints ideas/s and tokens/s of each pass, the ratio of ideas/s
with the schema to without (the issue's target: no more than 15% slower, ratio >= 0.85),
and how many schema replies parsed.

    python bench/shape_cost.py [--reps 2] [--batch 1] [--set population.size=6 ...]

With ``--reps R`` each pass runs R times, in turn, and the fastest of each is kept (on a
shared machine the fastest is the one least disturbed).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import polars as pl

from culturesim import runner
from culturesim import scenario as sc
from culturesim.llm.client import litellm_module
from culturesim.llm.local import PROVIDER_STATE

ROOT = Path(__file__).resolve().parent.parent

# The shape asked for: the story, and a title (a second field, so the grammar has structure).
SCHEMA = {"type": "object", "additionalProperties": False, "required": ["story", "title"],
          "properties": {"story": {"type": "string"}, "title": {"type": "string"}}}


def shaped(scenario):
    culture = scenario.culture.model_copy(update={"reply_schema": SCHEMA, "reply_field": "story"})
    return scenario.model_copy(update={"culture": culture})


def timed_run(scenario) -> tuple[float, pl.DataFrame]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = runner.start(scenario, out=tmp, show_progress=False)
        elapsed = time.perf_counter() - start
        return elapsed, run.ideas().filter(pl.col("source") == "llm")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "quickstart.yaml"))
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1, help="llm.batch of both passes")
    args = ap.parse_args()
    plain = sc.load(args.scenario, [*args.set, "llm.cache=false", "llm.retries=0", f"llm.batch={args.batch}"])
    passes = {"without schema": plain, "with schema": shaped(plain)}

    litellm_module()
    PROVIDER_STATE.configure(n_threads=plain.llm.n_threads, n_ctx=plain.llm.n_ctx)
    PROVIDER_STATE.model("smollm2")
    if args.batch > 1:
        PROVIDER_STATE.decoder("smollm2", args.batch)

    best: dict[str, tuple[float, pl.DataFrame]] = {}
    for _ in range(args.reps):
        for name, scenario in passes.items():
            seconds, ideas = timed_run(scenario)
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, ideas)

    n = best["without schema"][1].height
    print(f"requests per pass: {n} ({plain.population.size} agents x {plain.steps} steps, max_tokens "
          f"{plain.llm.max_tokens}, batch {args.batch}); {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} "
          f"(shared machine)")
    rate = {}
    for name, (seconds, ideas) in best.items():
        tokens = int(ideas["completion_tokens"].sum())
        ok = ideas.filter(pl.col("error").is_null()).height
        rate[name] = ideas.height / seconds
        print(f"{name:<15}: {rate[name]:6.2f} ideas/s  {tokens / seconds:6.1f} tokens/s  ({seconds:.1f} s, "
              f"{tokens} tokens, {ok}/{ideas.height} replies usable)", flush=True)
    ratio = rate["with schema"] / rate["without schema"]
    print(f"ideas/s with schema / without: {ratio:.3f}  (grammar cost {100 * (1 - ratio):.1f}%; target <= 15%)")


if __name__ == "__main__":
    main()
