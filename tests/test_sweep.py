"""Sweeps: expansion and seeds, process-pool and Ray engines, failure isolation, resume
after SIGKILL, and one concurrency limit per server across the whole sweep.

Runs use the ``echo/`` stand-in model (instant and deterministic) where a sweep needs
hundreds of calls, and a small OpenAI-compatible server on loopback that counts the
requests in flight where the shared limit is the point.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest

from culturesim import runner
from culturesim import scenario as sc
from culturesim.store import RunDir
from culturesim.sweep import Sweep, expand, replicate_seed, run_sweep

SWEEP = """\
kind: culture
name: sweeptest
seed: 11
steps: 4
population: {{size: 6}}
network: {{topology: ring}}
llm: {{model: "{model}", cache: false, concurrency: {concurrency}{extra}}}
sweep:
  grid:
    network.topology: [ring, complete]
  zip:
    culture.operation: [combine, transform]
    culture.social.include_own: [true, false]
  replicates: {replicates}
"""


def scenario_file(tmp_path: Path, model="echo/x", replicates=2, concurrency=4, extra="") -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP.format(model=model, replicates=replicates, concurrency=concurrency, extra=extra))
    return path


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "culturesim.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def texts(path: Path) -> list[tuple]:
    return RunDir(path).ideas().sort("step", "agent_id").select("idea_id", "text", "parent_ids").rows()


def test_expansion_cells_seeds_and_ids(tmp_path):
    scen = sc.load(scenario_file(tmp_path, replicates=3))
    runs = expand(scen)
    assert len(runs) == 2 * 2 * 3  # grid 2 x zipped rows 2 x replicates 3
    cells = {r.cell: r.params for r in runs}
    assert cells[0] == {"network.topology": "ring", "culture.operation": "combine", "culture.social.include_own": True}
    assert cells[3] == {"network.topology": "complete", "culture.operation": "transform",
                        "culture.social.include_own": False}
    for r in runs:
        assert r.scenario["seed"] == replicate_seed(11, r.replicate)
        assert r.scenario["network"]["topology"] == r.params["network.topology"]
        assert r.scenario["sweep"] is None and r.scenario["output"]["run_id"] == r.run_id
    assert len({r.scenario["seed"] for r in runs}) == 3  # common random numbers across cells
    assert [r.run_id for r in expand(scen)] == [r.run_id for r in runs]  # stable: reruns find them


@pytest.mark.parametrize("sweep,words", [
    ("  zip: {culture.operation: [combine], steps: [1, 2]}", "same length"),
    ("  grid: {seed: [1, 2]}", "cannot be swept"),
    ("  grid: {steps: [2, 0]}", "cell 1"),
    ("  grid: {network.params.k: [1, 9]}", "cell 1"),
    ("  grid: {network.topolgy: [ring]}", "did you mean 'topology'"),
])
def test_bad_sweeps_are_refused_before_anything_runs(tmp_path, sweep, words):
    text = SWEEP.format(model="echo/x", replicates=1, concurrency=1, extra="").split("sweep:")[0]
    path = tmp_path / "bad.yaml"
    path.write_text(text + "sweep:\n" + sweep + "\n")
    done = cli("sweep", str(path), "--out", str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_dry_run_prints_cells_and_count(tmp_path):
    done = cli("sweep", str(scenario_file(tmp_path)), "--dry-run", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "4 cells, 8 runs" in done.stdout and "transform" in done.stdout
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    scen = sc.load(scenario_file(tmp))
    index = run_sweep(Sweep(scen, tmp / "out"), engine="local", workers=2, progress=False)
    return scen, tmp / "out", index


def test_local_engine_runs_every_run_and_indexes_them(local_sweep):
    _, folder, index = local_sweep
    assert index.height == 8 and set(index["status"]) == {"done"}
    assert {"network.topology", "culture.operation", "culture.social.include_own", "seed"} <= set(index.columns)
    assert pl.read_parquet(folder / "sweep.parquet").equals(index)
    for run_id in index["run_id"]:
        ideas = RunDir(folder / run_id).ideas()
        assert ideas.height == 4 * 6 and ideas["error"].null_count() == ideas.height


def test_a_cell_reruns_alone_identically(local_sweep, tmp_path):
    scen, folder, _ = local_sweep
    spec = expand(scen)[5]
    alone = runner.start(sc.validate_data(spec.scenario, "cell"), out=tmp_path, show_progress=False)
    assert texts(alone.path) == texts(folder / spec.run_id)


def test_ray_engine_gives_the_same_results(local_sweep, tmp_path):
    pytest.importorskip("ray")
    scen, folder, _ = local_sweep
    index = run_sweep(Sweep(scen, tmp_path / "ray"), engine="ray", workers=2, progress=False)
    assert set(index["status"]) == {"done"}
    for run_id in index["run_id"]:
        assert texts(tmp_path / "ray" / run_id) == texts(folder / run_id)


def test_a_failing_run_is_recorded_and_the_others_finish(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text(SWEEP.format(model="echo/x", replicates=1, concurrency=2, extra="").split("sweep:")[0] + """\
sweep:
  grid:
    llm.model: [echo/x, openai/nothing-listens]
    llm.api_base: ["http://127.0.0.1:9/v1"]
    llm.retries: [0]
    llm.outage_s: [0]
