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


def test_one_step_against_another_rows_and_columns_each_in_their_own_cluster_order(run):
    """Rows: step 2's ideas; columns: step 4's; one TF-IDF space fitted on both; values are
    sklearn's cosine_similarity, orders scipy's leaves_list of each step on its own."""
    from sklearn.metrics.pairwise import cosine_similarity

    from analysis.embeddings import TfidfEmbedder

    run.cache.clear()
    frame = similarity.heatmap_data(run, "r1", [2], against=4)
    ideas = run.valid_ideas("r1").sort("step", "agent_id")
    a, b = ideas.filter(pl.col("step") == 2), ideas.filter(pl.col("step") == 4)
    X = TfidfEmbedder().embed(a["text"].to_list() + b["text"].to_list()).astype(np.float64)
    Xa, Xb = X[: a.height], X[a.height:]
    order_a = leaves_list(linkage(Xa, method="average", metric="cosine"))
    order_b = leaves_list(linkage(Xb, method="average", metric="cosine"))
    rows, cols = frame.filter(pl.col("side") == "row"), frame.filter(pl.col("side") == "column")
    assert rows["idea_id"].to_list() == a["idea_id"].gather(order_a).to_list()
    assert cols["idea_id"].to_list() == b["idea_id"].gather(order_b).to_list()
    assert rows["position"].to_list() == list(range(a.height)) and cols["position"].to_list() == list(range(b.height))
    np.testing.assert_allclose(sims(rows), cosine_similarity(Xa, Xb)[np.ix_(order_a, order_b)], atol=1e-9)
    assert all(cols[c].null_count() == cols.height for c in cols.columns if c.startswith("sim_"))
    assert "step 2 (8 ideas, rows) against step 4 (8 ideas, columns)" in frame["note"][0]

    fig = similarity.heatmap_figure(frame)
    heat = fig.data[0]
    assert np.asarray(heat.z).shape == (a.height, b.height)
    assert all("step 2" in y for y in heat.y) and all("step 4" in x for x in heat.x)
    assert "%{y}" in heat.hovertemplate and "%{x}" in heat.hovertemplate
    # a step against itself: the same order on both sides, so ones on the diagonal, symmetric
    itself = similarity.heatmap_data(run, "r1", [3], against=3)
    square = sims(itself.filter(pl.col("side") == "row"))
    assert itself.filter(pl.col("side") == "row")["idea_id"].to_list() == \
        itself.filter(pl.col("side") == "column")["idea_id"].to_list()
    np.testing.assert_allclose(np.diag(square), 1.0, atol=1e-9)
    np.testing.assert_allclose(square, square.T, atol=1e-12)
    with pytest.raises(Notice, match="No ideas at step 99"):
        similarity.heatmap_data(run, "r1", [2], against=99)
    run.cache.clear()
