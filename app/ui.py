"""Pieces every page shares: the plot card (figure + PNG/SVG switch + CSV download),
run pickers, and text-only message boxes.

Every plot goes through :func:`register_plot`, so every plot exports the same way and a
page cannot forget its CSV. Idea texts reach the browser only as component children or
escaped hover text: React renders children as text, and :func:`hover_text` escapes what
plotly would otherwise read as markup.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable, Sequence
from urllib.parse import urlencode

import plotly.graph_objects as go
import polars as pl
from dash import Input, Output, Patch, State, dcc, html, no_update

from app.data import DataError, Refused, Results, one_line


class Notice(Exception):
    """Nothing to draw, for a reason the user can act on (not an error)."""


def results() -> Results:
    """The Results of the app serving this request (one app per results folder)."""
    from flask import current_app

    return current_app.config["CULTURESIM_RESULTS"]


def error_box(message: str) -> html.Div:
    return html.Div(message, className="cs-error", role="alert")


def note_box(message: str) -> html.Div:
    return html.Div(message, className="cs-note")


def message_for(exc: BaseException) -> html.Div:
    if isinstance(exc, Notice):
        return note_box(str(exc))
    return error_box(str(exc) if isinstance(exc, (DataError, Refused)) else f"{type(exc).__name__}: {one_line(exc)}")


_LINE = re.compile(r".{1,%d}(?:\s+|$)|\S+")


def hover_text(text: str | None, width: int = 80, limit: int = 600) -> str:
    """An idea for a plotly hover label: escaped (plotly reads <b>, <a href> and entities
    in labels), cut to ``limit`` characters, wrapped with <br>, the one tag we add."""
    if text is None:
        return "(no text)"
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    lines = [m.strip() for m in re.findall(_LINE.pattern % width, " ".join(text.split()))] or [""]
    return "<br>".join(html_lib.escape(line, quote=True) for line in lines if line) or ""


def href(path: str, **params) -> str:
    params = {k: v for k, v in params.items() if v not in (None, "")}
    return path + ("?" + urlencode(params) if params else "")


# ------------------------------------------------------------------------------ plot card


def graph_config(prefix: str, fmt: str = "png") -> dict:
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": fmt if fmt in ("png", "svg") else "png", "filename": prefix, "scale": 2},
    }


def empty_figure(title: str = "") -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, template="plotly_white", xaxis={"visible": False}, yaxis={"visible": False},
                      margin={"l": 40, "r": 20, "t": 50, "b": 40})
    return fig


def plot_card(prefix: str, title: str, height: int = 460) -> html.Div:
    return html.Div(className="cs-card", children=[
        html.H4(title),
        html.Div(id=f"{prefix}-msg"),
        dcc.Loading(dcc.Graph(id=f"{prefix}-graph", figure=empty_figure(), config=graph_config(prefix),
                              style={"height": f"{height}px"})),
        html.Div(className="cs-export", children=[
            html.Span("image as"),
            dcc.RadioItems(id=f"{prefix}-format", options=["png", "svg"], value="png", inline=True),
            html.Span("(camera icon)", className="cs-hint"),
            html.Button("Data as CSV", id=f"{prefix}-csv-btn", className="cs-button"),
            dcc.Download(id=f"{prefix}-csv"),
        ]),
    ])


def csv_ready(frame: pl.DataFrame) -> pl.DataFrame:
    """CSV has no lists or structs: lists become '; '-joined text, structs JSON."""
    out = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.List):
            out.append(col.cast(pl.List(pl.String)).list.join("; ").alias(name))
        elif isinstance(dtype, (pl.Struct, pl.Array)):
            out.append(col.map_elements(str, return_dtype=pl.String).alias(name))
        else:
            out.append(col)
    return frame.select(out)


def register_plot(app, prefix: str, inputs: Sequence[Input], data: Callable[..., pl.DataFrame],
                  figure: Callable[..., go.Figure]) -> None:
    """Wire a plot card: ``data(*input values) -> frame`` feeds both ``figure(frame, *values)``
    and the CSV download, so the file holds exactly what is drawn."""

    @app.callback(Output(f"{prefix}-graph", "figure"), Output(f"{prefix}-msg", "children"), *inputs)
    def _draw(*values):
        try:
            frame = data(*values)
            return figure(frame, *values), None
        except Exception as exc:  # noqa: BLE001 - a page shows what went wrong and keeps working
            return empty_figure(), message_for(exc)

    states = [State(i.component_id, i.component_property) for i in inputs]

    @app.callback(Output(f"{prefix}-csv", "data"), Input(f"{prefix}-csv-btn", "n_clicks"), *states,
                  prevent_initial_call=True)
    def _csv(n_clicks, *values):
        try:
            frame = data(*values)
        except Exception:  # noqa: BLE001 - the card already shows the message
            return no_update
        return {"content": csv_ready(frame).write_csv(), "filename": f"{prefix}.csv", "type": "text/csv"}

    # dcc.Graph redraws (and so takes a new config) only when its figure changes
    # (plotly/dash#2865): an empty Patch gives it a "new" figure with the same content.
    @app.callback(Output(f"{prefix}-graph", "config"), Output(f"{prefix}-graph", "figure", allow_duplicate=True),
                  Input(f"{prefix}-format", "value"), prevent_initial_call=True)
    def _format(fmt):
        same = Patch()
        same.update({})
        return graph_config(prefix, fmt), same


# ------------------------------------------------------------------------------ pickers


def run_options(res: Results, *, kinds: tuple[str, ...] | None = None, sweeps: bool = False,
                runs: bool = True) -> list[dict]:
    options = []
    for e in res.listing():
        if e.is_sweep and sweeps:
            options.append({"label": f"sweep {e.id} ({e.name})", "value": e.id})
        elif not e.is_sweep and runs and (kinds is None or e.kind in kinds):
            options.append({"label": f"{e.id} ({e.kind}, {e.status})", "value": e.id})
    return options


def default_run(options: list[dict], wanted: str | None) -> str | None:
    """The run asked for in the URL (even one not listed: it is checked, and refused, later),
    else the newest listed one."""
    if wanted:
        return wanted
    return options[-1]["value"] if options else None


def picker(id_: str, options: list[dict], value, multi: bool = False,
           placeholder: str = "choose a run") -> dcc.Dropdown:
    if value is not None and value not in [o["value"] for o in options] and not multi:
        options = [*options, {"label": str(value), "value": value}]  # show the URL's id, refused or not
    return dcc.Dropdown(id=id_, options=options, value=value, multi=multi, placeholder=placeholder,
                        clearable=multi, className="cs-picker")


def table(frame_rows: list[dict], columns: list[str], cell: Callable[[str, dict], object] | None = None,
          className: str = "cs-table", row_class: Callable[[dict], str] | None = None) -> html.Table:
    """A plain HTML table; every cell is text (or a component ``cell`` builds)."""
    head = html.Thead(html.Tr([html.Th(c) for c in columns]))
    body = []
    for row in frame_rows:
        cells = [html.Td(cell(c, row) if cell else _text(row.get(c))) for c in columns]
        body.append(html.Tr(cells, className=row_class(row) if row_class else None))
    return html.Table([head, html.Tbody(body)], className=className)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)
