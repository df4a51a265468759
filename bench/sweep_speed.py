"""Sweep throughput: 24 short runs on the instant echo/ backend.

Prints the wall time of the sweep with the local engine (1 and 2 workers) and Ray
(2 workers), each against the sum of the same 24 runs' times run one after another in
this process (the baseline, measured in the same invocation). Ratios below 1 mean the
engine overlapped runs; the gap to 1/workers is the engine's own cost (process start,
imports, scheduling) on 2 cores.

    python bench/sweep_speed.py [--agents 50] [--steps 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from culturesim import runner
from culturesim import scenario as sc
from culturesim.sweep import Sweep, expand, run_sweep

SCENARIO = """\
kind: culture
name: bench
seed: 1
steps: {steps}
population: {{size: {agents}}}
network: {{topology: small_world, params: {{k: 4, p: 0.1}}}}
llm: {{model: echo/bench, cache: false}}
sweep:
  grid:
    culture.operation: [combine, transform]
    culture.social.include_own: [true, false]
  replicates: 6
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(SCENARIO.format(agents=args.agents, steps=args.steps))
        scenario = sc.load(path)
        runs = expand(scenario)
        start = time.perf_counter()
        for spec in runs:
            runner.start(sc.validate_data(spec.scenario, "bench"), out=Path(tmp) / "single", show_progress=False)
        single = time.perf_counter() - start
        print(f"{len(runs)} runs of {args.agents} agents x {args.steps} steps; one after another in process: "
              f"{single:.1f} s")
        for engine, workers in (("local", 1), ("local", 2), ("ray", 2)):
            start = time.perf_counter()
            index = run_sweep(Sweep(scenario, Path(tmp) / f"{engine}{workers}"), engine=engine, workers=workers,
                              progress=False)
            wall = time.perf_counter() - start
            assert set(index["status"]) == {"done"}
            print(f"{engine:5} engine, {workers} worker(s): {wall:6.1f} s, ratio to the sum of single runs "
                  f"{wall / single:.2f}")


if __name__ == "__main__":
    main()
