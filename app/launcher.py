"""Runs started from the app: a background process each, never work inside a request.

A job is ``python -m culturesim.cli run|sweep|analyze ...`` in its own process group, its
output going to ``<results>/.app/logs/<job>.log``. Progress is read from what the run
writes (manifest, step files), exactly as for runs started in a terminal. Cancelling
sends SIGINT (the runner finishes the step in flight, marks the run interrupted, and it
can be resumed), then SIGTERM after a grace period if the process is still there.

Jobs live in the memory of the process that started them: under gunicorn, use one
worker (``-w 1 --threads 8``) if you start runs from the app.

Whoever reaches the app may paste a scenario, so nothing of it is built in the app's
process, and what the app starts is confined (``culturesim.confine``): validation is
``culturesim validate --json`` in a subprocess too; every job gets ``--confine <results>``
(file paths in the scenario must stay inside the results folder) and an environment scrubbed
down to what running needs (``job_env``), with HOME inside the results folder and, of the
app's own variables, only the key variables the app was started with (``--allow-key-env``),
which are also the only names ``llm.api_key_env`` may give.
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
VALIDATE_TIMEOUT_S = 120.0
# the app's variables a job inherits: locale, where programs and temporary files are, the
# threads of numeric libraries; nothing else (keys only by name, through --allow-key-env)
PASSED_ENV = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TMPDIR",
              "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
MAX_PROBLEMS = 50
MAX_LINE = 1000


@dataclass(frozen=True)
class Validated:
    """What ``culturesim validate --json`` said of a scenario file."""

    file: str
    kind: str
    name: str
    steps: int
    sweep: bool
    agents: int | None = None
    network: str = ""
    model: str | None = None


@dataclass
class Job:
    id: str
    what: str  # run | sweep | analyze | measure
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
    def __init__(self, res: Results, grace_s: float = GRACE_S, allow_key_env: tuple[str, ...] | list[str] = (),
                 measure_embedder: str | None = "best"):
        self.res = res
        self.measure_embedder = measure_embedder  # what app.measuring measures with; None: it does not
        self.grace_s = grace_s
        self.allow_key_env = tuple(dict.fromkeys(allow_key_env))
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._measure_lock = threading.Lock()

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

    def confine_args(self) -> list[str]:
        """``--confine`` and ``--allow-key-env`` as ``culturesim validate|run|sweep`` take them."""
        args = ["--confine", str(self.res.root)]
        for name in self.allow_key_env:
            args += ["--allow-key-env", name]
        return args

    def job_env(self) -> dict[str, str]:
        """The environment of everything the app starts: nothing of the app's own but
        ``PASSED_ENV`` and the allowed key variables; HOME and caches inside the results folder."""
        from culturesim import confine

        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        env.setdefault("PATH", os.defpath)
        # the same culturesim the app runs, wherever it was imported from
        import culturesim

        code = str(Path(culturesim.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (code, os.environ.get("PYTHONPATH", "")) if p)
        home = self.app_dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        env.update(HOME=str(home), CULTURESIM_CACHE_DIR=str(self.res.root / ".cache"),
                   LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
        env[confine.CONFINE_ENV] = str(self.res.root)
        env[confine.KEY_ENV_ENV] = ",".join(self.allow_key_env)
        for name in self.allow_key_env:
            if name in os.environ:
                env[name] = os.environ[name]
        return env

    def validate(self, file: Path) -> tuple[Validated | None, list[str]]:
        """(summary, problems) from ``culturesim validate --json FILE`` run confined in a
        subprocess: the scenario's network and model are built there, never here."""
        command = [sys.executable, "-m", "culturesim.cli", "validate", str(file), "--json", *self.confine_args()]
        try:
            done = subprocess.run(command, capture_output=True, stdin=subprocess.DEVNULL, env=self.job_env(),
                                  cwd=str(self.res.root), timeout=VALIDATE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return None, [f"validation took longer than {VALIDATE_TIMEOUT_S:.0f} s and was stopped"]
        out = done.stdout.decode("utf-8", "replace").strip().splitlines()
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        if done.returncode == 0 and out:
            try:
                info = json.loads(out[-1])
                fields = {k: info.get(k) for k in Validated.__dataclass_fields__}
                return Validated(**fields), []
            except (ValueError, TypeError):
                pass
        problems = [line.removeprefix("error: ")[:MAX_LINE] for line in err if line.strip()]
        problems = problems[-MAX_PROBLEMS:] or [f"validation failed (exit code {done.returncode})"]
        return None, problems

    def _spawn(self, what: str, target: str, args: list[str]) -> Job:
        job_id = f"{what}-{secrets.token_hex(4)}"
        log = self.app_dir / "logs" / f"{job_id}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "culturesim.cli", *args]
        env = self.job_env()
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
            return self._spawn("sweep", target, ["sweep", str(file), "--out", str(self.res.root / target), "-q",
                                                 *self.measure_args(), *self.confine_args()])
        target = new_id(name)
        return self._spawn("run", target, ["run", str(file), "--out", str(self.res.root), "--set",
                                           f"output.run_id={target}", "-q", *self.measure_args(),
                                           *self.confine_args()])

    def start_analyze(self, rel: str, embedder: str = "tfidf") -> Job:
        path = self.res.resolve(rel)
        return self._spawn("analyze", rel, ["analyze", str(path), "--embedder", embedder, "-q"])

    def measure_args(self) -> list[str]:
        """A run or sweep started here measures what it finishes as the app would."""
        return ["--measure-embedder", self.measure_embedder or "off"]

    def measuring(self, rel: str) -> Job | None:
        """The latest measuring job this app started for the run, if any."""
        found = [j for j in self.listing() if j.what == "measure" and j.target == rel]
        return found[0] if found else None

    def start_measure(self, rel: str) -> Job:
        """``culturesim measure RUN --if-unmeasured`` (app.measuring), unless this app's own
        job for the run is still running; the job's lock keeps other processes out."""
        with self._measure_lock:
            job = self.measuring(rel)
            if job is not None and job.state() == "running":
                return job
            path = self.res.resolve(rel)
            return self._spawn("measure", rel, ["measure", str(path), "--if-unmeasured", "-q",
                                                "--embedder", self.measure_embedder or "best"])

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
