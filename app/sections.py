"""What every kind's Run page sections share (app/kinds.py): the section plot, caching per state of
a run's tables, and the small helpers the kinds draw with.

A section is rendered by the Run page's callback, not built into a layout, so it has no app to
wire per-plot callbacks on (app/ui.py's :func:`~app.ui.register_plot`). Its plots use
pattern-matching ids instead, ``{"type": "section-graph", "index": prefix}`` and
``{"type": "section-format", "index": prefix}``, and the one MATCH callback in
:func:`register` (wired once, by the Run page) sets each graph's export format from its
PNG/SVG switch. The data that was drawn rides along in the page as a ``data:`` link (the tables
plotted in sections are small, or capped by the kind).

The Run page re-renders its sections every few seconds: the switch keeps the user's choice
through ``persistence`` (and the callback then sets the new graph's config again), and
``uirevision`` keeps the user's zoom.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import numpy as np
import plotly.graph_objects as go
import polars as pl
from dash import MATCH, Input, Output, Patch, State, ctx, dcc, html, no_update

from app.data import stamp
from app.kinds import Section
from app.ui import csv_ready, graph_config, note_box

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")
GRAPH = "section-graph"
FORMAT = "section-format"


def section_id(role: str, prefix) -> dict:
    """The pattern-matching id of section plot ``prefix``'s graph (``GRAPH``) or format switch (``FORMAT``);
    ``prefix`` is MATCH in the callback."""
    return {"type": role, "index": prefix}


# ------------------------------------------------------------------------------ plots


def csv_href(frame: pl.DataFrame) -> str:
    return "data:text/csv;charset=utf-8," + quote(csv_ready(frame).write_csv(), safe="")


def csv_link(prefix: str, frame: pl.DataFrame, label: str = "Data as CSV") -> html.A:
    """Exactly ``frame`` as a CSV file, downloaded as ``<prefix>.csv`` with no callback."""
    return html.A(label, id=f"{prefix}-csv-link", href=csv_href(frame), download=f"{prefix}.csv",
                  className="cs-button")


def format_switch(prefix: str) -> list:
    """The PNG/SVG switch for the camera icon of section plot ``prefix`` (:func:`register` wires it)."""
    return [html.Span("image as"),
            dcc.RadioItems(id=section_id(FORMAT, prefix), options=["png", "svg"], value="png", inline=True,
                           persistence=True, persistence_type="session"),
            html.Span("(camera icon)", className="cs-hint")]


def section_plot(prefix: str, rel: str, fig: go.Figure, frame: pl.DataFrame | None, height: int = 420,
                 note: str | None = None) -> html.Div:
    """A plot for a Run page section of run ``rel``: the figure, a PNG/SVG switch for its image
    (plotly's camera icon), and exactly the ``frame`` it was drawn from as a CSV link (none where
    ``frame`` is None: the caller offers the data another way)."""
    fig.update_layout(uirevision=f"{prefix}:{rel}")  # the page re-renders every few s: keep the zoom
    export = format_switch(prefix) + ([csv_link(prefix, frame)] if frame is not None else [])
    return html.Div([
        *([note_box(note)] if note else []),
        dcc.Graph(id=section_id(GRAPH, prefix), figure=fig, config=graph_config(prefix, "png"),
                  style={"height": f"{height}px"}),
        html.Div(export, className="cs-export"),
    ])


def register(app) -> None:
    """The one callback behind every section plot's PNG/SVG switch.

    dcc.Graph draws again only when its figure changes, not its config (plotly/dash#2865): the
    callback also sends a ``Patch`` that merges nothing into the figure, which gives the browser a
    new figure object with the same content, so that plotly draws again and takes the new config.
    A plot drawn by a re-render starts as PNG: its switch's first call changes nothing unless the
    switch's kept value is SVG."""

    @app.callback(Output(section_id(GRAPH, MATCH), "config"), Output(section_id(GRAPH, MATCH), "figure"),
                  Input(section_id(FORMAT, MATCH), "value"), State(section_id(FORMAT, MATCH), "id"))
    def _section_format(fmt, id_):
        if ctx.triggered_id is None and fmt != "svg":
            return no_update, no_update
        same = Patch()
        same.update({})
        return graph_config(id_["index"], fmt), same

    from app import grid

    grid.register(app)  # the export buttons of the sections' tables


# ------------------------------------------------------------------------------ caching


def cached(res, rel: str, what: Any, tables: tuple[str, ...], make: Callable[[], Any]) -> Any:
    """``make()`` once per state of the run's ``tables`` (compacted file or per-step parts): the
    Run page re-renders its sections every few seconds; a finished run's are computed once."""
    run = res.run_dir(rel)
    paths = [run.manifest_path, run.steps_dir]
    for name in tables:
        paths += [run.path / f"{name}.parquet", run.path / name]
    return res.cache.get(("kind-section", rel, what), stamp(*paths), make)


def cached_section(title: str, render: Callable[[Any, str], Any], *tables: str) -> Section:
    """A section rendered once per state of the run's ``tables``."""
    return Section(title, lambda res, rel: cached(res, rel, ("section", title), tables, lambda: render(res, rel)))


# ------------------------------------------------------------------------------ drawing


def finite(values: list) -> list:
    """Plotly draws None as a gap; inf and NaN would break the JSON or the log axis."""
    return [v if v is not None and math.isfinite(v) else None for v in values]


def whole_steps(fig: go.Figure, steps: list, **where) -> go.Figure:
    """Integer ticks on a step axis, for every figure with one (the pages' and the kinds'):
    a tick on each step while there are few enough to label each, else Plotly's own spacing
    from step 0, and always labels without decimals (no 1.5 when zoomed in). ``where``
    (``row=``, ``col=``) picks the axes of a figure with subplots; default: all its x axes."""
    fig.update_xaxes(tickformat="d", tick0=0, dtick=1 if len(set(steps)) <= 30 else None, **where)
    return fig


def layout(fig: go.Figure, **kw) -> go.Figure:
    """The sections' common look: white template, room for axis titles, the legend below."""
    fig.update_layout(template="plotly_white", margin={"l": 60, "r": 20, "t": 50, "b": 40},
                      legend={"orientation": "h", "y": -0.18}, **kw)
    return fig


def evenly(items: list, limit: int) -> list:
    """At most ``limit`` of ``items``, evenly spaced, first and last included."""
    if len(items) <= limit:
        return list(items)
    return [items[i] for i in np.unique(np.round(np.linspace(0, len(items) - 1, limit)).astype(int))]
