"""The results layout on disk: one folder per run, written so a crash loses at most a step.

Every file is written to a temporary name, flushed to disk and renamed into place, so a
reader (or a resume after SIGKILL) only ever sees complete files. A step's prompts are
written before its ideas, so the existence of ``steps/NNNNN.parquet`` is the single
marker that a step is complete.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import re
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

IDEAS_SCHEMA = {
    "run_id": pl.String,
    "step": pl.Int64,
    "agent_id": pl.Int64,
    "idea_id": pl.String,
    "text": pl.String,
    "parent_ids": pl.List(pl.String),
    "operation": pl.String,
    "source": pl.String,
    "personality": pl.String,
    "model": pl.String,
    "seed": pl.Int64,
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
    "latency_s": pl.Float64,
    "cached": pl.Boolean,
    "retries": pl.Int64,
    "error": pl.String,
}
PROMPTS_SCHEMA = {
    "run_id": pl.String,
    "step": pl.Int64,
    "agent_id": pl.Int64,
    "idea_id": pl.String,
    "messages": pl.String,  # JSON list of {"role", "content"}: exactly what was sent
}
_STEP_FILE = re.compile(r"^(\d{5,})\.parquet$")


class RunError(RuntimeError):
    """A run folder that cannot be used as asked (missing, already complete, corrupt)."""


class StepWriteError(OSError):
    """A step (or the compaction) could not be written, e.g. the disk is full; the
    message says which steps are complete and how to continue."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Test hook (tests/test_crash_resume.py): seconds to sleep between writing a file and
# renaming it into place, so that a SIGKILL can be aimed at the middle of a write.
WRITE_PAUSE_ENV = "CULTURESIM_TEST_WRITE_PAUSE_S"
TEMP_SUFFIX = ".tmp"
LOCK_NAME = ".lock"
# room held back while a run is running, freed to record a failure when the disk is full
RESERVE_NAME = ".space-reserve"
RESERVE_BYTES = 64 * 1024
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_SURROGATES = re.compile("[\ud800-\udfff]")


def safe_name(name: str) -> str:
    """A scenario's name as one folder name: no separators, no ``..``, never empty. Run ids
    and sweep folders are both made from it, so neither can land outside ``output.dir``."""
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in str(name))[:60].strip("-.")
    return safe or "run"


def clean_text(text: str) -> str:
    """Lone surrogates (what ``json.loads`` makes of a server's escapes for bytes that were
    not UTF-8) cannot be encoded, so no Parquet or JSON writer takes them: each becomes
    U+FFFD, as a UTF-8 decoder with errors="replace" would have made of the bytes."""
    return _SURROGATES.sub("\ufffd", text)


def _clean_rows(rows: list[dict]) -> list[dict]:
    def clean(value):
        if isinstance(value, str):
            return clean_text(value)
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return [{k: clean(v) for k, v in row.items()} for row in rows]


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        pause = os.environ.get(WRITE_PAUSE_ENV)
        if pause:
            time.sleep(float(pause))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def write_json(path: Path, obj: Any) -> None:
    text = clean_text(json.dumps(obj, indent=2, ensure_ascii=False))
    _atomic(path, lambda h: h.write(text.encode("utf-8")))


def write_parquet(path: Path, frame: pl.DataFrame) -> None:
    _atomic(path, lambda h: frame.write_parquet(h))


