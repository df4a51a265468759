"""The embedded model, batched: quickstart through culturesim with N sequences decoded
together, versus the plain one-at-a-time llama-cpp-python loop on the same prompts and seeds.

Runs scenarios/quickstart.yaml (cache off) through culturesim one request at a time,
replays the exact messages and seeds through llama-cpp-python directly (the raw
loop), then runs the scenario again through culturesim with ``batch`` = each of
``--slots`` (culturesim/llm/backends/llama_batched.py on local_batch.py). Prints ideas/s and tokens/s of each,
the ratios to the raw loop, and how many texts are identical to the raw loop's: the
batched runs must give the same text for the same seed. All in one process, on the
provider's llama.cpp thread, one-time costs (imports, model and context loads)
excluded.

    python bench/embedded_batch.py [--slots 2 4 8] [--reps 2] [--set population.size=6 ...]

With ``--reps R`` every pass runs R times, in turn, and the fastest of each is kept
(on a shared machine the fastest is the one least disturbed).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import polars as pl
from quickstart_vs_raw import raw_llama_loop  # bench/ is the script's folder

from culturesim import runner
from culturesim import scenario as sc
from culturesim.llm.client import litellm_module
from culturesim.llm.local import PROVIDER_STATE, load_llama, smollm2_path

ROOT = Path(__file__).resolve().parent.parent


def with_batch(scenario, slots: int):
    return scenario.model_copy(update={"llm": scenario.llm.model_copy(update={"batch": slots})})


def run_through_culturesim(scenario) -> tuple[float, pl.DataFrame]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = runner.start(scenario, out=tmp, show_progress=False)
        elapsed = time.perf_counter() - start
        ideas = run.ideas().filter(pl.col("source") == "llm").sort("step", "agent_id")
        prompts = run.prompts().select("idea_id", "messages")
    return elapsed, ideas.join(prompts, on="idea_id", how="left", maintain_order="left")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "quickstart.yaml"))
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--slots", type=int, nargs="+", default=[4])
    ap.add_argument("--reps", type=int, default=1)
    args = ap.parse_args()
    scenario = sc.load(args.scenario, [*args.set, "llm.cache=false"])
    llm = scenario.llm

    litellm_module()
    PROVIDER_STATE.configure(n_threads=llm.n_threads, n_ctx=llm.n_ctx)
    PROVIDER_STATE.model("smollm2")
    for slots in args.slots:
        PROVIDER_STATE.decoder("smollm2", slots)
    raw = PROVIDER_STATE.on_worker(lambda: load_llama(smollm2_path(), n_threads=llm.n_threads, n_ctx=llm.n_ctx))

    table = run_through_culturesim(scenario)[1]

    def raw_loop():
        return raw_llama_loop(raw, table, llm)

    def timed_raw():
        start = time.perf_counter()
        texts, tokens = PROVIDER_STATE.on_worker(raw_loop)
        return time.perf_counter() - start, (texts, tokens)

    passes = {"raw": timed_raw, 1: lambda: run_through_culturesim(scenario)}
    passes.update({k: (lambda k=k: run_through_culturesim(with_batch(scenario, k))) for k in args.slots})
    best: dict = {}
    for _ in range(args.reps):
        for name, fn in passes.items():
            seconds, out = fn()
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, out)
    raw_s, (raw_texts, raw_tokens) = best["raw"]

    n = table.height
    print(f"requests: {n} ({scenario.population.size} agents x {scenario.steps} steps, max_tokens {llm.max_tokens}); "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} (shared machine)")
    print(f"raw llama-cpp loop   : {n / raw_s:6.2f} ideas/s  {raw_tokens / raw_s:7.1f} tokens/s  ({raw_s:.1f} s)")

    def report(label, seconds, frame):
        tokens = int(frame["completion_tokens"].sum())
        same = sum(a == b for a, b in zip(raw_texts, frame["text"].to_list(), strict=True))
        print(f"{label:<21}: {n / seconds:6.2f} ideas/s  {tokens / seconds:7.1f} tokens/s  ({seconds:.1f} s)  "
              f"ideas/s vs raw loop {raw_s / seconds:.3f}; identical texts {same}/{n}", flush=True)

    for name in (1, *args.slots):
        report(f"culturesim, batch {name}", *best[name])


if __name__ == "__main__":
    main()
