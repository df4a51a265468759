"""The app's only door to the results folder: safe ids, a listing, and cached readers.

Three promises the pages rely on:

- **Containment.** Every id a browser sends (``?run=...``) is resolved here and refused
  unless it stays inside the results folder: no ``..``, no absolute path, no symlink
  that points out. Pages never build paths themselves. Every *file* the app opens
  (manifests, Parquet tables and step parts, metrics, sweep.json and sweep.parquet) goes
  through one contained reader (:meth:`Results.contained`): a file symlinked to somewhere
  outside the results folder is refused, not read.
- **One bad run, one error.** A corrupt or half-written file raises :class:`DataError`
  with a one-line message about that run only; the listing shows it on the run's row.
- **Cheap to ask again.** Readers cache by the files' (mtime, size), so a page polled
  every two seconds reads a finished run once, and a running run again only when a
  step file has landed (the writer renames complete files into place, so a reader sees
  a step entirely or not at all).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl

from culturesim.llm.cost import summary as usage_summary
from culturesim.manifest import manifest_problem
from culturesim.store import IDEAS_SCHEMA, RunDir, RunError, outside_files, population_ideas, refused_line

TABLES = ("ideas", "agents", "edges", "metrics")  # whole-run tables whose footers the listing checks


class Refused(ValueError):
    """An id that would read outside the results folder."""


class DataError(RuntimeError):
    """A run (or one of its files) that cannot be read; the message is one line."""


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")


# ------------------------------------------------------------------------------ caching


def stamp(*paths: Path) -> tuple:
    """What changes when any of ``paths`` changes: (mtime_ns, size) or None when absent.
    A directory's mtime moves whenever a file is renamed into it, i.e. a step lands."""
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


