"""Run folders under stress (issue 18): two writers racing for one run id, sweep names that
point outside the results folder, step files gone missing, manifests that are not manifests,
many processes on one reply cache, and a SIGTERM in the middle of a run. Each ends in one
clear line or a consistent folder, never a mixed run or a raw traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from culturesim import cli, runner
from culturesim import scenario as sc
from culturesim.store import RunDir, RunError, list_runs

ROOT = Path(__file__).resolve().parents[1]


def scenario_data(**changes) -> dict:
    data = {
        "kind": "culture", "name": "hostile", "seed": 1, "steps": 3,
        "population": {"size": 4}, "network": {"topology": "ring"},
        "llm": {"model": "echo/x"}, "output": {"run_id": "same"},
    }
    data.update(changes)
    return data


def write_scenario(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump(scenario_data(**changes)))
    return path


def make_run(out: Path, **changes) -> RunDir:
    return runner.start(sc.validate_data(scenario_data(**changes), "test"), out=out, show_progress=False)


def one_line(err: str, *words: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    assert all(w in lines[0] for w in words), (words, lines[0])
    return lines[0]


def texts(run: RunDir) -> list[tuple]:
    return sorted(run.ideas().select("step", "agent_id", "text").rows())


# ------------------------------------------------------------------------------ 6. one reply cache, many writers

# Each round opens the cache afresh, as each run of a sweep does, and the processes start
# together on a new file: opening (WAL, the table) and writing all meet other writers.
CACHE_WRITER = """
import os, sys, time
from pathlib import Path
from culturesim.llm.cache import ResponseCache
from culturesim.llm.types import Reply
path, who, rounds, go = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
while not os.path.exists(go):
    time.sleep(0.001)
for i in range(rounds):
    cache = ResponseCache(path)
    keys = [f"{who}-{i}-{j}" for j in range(5)]
    cache.put_many([(k, Reply(text=k, model="echo/x")) for k in keys])
    got = cache.get_many(keys + [f"{(who + 1) % WRITERS}-{i}-0"])
    assert all(got[k].text == k for k in keys), (who, i)
    cache.close()
"""
WRITERS, ROUNDS = 6, 300


@pytest.mark.parametrize("attempt", range(3))  # the lock is met by chance: three fresh files
def test_many_processes_share_one_reply_cache(tmp_path, attempt):
    path, go = tmp_path / ".cache" / "llm.sqlite", tmp_path / "go"
    code = CACHE_WRITER.replace("WRITERS", str(WRITERS))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), str(who), str(ROUNDS), str(go)], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True) for who in range(WRITERS)]
    time.sleep(2)
    go.touch()
    errors = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
    assert all(code == 0 for code, _ in errors), [err[-300:] for _, err in errors]
    from culturesim.llm.cache import ResponseCache

    cache = ResponseCache(path)
    keys = [f"{who}-{i}-{j}" for who in range(WRITERS) for i in range(ROUNDS) for j in range(5)]
    found = cache.get_many(keys)
    cache.close()
    assert len(found) == len(keys) and all(found[k].text == k for k in keys)
