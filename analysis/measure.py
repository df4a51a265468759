"""Measure a finished run once, without being asked: what ``culturesim run`` does at its end
and the app does for a finished run it finds unmeasured.

The measures are exactly ``culturesim analyze``'s (:func:`analysis.analyze.analyze_run`,
default options), in the best embedding space installed: MiniLM where the analysis extra
is there and its model loads, else TF-IDF, with a one-line note saying why.

Two files in the run folder make it safe to ask from anywhere:

- ``.measure.lock``: an exclusive ``flock`` held while measuring, so two app workers, or an
  app and a terminal, never measure one run at the same time; whoever finds it held leaves
  the run to the holder (``busy``).
- ``measure.json``: what happened, read by the app for its "Measuring… n/m" line:
  ``{"status": "measuring"|"done"|"failed", "done", "total", "embedder", "note", "error",
  "started_at", "ended_at"}``.

A failure to measure never touches the run itself: :func:`measure` returns it (and records
it in ``measure.json``), it never raises.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from culturesim.store import RunDir

LOCK_FILE = ".measure.lock"
STATE_FILE = "measure.json"
BEST = "best"
WRITE_EVERY_S = 0.5  # measure.json is rewritten at most this often while measuring


@dataclass(frozen=True)
class Outcome:
    status: str  # done | failed | busy | skipped
    embedder: str | None = None
    note: str | None = None  # why the best embedder was not the one used
    error: str | None = None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def best_embedder(spec=BEST):
    """(embedder, note): ``spec`` itself (an embedder, or its spec) unless it is ``best``; for
    ``best``, MiniLM if it loads and embeds a probe text here (offline), else TF-IDF with the
    reason as ``note``."""
    from analysis.embeddings import TfidfEmbedder, make_embedder

    if not isinstance(spec, str):
        return spec, None
    if spec != BEST:
        return make_embedder(spec), None
    try:
        embedder = make_embedder("minilm")
        embedder.embed(["a probe sentence"])  # loads the model: a failure shows here, not mid-run
        return embedder, None
    except Exception as exc:  # noqa: BLE001 - no extra, no weights, no torch: all "use TF-IDF"
        return TfidfEmbedder(), f"MiniLM unavailable ({_one_line(exc)}); measured with TF-IDF"


def read_state(run: RunDir) -> dict | None:
    """measure.json, or None when absent or unreadable."""
    try:
        state = json.loads((run.path / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def is_measured(run: RunDir) -> bool:
    return (run.path / "metrics.parquet").is_file()


def lock_held(run: RunDir) -> bool:
    """Whether someone is measuring the run now (its lock is held)."""
    path = run.path / LOCK_FILE
    if not path.is_file():
        return False
    try:
        with path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fh, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _write_state(run: RunDir, state: dict) -> None:
    """measure.json, written to a temporary name and renamed, so a reader never sees half of it."""
    path = run.path / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, path)


def measure(run: RunDir, *, embedder=BEST, only_if_unmeasured: bool = False,
            progress: Callable[[int, int], None] | None = None,
            on_embedder: Callable[[str, str | None], None] | None = None) -> Outcome:
    """Measure ``run`` as ``culturesim analyze`` does, under its lock; never raises.

    ``embedder``: ``best`` (see :func:`best_embedder`), a spec as ``culturesim analyze
    --embedder`` takes, or an embedder already made (a sweep loads MiniLM once for all runs).
    ``only_if_unmeasured``: leave a run that has metrics.parquet by the time the lock is taken
    (another process measured it meanwhile). ``progress(done, total)`` as in
    :func:`analysis.analyze.analyze_run`; ``on_embedder(name, note)`` once the space is chosen."""
    try:
        fh = (run.path / LOCK_FILE).open("a")
    except OSError as exc:
        return Outcome("failed", error=f"cannot open {run.path / LOCK_FILE}: {_one_line(exc)}")
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return Outcome("busy")
        if only_if_unmeasured and is_measured(run):
            return Outcome("skipped")
        state = {"status": "measuring", "done": 0, "total": None, "embedder": None, "note": None, "error": None,
                 "started_at": _now(), "ended_at": None, "pid": os.getpid()}
        try:
            _write_state(run, state)
            return _measure_locked(run, embedder, state, progress, on_embedder)
        except BaseException as exc:  # KeyboardInterrupt too: recorded, then passed on
            state.update(status="failed", error=_one_line(exc), ended_at=_now())
            try:
                _write_state(run, state)
            except OSError:
                pass
            if not isinstance(exc, Exception):
                raise
            return Outcome("failed", embedder=state["embedder"], note=state["note"], error=state["error"])


def _measure_locked(run: RunDir, spec: str, state: dict, progress, on_embedder) -> Outcome:
    from analysis.analyze import analyze_run

    chosen, note = best_embedder(spec)
    state.update(embedder=chosen.name, note=note)
    _write_state(run, state)
    if on_embedder is not None:
        on_embedder(chosen.name, note)
    last = [0.0]

    def tell(done: int, total: int) -> None:
        state.update(done=done, total=total)
        now = time.monotonic()
        if now - last[0] >= WRITE_EVERY_S or done >= total:
            last[0] = now
            _write_state(run, state)
        if progress is not None:
            progress(done, total)

    analyze_run(run, chosen, progress=tell)
    state.update(status="done", ended_at=_now(), done=state["total"] or 0)
    _write_state(run, state)
    return Outcome("done", embedder=chosen.name, note=note)


def measure_runs(runs: list[RunDir], *, embedder=BEST, show_progress: bool = True,
                 only_if_unmeasured: bool = False) -> list[Outcome]:
    """What ``culturesim run`` and ``culturesim sweep`` do at their end: each finished run
    measured (one embedder for all, chosen once), a rich bar per run on a terminal, and a
    one-line message on stderr for each run that could not be measured. Never raises but
    for Ctrl-C (after recording it in the run's measure.json)."""
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    outcomes: list[Outcome] = []
    if not runs:
        return outcomes
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=not show_progress or not console.is_terminal, transient=False) as bar:
        task = bar.add_task("choosing the embedder", total=None)
        try:
            chosen, note = best_embedder(embedder)
        except Exception as exc:  # noqa: BLE001 - a bad spec: every run says so below
            chosen, note = embedder, None
            bar.console.print(f"measure: {_one_line(exc)}")
        if note:
            print(f"note: {note}", file=sys.stderr)
        for run in runs:
            bar.update(task, description=f"measuring {run.run_id}", completed=0, total=None)
            outcome = measure(run, embedder=chosen, only_if_unmeasured=only_if_unmeasured,
                              progress=lambda done, total: bar.update(task, completed=done, total=total))
            if note and outcome.note is None:
                outcome = Outcome(outcome.status, outcome.embedder, note, outcome.error)
            outcomes.append(outcome)
            if outcome.status == "failed":
                print(f"warning: {run.path}: not measured ({outcome.error}); the run itself is done. "
                      f"Measure it with: culturesim analyze {run.path}", file=sys.stderr)
            elif outcome.status == "busy":
                print(f"note: {run.path}: being measured by another process", file=sys.stderr)
    return outcomes
