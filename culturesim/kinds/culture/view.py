"""What the app shows of culture runs: the views every population of ideas has (app.ideas_view)
and LLM-Culture's own figures (Perez et al. 2024), drawn from this kind's measures so that our
runs and runs imported from their files look the same:

- the story-by-story similarity matrix (their TF-IDF cosine), generations marked, for runs of
  at most :data:`MAX_STORIES` stories;
- per step: positivity, subjectivity, the three generation-similarity curves, and the creativity
  index where ``culturesim analyze`` has measured it (it needs the run's embedder);
- the word chains: every keyword stem against the steps whose stories carry it.

Their numbers also land in metrics.parquet, so the Diversity page plots them across runs. The
Run page measures a run of at most :data:`LIVE_LIMIT` stories itself; a larger one's curves come
from metrics.parquet (``culturesim analyze``, or the measuring at a run's end).
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from dash import html

from app.ideas_view import register_idea_view
from app.kinds import register_sections
from app.sections import cached_section, layout, section_plot, whole_steps
from app.ui import Notice

MAX_STORIES = 600  # a matrix of 600 x 600 cells still travels with the Run page
MAX_WORDS = 300  # the word chains drawn: the stems present in most steps first
LIVE_LIMIT = 2000  # stories measured here while the page waits; a larger run's curves come from metrics.parquet

register_idea_view("culture")


def _stories(res, rel: str) -> pl.DataFrame:
    ideas = res.valid_ideas(rel).sort("step", "agent_id")
    if ideas.is_empty():
        raise Notice("No stories yet.")
    return ideas


def _matrix(res, rel: str):
    from culturesim.kinds.culture.measures.similarity import story_similarity

    ideas = _stories(res, rel)
    if ideas.height > MAX_STORIES:
        raise Notice(f"{ideas.height} stories: the story-by-story matrix is drawn for at most {MAX_STORIES}; "
                     f"its generation curves are in the next section and on the Diversity page.")
    S = story_similarity(ideas["text"].to_list())
    labels = [f"step {s}, agent {a}" for s, a in ideas.select("step", "agent_id").iter_rows()]
    fig = go.Figure(go.Heatmap(z=S, x=labels, y=labels, zmin=0, zmax=1, colorscale="Viridis",
                               colorbar={"title": "cosine"}))
    steps = ideas["step"].to_list()
    for i in range(1, len(steps)):  # black lines between generations, as in their figure
        if steps[i] != steps[i - 1]:
            for axis in ("x", "y"):
                fig.add_shape(type="line", xref="x", yref="y", line={"color": "black", "width": 1},
                              **({"x0": i - 0.5, "x1": i - 0.5, "y0": -0.5, "y1": len(steps) - 0.5} if axis == "x"
                                 else {"y0": i - 0.5, "y1": i - 0.5, "x0": -0.5, "x1": len(steps) - 0.5}))
    layout(fig, xaxis={"showticklabels": False, "title": "story"},
           yaxis={"showticklabels": False, "title": "story", "autorange": "reversed"})
    frame = pl.DataFrame(S, schema=labels).insert_column(0, pl.Series("story", labels))
    return section_plot("culture-lc-matrix", rel, fig, frame, height=560,
                        note="TF-IDF (English stop words left out) fitted on this run's stories; "
                             "cosine of every pair, generations in order.")


CURVES = ("positivity", "subjectivity", "creativity_index", "story_similarity_within",
          "story_similarity_successive", "story_similarity_first")


def _measured(res, rel: str, metrics: tuple[str, ...]) -> list[dict]:
    """Rows of ``metrics`` from the run's metrics.parquet, in one embedder's space (the first measured)."""
    measured = res.metrics(rel)
    if measured is None or "metric" not in measured.columns:
        return []
    found = measured.filter(pl.col("metric").is_in(list(metrics)) & pl.col("step").is_not_null())
    if "embedder" in found.columns and found.height:
        found = found.filter(pl.col("embedder") == found["embedder"][0])
    for column in ("model", "personality"):  # the whole population's rows, not those of one part of it
        if column in found.columns:
            found = found.filter(pl.col(column).is_null())
    return found.select("step", "metric", "value").to_dicts()


def curves_frame(res, rel: str) -> pl.DataFrame:
    """step, metric, value of LLM-Culture's per-step measures: computed here (no embedder) for a run of
    at most LIVE_LIMIT stories, with the creativity index from metrics.parquet when the run has been
    measured; a larger run's all come from metrics.parquet."""
    from culturesim.kinds.culture.measures import run_metrics

    ideas = _stories(res, rel)
    if ideas.height > LIVE_LIMIT:
        rows = _measured(res, rel, CURVES)
        if not rows:
            raise Notice(f"{ideas.height} stories: measured once the run is (culturesim analyze or measure).")
    else:
        rows = [r for r in run_metrics(ideas) if r["step"] is not None and r["metric"] in CURVES]
        rows += _measured(res, rel, ("creativity_index",))
    schema = {"step": pl.Int64, "metric": pl.String, "value": pl.Float64}
    return pl.DataFrame(rows, schema=schema).sort("metric", "step")


