"""Run a sweep: expand the scenario's ``sweep`` block into runs and execute them on a
process pool or on Ray, resumably.

A sweep folder holds one run folder per (cell, replicate), named by the cell's index
and a hash of its parameter values, plus ``sweep.parquet`` indexing them. Rerunning the
same command finds the same folders: finished runs are skipped, unfinished ones resume
from their last step, so after a kill nothing is computed twice and nothing is lost.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import copy
import hashlib
import itertools
import json
import multiprocessing
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from culturesim.llm import limits
from culturesim.scenario import Scenario, ScenarioError, resolved, set_path, validate_data
from culturesim.store import RunDir, write_json, write_parquet


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    cell: int
    replicate: int
    params: dict[str, Any]
    scenario: dict  # resolved, validated, sweep removed, seed and run_id set


def replicate_seed(base_seed: int, replicate: int) -> int:
    return int(np.random.SeedSequence([base_seed, replicate]).generate_state(1)[0])


def cells(scenario: Scenario) -> list[dict[str, Any]]:
    """Parameter values of every cell: the grid's product times the zipped rows."""
    spec = scenario.sweep
    if spec is None:
        return [{}]
    grid_keys = list(spec.grid)
    zipped = [dict(zip(spec.zip, row, strict=True)) for row in zip(*spec.zip.values(), strict=True)] or [{}]
    found = []
    for combo in itertools.product(*(spec.grid[k] for k in grid_keys)):
        for row in zipped:
            found.append({**dict(zip(grid_keys, combo, strict=True)), **row})
    return found


def cell_id(index: int, params: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:6]
    return f"c{index:03d}-{digest}"


def expand(scenario: Scenario, where: str = "sweep", base_dir: Path | None = None) -> list[RunSpec]:
    """Every run of the sweep, each validated as a scenario of its own, and each cell's
    network and model built once, so a bad cell is refused before anything runs."""
    from culturesim.runner import check

    base = resolved(scenario)
    base.pop("sweep", None)
    replicates = scenario.sweep.replicates if scenario.sweep else 1
    runs, problems = [], []
    for index, params in enumerate(cells(scenario)):
        data = copy.deepcopy(base)
        for key, value in params.items():
            set_path(data, tuple(key.split(".")), value, f"sweep key {key}")
        cid = cell_id(index, params)
        for r in range(replicates):
            run_id = f"{cid}-r{r}"
            data_r = copy.deepcopy(data)
            data_r["seed"] = replicate_seed(scenario.seed, r)
            data_r["output"]["run_id"] = run_id
            try:
                checked = validate_data(data_r, f"{where} cell {index} {params}")
                if r == 0:
                    check(checked, base_dir)
            except ScenarioError as exc:
                problems.extend(f"cell {index} {json.dumps(params)}: {p}" if p.startswith(("network", scenario.name))
                                else p for p in exc.problems)
                break
            runs.append(RunSpec(run_id, index, r, params, resolved(checked)))
    if problems:
        raise ScenarioError(sorted(set(problems)))
    return runs


def index_table(runs: list[RunSpec], statuses: dict[str, tuple[str, str | None]]) -> pl.DataFrame:
    """sweep.parquet: one row per run with its parameter values as columns."""
    keys = list(dict.fromkeys(k for r in runs for k in r.params))
    columns: dict[str, list] = {
        "run_id": [r.run_id for r in runs], "cell": [r.cell for r in runs],
        "replicate": [r.replicate for r in runs], "seed": [r.scenario["seed"] for r in runs],
        "status": [statuses.get(r.run_id, ("pending", None))[0] for r in runs],
        "error": [statuses.get(r.run_id, ("pending", None))[1] for r in runs],
    }
    for key in keys:
        values = [r.params.get(key) for r in runs]
        kinds = {type(v) for v in values if v is not None}
        if len(kinds) > 1 or kinds & {list, dict}:
            values = [None if v is None else json.dumps(v, sort_keys=True) for v in values]
        columns[key] = values
    return pl.DataFrame(columns, strict=False)


