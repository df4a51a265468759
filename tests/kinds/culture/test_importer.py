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


@pytest.mark.parametrize("personalities, words", [
    ("creative", r"personality_list must be a list with one personality per agent \(3\), got a str"),
    ("", "personality_list must be a list"),
    ({"0": "creative"}, "personality_list must be a list"),
    (["creative", 3, "calm"], r"personality_list\[1\] must be a string, got 3"),
])
def test_a_personality_list_that_is_not_a_list_of_strings_is_refused(tmp_path, personalities, words):
    with pytest.raises(FormatError, match=words) as err:
        import_llm_culture(write(tmp_path, {**FILE, "personality_list": personalities}), tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_missing_or_null_personality_list_is_unspecified(tmp_path):
    for k, value in enumerate([None, "absent"]):
        data = {key: v for key, v in FILE.items() if key != "personality_list"}
        if value is None:
            data["personality_list"] = None
        run = import_llm_culture(write(tmp_path, data, f"o{k}.json"), tmp_path / f"out{k}")
        assert set(run.ideas()["personality"]) == {"unspecified"}


@pytest.mark.parametrize("cell, words", [
    ("0", "row 0, column 1 is '0'"),
    ("1", "row 0, column 1 is '1'"),
    (None, "row 0, column 1 is None"),
    ([1], r"row 0, column 1 is \[1\]"),
])
def test_adjacency_cells_must_be_numbers_or_booleans(tmp_path, cell, words):
    matrix = [[0, cell, 0], [1, 0, 1], [0, 0, 0]]
    with pytest.raises(FormatError, match=f"adjacency_matrix {words}; a cell must be a number"):
        import_llm_culture(write(tmp_path, {**FILE, "adjacency_matrix": matrix}), tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_string_zero_is_never_an_edge_and_numbers_or_booleans_are_read_as_before(tmp_path):
    all_zero_strings = [["0", "0", "0"], ["0", "0", "0"], ["0", "0", "0"]]
    with pytest.raises(FormatError, match="row 0, column 0 is '0'"):
        import_llm_culture(write(tmp_path, {**FILE, "adjacency_matrix": all_zero_strings}), tmp_path / "out")
    typed = [[False, 1.0, 0.0], [True, 0, 2], [0, 0, False]]  # the same links as FILE's matrix
    run = import_llm_culture(write(tmp_path, {**FILE, "adjacency_matrix": typed}, "typed.json"), tmp_path / "o2")
    edges = pl.read_parquet(run.path / "edges.parquet").sort("source", "target")
    assert edges.rows() == [(0, 1), (1, 0), (1, 2)]


def test_a_prompt_update_string_is_refused_not_read_letter_by_letter(tmp_path):
    with pytest.raises(FormatError, match="prompt_update must be a list of strings"):
        import_llm_culture(write(tmp_path, {**FILE, "prompt_update": "Combine these stories."}), tmp_path / "out")
