"""`culturesim analyze` end to end: a run folder in, metrics.parquet out, values that
agree with the metric functions applied by hand to the same texts."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from analysis import diversity
from analysis.analyze import analyze_run
from analysis.embeddings import make_embedder
from culturesim.kinds.culture.importer import import_llm_culture

STORIES = [
    ["A fox crossed the frozen river at dawn.", "A sailor mended his nets by the harbour.",
     "The old clock tower chimed thirteen times.", "A girl planted a lemon tree on the roof."],
    ["A fox and a sailor crossed the frozen harbour.", "A sailor heard the clock tower chime.",
     "The clock tower stood over a lemon tree.", "A fox slept under the lemon tree."],
    ["A fox and a sailor slept under the clock tower.", "A fox and a sailor slept under the clock tower.",
     "A fox and a sailor slept under the lemon tree.", "A fox and a sailor slept under the clock."],
]


@pytest.fixture()
def run_folder(tmp_path):
    data = {"adjacency_matrix": [[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]],
            "prompt_init": ["Create a story."], "prompt_update": ["Combine these stories."],
            "personality_list": [""] * 4, "stories": STORIES}
    path = tmp_path / "output0.json"
    path.write_text(json.dumps(data))
    return import_llm_culture(path, tmp_path / "runs")


def test_metrics_agree_with_the_functions_applied_by_hand(run_folder):
    embedder = make_embedder("minilm")
    table = analyze_run(run_folder, embedder)
    assert (run_folder.path / "metrics.parquet").is_file()
    assert table["value"].is_finite().all()
    for step, texts in enumerate(STORIES, 1):
        X = embedder.embed(texts)
        got = table.filter(pl.col("step") == step)
        value = dict(zip(got["metric"], got["value"], strict=True))
        assert value["diversity"] == pytest.approx(diversity.mean_pairwise_distance(X), abs=1e-5)
        assert value["vendi_score"] == pytest.approx(diversity.vendi_score(X), abs=1e-4)
        assert value["distinct_2"] == pytest.approx(diversity.distinct_n(texts, 2))
        assert value["n_ideas"] == 4
    div = table.filter(pl.col("metric") == "diversity").sort("step")["value"].to_list()
    assert div[2] < div[0]  # the hand-made stories converge
    slope = table.filter(pl.col("metric") == "diversity_slope")["value"][0]
    assert slope == pytest.approx(np.polyfit([1, 2, 3], div, 1)[0], abs=1e-9)
    assert table.filter(pl.col("metric") == "similarity_to_previous")["step"].min() == 2
    assert set(table["run_id"]) == {run_folder.run_id} and set(table["embedder"]) == {"minilm"}


def test_cli_analyze_folder_of_runs_uses_the_embedding_cache(run_folder, tmp_path):
    cmd = [sys.executable, "-m", "culturesim.cli", "analyze", str(run_folder.path.parent), "--resample", "3",
           "--repeats", "5"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert run_folder.run_id in first.stdout
    cache = list((run_folder.path / "embeddings").glob("*.parquet"))
    assert len(cache) == 1
    stamp = cache[0].stat().st_mtime_ns
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0 and cache[0].stat().st_mtime_ns == stamp  # nothing re-embedded
    metrics = pl.read_parquet(run_folder.path / "metrics.parquet")
    assert "diversity_m3" in set(metrics["metric"])


def test_cli_analyze_errors(tmp_path):
    empty = subprocess.run([sys.executable, "-m", "culturesim.cli", "analyze", str(tmp_path)],
                           capture_output=True, text=True)
    assert empty.returncode == 2 and "no run folders" in empty.stderr
    bad = subprocess.run([sys.executable, "-m", "culturesim.cli", "analyze", str(tmp_path), "--embedder", "bert"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown embedder" in bad.stderr


def test_a_second_embedder_adds_rows_and_keeps_the_first(run_folder):
    analyze_run(run_folder, make_embedder("minilm"))
    analyze_run(run_folder, make_embedder("tfidf"))
    analyze_run(run_folder, make_embedder("tfidf"))  # again: replaces its own rows, no duplicates
    metrics = pl.read_parquet(run_folder.path / "metrics.parquet")
    assert set(metrics["embedder"]) == {"minilm", "tfidf"}
    # the creativity index needs a word space: MiniLM has one, TF-IDF none; every other metric is in both
    word_space = metrics.filter(pl.col("metric") == "creativity_index")
    assert set(word_space["embedder"]) == {"minilm"}
    per = metrics.filter(pl.col("metric") != "creativity_index").group_by("embedder").len().sort("embedder")
    assert per["len"][0] == per["len"][1]


def test_texts_without_a_tfidf_direction_are_counted_not_fatal(tmp_path):
    data = {"adjacency_matrix": [[0, 1], [1, 0]], "prompt_update": ["Combine."],
            "stories": [["a fox ran", "a"], ["a fox ran far", "the fox ran"]]}
    path = tmp_path / "output0.json"
    path.write_text(json.dumps(data))
    run = import_llm_culture(path, tmp_path / "runs")
    table = analyze_run(run, make_embedder("tfidf"))  # "a" is not a TF-IDF token: a zero vector
    assert table.filter(pl.col("metric") == "unembeddable_ideas")["value"].to_list() == [1.0]
    assert table["value"].is_finite().all()


def _truncate(path):
    """Half the bytes of a real Parquet file: what a crash or a full disk leaves behind."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("victim", ["ideas.parquet", "steps/00002.parquet"])