def status_of(path: Path) -> tuple[str, str | None]:
    run = RunDir(path)
    if not run.exists():
        return "pending", None
    try:
        manifest = run.read_manifest()
    except Exception as exc:  # noqa: BLE001 - an unreadable manifest is a failed run to redo
        return "failed", str(exc)
    return manifest.get("status", "pending"), manifest.get("error")


def execute(spec: RunSpec, sweep_dir: str, shared: dict[str, Any]) -> tuple[str, str, str | None]:
    """Run (or resume) one run of a sweep; in a worker process or a Ray task.

    Never raises: a failure is returned (and is in the run's manifest when the run got
    that far) so that one bad run cannot stop the others.
    """
    from culturesim import runner

    limits.install(shared)
    path = Path(sweep_dir) / spec.run_id
    try:
        state, _ = status_of(path)
        if state == "done":
            return spec.run_id, "done", None
        if RunDir(path).exists():
            runner.resume(path, show_progress=False)
        else:
            runner.start(validate_data(spec.scenario, spec.run_id), out=sweep_dir, show_progress=False)
        return spec.run_id, "done", None
    except BaseException as exc:  # noqa: BLE001
        message = "; ".join(exc.problems) if isinstance(exc, ScenarioError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, Exception):
            message += "\n" + traceback.format_exc(limit=2)
        return spec.run_id, "failed", message


def server_limits(runs: list[RunSpec]) -> dict[str, int]:
    """The tightest concurrency asked of each server the sweep's runs will call."""
    found: dict[str, int] = {}
    for r in runs:
        llm = r.scenario.get("llm")
        if llm is None:  # a kind without language models
            continue
        key = limits.server_key(llm["model"], llm.get("api_base"))
        if key:
            found[key] = min(found.get(key, llm["concurrency"]), llm["concurrency"])
    return found


class Sweep:
    """The sweep folder and its bookkeeping; engines only execute RunSpecs."""

    def __init__(self, scenario: Scenario, folder: str | Path, where: str = "sweep",
                 base_dir: Path | None = None):
        self.scenario = scenario
        self.folder = Path(folder)
        self.runs = expand(scenario, where, base_dir)
        self.outcomes: dict[str, tuple[str, str | None]] = {}

    def pending(self) -> list[RunSpec]:
        return [r for r in self.runs if status_of(self.folder / r.run_id)[0] != "done"]

    def write_index(self) -> pl.DataFrame:
        """Statuses from the runs' manifests; a run that failed before it had a folder
        (it could not even start) keeps the failure its engine reported."""
        statuses = {}
        for r in self.runs:
            state = status_of(self.folder / r.run_id)
            if state[0] == "pending" and r.run_id in self.outcomes:
                state = self.outcomes[r.run_id]
            statuses[r.run_id] = state
        table = index_table(self.runs, statuses)
        write_parquet(self.folder / "sweep.parquet", table)
        return table

    def prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json(self.folder / "sweep.json", {"scenario": resolved(self.scenario), "runs": len(self.runs)})
        self.write_index()


def share_cores(runs: list[RunSpec], threads: int | None) -> list[RunSpec]:
    """Embedded models run in every worker; each gets its share of the cores, since
    llama.cpp's spinning OpenMP threads slow to a crawl when cores are oversubscribed.
    The thread count is written into the run's scenario, so the manifest records it."""
    if threads is None:
        return runs
    shared = []
    for spec in runs:
        llm = spec.scenario.get("llm")
        if llm and llm["model"].startswith("local/") and llm.get("n_threads") is None:
            scenario = copy.deepcopy(spec.scenario)
            scenario["llm"]["n_threads"] = threads
            spec = RunSpec(spec.run_id, spec.cell, spec.replicate, spec.params, scenario)
        shared.append(spec)
    return shared


