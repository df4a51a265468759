"""Run folders written before kinds moved into their own folders still open and resume.

tests/data/runs_v0_1/ holds two runs written by culturesim 0.1 as it was before the move
(commit 456d064): a culture run on the ``echo/`` stand-in model (resumed by restoring its
recorded ideas) and a GARD run (resumed by replaying its seed). Each is cut back to its
first two steps, as a kill would leave it, and resumed by today's code: every table must
come out as the old code wrote it. The app must list and read them too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from culturesim import runner
from culturesim.store import RunDir

OLD = Path(__file__).resolve().parent / "data" / "runs_v0_1"
TIMINGS = {"latency_s"}  # wall-clock, not results


def cut_back(run: Path, keep: int) -> None:
    """What a kill after step ``keep`` leaves: no compacted tables, no later step parts."""
    for table in run.glob("*.parquet"):
        if table.stem not in ("agents", "edges"):
            table.unlink()
    for part in run.glob("*/*.parquet"):
        if int(part.stem) > keep:
            part.unlink()
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.update(status="interrupted", ended_at=None)
    manifest["steps_completed"] = keep - manifest["first_step"] + 1
    (run / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", ["culture-v0", "gard-v0"])
def test_an_old_run_resumes_to_the_tables_the_old_code_wrote(name, tmp_path):
    shutil.copytree(OLD / name, tmp_path / name)
    expected = {p.stem: pl.read_parquet(p) for p in (OLD / name).glob("*.parquet")}
    cut_back(tmp_path / name, keep=2)
    run = runner.resume(tmp_path / name, show_progress=False)
    assert run.read_manifest()["status"] == "done"
    got = {p.stem: pl.read_parquet(p) for p in run.path.glob("*.parquet")}
    assert set(got) == set(expected)
    for table, frame in expected.items():
        columns = [c for c in frame.columns if c not in TIMINGS]
        assert got[table].columns == frame.columns, table
        assert got[table].select(columns).equals(frame.select(columns)), table
    assert RunDir(run.path).idea_counts() == json.loads((OLD / name / "manifest.json").read_text())["counts"]


def test_old_runs_open_in_the_app(tmp_path):
    from app.data import Results
    from app.kinds import load_kind_views, sections_for

    shutil.copytree(OLD, tmp_path / "results")
    load_kind_views()
    res = Results(tmp_path / "results")
    entries = {e.id: e for e in res.runs()}
    assert set(entries) == {"culture-v0", "gard-v0"}
    assert all(e.status == "done" and e.error is None for e in entries.values())
    assert res.valid_ideas("culture-v0").height == 6 * 3
    assert res.table("gard-v0", "assemblies").height > 0
    assert sections_for("gard")
