"""Idea-by-idea similarity: one step's (or two steps') ideas of a run as a heatmap of cosine
similarities, rows and columns in the leaf order of a hierarchical clustering; or, "against"
another step, step A's ideas (rows) by step B's ideas (columns), each side in the leaf order
of its own clustering, so a block shows which of A's clusters B kept, merged or lost.

Vectors: the run's own embeddings when it was measured with a cached embedder (MiniLM and the
like write ``<run>/embeddings/<name>.parquet``, keyed by the text's SHA-256, which
``culturesim analyze`` fills) and every shown text is there; else TF-IDF fitted on the shown
texts, on the fly (``analysis.embeddings.TfidfEmbedder``). Clustering: scipy's average
linkage on cosine distance (``linkage(X, "average", metric="cosine")``, ``leaves_list``); a
text with no direction (no TF-IDF word) would make cosine distance undefined, so such
ideas are left out and counted in the note. At most ``MAX_IDEAS`` ideas are shown on a side
(the first of the step in agent order; a note says so): the matrix grows with the square.
Against another step, both sides share one space: the run's cached vectors when they hold
both steps' texts, else TF-IDF fitted on both steps' texts together.

The frame is what is drawn and what the CSV holds: one row per shown idea with its
``position`` and its similarities ``sim_<j>`` to the idea at column ``j``; against another
step, a ``side`` column says ``row`` (step A, with its similarities) or ``column`` (step B,
whose ``position`` is its column ``j``; no similarities of its own).

Hover labels carry both texts (escaped and cut by ``app.ui.hover_text``) through the axes'
category labels, one label per idea, so the page ships n labels, not n² texts.
"""

from __future__ import annotations

import hashlib

import numpy as np
import plotly.graph_objects as go
import polars as pl

from app.ui import Notice, hover_text

MAX_IDEAS = 300
HOVER_CHARS = 240


def unit_rows(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)


def cluster_order(X: np.ndarray) -> np.ndarray:
    """Leaf order of an average-linkage clustering on cosine distance."""
    from scipy.cluster.hierarchy import leaves_list, linkage

    if X.shape[0] < 2:
        return np.arange(X.shape[0])
    return leaves_list(linkage(np.asarray(X, dtype=np.float64), method="average", metric="cosine"))


def ordered_similarity(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, cosine similarity matrix with rows and columns in that order)."""
    order = cluster_order(X)
    U = unit_rows(np.asarray(X, dtype=np.float64))[order]
    return order, np.clip(U @ U.T, -1.0, 1.0)


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_vectors(res, rid: str, texts: list[str]) -> tuple[np.ndarray | None, str]:
    """(vectors, embedder name) from the run's embeddings cache when it holds every text."""
    folder = res.run_dir(rid).path / "embeddings"
    if not folder.is_dir():
        return None, ""
    wanted = {_key(t) for t in texts}
    for path in sorted(folder.glob("*.parquet")):
        try:
            cached = res.read_parquet(path)
        except Exception:  # noqa: BLE001 - a cache only: unreadable means not measured
            continue
        if not {"key", "vector"} <= set(cached.columns):
            continue
        cached = cached.filter(pl.col("key").is_in(list(wanted)))
        known = dict(zip(cached["key"].to_list(), cached["vector"].to_list(), strict=True))
        if wanted <= known.keys():
            return np.asarray([known[_key(t)] for t in texts], dtype=np.float64), path.stem
    return None, ""


def _vectors(res, rid: str, texts: list[str], notes: list[str], fallback: str):
    """The run's vectors of ``texts`` (TF-IDF fitted on them when the run has none), their
    embedder's name, and which have a direction (a text of no known word has none)."""
    from analysis.embeddings import TfidfEmbedder

    X, embedder = run_vectors(res, rid, texts)
    if X is None:
        X, embedder = TfidfEmbedder().embed(texts).astype(np.float64), fallback
    keep = np.linalg.norm(X, axis=1) > 0
    if not keep.all():
        notes.append(f"{int((~keep).sum())} ideas without a direction left out")
    return X, embedder, keep


def heatmap_data(res, rid: str | None, steps: list[int], against: int | None = None) -> pl.DataFrame:
    """The ideas shown (in cluster order) with their similarity rows (``sim_<position>``) and
    a ``note`` column saying what is shown (the CSV holds exactly what is drawn). With
    ``against`` (a step), rows are the ideas of ``steps`` and columns those of ``against``."""
    steps = sorted({int(s) for s in steps if s is not None})
    if not rid:
        raise Notice("Choose a run.")
    if res.is_sweep(rid):
        raise Notice("Choose one run of the sweep for the similarity heatmap.")
    if against is None:
        return res.cache.get(("similarity", rid, tuple(steps)), res.ideas_token(rid),
                             lambda: _heatmap(res, rid, steps))
    against = int(against)
    return res.cache.get(("similarity", rid, tuple(steps), against), res.ideas_token(rid),
                         lambda: _against(res, rid, steps, against))


def _capped(ideas: pl.DataFrame, what: str, notes: list[str]) -> pl.DataFrame:
    if ideas.height > MAX_IDEAS:
        notes.append(f"{what}: the first {MAX_IDEAS} of {ideas.height} ideas (by step and agent)")
        return ideas.head(MAX_IDEAS)
    return ideas