""")
    done = cli("sweep", str(path), "--out", str(tmp_path / "out"), "--workers", "2", "-q")
    assert done.returncode == 1
    index = pl.read_parquet(tmp_path / "out" / "sweep.parquet").sort("cell")
    assert index["status"].to_list() == ["done", "failed"]
    assert "every request of step 1 failed" in index["error"][1]
    manifest = RunDir(tmp_path / "out" / index["run_id"][1]).read_manifest()
    assert manifest["status"] == "failed" and "Connection" in manifest["error"]


def test_sigkill_then_rerun_skips_done_runs_and_resumes_the_rest(tmp_path):
    path = scenario_file(tmp_path, model="echo/delay-0.02", replicates=2, concurrency=1)
    folder = tmp_path / "out"
    args = [sys.executable, "-m", "culturesim.cli", "sweep", str(path), "--out", str(folder), "--workers", "2", "-q"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while sum(1 for m in folder.glob("*/manifest.json") if json.loads(m.read_text())["status"] == "done") < 3:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    import os

    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker processes, mid-run
    proc.wait()
    finished_before = {m.parent.name: (m.parent / "ideas.parquet").stat().st_mtime_ns
                       for m in folder.glob("*/manifest.json") if json.loads(m.read_text())["status"] == "done"}
    assert 3 <= len(finished_before) < 8
    done = cli("sweep", str(path), "--out", str(folder), "--workers", "2", "-q")
    assert done.returncode == 0, done.stderr
    index = pl.read_parquet(folder / "sweep.parquet")
    assert set(index["status"]) == {"done"} and index.height == 8
    for run_id in finished_before:  # nothing computed twice
        manifest = RunDir(folder / run_id).read_manifest()
        assert len(manifest["sessions"]) == 1
        assert (folder / run_id / "ideas.parquet").stat().st_mtime_ns == finished_before[run_id]
    reference = tmp_path / "reference"
    run_sweep(Sweep(sc.load(path), reference), engine="local", workers=2, progress=False)
    for run_id in index["run_id"]:  # nothing lost, nothing different
        assert texts(folder / run_id) == texts(reference / run_id)


class CountingServer(ThreadingHTTPServer):
    """An OpenAI-compatible chat endpoint that answers after a pause and records the
    most requests it ever had in flight."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.served = 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        server: CountingServer = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with server.lock:
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        time.sleep(0.03)
        with server.lock:
            server.in_flight -= 1
            server.served += 1
        payload = json.dumps({
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": f"reply {body.get('seed')}"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_one_concurrency_limit_per_server_across_the_sweep(tmp_path):
    server = CountingServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/v1"
        path = scenario_file(tmp_path, model="openai/counted", replicates=1, concurrency=3,
                             extra=f', api_base: "{base}"')
        index = run_sweep(Sweep(sc.load(path), tmp_path / "out"), engine="local", workers=2, progress=False)
        assert set(index["status"]) == {"done"}
        assert server.served == 4 * 4 * 6
        assert 1 < server.max_in_flight <= 3  # two runs at once, each allowed 3, share 3
    finally:
        server.shutdown()
