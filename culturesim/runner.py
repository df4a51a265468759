"""Run one scenario of any kind: build, step, record each step to disk, finish or resume.

The runner knows no kind: it asks the registry for the scenario's kind and talks to its
model only through the contract of culturesim/kinds/contract.py. A run is resumable at any
moment because its state after step t is a function of the scenario and what was recorded
for steps up to t; the model declares whether it is rebuilt from the recorded ideas or by
replaying its seeded steps.
"""

from __future__ import annotations

import copy
import datetime as dt
import secrets
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import networkx as nx
import polars as pl

from culturesim.kinds import get_kind
from culturesim.kinds.contract import Door, KindModel, StepRecord
from culturesim.llm.client import LLM
from culturesim.llm.cost import Usage, budget_reason
from culturesim.manifest import Manifest, Session, manifest_problem, now, versions
from culturesim.progress import StepProgress
from culturesim.scenario import Scenario, ScenarioError, resolved, validate_data
from culturesim.store import RunDir, RunError, safe_name

__all__ = ["start", "resume", "check", "build_graph", "model_class", "versions", "now", "new_run_id"]


def new_run_id(name: str) -> str:
    return f"{safe_name(name)}-{dt.datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def model_class(kind: str) -> type[KindModel]:
    """The kind's model, imported when a run of that kind is built: a kind's dependencies
    (TextWorld, torch, ...) cost nothing to the others."""
    return get_kind(kind).load_model()


class _Models:
    """The language models a run opens: the scenario's, one per other distinct llm block of
    its groups and agents (``Door.route``: each its own backend, connection pool and
    concurrency limit), and any other a model asks its door for (exposure's AI pool), all on
    the run's reply cache, all closed when the run ends."""

    def __init__(self, cache_path: Path | None):
        self.cache_path = cache_path
        self.opened: list[LLM] = []
        self.doors: list[Door] = []

    def open(self, spec) -> LLM:
        llm = LLM(spec, cache_path=self.cache_path)
        self.opened.append(llm)
        return llm

    def door(self, scenario: Scenario, cls: type[KindModel]) -> Door | None:
        if not cls.uses_llm:
            return None
        door = Door(self.open(scenario.llm), self.open)
        self.doors.append(door)
        return door

    def close(self) -> None:
        for door in self.doors:
            door.close()
        for llm in self.opened:
            llm.close()


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


def make_model(scenario: Scenario, graph: nx.Graph, door: Door | None, run_id: str, *,
               base_dir: Path | None = None) -> KindModel:
    try:
        return model_class(scenario.kind)(scenario, graph, door, run_id, base_dir=base_dir)
    except ValueError as exc:
        raise ScenarioError([f"{scenario.name}: {exc}"]) from None


def check(scenario: Scenario, base_dir: Path | None) -> tuple[nx.Graph, KindModel]:
    """Build network and model without any model call: what ``validate`` can promise."""
    graph = build_graph(scenario, base_dir)

    def no_calls(requests):
        raise AssertionError("check() must not call the model")

    door = Door.of(no_calls) if model_class(scenario.kind).uses_llm else None
    return graph, make_model(scenario, graph, door, "check", base_dir=base_dir)


@contextmanager
def stop_after_step():
    """First Ctrl-C asks for a clean stop after the step in flight; a second one, or a
    SIGTERM, aborts now (the run is recorded as interrupted)."""
    state = {"stop": False}
    previous = signal.getsignal(signal.SIGINT)
    previous_term = signal.getsignal(signal.SIGTERM)

    def handler(signum, frame):
        if state["stop"]:
            raise KeyboardInterrupt
        state["stop"] = True
        print("\nstopping after the current step (Ctrl-C again to abort now)", file=sys.stderr)

    def terminate(signum, frame):
        # SIGTERM (a launcher's cancel past its grace period, kill, a service manager) stops now,
        # as a second Ctrl-C does: the run is recorded as interrupted with its end time, resumable
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread: no signal handling
        previous = previous_term = None
    try:
        yield state
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)


