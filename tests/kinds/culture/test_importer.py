"""LLM-Culture result files become run folders with lineage rebuilt from the network."""

from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest

from culturesim.kinds.culture.importer import FormatError, import_llm_culture
from culturesim.store import RunError

# a directed 3-agent example: 0 <-> 1, 1 -> 2 (agent 2 reads agent 1 only)
FILE = {
    "adjacency_matrix": [[0, 1, 0], [1, 0, 1], [0, 0, 0]],
    "prompt_init": ["Create a story."],
    "prompt_update": ["Combine these stories."],
    "personality_list": [" ", "creative", ""],
    "stories": [["A fox.", "A boat.", "A tree."], ["A fox on a boat.", "A boat near a fox.", "A boat."]],
}


def write(tmp_path, data, name="output0.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_import_rebuilds_lineage_from_the_adjacency_matrix(tmp_path):
    run = import_llm_culture(write(tmp_path, FILE), tmp_path / "out")
    ideas = run.ideas().sort("step", "agent_id")
    assert ideas.height == 6
    assert ideas["text"].to_list() == FILE["stories"][0] + FILE["stories"][1]
    parents = dict(zip(ideas["idea_id"], ideas["parent_ids"].to_list(), strict=True))
    assert parents["s1-a0"] == [] and parents["s2-a0"] == ["s1-a1"]
    assert parents["s2-a1"] == ["s1-a0"] and parents["s2-a2"] == ["s1-a1"]
    assert ideas.filter(pl.col("step") == 2)["operation"].unique().to_list() == ["combine"]
    assert ideas["personality"].to_list()[:3] == ["unspecified", "creative", "unspecified"]
    edges = pl.read_parquet(run.path / "edges.parquet").sort("source", "target")
    assert edges.rows() == [(0, 1), (1, 0), (1, 2)]
    manifest = run.read_manifest()
    assert manifest["status"] == "done" and manifest["steps_completed"] == 2
    assert manifest["imported_from"]["format"] == "llm-culture"


@pytest.mark.parametrize("data,words", [
    ("not json", "not JSON"),
    ([1, 2], "JSON object"),
    ({"stories": [["a"]]}, "adjacency_matrix"),
    ({**FILE, "adjacency_matrix": [[0, 1], [1, 0, 0]]}, "square"),
    ({**FILE, "stories": [["a", "b"]]}, "stories[0]"),
    ({**FILE, "stories": []}, "non-empty"),
])
def test_bad_files_get_clear_errors(tmp_path, data, words):
    with pytest.raises(FormatError, match=words.replace("[", r"\[").replace("]", r"\]")):
        import_llm_culture(write(tmp_path, data), tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_import_never_overwrites_and_cli_exit_codes(tmp_path):
    path = write(tmp_path, FILE)
    import_llm_culture(path, tmp_path / "out")
    with pytest.raises(RunError):
        import_llm_culture(path, tmp_path / "out")
    bad = write(tmp_path, "{", "broken.json")
    done = subprocess.run([sys.executable, "-m", "culturesim.cli", "import", "llm-culture", str(bad),
                           "--out", str(tmp_path / "o2")], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("error:") and "Traceback" not in done.stderr