def die_with(parent: int) -> None:
    """Initializer of the sweep's worker processes: end with the sweep process, even when it
    is SIGKILLed. An orphaned worker would go on writing its run while a rerun of the sweep
    resumes that same run (Linux; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the sweep died before prctl took effect
        os._exit(1)


def run_local(sweep: Sweep, workers: int, progress) -> dict[str, tuple[str, str | None]]:
    """A process pool (spawned, not forked: llama.cpp and OpenMP do not survive a fork)."""
    from multiprocessing.managers import SyncManager

    from culturesim.llm.local import default_threads

    todo = share_cores(sweep.pending(), max(1, default_threads() // workers) if workers > 1 else None)
    outcomes: dict[str, tuple[str, str | None]] = {}
    context = multiprocessing.get_context("spawn")
    needed = server_limits(todo)
    with contextlib.ExitStack() as stack:
        shared = {}
        if needed:  # a manager is one more interpreter to start: only for servers that need a limit
            manager = SyncManager(ctx=context)
            manager.start(die_with, (os.getpid(),))
            stack.enter_context(manager)
            shared = {key: manager.BoundedSemaphore(n) for key, n in needed.items()}
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=die_with,
                                    initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(execute, spec, str(sweep.folder), shared): spec for spec in todo}
            pending = set(futures)
            while pending:
                done, pending = cf.wait(pending, timeout=0.5)
                for future in done:
                    run_id, state, error = future.result()
                    outcomes[run_id] = (state, error)
                progress.update(outcomes, [futures[f].run_id for f in pending])
    return outcomes


def run_ray(sweep: Sweep, workers: int, address: str | None, progress) -> dict[str, tuple[str, str | None]]:
    """Each run a Ray task; shared server limits are async Ray actors."""
    try:
        import ray
    except ImportError:
        raise ScenarioError(["the Ray engine needs Ray: pip install 'culturesim[ray]'"]) from None

    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        @ray.remote(max_concurrency=10_000)
        class Limit:
            def __init__(self, n: int):
                import asyncio

                self.gate = asyncio.Semaphore(n)

            async def acquire(self):
                await self.gate.acquire()

            async def release(self):
                self.gate.release()

        class LimitHandle:
            """Blocking acquire/release over the actor, as limits.SharedLimit expects."""

            def __init__(self, actor):
                self.actor = actor

            def acquire(self):
                return ray.get(self.actor.acquire.remote())

            def release(self):
                return ray.get(self.actor.release.remote())

        todo = share_cores(sweep.pending(), 1)  # a Ray task holds one CPU
        shared = {key: LimitHandle(Limit.remote(n)) for key, n in server_limits(todo).items()}
        task = ray.remote(num_cpus=1)(execute)
        refs = {task.remote(spec, str(sweep.folder.resolve()), shared): spec for spec in todo}
        outcomes: dict[str, tuple[str, str | None]] = {}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=0.5)
            for ref in done:
                run_id, state, error = ray.get(ref)
                outcomes[run_id] = (state, error)
            progress.update(outcomes, [refs[r].run_id for r in pending])
        return outcomes
    finally:
        if started_here:
            ray.shutdown()


def run_sweep(sweep: Sweep, *, engine: str = "local", workers: int = 1, address: str | None = None,
              progress=None) -> pl.DataFrame:
    from culturesim.sweep_progress import SweepProgress

    sweep.prepare()
    with SweepProgress(sweep, enabled=progress is not False) as bar:
        start = time.perf_counter()
        if engine == "local":
            sweep.outcomes = run_local(sweep, workers, bar)
        elif engine == "ray":
            sweep.outcomes = run_ray(sweep, workers, address, bar)
        else:
            raise ScenarioError([f"unknown engine {engine!r}; allowed: local, ray"])
        bar.elapsed = time.perf_counter() - start
    return sweep.write_index()
