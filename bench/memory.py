"""Peak memory of a long run: 1,000 agents x 100 steps on the instant ``echo/`` model.

Each measurement runs in a fresh process and reads its own peak RSS
(resource.getrusage), so imports and allocator state of one do not leak into another:

- start: the whole run, compaction included;
- start, concat compaction: the same with the step parts gathered by pl.concat (how
  store.py compacted before it streamed them), for comparison;
- resume at step 100: a run killed before its last step, resumed (it reads every
  recorded idea to rebuild the agents' state).

    python bench/memory.py [--agents 1000] [--steps 100]

Prints each peak in MiB and as a ratio of the 1 GiB budget (issue 11). Not a test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

CHILD = """
import resource, shutil, sys, time
from pathlib import Path
import polars as pl
from culturesim import runner, scenario as sc, store
mode, path, out = sys.argv[1:4]
if mode == "concat":
    def concat(self, name, schema):  # the old compaction: every part in memory at once
        store.write_parquet(self.path / f"{name}.parquet", self.table_parts(name, schema))
    store.RunDir._compact_parts = concat
started = time.perf_counter()
if mode == "resume":
    run = store.RunDir(Path(out) / "memory")
    runner.resume(run.path, show_progress=False)
else:
    runner.start(sc.load(path), out=out, show_progress=False)
# VmHWM: this program's own peak (ru_maxrss would carry the parent's across exec)
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
peak = int(hwm[0].split()[1]) * 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(peak, time.perf_counter() - started)
"""


def measure(mode: str, scenario: Path, out: Path) -> tuple[int, float]:
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(scenario), str(out)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    peak, seconds = done.stdout.split()[-2:]
    return int(peak), float(seconds)


def kill_last_step(run_dir: Path, steps: int) -> None:
    """Make a finished run look killed before its last step (what SIGKILL would leave)."""
    import json

    for name in ("ideas.parquet", "prompts.parquet", f"steps/{steps:05d}.parquet", f"prompts/{steps:05d}.parquet"):
        (run_dir / name).unlink()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest.update(status="running", steps_completed=steps - 1)
    (run_dir / "manifest.json").write_text(json.dumps(manifest))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    gib = 1024**3
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scenario = folder / "memory.yaml"
        scenario.write_text(yaml.safe_dump({
            "kind": "culture", "name": "memory", "seed": 1, "steps": args.steps,
            "population": {"size": args.agents}, "network": {"topology": "ring", "params": {"k": 2}},
            "llm": {"model": "echo/x", "concurrency": 256}, "output": {"run_id": "memory"},
        }))
        print(f"{args.agents} agents x {args.steps} steps, echo/x (instant), peak RSS per fresh process")
        results = {}
        for mode in ("start", "concat"):
            started = time.perf_counter()
            results[mode] = measure(mode, scenario, folder / mode)
            print(f"  {mode:<8} {results[mode][0] / 2**20:8.1f} MiB  = {results[mode][0] / gib:.3f} of 1 GiB"
                  f"  ({time.perf_counter() - started:.1f} s)")
        kill_last_step(folder / "start" / "memory", args.steps)
        results["resume"] = measure("resume", scenario, folder / "start")
        print(f"  resume   {results['resume'][0] / 2**20:8.1f} MiB  = {results['resume'][0] / gib:.3f} of 1 GiB"
              f"  (resumed at step {args.steps}: reads {args.agents * (args.steps - 1)} recorded ideas)")
        print(f"streamed / concat compaction peak: {results['start'][0] / results['concat'][0]:.2f}")


if __name__ == "__main__":
    main()
