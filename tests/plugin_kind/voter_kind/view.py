"""What the app shows for ``voter`` runs: one Run page section, "Opinions".

The app imports this module (the kind's ``view``) when it starts, from the registry, like a
built-in kind's; registering the section is all it takes for the Run page to show it (app.kinds).
The section draws the share of the population holding each opinion after every step, step 0
being the initial placement recorded in ``agents.parquet``, offers exactly those shares as CSV
(app.sections.section_plot), and says in one line whether the population has reached consensus.

Tables are read through ``results.table`` (the compacted file of a finished run, or the per-step
parts of one still running), never from paths of their own, so the app's containment checks and
caching apply. The Run page re-renders every few seconds: ``cached_section`` computes the section
again only when the run's tables change.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from dash import html

from app.kinds import register_sections
from app.sections import COLORS, cached_section, layout, section_plot, whole_steps
from voter_kind.tables import OPINIONS_SCHEMA

PREFIX = "voter-shares"


def share_frame(results, run_id: str) -> pl.DataFrame:
    """One row per recorded step (0: the initial placement), one column ``opinion_<k>`` per
    opinion: the share of agents holding it after that step."""
    opinions = int(((results.manifest(run_id).get("scenario") or {}).get("voter") or {}).get("opinions", 2))
    agents = results.table(run_id, "agents")
    frames = [results.table(run_id, "opinions", OPINIONS_SCHEMA).select("step", "opinion")]
    if "initial_opinion" in agents.columns:
        frames.insert(0, agents.select(pl.lit(0, dtype=pl.Int64).alias("step"),
                                       pl.col("initial_opinion").cast(pl.Int64).alias("opinion")))
    held = pl.concat(frames)
    if held.is_empty():
        return pl.DataFrame(schema={"step": pl.Int64, **{f"opinion_{k}": pl.Float64 for k in range(opinions)}})
    return held.group_by("step").agg(
        (pl.col("opinion") == k).mean().cast(pl.Float64).alias(f"opinion_{k}") for k in range(opinions)
    ).sort("step")


def summary(frame: pl.DataFrame) -> str:
    last = frame.row(-1, named=True)
    held = {int(k.removeprefix("opinion_")): v for k, v in last.items() if k != "step" and v > 0}
    if len(held) == 1:
        return f"Consensus on opinion {next(iter(held))} after step {last['step']}."
    shown = ", ".join(f"{k}: {v:.0%}" for k, v in sorted(held.items()))
    return f"{len(held)} opinions held after step {last['step']} ({shown})."


def render(results, run_id: str):
    frame = share_frame(results, run_id)
    if frame.is_empty():
        return html.P("No step recorded yet.")
    steps = frame["step"].to_list()
    fig = go.Figure([
        go.Scatter(x=steps, y=frame[column].to_list(), name=f"opinion {column.removeprefix('opinion_')}",
                   mode="lines", stackgroup="shares", line={"color": COLORS[i % len(COLORS)]})
        for i, column in enumerate(c for c in frame.columns if c != "step")
    ])
    layout(fig, xaxis={"title": "step"}, yaxis={"title": "share of agents", "range": [0, 1]})
    whole_steps(fig, steps)
    return html.Div([html.P(summary(frame), id="voter-summary"), section_plot(PREFIX, run_id, fig, frame)])


register_sections("voter", cached_section("Opinions", render, "opinions", "agents"))
