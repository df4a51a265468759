"""The Ideas page's idea-by-idea similarity heatmap (app/similarity.py): scipy's cluster order,
numpy's cosine similarities, the run's own embeddings when measured, TF-IDF otherwise."""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pytest
from conftest_app import EVIL, make_run
from scipy.cluster.hierarchy import leaves_list, linkage

from app import similarity
from app.data import Results
from app.ui import Notice


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim") / "results"
    root.mkdir()
    make_run(root, "r1")
    return Results(root)


def cosine(X: np.ndarray) -> np.ndarray:
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    return U @ U.T


def sims(frame: pl.DataFrame) -> np.ndarray:
    return frame.select([c for c in frame.columns if c.startswith("sim_")]).to_numpy()


def test_order_is_scipys_leaves_list_and_values_numpys_cosine_on_tfidf(run):
    from analysis.embeddings import TfidfEmbedder

    frame = similarity.heatmap_data(run, "r1", [2, 3])
    ideas = run.valid_ideas("r1").filter(pl.col("step").is_in([2, 3])).sort("step", "agent_id")
    X = TfidfEmbedder().embed(ideas["text"].to_list()).astype(np.float64)
    order = leaves_list(linkage(X, method="average", metric="cosine"))
    assert frame["idea_id"].to_list() == ideas["idea_id"].gather(order).to_list()
    np.testing.assert_allclose(sims(frame), cosine(X)[np.ix_(order, order)], atol=1e-9)
    assert "tfidf" in frame["note"][0] and frame.height == 16


def test_the_runs_own_embeddings_are_used_when_measured(run):
    ideas = run.valid_ideas("r1").filter(pl.col("step") == 4).sort("step", "agent_id")
    texts = ideas["text"].to_list()
    unique = list(dict.fromkeys(texts))
    rng = np.random.default_rng(5)
    vectors = {t: rng.normal(size=16) for t in unique}
    folder = run.run_dir("r1").path / "embeddings"
    folder.mkdir(exist_ok=True)
    pl.DataFrame({"key": [hashlib.sha256(t.encode()).hexdigest() for t in unique],
                  "vector": [vectors[t].astype(np.float32).tolist() for t in unique]},
                 schema={"key": pl.String, "vector": pl.List(pl.Float32)}).write_parquet(folder / "fake.parquet")
    try:
        run.cache.clear()
        frame = similarity.heatmap_data(run, "r1", [])  # the last step by default
        X = np.asarray([vectors[t].astype(np.float32) for t in texts], dtype=np.float64)
        order = leaves_list(linkage(X, method="average", metric="cosine"))
        assert frame["idea_id"].to_list() == ideas["idea_id"].gather(order).to_list()
        np.testing.assert_allclose(sims(frame), cosine(X)[np.ix_(order, order)], atol=1e-9)
        assert "fake embeddings" in frame["note"][0]
    finally:
        (folder / "fake.parquet").unlink()
        run.cache.clear()


def test_ideas_are_capped_with_a_note(run, monkeypatch):
    monkeypatch.setattr(similarity, "MAX_IDEAS", 5)
    run.cache.clear()
    frame = similarity.heatmap_data(run, "r1", [1, 2])
    assert frame.height == 5 and "the first 5 of 16 ideas" in frame["note"][0]
    run.cache.clear()


def test_hover_labels_carry_both_texts_escaped_and_cut():
    frame = pl.DataFrame({"idea_id": ["a", "b"], "step": [1, 1], "agent_id": [0, 1],
                          "text": [EVIL, "x" * 5000], "position": [0, 1], "sim_0": [1.0, 0.2],
                          "sim_1": [0.2, 1.0], "note": ["n", "n"]})
    fig = similarity.heatmap_figure(frame)
    x = list(fig.data[0].x)
    assert "<script>" not in x[0] and "&lt;script&gt;" in x[0] and "<img" not in x[0]
    assert len(x[1]) < 400 and "%{y}" in fig.data[0].hovertemplate and "%{x}" in fig.data[0].hovertemplate


def test_no_ideas_at_that_step_is_a_notice(run):
    with pytest.raises(Notice):
        similarity.heatmap_data(run, "r1", [99])


def test_a_sweep_asks_for_one_of_its_runs(tmp_path):
    from conftest_app import make_sweep

    root = tmp_path / "results"
    root.mkdir()
    make_sweep(root / "sw")
    with pytest.raises(Notice, match="one run of the sweep"):
        similarity.heatmap_data(Results(root), "sw", [])
