"""The results layout on disk: one folder per run, written so a crash loses at most a step.

Every file is written to a temporary name, flushed to disk and renamed into place, so a
reader (or a resume after SIGKILL) only ever sees complete files. A step's prompts are
written before its ideas, so the existence of ``steps/NNNNN.parquet`` is the single
marker that a step is complete.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
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


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def write_json(path: Path, obj: Any) -> None:
    _atomic(path, lambda h: h.write(json.dumps(obj, indent=2, ensure_ascii=False).encode("utf-8")))


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
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"{self.path}: not a run folder (no manifest.json)") from None
        except json.JSONDecodeError as exc:
            raise RunError(f"{self.manifest_path}: unreadable manifest ({exc})") from None

    def write_manifest(self, manifest: dict) -> None:
        write_json(self.manifest_path, manifest)

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
        for name, (rows, schema) in (extra or {}).items():
            write_parquet(self.path / name / f"{step:05d}.parquet", pl.DataFrame(rows, schema=schema))
        write_parquet(self.prompts_dir / f"{step:05d}.parquet", pl.DataFrame(prompts, schema=PROMPTS_SCHEMA))
        write_parquet(self.step_path(step), pl.DataFrame(ideas, schema=IDEAS_SCHEMA))

    def completed_steps(self) -> list[int]:
        if not self.steps_dir.is_dir():
            return []
        found = (_STEP_FILE.match(p.name) for p in self.steps_dir.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def _parts(self, folder: Path, schema: dict) -> pl.DataFrame:
        steps = self.completed_steps()
        files = [folder / f"{s:05d}.parquet" for s in steps]
        if not files:
            return pl.DataFrame(schema=schema)
        return pl.concat([pl.read_parquet(f) for f in files], how="vertical")

    # --- whole-run tables -------------------------------------------------------------
    def ideas(self) -> pl.DataFrame:
        """All ideas so far: the compacted table of a finished run, else the step parts."""
        compacted = self.path / "ideas.parquet"
        if compacted.is_file():
            return pl.read_parquet(compacted)
        return self._parts(self.steps_dir, IDEAS_SCHEMA)

    def prompts(self) -> pl.DataFrame:
        compacted = self.path / "prompts.parquet"
        if compacted.is_file():
            return pl.read_parquet(compacted)
        return self._parts(self.prompts_dir, PROMPTS_SCHEMA)

    def table_parts(self, name: str, schema: dict) -> pl.DataFrame:
        """A kind's own per-step table: compacted if the run finished, else its parts."""
        compacted = self.path / f"{name}.parquet"
        if compacted.is_file():
            return pl.read_parquet(compacted)
        return self._parts(self.path / name, schema)

    def compact(self, extra: dict[str, dict] | None = None) -> None:
        """Gather the step parts into ideas.parquet and prompts.parquet.

        The parts are kept: they are what a resume and a live reader use, and deleting
        them would open a window where a crash leaves neither.
        """
        for name, schema in (extra or {}).items():
            write_parquet(self.path / f"{name}.parquet", self._parts(self.path / name, schema))
        write_parquet(self.path / "prompts.parquet", self._parts(self.prompts_dir, PROMPTS_SCHEMA))
        write_parquet(self.path / "ideas.parquet", self._parts(self.steps_dir, IDEAS_SCHEMA))

    def write_table(self, name: str, table: pl.DataFrame) -> None:
        write_parquet(self.path / f"{name}.parquet", table)


def list_runs(root: str | Path) -> list[tuple[RunDir, dict]]:
    """Every run folder under ``root`` (one level deep) with its manifest."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        run = RunDir(child)
        if run.exists():
            try:
                found.append((run, run.read_manifest()))
            except RunError:
                found.append((run, {"status": "unreadable"}))
    return found
