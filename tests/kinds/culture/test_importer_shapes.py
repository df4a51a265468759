"""Every shape of file LLM-Culture's results folders hold: chains and networks import, the
analysis files beside them are refused in one line (exit 2 from the CLI)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from culturesim.kinds.culture.importer import FormatError, import_llm_culture

DATA = Path(__file__).parents[2] / "data" / "llm-culture"


def test_a_chain_has_one_story_per_generation_each_from_the_one_before(tmp_path):
    run = import_llm_culture(DATA / "chain_output0.json", tmp_path / "out")
    ideas = run.ideas().sort("step")
    stories = json.loads((DATA / "chain_output0.json").read_text())["stories"]
    assert ideas["step"].to_list() == [1, 2, 3]  # the trailing empty generation is no step
    assert ideas["agent_id"].to_list() == [0, 1, 2]
    assert ideas["text"].to_list() == [g[0] for g in stories[:3]]
    assert ideas["parent_ids"].to_list() == [[], ["s1-a0"], ["s2-a1"]]
    assert ideas["operation"].to_list() == ["create", "transform", "transform"]
    agents = pl.read_parquet(run.path / "agents.parquet").sort("agent_id")
    assert agents["chain_position"].to_list() == [0, 1, 2]
    edges = pl.read_parquet(run.path / "edges.parquet").sort("source")
    assert edges.rows() == [(0, 1), (1, 2)]
    manifest = run.read_manifest()
    assert manifest["imported_from"]["shape"] == "chain" and manifest["steps_completed"] == 3


def test_a_network_has_one_story_per_agent_and_generation(tmp_path):
    run = import_llm_culture(DATA / "network_output0.json", tmp_path / "out")
    ideas = run.ideas().sort("step", "agent_id")
    assert ideas.height == 6 and ideas["agent_id"].to_list() == [0, 1, 2, 0, 1, 2]
    assert sorted(ideas.filter(pl.col("idea_id") == "s2-a0")["parent_ids"].to_list()[0]) == ["s1-a1", "s1-a2"]
    assert ideas.filter(pl.col("step") == 2)["operation"].unique().to_list() == ["combine"]
    assert run.read_manifest()["imported_from"]["shape"] == "network"


def chain(**changes) -> dict:
    return {**json.loads((DATA / "chain_output0.json").read_text()), **changes}


@pytest.mark.parametrize("data, words", [
    (chain(stories=[["a"], ["b"], ["c"], ["d"]]), "4 generations of one story, more than the chain's 3 agents"),
    (chain(stories=[["a", "b", "c"], ["d"]]), r"stories\[1\] has 1 stories, expected one per agent \(3\)"),
    (chain(stories=[["a"], [], ["c"]]), r"stories\[0\] has 1 stories"),
    ({"directed": False, "nodes": [], "links": []}, "analysis file"),
    ([[0, 1], [2, 3]], "got a list"),
    (chain(stories=[["a"], [{"text": "b"}]]), r"stories\[1\]\[0\] must be a story \(a string\), got \{'text'"),
])
def test_files_of_the_wrong_shape_are_refused_in_one_line(tmp_path, data, words):
    path = tmp_path / "output0.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError, match=words) as err:
        import_llm_culture(path, tmp_path / "out")
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_pickled_creativity_cache_is_named_for_what_it_is(tmp_path):
    path = tmp_path / "creativities0.obj"
    path.write_bytes(b"\x80\x04\x95\x00\x00")
    with pytest.raises(FormatError, match="pickled LLM-Culture analysis cache"):
        import_llm_culture(path, tmp_path / "out")


@pytest.mark.parametrize("name", ["graph.json", "creativities0.obj", "folder"])
def test_the_cli_says_one_line_and_exits_2_for_a_bad_file(tmp_path, name):
    bad = tmp_path / name
    if name == "folder":
        bad.mkdir()
    elif name.endswith(".obj"):
        bad.write_bytes(b"\x80\x04\x95")
    else:
        shutil.copy(DATA / name, bad)
    done = subprocess.run([sys.executable, "-m", "culturesim.cli", "import", "llm-culture", str(bad),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error:") and str(bad) in done.stderr
