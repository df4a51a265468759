"""Runs started from the app: a background process each, never work inside a request.

A job is ``python -m culturesim.cli run|sweep|analyze ...`` in its own process group, its
output going to ``<results>/.app/logs/<job>.log``. Progress is read from what the run
writes (manifest, step files), exactly as for runs started in a terminal. Cancelling
sends SIGINT (the runner finishes the step in flight, marks the run interrupted, and it
can be resumed), then SIGTERM after a grace period if the process is still there.

Jobs live in the memory of the process that started them: under gunicorn, use one
worker (``-w 1 --threads 8``) if you start runs from the app.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.data import Results

GRACE_S = 10.0


@dataclass
class Job:
    id: str
    what: str  # run | sweep | analyze
    target: str  # the run or sweep id it writes (inside the results folder)
    command: list[str]
    log: Path
    started: float
    proc: subprocess.Popen = field(repr=False)
    cancelled_at: float | None = None

    def state(self) -> str:
        code = self.proc.poll()
        if code is None:
            return "cancelling" if self.cancelled_at else "running"
        if self.cancelled_at:
            return "cancelled"
        return "finished" if code == 0 else f"exited with code {code}"

    def log_tail(self, lines: int = 12) -> str:
        try:
            with self.log.open("rb") as fh:
                fh.seek(max(0, self.log.stat().st_size - 8192))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def new_id(name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in name)[:60].strip("-.") or "run"
    return f"{safe}-{dt.datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


class Launcher:
    def __init__(self, res: Results, grace_s: float = GRACE_S):
        self.res = res
        self.grace_s = grace_s
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    @property
    def app_dir(self) -> Path:
        return self.res.root / ".app"

    def save_copy(self, text: str, stem: str) -> Path:
        """An edited scenario, kept (never overwritten) so the run can be traced to it."""
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
        safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem)[:60] or "scenario"
        path = self.app_dir / "scenarios" / f"{safe}-{digest}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text(text, encoding="utf-8")
        return path

    def _spawn(self, what: str, target: str, args: list[str]) -> Job:
        job_id = f"{what}-{secrets.token_hex(4)}"
        log = self.app_dir / "logs" / f"{job_id}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "culturesim.cli", *args]
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONUNBUFFERED": "1"}
        with log.open("wb") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=env, cwd=str(self.res.root))
        job = Job(job_id, what, target, command, log, time.time(), proc)
        with self._lock:
            self.jobs[job_id] = job
        (self.app_dir / "jobs").mkdir(exist_ok=True)
        (self.app_dir / "jobs" / f"{job_id}.json").write_text(json.dumps(
            {"id": job_id, "what": what, "target": target, "command": command, "pid": proc.pid,
             "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}, indent=2), encoding="utf-8")
        return job

    def start_scenario(self, file: Path, name: str, is_sweep: bool) -> Job:
        if is_sweep:
            target = new_id(f"{name}-sweep")
            return self._spawn("sweep", target, ["sweep", str(file), "--out", str(self.res.root / target), "-q"])
        target = new_id(name)
        return self._spawn("run", target, ["run", str(file), "--out", str(self.res.root), "--set",
                                           f"output.run_id={target}", "-q"])

    def start_analyze(self, rel: str, embedder: str = "tfidf") -> Job:
        path = self.res.resolve(rel)
        return self._spawn("analyze", rel, ["analyze", str(path), "--embedder", embedder, "-q"])

    def cancel(self, job_id: str) -> bool:
        job = self.jobs.get(job_id)
        if job is None or job.proc.poll() is not None:
            return False
        job.cancelled_at = time.time()
        self._signal(job, signal.SIGINT)
        timer = threading.Timer(self.grace_s, self._escalate, args=(job,))
        timer.daemon = True
        timer.start()
        return True

    def _escalate(self, job: Job) -> None:
        if job.proc.poll() is None:
            self._signal(job, signal.SIGTERM)

    @staticmethod
    def _signal(job: Job, sig: int) -> None:
        """The job's process group: a sweep's worker processes stop with it, as with Ctrl-C."""
        try:
            os.killpg(job.proc.pid, sig)
        except ProcessLookupError:
            pass

    def progress(self, job: Job) -> tuple[int | None, int | None]:
        """(done, total) steps of a run, or runs of a sweep, from what is on disk."""
        try:
            if job.what == "sweep":
                folder = self.res.resolve(job.target)
                info = json.loads(self.res.read_text(folder / "sweep.json"))
                done = sum(1 for e in self.res.listing() if e.parent == job.target and e.status == "done")
                return done, int(info.get("runs", 0))
            m = self.res.manifest(job.target)
            return int(m.get("steps_completed") or 0), m.get("steps_total")
        except Exception:  # noqa: BLE001 - not written yet
            return None, None

    def listing(self) -> list[Job]:
        with self._lock:
            return sorted(self.jobs.values(), key=lambda j: j.started, reverse=True)


def current() -> Launcher:
    """The Launcher of the app serving this request."""
    from flask import current_app

    return current_app.config["CULTURESIM_LAUNCHER"]
