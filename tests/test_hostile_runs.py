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


# ------------------------------------------------------------------------------ 2, 3. sweep folder and workers


@pytest.mark.parametrize("name", ["../../escaped", "ABSOLUTE"])
def test_a_sweep_folder_stays_inside_output_dir_whatever_the_name(tmp_path, name, capsys):
    outside = tmp_path / "elsewhere"
    name = str(outside / "abs") if name == "ABSOLUTE" else name
    results = tmp_path / "a" / "b" / "results"
    scenario = write_scenario(tmp_path, name=name, steps=1, output={"dir": str(results)},
                              sweep={"grid": {"culture.operation": ["combine"]}})
    code = cli.main(["sweep", str(scenario), "-q"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    [sweep_json] = list(tmp_path.rglob("sweep.json"))
    assert sweep_json.resolve().is_relative_to(results.resolve()), sweep_json
    assert sweep_json.parent.parent.resolve() == results.resolve()
    assert not outside.exists() and not (tmp_path / "escaped-sweep").exists()


def test_a_run_id_and_a_sweep_folder_are_made_safe_by_one_helper():
    from culturesim.store import safe_name

    for name in ("../../x", "/etc/passwd", "..", "", "a b/c"):
        safe = safe_name(name)
        assert "/" not in safe and safe not in ("", ".", "..") and not safe.startswith(".")
        assert runner.new_run_id(name).startswith(safe + "-")


@pytest.mark.parametrize("workers", ["0", "-3"])
def test_workers_below_one_is_refused_before_anything_is_written(tmp_path, workers, capsys):
    folder = tmp_path / "sweep"
    scenario = write_scenario(tmp_path, sweep={"grid": {"culture.operation": ["combine"]}})
    code = cli.main(["sweep", str(scenario), "--out", str(folder), "--workers", workers, "-q"])
    assert code == 2
    one_line(capsys.readouterr().err, "--workers")
    assert not folder.exists()


# ------------------------------------------------------------------------------ 5. unreadable manifests

BAD_MANIFESTS = {
    "list": b"[1, 2, 3]",
    "bytes": bytes(range(256)),
    "not-json": b"{not json",
    "number": b"42",
}


@pytest.mark.parametrize("kind", sorted(BAD_MANIFESTS))
def test_read_manifest_of_a_bad_file_is_one_line_run_error(tmp_path, kind):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_bytes(BAD_MANIFESTS[kind])
    with pytest.raises(RunError) as caught:
        RunDir(tmp_path / "bad").read_manifest()
    assert "unreadable manifest" in str(caught.value) and "\n" not in str(caught.value)


def results_with_bad_manifests(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    make_run(out)
    for kind, content in BAD_MANIFESTS.items():
        (out / kind).mkdir()
        (out / kind / "manifest.json").write_bytes(content)
    return out


def test_runs_lists_the_good_run_and_each_unreadable_one(tmp_path, capsys):
    out = results_with_bad_manifests(tmp_path)
    listed = {run.run_id: m for run, m in list_runs(out)}
    assert listed["same"]["status"] == "done"
    for kind in BAD_MANIFESTS:
        assert listed[kind]["status"] == "unreadable" and "unreadable manifest" in listed[kind]["error"]
    assert cli.main(["runs", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "same" in printed and printed.count("unreadable:") == len(BAD_MANIFESTS)
    for kind in BAD_MANIFESTS:
        assert str(out / kind / "manifest.json") in printed


def test_report_skips_unreadable_runs_with_a_warning(tmp_path, capsys):
    out = results_with_bad_manifests(tmp_path)
    code = cli.main(["report", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err  # no run of a reported kind: said in one line
    assert err.count("warning: skipped") == len(BAD_MANIFESTS)
    assert "no run of a reported kind" in err


@pytest.mark.parametrize("content", [BAD_MANIFESTS["bytes"], BAD_MANIFESTS["list"], b'{"status": "running"}',
                                     b'{"kind": "culture"}'])
def test_resume_of_a_bad_manifest_is_one_line(tmp_path, content, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_bytes(content)
    assert cli.main(["run", "--resume", str(tmp_path / "bad"), "-q"]) == 2
    one_line(capsys.readouterr().err, "manifest")


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