def _against(res, rid: str, steps: list[int], against: int) -> pl.DataFrame:
    """Rows: the ideas of ``steps``; columns: the ideas of step ``against``; one space for both."""
    ideas = res.valid_ideas(rid)
    if not steps:
        if not ideas.height:
            raise Notice("No ideas yet.")
        steps = [int(ideas["step"].max())]
    notes: list[str] = []
    rows = _capped(ideas.filter(pl.col("step").is_in(steps)).sort("step", "agent_id"), "rows", notes)
    cols = _capped(ideas.filter(pl.col("step") == against).sort("step", "agent_id"), "columns", notes)
    label = " and ".join(map(str, steps))
    if rows.is_empty() or cols.is_empty():
        raise Notice(f"No ideas at step {label if rows.is_empty() else against}.")
    texts = rows["text"].to_list() + cols["text"].to_list()
    X, embedder, keep = _vectors(res, rid, texts, notes, "tfidf (on the fly, both steps)")
    keep_rows, keep_cols = keep[: rows.height], keep[rows.height:]
    rows, cols = rows.filter(pl.Series(keep_rows)), cols.filter(pl.Series(keep_cols))
    Xr, Xc = X[: len(keep_rows)][keep_rows], X[len(keep_rows):][keep_cols]
    if rows.is_empty() or cols.is_empty():
        raise Notice("No ideas with words to compare on one of the two steps.")
    order_r, order_c = cluster_order(Xr), cluster_order(Xc)
    S = np.clip(unit_rows(Xr)[order_r] @ unit_rows(Xc)[order_c].T, -1.0, 1.0)
    columns = ["idea_id", "step", "agent_id", "text"]
    shown_rows = rows.select(columns)[order_r.tolist()].with_columns(
        pl.lit("row").alias("side"), pl.Series("position", np.arange(len(order_r))),
        *(pl.Series(f"sim_{j}", S[:, j]) for j in range(len(order_c))))
    shown_cols = cols.select(columns)[order_c.tolist()].with_columns(
        pl.lit("column").alias("side"), pl.Series("position", np.arange(len(order_c))))
    note = (f"step {label} ({len(order_r)} ideas, rows) against step {against} ({len(order_c)} ideas, columns), "
            f"{embedder} embeddings, average-linkage clusters per step" + (f"; {'; '.join(notes)}" if notes else ""))
    return pl.concat([shown_rows, shown_cols], how="diagonal_relaxed").with_columns(pl.lit(note).alias("note"))


def _heatmap(res, rid: str, steps: list[int]) -> pl.DataFrame:
    ideas = res.valid_ideas(rid)
    if not steps:
        if not ideas.height:
            raise Notice("No ideas yet.")
        steps = [int(ideas["step"].max())]  # the last step
    ideas = ideas.filter(pl.col("step").is_in(steps)).sort("step", "agent_id")
    notes = []
    if ideas.height > MAX_IDEAS:
        notes.append(f"the first {MAX_IDEAS} of {ideas.height} ideas (by step and agent)")
        ideas = ideas.head(MAX_IDEAS)
    if ideas.height < 2:
        raise Notice(f"Fewer than two ideas at step {', '.join(map(str, steps))}.")
    texts = ideas["text"].to_list()
    X, embedder, keep = _vectors(res, rid, texts, notes, "tfidf (on the fly)")
    if not keep.all():
        ideas, X = ideas.filter(pl.Series(keep)), X[keep]
    if ideas.height < 2:
        raise Notice("Fewer than two ideas with words to compare.")
    order, S = ordered_similarity(X)
    shown = ideas.select("idea_id", "step", "agent_id", "text")[order.tolist()]
    frame = shown.with_columns(pl.Series("position", np.arange(len(order)))).with_columns(
        pl.Series(f"sim_{i}", S[:, i]) for i in range(len(order)))
    note = (f"step {' and '.join(map(str, steps))}: {len(order)} ideas, {embedder} embeddings, "
            f"average-linkage clusters" + (f"; {'; '.join(notes)}" if notes else ""))
    return frame.with_columns(pl.lit(note).alias("note"))


def _labels(frame: pl.DataFrame) -> list[str]:
    return [f"#{r['position']} {hover_text(r['idea_id'])} · step {r['step']} · agent {r['agent_id']}<br>"
            f"{hover_text(r['text'], width=60, limit=HOVER_CHARS)}" for r in frame.iter_rows(named=True)]


def heatmap_figure(frame: pl.DataFrame) -> go.Figure:
    note = frame["note"][0]
    two_steps = "side" in frame.columns
    rows = frame.filter(pl.col("side") == "row") if two_steps else frame
    cols = frame.filter(pl.col("side") == "column") if two_steps else frame
    y_labels, x_labels = _labels(rows), _labels(cols)
    sims = [c for c in frame.columns if c.startswith("sim_")]
    z = rows.select(sims).to_numpy()
    fig = go.Figure(go.Heatmap(z=z, x=x_labels, y=y_labels, zmin=0, zmax=1, colorscale="Viridis",
                               colorbar={"title": "cosine"},
                               hovertemplate="%{y}<br><b>vs</b><br>%{x}<br>cosine %{z:.3f}<extra></extra>"))
    x_title = f"step {cols['step'][0]} ideas (cluster order)" if two_steps else "ideas (cluster order)"
    y_title = f"step {', '.join(map(str, sorted(set(rows['step']))))} ideas (cluster order)" if two_steps else None
    fig.update_layout(template="plotly_white", title=note, margin={"l": 40, "r": 20, "t": 50, "b": 40},
                      xaxis={"showticklabels": False, "title": x_title},
                      yaxis={"showticklabels": False, "autorange": "reversed", "title": y_title},
                      hoverlabel={"align": "left"})
    return fig