def test_a_truncated_ideas_file_is_named_in_one_line(run_folder, victim, capsys):
    from culturesim.cli import main
    from culturesim.store import RunError

    if victim.startswith("steps/"):  # a run not compacted yet: the step parts are what is read
        (run_folder.path / "ideas.parquet").unlink()
    _truncate(run_folder.path / victim)
    with pytest.raises(RunError) as err:
        analyze_run(run_folder, make_embedder("tfidf"))
    message = str(err.value)
    assert str(run_folder.path / victim) in message and "unreadable Parquet" in message and "\n" not in message
    assert main(["analyze", str(run_folder.path.parent), "--embedder", "tfidf", "--quiet"]) == 2
    printed = capsys.readouterr().err
    assert str(run_folder.path / victim) in printed and "Traceback" not in printed


def test_a_truncated_sweep_index_is_named(run_folder):
    from culturesim.store import RunError

    index = run_folder.path.parent / "sweep.parquet"
    pl.DataFrame({"run_id": [run_folder.run_id], "status": ["done"], "error": [None], "seed": [0],
                  "temperature": [0.7]}).write_parquet(index)
    assert analyze_run(run_folder, make_embedder("tfidf"))["temperature"].unique().to_list() == [0.7]
    _truncate(index)
    with pytest.raises(RunError, match="sweep.parquet: unreadable Parquet"):
        analyze_run(run_folder, make_embedder("tfidf"))


def test_a_truncated_metrics_file_is_replaced_on_reanalysis(run_folder):
    first = analyze_run(run_folder, make_embedder("tfidf"))
    metrics = run_folder.path / "metrics.parquet"
    _truncate(metrics)
    again = analyze_run(run_folder, make_embedder("tfidf"))
    assert again.equals(first)
    assert pl.read_parquet(metrics).sort("step", "metric", nulls_last=True).equals(first)


def test_a_truncated_embedding_cache_is_rebuilt(run_folder):
    embedder = make_embedder("tfidf")
    embedder.cacheable = True  # exercise the cache whichever embedder allows it
    first = analyze_run(run_folder, embedder)
    caches = list((run_folder.path / "embeddings").glob("*.parquet"))
    assert len(caches) == 1
    _truncate(caches[0])
    assert analyze_run(run_folder, embedder).equals(first)
    assert pl.read_parquet(caches[0]).height > 0
