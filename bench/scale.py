"""Scale of the simulation itself: one step of N agents on a scale-free network.

The backend is ``echo/x`` (culturesim/llm/backends/echo.py: an instant, deterministic stand-in
that generates nothing), answered in process, so what is timed is culturesim: building
the network, creating the Mesa agents, composing N prompts, adopting N replies and
writing the step's Parquet files. Phases are timed in CPU seconds of the process
(``time.process_time``), which a shared machine disturbs far less than wall time
(also printed). Each size runs in its own subprocess, so its peak
memory (``ru_maxrss``) is its own; the time of every phase is printed, then how time
and memory grow from the smallest size to the largest (10x agents: linear is 10x).

    python bench/scale.py [--sizes 10000 100000] [--m 3] [--profile N] [--gc-freeze] [--litellm]

``--gc-freeze`` calls ``gc.freeze()`` once the network and agents exist, which moves
them out of the cyclic collector's reach: a proposal for runner.py, measured here.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(n: int, m: int, out: Path, prof: bool, freeze: bool, via_litellm: bool = False) -> dict:
    """Run in the child: every phase of a one-step run, timed."""
    from culturesim import scenario as sc
    from culturesim.kinds.contract import Door
    from culturesim.kinds.culture.model import CultureModel
    from culturesim.llm.client import LLM
    from culturesim.store import RunDir

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scenario = sc.validate_data({
        "kind": "culture", "name": f"scale-{n}", "seed": 3, "steps": 1,
        "population": {"size": n, "mix": {"creative": 0.5, "not_creative": 0.5}},
        "network": {"topology": "scale_free", "params": {"m": m}},
        "llm": {"model": "echo/x", "cache": False, "concurrency": 256},
        "culture": {"update": "synchronous", "operation": "combine", "social": {"sample": "k", "k": 3},
                    "seed_ideas": ["A lighthouse keeper finds a message in a bottle.",
                                   "Two rival bakers share one secret recipe."]},
    }, "bench")
    profiler = cProfile.Profile() if prof else None
    if profiler:
        profiler.enable()
    phases: dict[str, float] = {}
    rss: dict[str, float] = {}
    wall: dict[str, float] = {}

    def timed(name, fn):
        start, cpu = time.perf_counter(), time.process_time()
        result = fn()
        phases[name] = time.process_time() - cpu
        wall[name] = time.perf_counter() - start
        rss[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return result

    graph = timed("network", lambda: CultureModel.build_graph(scenario))
    llm = LLM(scenario.llm, fast_path=not via_litellm)
    model = timed("agents", lambda: CultureModel(scenario, graph, Door(llm), "scale"))
    if freeze:
        gc.freeze()
    run = RunDir(out)
    seed = timed("seed step", model.step)
    timed("write seed step", lambda: run.write_step(0, seed.ideas, seed.prompts))
    first = timed("llm step", model.step)
    timed("write llm step", lambda: run.write_step(1, first.ideas, first.prompts))
    ideas = first.ideas
    assert len(ideas) == n and not any(r["error"] for r in ideas)
    if profiler:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(30)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"n": n, "edges": graph.number_of_edges(), "phases": phases, "rss": rss, "total": sum(phases.values()),
            "wall": sum(wall.values()),
            "peak_mib": peak / 1024, "base_mib": base_rss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--m", type=int, default=3, help="Barabasi-Albert edges per new node")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="print cProfile of size N (to stderr)")
    ap.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after building the model")
    ap.add_argument("--litellm", action="store_true", help="echo through litellm, as before (for comparison)")
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one(args.child, args.m, Path(args.out), args.profile == args.child, args.gc_freeze,
                             args.litellm)))
        return
    results = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, __file__, "--child", str(n), "--m", str(args.m), "--out", tmp,
                   "--profile", str(args.profile)] + (["--gc-freeze"] if args.gc_freeze else []) \
                + (["--litellm"] if args.litellm else [])
            done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(r)
        parts = "  ".join(f"{k} {v:.2f}s ({r['rss'][k]:.0f})" for k, v in r["phases"].items())
        print(f"N={n:>7} ({r['edges']} edges): CPU {r['total']:.2f} s ({n / r['total']:.0f} agent-steps per CPU s), "
              f"wall {r['wall']:.2f} s; "
              f"peak RSS {r['peak_mib']:.0f} MiB (after imports {r['base_mib']:.0f} MiB)\n"
              f"   phase CPU seconds (peak MiB after it): {parts}", flush=True)
    if len(results) > 1:
        a, b = results[0], results[-1]
        size = b["n"] / a["n"]
        grown = {k: b["phases"][k] / max(a["phases"][k], 1e-9) for k in a["phases"]}
        print(f"growth {a['n']} -> {b['n']} agents ({size:.0f}x): CPU time {b['total'] / a['total']:.1f}x, "
              f"memory above imports {(b['peak_mib'] - b['base_mib']) / max(a['peak_mib'] - a['base_mib'], 1e-9):.1f}x")
        print("   per phase: " + "  ".join(f"{k} {v:.1f}x" for k, v in grown.items()))


if __name__ == "__main__":
    main()