class RunDir:
    """One run's folder. Knows the layout; knows nothing about simulation."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    manifest_path = property(lambda self: self.path / "manifest.json")
    steps_dir = property(lambda self: self.path / "steps")
    prompts_dir = property(lambda self: self.path / "prompts")

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def read_manifest(self) -> dict:
        """The manifest as a dict; anything else (missing, not UTF-8, not JSON, not a JSON
        object) is a one-line RunError, so that every reader can show it and go on."""
        try:
            data = json.loads(self.manifest_path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise RunError(f"{self.path}: not a run folder (no manifest.json)") from None
        except UnicodeDecodeError:
            raise RunError(f"{self.manifest_path}: unreadable manifest (not UTF-8 text)") from None
        except json.JSONDecodeError as exc:
            raise RunError(f"{self.manifest_path}: unreadable manifest ({exc})") from None
        except OSError as exc:
            raise RunError(f"{self.manifest_path}: unreadable manifest ({exc.strerror or exc})") from None
        if not isinstance(data, dict):
            raise RunError(f"{self.manifest_path}: unreadable manifest (a JSON {type(data).__name__}, "
                           f"not an object)")
        return data

    def write_manifest(self, manifest: dict) -> None:
        """A running run keeps a small reserve file; when the disk fills up, it is given
        back so that the manifest can still say why the run stopped."""
        final = manifest.get("status") != "running"
        try:
            write_json(self.manifest_path, manifest)
        except OSError as exc:
            if not (final and exc.errno in _DISK_FULL and self._release_reserve()):
                raise self._write_error(f"{self.manifest_path.name} was not updated", exc) from exc
            write_json(self.manifest_path, manifest)  # in the room the reserve held
        if final:
            self._release_reserve()
        else:
            self._keep_reserve()

    def _keep_reserve(self) -> None:
        reserve = self.path / RESERVE_NAME
        if reserve.exists():
            return
        try:
            with reserve.open("xb") as handle:
                handle.write(bytes(RESERVE_BYTES))  # written, not sparse: the blocks are really held
                handle.flush()
                os.fsync(handle.fileno())
        except OSError:  # no room even for the reserve: the run goes on without one
            reserve.unlink(missing_ok=True)

    def _release_reserve(self) -> bool:
        try:
            (self.path / RESERVE_NAME).unlink()
            return True
        except FileNotFoundError:
            return False

    def update_manifest(self, **changes: Any) -> dict:
        manifest = self.read_manifest()
        manifest.update(changes)
        self.write_manifest(manifest)
        return manifest

    # --- per-step parts -------------------------------------------------------------
    def step_path(self, step: int) -> Path:
        return self.steps_dir / f"{step:05d}.parquet"

    def write_step(self, step: int, ideas: list[dict], prompts: list[dict],
                   extra: dict[str, tuple[list[dict], dict]] | None = None) -> None:
        """A step's parts; ``extra`` holds a kind's own per-step tables (name: rows, schema).
        The ideas part goes last: it is the marker that the step is complete."""
        try:
            for name, (rows, schema) in (extra or {}).items():
                write_parquet(self.path / name / f"{step:05d}.parquet",
                              pl.DataFrame(_clean_rows(rows), schema=schema))
            write_parquet(self.prompts_dir / f"{step:05d}.parquet",
                          pl.DataFrame(_clean_rows(prompts), schema=PROMPTS_SCHEMA))
            write_parquet(self.step_path(step), pl.DataFrame(_clean_rows(ideas), schema=IDEAS_SCHEMA))
        except OSError as exc:
            raise self._write_error(f"step {step} was not written", exc) from exc

    def _write_error(self, what: str, exc: OSError) -> StepWriteError:
        done = self.completed_steps()
        kept = f"steps {done[0]}-{done[-1]} are complete on disk" if done else "no step is complete yet"
        return StepWriteError(exc.errno, f"{what} ({exc.strerror or exc}): {kept}; once fixed, "
                                         f"continue with: culturesim run --resume {self.path}")

    @contextmanager
    def lock(self):
        """Held by the one process writing this run (start or resume), so that a second
        ``culturesim run --resume`` of the same run, or a second sweep over the same
        folder, is refused instead of interleaving its steps with the first. The lock is
        the kernel's (flock): a killed writer releases it with its last breath."""
        try:
            import fcntl
        except ImportError:  # no flock on this platform: no protection, as before
            yield
            return
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / LOCK_NAME, "a+") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise RunError(f"{self.path} is being written by {holder}; wait for it to end "
                               f"(or stop it) before resuming") from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"process {os.getpid()} on {platform.node()}")
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def remove_temporaries(self) -> int:
        """Delete the half-written files a killed writer left (``.<name>.<random>.tmp``).

        Only the process taking the run over (a resume) may call this: another live
        writer's temporary file would look the same. Returns how many were removed.
        """
        removed = 0
        for tmp in self.path.rglob(f".*{TEMP_SUFFIX}"):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed

    def completed_steps(self) -> list[int]:
        if not self.steps_dir.is_dir():
            return []
        found = (_STEP_FILE.match(p.name) for p in self.steps_dir.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def parts_dir(self, name: str) -> Path:
        """Where the per-step parts of table ``name`` live (the ideas' in ``steps/``)."""
        return self.steps_dir if name == "ideas" else self.path / name

    def part_files(self, name: str) -> list[Path]:
        """The parts of table ``name`` whose step is complete, in step order: a part written
        before its step's ideas file is not yet part of the run."""
        folder = self.parts_dir(name)
        return [p for p in (folder / f"{s:05d}.parquet" for s in self.completed_steps()) if p.is_file()]

    def table_files(self, name: str) -> Path | list[Path]:
        """The one file of a compacted table, else its complete per-step parts. Every reader of
        run folders (analysis, the app, a resume) goes through here."""
        compacted = self.path / f"{name}.parquet"
        return compacted if compacted.is_file() else self.part_files(name)

    # --- whole-run tables -------------------------------------------------------------
    def table_parts(self, name: str, schema: dict) -> pl.DataFrame:
        """A per-step table: compacted if the run finished, else its parts so far."""
        files = self.table_files(name)
        if isinstance(files, Path):
            return pl.read_parquet(files)
        if not files:
            return pl.DataFrame(schema=schema)
        return pl.concat([pl.read_parquet(f) for f in files], how="vertical")

    def ideas(self) -> pl.DataFrame:
        """All ideas so far: the compacted table of a finished run, else the step parts."""
        return self.table_parts("ideas", IDEAS_SCHEMA)

    def prompts(self) -> pl.DataFrame:
        return self.table_parts("prompts", PROMPTS_SCHEMA)

    def compact(self, extra: dict[str, dict] | None = None) -> None:
        """Gather the step parts into ideas.parquet and prompts.parquet.

        The parts are kept: they are what a resume and a live reader use, and deleting
        them would open a window where a crash leaves neither.
        """
        try:
            for name, schema in {**(extra or {}), "prompts": PROMPTS_SCHEMA, "ideas": IDEAS_SCHEMA}.items():
                self._compact_parts(name, schema)  # ideas last: the marker that the run is compacted
        except OSError as exc:
            raise self._write_error("the step parts were not compacted", exc) from exc

    def _compact_parts(self, name: str, schema: dict) -> None:
        """Stream the parts of table ``name`` into ``<name>.parquet`` (polars' streaming sink), so
        memory stays about that of one step however long the run; pl.concat held the whole run."""
        path = self.path / f"{name}.parquet"
        folder = self.parts_dir(name)
        files = [folder / f"{s:05d}.parquet" for s in self.completed_steps()]  # all: a missing one fails loudly
        if not files:
            write_parquet(path, pl.DataFrame(schema=schema))
            return
        # bounded row groups: with the default the sink held the whole run for one group
        _atomic(path, lambda handle: pl.scan_parquet(files).sink_parquet(handle, row_group_size=4096))

    def idea_counts(self) -> dict[str, int]:
        """The manifest's counts, from the needed columns only (never the whole run in memory)."""
        compacted = self.path / "ideas.parquet"
        files = [compacted] if compacted.is_file() else [self.step_path(s) for s in self.completed_steps()]
        if not files:
            return {"ideas": 0, "failures": 0, "prompt_tokens": 0, "completion_tokens": 0}
        row = pl.scan_parquet(files).select(
            ideas=pl.col("text").is_not_null().sum(), failures=pl.col("error").is_not_null().sum(),
            prompt_tokens=pl.col("prompt_tokens").sum(), completion_tokens=pl.col("completion_tokens").sum(),
        ).collect().row(0, named=True)
        return {key: int(value or 0) for key, value in row.items()}

    def write_table(self, name: str, table: pl.DataFrame) -> None:
        write_parquet(self.path / f"{name}.parquet", table)


def population_ideas(ideas: pl.DataFrame) -> pl.DataFrame:
    """The population's ideas that exist: failed agent-steps carry no text, and ideas held by
    no agent (an AI pool, seed ideas) are material shown to agents, not the population's."""
    return ideas.filter(pl.col("text").is_not_null() & pl.col("error").is_null() & pl.col("agent_id").is_not_null())


_SCAN_DEPTH = 2  # a run's files, its subfolders' (steps/, prompts/, a kind's tables), one more


def outside_files(path: str | Path, root: str | Path) -> list[str]:
    """The entries of a run folder (its files, those of its subfolders) whose real path
    leaves ``root``, or that cannot be resolved (a symlink loop), relative to the run folder,
    sorted. Only a symlink can leave a folder that lies under ``root``, so this is a
    directory scan and a resolve per link, never a read: cheap enough for every listing,
    which marks such a run rather than finding out when a page reads the file."""
    root = Path(root).resolve()
    found: list[str] = []

    def scan(folder: str | Path, prefix: str, depth: int) -> None:
        try:
            with os.scandir(folder) as entries:
                listed = sorted(entries, key=lambda e: e.name)
        except OSError:
            return
        for entry in listed:
            rel = prefix + entry.name
            try:
                if entry.is_symlink():
                    real = Path(entry.path).resolve()
                    if not real.is_relative_to(root):
                        found.append(rel)
                        continue
                if depth < _SCAN_DEPTH and entry.is_dir():
                    scan(entry.path, rel + "/", depth + 1)
            except (OSError, RuntimeError):  # a loop, or a link that vanished mid-scan
                found.append(rel)

    scan(path, "", 0)
    return sorted(found)


def refused_line(rel: str, names: list[str], where: str = "the results folder") -> str:
    """One line naming the first entries of a run (``rel``) that point outside ``where``."""
    more = f" (and {len(names) - 3} more)" if len(names) > 3 else ""
    shown = ", ".join(f"{rel}/{n}" for n in names[:3])
    verb = "points" if len(names) == 1 else "point"
    return f"refused: {shown}{more} {verb} outside {where}"


def list_runs(root: str | Path) -> list[tuple[RunDir, dict]]:
    """Every run folder under ``root`` (one level deep) with its manifest; a run whose
    manifest cannot be read, or is a link out of ``root``, is listed with status
    "unreadable" and its one-line error."""
    root = Path(root)
    if not root.is_dir():
        return []
    real_root = root.resolve()
    found = []
    for child in sorted(root.iterdir()):
        run = RunDir(child)
        if run.exists():
            try:
                if not run.manifest_path.resolve().is_relative_to(real_root):
                    raise RunError(refused_line(child.name, ["manifest.json"], str(root)))
                found.append((run, run.read_manifest()))
            except (RunError, OSError, RuntimeError) as exc:
                found.append((run, {"status": "unreadable", "error": str(exc)}))
    return found


def runs_under(path: str | Path) -> list[RunDir]:
    """A run folder itself, or every run folder inside ``path``."""
    run = RunDir(path)
    if run.exists():
        return [run]
    return [r for r, _ in list_runs(path)]