def _curves(res, rel: str):
    frame = curves_frame(res, rel)
    if frame.is_empty():
        raise Notice("No measure to draw yet.")
    fig = go.Figure()
    for metric in CURVES:
        part = frame.filter(pl.col("metric") == metric)
        if part.height:
            fig.add_trace(go.Scatter(x=part["step"].to_list(), y=part["value"].to_list(), mode="lines+markers",
                                     name=metric.replace("_", " ")))
    layout(fig, xaxis={"title": "step"}, yaxis={"title": "value (positivity -1..1, the rest 0..1)"})
    whole_steps(fig, frame["step"].to_list())
    note = None if (frame["metric"] == "creativity_index").any() else (
        "The creativity index appears once culturesim analyze has measured the run (it needs word vectors).")
    return section_plot("culture-lc-curves", rel, fig, frame, note=note)


def chains_frame(res, rel: str) -> pl.DataFrame:
    from culturesim.kinds.culture.measures.wordchains import word_chains

    ideas = _stories(res, rel)
    if ideas.height > LIVE_LIMIT:
        raise Notice(f"{ideas.height} stories: word chains are drawn for at most {LIVE_LIMIT}; their counts "
                     f"(keywords, keywords_carried) are on the Diversity page once the run is measured.")
    return word_chains(ideas["step"].to_list(), ideas["agent_id"].to_list(), ideas["text"].to_list())


def _chains(res, rel: str):
    from culturesim.kinds.culture.measures.wordchains import fidelity

    chains = chains_frame(res, rel)
    if chains.is_empty():
        raise Notice("No keyword in the stories yet.")
    per_step = chains.group_by("word", "step").agg(pl.col("count").sum())
    spread = per_step.group_by("word").agg(pl.len().alias("steps"), pl.col("step").min().alias("first"))
    words = spread.sort(["steps", "first", "word"], descending=[True, False, False]).head(MAX_WORDS)["word"].to_list()
    shown = per_step.filter(pl.col("word").is_in(words))
    fig = go.Figure(go.Scatter(x=shown["word"].to_list(), y=shown["step"].to_list(), mode="markers",
                               marker={"size": [4 + 2 * c for c in shown["count"].to_list()], "color": "black"},
                               hovertext=[f"{w}: {c} keyword(s) at step {s}" for w, s, c in shown.iter_rows()]))
    layout(fig, xaxis={"title": "keyword stem", "categoryorder": "array", "categoryarray": words},
           yaxis={"title": "step", "tickformat": "d"})
    total = spread.height
    note = (f"{total} stems; the {len(words)} present in most steps drawn. " if total > len(words) else "") + \
        f"Keywords: the 30 most frequent of each story ({fidelity()})."
    return html.Div([section_plot("culture-lc-chains", rel, fig, chains, height=460, note=note)])


register_sections(
    "culture",
    cached_section("LLM-Culture: story similarity matrix", _matrix),
    cached_section("LLM-Culture: positivity, subjectivity, creativity, similarity", _curves, "metrics"),
    cached_section("LLM-Culture: word chains", _chains),
)
