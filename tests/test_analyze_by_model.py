"""Metrics split by model: `culturesim analyze --by model` measures each model of a mixed
population apart (rows with a `model` column; the whole population's rows keep a null there),
and the Diversity page draws a line per run and model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from analysis import diversity
from analysis.analyze import analyze_run, whole_population
from analysis.embeddings import make_embedder
from culturesim import runner
from culturesim import scenario as sc

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def mixed_run(tmp_path):
    data = {"kind": "culture", "name": "mixed", "seed": 2, "steps": 2,
            "population": {"size": 6}, "network": {"topology": "complete"},
            "llm": {"model": "echo/a", "max_tokens": 12},
            "groups": {"b": {"ids": [0, 2, 4], "llm": {"model": "echo/b"}}},
            "output": {"run_id": "mixed"}}
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(data))
    return runner.start(sc.load(path), out=tmp_path / "runs", show_progress=False)


def test_each_model_is_measured_on_its_own_ideas(mixed_run):
    embedder = make_embedder("minilm")
    table = analyze_run(mixed_run, embedder, by="model")
    ideas = mixed_run.ideas()
    for model, ids in (("echo/a", [1, 3, 5]), ("echo/b", [0, 2, 4])):
        for step in (1, 2):
            texts = ideas.filter((pl.col("step") == step) & pl.col("agent_id").is_in(ids)).sort("agent_id")["text"]
            got = table.filter((pl.col("model") == model) & (pl.col("step") == step))
            value = dict(zip(got["metric"], got["value"], strict=True))
            assert value["n_ideas"] == 3
            assert value["diversity"] == pytest.approx(
                diversity.mean_pairwise_distance(embedder.embed(texts.to_list())), abs=1e-5)
    whole = whole_population(table)
    assert whole.filter(pl.col("metric") == "n_ideas")["value"].to_list() == [6.0, 6.0]
    assert set(table["model"].drop_nulls()) == {"echo/a", "echo/b"}
    assert pl.read_parquet(mixed_run.path / "metrics.parquet").height == table.height
    with pytest.raises(ValueError, match="--by 'colour'"):
        analyze_run(mixed_run, embedder, by="colour")


def test_cli_by_model_and_a_later_plain_analysis(mixed_run):
    cmd = [sys.executable, "-m", "culturesim.cli", "analyze", str(mixed_run.path), "--embedder", "tfidf", "-q"]
    done = subprocess.run([*cmd, "--by", "model"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    metrics = pl.read_parquet(mixed_run.path / "metrics.parquet")
    assert set(metrics["model"].drop_nulls()) == {"echo/a", "echo/b"}
    # measuring the same run in another space without --by keeps the first space's rows
    done = subprocess.run([*cmd[:-3], "--embedder", "minilm", "-q"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    metrics = pl.read_parquet(mixed_run.path / "metrics.parquet")
    assert set(metrics["embedder"]) == {"tfidf", "minilm"}
    assert metrics.filter(pl.col("embedder") == "minilm")["model"].null_count() == \
        metrics.filter(pl.col("embedder") == "minilm").height


def test_diversity_page_draws_a_line_per_run_and_model(monkeypatch):
    from app.pages import diversity as page

    rows = [{"run_id": "r", "condition": "", "embedder": "minilm", "step": s, "metric": "diversity",
             "value": v, "model": m} for s in (1, 2) for m, v in ((None, 0.5), ("echo/a", 0.4), ("echo/b", 0.6))]
    monkeypatch.setattr(page, "long_metrics", lambda sources: (pl.DataFrame(rows), []))
    per_model = page.data(["r"], ["diversity"], "model", "minilm")
    assert sorted(set(per_model["line"])) == ["r · echo/a", "r · echo/b"]
    fig = page.figure(per_model, ["r"], ["diversity"], "model", "minilm")
    assert sorted(t.name for t in fig.data) == ["r · echo/a", "r · echo/b"]
    per_run = page.data(["r"], ["diversity"], "run", "minilm")
    assert per_run["value"].to_list() == [0.5, 0.5]  # the whole population only