def start(scenario: Scenario, *, out: str | Path | None = None, base_dir: Path | None = None,
          show_progress: bool = True) -> RunDir:
    """Create a run folder for the scenario and run it to the end."""
    root = Path(out) if out is not None else Path(scenario.output.dir)
    run = RunDir(root / (scenario.output.run_id or new_run_id(scenario.name)))
    if run.exists():
        raise RunError(f"{run.path} already holds a run; resume it with: culturesim run --resume {run.path}")
    graph = build_graph(scenario, base_dir)
    models = _Models(root / ".cache" / "llm.sqlite")
    try:
        door = models.door(scenario, model_class(scenario.kind))
        model = make_model(scenario, graph, door, run.run_id, base_dir=base_dir)
        with run.lock():  # makes the folder; one writer per run
            # checked again under the lock: another start with the same run_id may have made the
            # run since the check above, and two writers would mix their steps in one folder
            if run.exists():
                raise RunError(f"{run.path} already holds a run; resume it with: "
                               f"culturesim run --resume {run.path}")
            # the manifest comes last: its presence is what makes the folder a (resumable) run
            run.write_table("agents", pl.DataFrame(model.agents_table()))
            run.write_table("edges", pl.DataFrame(
                [{"source": int(u), "target": int(v)} for u, v in graph.edges()],
                schema={"source": pl.Int64, "target": pl.Int64},
            ))
            spec = resolved(scenario)
            manifest = Manifest(
                run_id=run.run_id, kind=scenario.kind, name=scenario.name, status="running", scenario=spec,
                seeds={"run": scenario.seed, "network": [scenario.seed, 1],
                       "request": "SeedSequence([run, step, agent_id]) -> uint32"},
                llm={k: v for k, v in spec.get("llm", {}).items() if k != "api_key_env"} or None,
                versions=versions(), started_at=now(), steps_total=scenario.steps, first_step=model.first_step,
                sessions=[Session(started_at=now(), from_step=model.first_step)],
                scenario_dir=str(base_dir) if base_dir else None, network_directed=graph.is_directed(),
            ).as_json()
            # the signal handlers and the record of how the session ended cover the run from
            # its first manifest write on: a SIGTERM at any point leaves it interrupted, resumable
            with stop_after_step() as stop, _recorded(run, first=manifest):
                run.write_manifest(manifest)
                _execute(run, scenario, model, door, show_progress, stop)
    finally:
        models.close()
    return run


KEEP = object()  # resume(max_total_tokens=KEEP): the cap the run was started with


def resume(path: str | Path, *, show_progress: bool = True, max_total_tokens: int | None | object = KEEP) -> RunDir:
    """Continue a run from its last complete step. ``max_total_tokens`` replaces the run's
    token budget (``llm.max_total_tokens``; None lifts it), so that a run stopped by its
    budget can go on; the new cap is recorded in the manifest's scenario."""
    run = RunDir(path)
    raw = run.read_manifest()
    problem = manifest_problem(raw)
    if problem:
        raise RunError(f"{run.manifest_path}: {problem}")
    manifest = Manifest.model_validate(raw)
    if manifest.status == "done":
        raise RunError(f"{run.path} is already complete ({manifest.steps_completed} steps)")
    if not manifest.scenario:
        raise RunError(f"{run.path} was not made by culturesim run (nothing to resume)")
    if max_total_tokens is not KEEP:
        manifest = _with_cap(run, manifest, max_total_tokens)
    scenario = validate_data(manifest.scenario, f"{run.manifest_path} (scenario)")
    with run.lock():
        return _resume_locked(run, manifest, scenario, show_progress)


def _with_cap(run: RunDir, manifest: Manifest, cap: int | None) -> Manifest:
    """The manifest with a new token budget in its scenario (and its llm record)."""
    llm = manifest.scenario.get("llm")
    if not isinstance(llm, dict):
        raise RunError(f"{run.path}: a {manifest.kind} run uses no language model; it has no token budget to change")
    data = copy.deepcopy(manifest.scenario)
    data["llm"]["max_total_tokens"] = cap
    record = dict(manifest.llm or {}) | {"max_total_tokens": cap}
    return manifest.model_copy(update={"scenario": data, "llm": record})


def _budget_cap(scenario: Scenario) -> int | None:
    return getattr(getattr(scenario, "llm", None), "max_total_tokens", None)


def _resume_locked(run: RunDir, manifest: Manifest, scenario: Scenario, show_progress: bool) -> RunDir:
    run.remove_temporaries()  # files a killed writer left half-written (store.py)
    models = _Models(run.path.parent / ".cache" / "llm.sqlite")
    base_dir = Path(manifest.scenario_dir) if manifest.scenario_dir else None
    try:
        cls = model_class(scenario.kind)
        door = models.door(scenario, cls)
        model = make_model(scenario, graph_from_run(run, manifest.network_directed), door, run.run_id,
                           base_dir=base_dir)
        done = run.completed_steps()
        _check_steps(run, manifest, done)
        cap = _budget_cap(scenario)
        used = Usage.of_run(run, manifest.scenario).total_tokens if cap is not None else 0
        if cap is not None and used >= cap:
            raise RunError(f"{run.path} stopped at its token budget ({used} tokens used, llm.max_total_tokens "
                           f"is {cap}); continue with a higher one: culturesim run --resume {run.path} "
                           f"--max-total-tokens N (or none)")
        if cls.resume == "replay":  # deterministic kinds: simulate the done steps again, silently
            model.replay(len(done))
        else:
            model.restore(run.ideas().to_dicts() if done else [])
        sessions = [s.model_dump() for s in manifest.sessions] + [{"started_at": now(), "from_step": model.next_step}]
        with stop_after_step() as stop, _recorded(run):
            # steps_completed as found on disk: a kill between a step's last file and the manifest's
            # update leaves the manifest one step behind, and a second such kill in this session
            # would otherwise leave it two behind, which _check_steps rightly refuses
            run.update_manifest(status="running", error=None, ended_at=None, sessions=sessions,
                                steps_completed=len(done), stop_reason=None,
                                scenario=manifest.scenario, llm=manifest.llm)
            _execute(run, scenario, model, door, show_progress, stop)
    finally:
        models.close()
    return run