class MtimeCache:
    """A small LRU of computed values, each valid while its token (a ``stamp``) holds."""

    def __init__(self, size: int = 256):
        self.size = size
        self._items: OrderedDict[Hashable, tuple[tuple, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, token: tuple, make: Callable[[], Any]) -> Any:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] == token:
                self._items.move_to_end(key)
                return hit[1]
        value = make()  # outside the lock: a slow read must not stall other pages
        with self._lock:
            self._items[key] = (token, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


# ------------------------------------------------------------------------------ listing


@dataclass(frozen=True)
class Entry:
    """One row of the Runs page: a run or a sweep."""

    id: str  # path relative to the results folder, with '/' (a sweep's run: "sweep/run")
    kind: str  # the manifest's kind, or "sweep"
    name: str
    model: str
    steps_done: int | None
    steps_total: int | None
    status: str
    started: str | None
    ended: str | None
    duration_s: float | None
    parent: str | None = None  # the sweep holding this run
    error: str | None = None
    stale_s: float | None = None  # seconds since a "running" run last wrote its manifest
    tokens: str = ""  # tokens per model (culturesim.llm.cost.summary)
    cost: str = ""  # estimated cost of those tokens
    stop: str = ""  # why an interrupted run stopped by itself (its token budget)

    @property
    def is_sweep(self) -> bool:
        return self.kind == "sweep"

    def as_row(self) -> dict:
        return {
            "id": self.id, "kind": self.kind, "scenario": self.name, "model": self.model,
            "steps": f"{self.steps_done if self.steps_done is not None else '?'}/"
                     f"{self.steps_total if self.steps_total is not None else '?'}",
            "status": self.status, "started": self.started or "", "duration": fmt_duration(self.duration_s),
            "sweep": self.parent or "", "error": self.error or "", "tokens": self.tokens, "cost": self.cost,
            "stop": self.stop,
        }


def parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _subfolders(path: Path) -> list[Path]:
    """A run's subfolders (steps/, prompts/, a kind's tables), for the listing's cache token."""
    try:
        return sorted(p for p in path.iterdir() if p.is_dir())
    except OSError:
        return []


def _check_footer(path: Path) -> None:
    """Parquet keeps its schema in a footer at the end: reading it catches a truncated or
    foreign file without reading the data (cheap even for 10^6 rows)."""
    import pyarrow.parquet as pq

    try:
        pq.read_metadata(path)
    except Exception as exc:  # noqa: BLE001 - any failure is "this file is unreadable"
        raise DataError(f"{path.name}: unreadable Parquet ({one_line(exc)})") from None


class Results:
    """A results folder as the app sees it. Thread-safe; one per app."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self.cache = MtimeCache()

    # --- containment ---------------------------------------------------------------
    def resolve(self, rel: Any) -> Path:
        """The folder an id names, or :class:`Refused`. Ids are relative paths with '/'."""
        if not isinstance(rel, str) or not rel.strip():
            raise Refused("refused: no run id given")
        shown = rel if len(rel) < 80 else rel[:77] + "..."
        if "\x00" in rel or "\\" in rel:
            raise Refused(f"refused: run id {shown!r} has characters a run id never has")
        parts = PurePosixPath(rel).parts
        if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel) or ".." in parts or rel.startswith("~"):
            raise Refused(f"refused: run id {shown!r} leaves the results folder")
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise Refused(f"refused: run id {shown!r} leaves the results folder")
        return path

    def run_dir(self, rel: str) -> RunDir:
        path = self.resolve(rel)
        run = RunDir(path)
        if not run.exists():
            raise DataError(f"{rel}: no such run (no manifest.json in it)")
        return run

    def id_of(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

    # --- the contained reader: every file the app opens -------------------------------
    def contained(self, path: Path) -> Path:
        """The real path of a file under the results folder (every symlink followed), or
        :class:`DataError` ``refused: ...`` when it lies outside: a run folder inside the
        results may still hold a manifest, table or step part that links to any file."""
        path = Path(path)
        try:
            shown = path.relative_to(self.root).as_posix()
        except ValueError:
            shown = path.name
        try:
            real = path.resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop
            raise DataError(f"{shown}: cannot be resolved ({one_line(exc)})") from None
        if not real.is_relative_to(self.root):
            raise DataError(f"refused: {shown} points outside the results folder")
        return real

    def read_text(self, path: Path) -> str:
        """A text file under the results folder, read only if :meth:`contained` allows it."""
        return self.contained(path).read_text(encoding="utf-8")

    def read_parquet(self, path: Path) -> pl.DataFrame:
        """A Parquet file under the results folder, read only if :meth:`contained` allows it; the
        name is never a glob (a run folder may be called ``a[1]``)."""
        return pl.read_parquet(self.contained(path), glob=False)

    def read_manifest(self, run: RunDir) -> dict:
        """``run``'s manifest, once :meth:`contained` allows it, parsed as culturesim.store
        parses every manifest: every failure is a one-line RunError."""
        try:
            self.contained(run.manifest_path)
        except DataError as exc:
            raise RunError(str(exc)) from None
        return run.read_manifest()

    def check_footer(self, path: Path) -> None:
        """:func:`_check_footer` of a contained file."""
        _check_footer(self.contained(path))

    # --- listing -------------------------------------------------------------------
    def _children(self, folder: Path) -> list[Path]:
        try:
            found = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_dir())
        except OSError:
            return []
        return [p for p in found if p.resolve().is_relative_to(self.root)]

    @staticmethod
    def is_sweep_dir(path: Path) -> bool:
        return (path / "sweep.json").is_file() or (path / "sweep.parquet").is_file()

    def listing(self) -> list[Entry]:
        """Every run and sweep: runs at the top, sweeps with their runs just after them."""
        entries: list[Entry] = []
        for child in self._children(self.root):
            if (child / "manifest.json").is_file():
                entries.append(self.entry(child))
            elif self.is_sweep_dir(child):
                members = [self.entry(p, parent=child.name) for p in self._children(child)
                           if (p / "manifest.json").is_file()]
                entries.append(self._sweep_entry(child, members))
                entries.extend(members)
        return entries

    def entry(self, path: Path, parent: str | None = None) -> Entry:
        rel = self.id_of(path)
        run = RunDir(path)
        # the folders' own mtimes too: a link made in any of them is seen on the next listing
        token = stamp(run.manifest_path, path, *_subfolders(path), *(path / f"{t}.parquet" for t in TABLES))
        return self.cache.get(("entry", rel), token, lambda: self._read_entry(run, rel, parent))

    def _read_entry(self, run: RunDir, rel: str, parent: str | None) -> Entry:
        try:
            m = self.read_manifest(run)
        except RunError as exc:
            return Entry(rel, "?", "", "", None, None, "unreadable", None, None, None, parent, one_line(exc))
        error = m.get("error")
        outside = outside_files(run.path, self.root)  # every file and part: links out, no reads
        problem = manifest_problem(m, listing=True)  # a JSON object, but not what a row shows
        try:
            if outside:
                raise DataError(refused_line(rel, outside))
            if problem:
                raise DataError(f"manifest.json: {problem}")
            for table in TABLES:
                if (run.path / f"{table}.parquet").is_file():
                    self.check_footer(run.path / f"{table}.parquet")
            steps = run.completed_steps()
            if steps and not (run.path / "ideas.parquet").is_file():
                self.check_footer(run.step_path(steps[-1]))
        except DataError as exc:
            error = str(exc)
        started, ended = parse_time(m.get("started_at")), parse_time(m.get("ended_at"))
        status = str(m.get("status", "?"))
        stale = None
        if status == "running":
            try:
                stale = time.time() - run.manifest_path.stat().st_mtime
            except OSError:
                stale = None
        end = ended or (dt.datetime.now(dt.UTC) if status == "running" else None)
        duration = (end - started).total_seconds() if started and end else None
        llm = m.get("llm") if isinstance(m.get("llm"), dict) else {}
        tokens, cost = usage_summary(m)
        stop = str(m["stop_reason"]) if m.get("stop_reason") and status == "interrupted" else ""
        return Entry(
            id=rel, kind=str(m.get("kind", "?")), name=str(m.get("name", "")), model=str(llm.get("model", "")),
            steps_done=m.get("steps_completed"), steps_total=m.get("steps_total"), status=status,
            started=m.get("started_at"), ended=m.get("ended_at"), duration_s=duration, parent=parent,
            error=str(error) if error else None, stale_s=stale, tokens=tokens, cost=cost, stop=stop,
        )

    def _sweep_entry(self, path: Path, members: list[Entry]) -> Entry:
        rel = self.id_of(path)
        info: dict = {}
        error = None
        try:
            info = json.loads(self.read_text(path / "sweep.json"))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, DataError) as exc:  # ValueError: not JSON or not UTF-8; DataError: refused
            error = f"sweep.json: unreadable ({one_line(exc)})"
        if not isinstance(info, dict):
            error = f"sweep.json: unreadable (a JSON {type(info).__name__}, not an object)"
            info = {}
        scenario = info.get("scenario") if isinstance(info.get("scenario"), dict) else {}
        total = info.get("runs") if isinstance(info.get("runs"), int) else len(members)
        counts: dict[str, int] = {}
        for e in members:
            counts[e.status] = counts.get(e.status, 0) + 1
        if total > len(members):
            counts["pending"] = counts.get("pending", 0) + total - len(members)
        status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "empty"
        starts = [t for t in (parse_time(e.started) for e in members) if t]
        ends = [t for t in (parse_time(e.ended) for e in members) if t]
        running = any(e.status == "running" for e in members)
        duration = None
        if starts:
            last = dt.datetime.now(dt.UTC) if running or not ends else max(ends)
            duration = (last - min(starts)).total_seconds()
        bad = [e.id for e in members if e.error and e.status != "failed"]
        if bad and not error:
            error = f"{len(bad)} run(s) unreadable: {', '.join(bad[:3])}"
        llm = scenario.get("llm") if isinstance(scenario.get("llm"), dict) else {}
        return Entry(
            id=rel, kind="sweep", name=str(scenario.get("name", path.name)), model=str(llm.get("model", "")),
            steps_done=sum(1 for e in members if e.status == "done"), steps_total=total, status=status,
            started=min(starts).isoformat() if starts else None, ended=max(ends).isoformat() if ends else None,
            duration_s=duration, error=error,
        )

    def is_sweep(self, rel: str | None) -> bool:
        try:
            return bool(rel) and self.is_sweep_dir(self.resolve(rel))
        except Refused:
            return False

    def runs(self, kinds: tuple[str, ...] | None = None) -> list[Entry]:
        return [e for e in self.listing() if not e.is_sweep and (kinds is None or e.kind in kinds)]

    def sweeps(self) -> list[Entry]:
        return [e for e in self.listing() if e.is_sweep]

    # --- readers -------------------------------------------------------------------
    def manifest(self, rel: str) -> dict:
        run = self.run_dir(rel)
        try:
            return self.cache.get(("manifest", rel), stamp(run.manifest_path), lambda: self.read_manifest(run))
        except RunError as exc:
            raise DataError(f"{rel}: {one_line(exc)}") from None

    def _parquet(self, rel: str, path: Path, what: str) -> pl.DataFrame:
        try:
            self.contained(path)  # on every call, cached or not: a link may have been swapped in since
        except DataError as exc:
            raise DataError(f"{rel}: {exc}") from None

        def read() -> pl.DataFrame:
            try:
                return self.read_parquet(path)
            except DataError as exc:
                raise DataError(f"{rel}: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - corrupt, truncated, foreign: all one error
                raise DataError(f"{rel}: {what} unreadable ({one_line(exc)})") from None

        return self.cache.get(("parquet", str(path)), stamp(path), read)

    def table(self, rel: str, name: str, schema: dict | None = None) -> pl.DataFrame:
        """A run's table: ``<name>.parquet`` once compacted, else its per-step parts so far (as
        culturesim.store finds them), each part read once: a new step reads one file."""
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
            raise Refused(f"refused: table name {name!r}")
        files = self.run_dir(rel).table_files(name)
        if isinstance(files, Path):
            return self._parquet(rel, files, f"{name}.parquet")
        frames = [self._parquet(rel, f, f"{f.parent.name}/{f.name}") for f in files]
        if not frames:
            return pl.DataFrame(schema=schema) if schema else pl.DataFrame()
        try:
            return pl.concat(frames, how="diagonal_relaxed")
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{rel}: {name} parts do not fit together ({one_line(exc)})") from None

    def ideas(self, rel: str) -> pl.DataFrame:
        return self.table(rel, "ideas", IDEAS_SCHEMA)

    def ideas_token(self, rel: str) -> tuple:
        """Changes whenever the run's ideas do (a step lands, or the run is compacted)."""
        run = self.run_dir(rel)
        return stamp(run.path / "ideas.parquet", run.steps_dir)

    def derived(self, rel: str, what: Hashable, make: Callable[[], Any]) -> Any:
        """A value computed from a run's ideas (a layout, a lineage), cached until they change."""
        return self.cache.get(("derived", rel, what), self.ideas_token(rel), make)

    def valid_ideas(self, rel: str) -> pl.DataFrame:
        """The population's ideas (culturesim.store.population_ideas), cached until they change."""
        return self.derived(rel, "valid", lambda: population_ideas(self.ideas(rel)))

    def agents(self, rel: str) -> pl.DataFrame:
        return self.table(rel, "agents")

    def edges(self, rel: str) -> pl.DataFrame:
        return self.table(rel, "edges")

    def metrics(self, rel: str) -> pl.DataFrame | None:
        """metrics.parquet (written by ``culturesim analyze``), or None when not measured yet."""
        path = self.run_dir(rel).path / "metrics.parquet"
        if not path.is_file():
            return None
        return self._parquet(rel, path, "metrics.parquet")

    # --- sweeps --------------------------------------------------------------------
    def sweep_dir(self, rel: str) -> Path:
        path = self.resolve(rel)
        if not self.is_sweep_dir(path):
            raise DataError(f"{rel}: not a sweep folder (no sweep.json or sweep.parquet)")
        return path

    def sweep_runs(self, rel: str) -> list[str]:
        return [self.id_of(p) for p in self._children(self.sweep_dir(rel)) if (p / "manifest.json").is_file()]

    def sweep_index(self, rel: str) -> pl.DataFrame:
        """sweep.parquet with run ids made app ids ("sweep/run"), or built from the runs'
        manifests when the sweep has not written its index yet."""
        path = self.sweep_dir(rel)
        index_path = path / "sweep.parquet"
        if index_path.is_file():
            index = self._parquet(rel, index_path, "sweep.parquet")
            return index.with_columns((pl.lit(rel + "/") + pl.col("run_id")).alias("run_id"))
        return pl.DataFrame({"run_id": self.sweep_runs(rel)})

    @staticmethod
    def swept_columns(index: pl.DataFrame) -> list[str]:
        return [c for c in index.columns if c not in ("run_id", "cell", "replicate", "seed", "status", "error")]

    def conditions(self, rel: str) -> dict[str, Any]:
        """The swept parameter values of a sweep's run ({} for a run on its own)."""
        parent = rel.rpartition("/")[0]
        if not parent:
            return {}
        try:
            index = self.sweep_index(parent)
        except (DataError, Refused):
            return {}
        row = index.filter(pl.col("run_id") == rel)
        if row.is_empty():
            return {}
        return {c: row[c][0] for c in self.swept_columns(index)}

    def expand(self, ids: list[str] | str | None) -> list[str]:
        """Run ids from a mix of run and sweep ids (a sweep stands for its runs)."""
        if not ids:
            return []
        out: list[str] = []
        for rel in [ids] if isinstance(ids, str) else ids:
            path = self.resolve(rel)
            if self.is_sweep_dir(path):
                out.extend(self.sweep_runs(rel))
            else:
                out.append(rel)
        return list(dict.fromkeys(out))


def condition_label(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items()) if values else "(no sweep)"