def _check_steps(run: RunDir, manifest: Manifest, done: list[int]) -> None:
    """A resume continues after the recorded steps, so they must all be there: steps
    first_step..k with none missing, and k where the manifest says (it is updated just after
    a step is written, so it may lag by that one step). Otherwise the run would finish "done"
    with a hole in it, which no reader notices."""
    first = manifest.first_step
    last = done[-1] if done else first - 1
    missing = sorted(set(range(first, last + 1)) - set(done))
    if not missing and manifest.steps_completed > len(done):
        missing = list(range(first + len(done), first + manifest.steps_completed))
    if not missing and (done and done[0] < first or len(done) > manifest.steps_completed + 1):
        raise RunError(f"{run.path}: steps on disk ({_span(done)}) do not match the manifest "
                       f"({manifest.steps_completed} steps from {first}); not resumed")
    if missing:
        names = ", ".join(run.step_path(s).relative_to(run.path).as_posix() for s in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise RunError(f"{run.path}: step file(s) missing: {names}{more}; the run cannot be resumed "
                       f"as it is: restore the file(s), or start the scenario again as a new run")


def _span(steps: list[int]) -> str:
    return f"{steps[0]}-{steps[-1]}" if steps else "none"


@contextmanager
def _recorded(run: RunDir, first: dict | None = None):
    """Records in the manifest how a session ended: Ctrl-C or SIGTERM (KeyboardInterrupt)
    as ``interrupted``, any other exception as ``failed`` with its message, each with its end
    time. Entered before the session's first manifest write; when a signal lands inside that
    write (before the rename), ``first``, the manifest being written, is written as
    interrupted, so that the folder is a run ``--resume`` can complete rather than a
    half-made one."""
    try:
        yield
    except KeyboardInterrupt:
        if run.exists():
            if run.read_manifest().get("status") != "interrupted":
                run.update_manifest(status="interrupted", ended_at=now(), counts=run.idea_counts())
        elif first is not None:
            run.write_manifest({**first, "status": "interrupted", "ended_at": now()})
        raise
    except BaseException as exc:
        if run.exists():
            run.update_manifest(status="failed", ended_at=now(), counts=run.idea_counts(),
                                error=f"{type(exc).__name__}: {exc}")
        raise


def _execute(run: RunDir, scenario: Scenario, model: KindModel, door: Door | None, show_progress: bool,
             stop: dict) -> None:
    """The steps from the model's next one to the last, then compaction and ``done``.
    ``stop`` is stop_after_step's state (a first Ctrl-C asks to stop after the step);
    how an exception ends the session is _recorded's business."""
    first = model.next_step
    last = scenario.steps
    tables = model.tables()
    progress = StepProgress(first_step=first, last_step=last,
                            requests=model.planned_requests(first, last) if model.progress == "requests" else None,
                            enabled=show_progress, label=run.run_id)
    if door is not None:
        door.on_reply = progress.reply
    usage, cap = Usage.of_run(run, resolved(scenario)), _budget_cap(scenario)  # tokens of earlier sessions
    try:
        with progress:
            for step in range(first, last + 1):
                record = model.step()
                if not isinstance(record, StepRecord):
                    raise TypeError(f"{type(model).__name__}.step() returned {type(record).__name__}, not a "
                                    f"StepRecord (its bases must list KindModel before mesa.Model)")
                failed = [r for r in record.ideas if r["error"]]
                if record.ideas and len(failed) == len(record.ideas) and record.ideas[0]["source"] == "llm":
                    raise RuntimeError(f"every request of step {step} failed; first error: {failed[0]['error']}")
                extra = {name: (record.tables.get(name, []), schema) for name, schema in tables.items()}
                run.write_step(step, record.ideas, record.prompts, extra)
                progress.step_done(step, record.ideas)
                usage.add(record.ideas)
                run.update_manifest(steps_completed=step - model.first_step + 1, usage=usage.as_manifest())
                reason = budget_reason(usage.total_tokens, cap, step) if step < last else None
                if reason:  # a clean stop, resumable with a higher cap (resume's max_total_tokens)
                    run.update_manifest(status="interrupted", ended_at=now(), counts=run.idea_counts(),
                                        stop_reason=reason)
                    return
                if stop["stop"] and step < last:
                    run.update_manifest(status="interrupted", ended_at=now(), counts=run.idea_counts())
                    raise KeyboardInterrupt
        run.compact(tables)
        run.update_manifest(status="done", ended_at=now(), counts=run.idea_counts())
    finally:
        progress.summary(run.path)
