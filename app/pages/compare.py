"""Compare: in a sweep, how does a metric move with each swept parameter, and how much?

Each run is summarised by one number (the metric at its last step, its mean over steps,
or a run-level metric such as diversity_slope); runs are the units. For each swept
parameter every value is compared with the baseline value (the first, or the one the user
picks) and the metric's slope over steps is fitted per condition with a random intercept per
run. The numbers are analysis.compare's, the same function ``culturesim compare`` prints.
"""

from __future__ import annotations

import dash
import numpy as np
import plotly.graph_objects as go
import polars as pl
from dash import Input, Output, State, dcc, html, no_update
from plotly.subplots import make_subplots

from analysis.compare import SUMMARIES, CompareError, compare_tables, conditions, normalised
from app.grid import grid
from app.kinds import COMPARE_CARDS
from app.ui import Notice, csv_ready, message_for, picker, plot_card, register_plot, results

TABLES = {"effects": ("Effect sizes (each value against the baseline value, runs as units)", "effect_sizes.csv"),
          "slopes": ("Slopes over steps (mixed model, random intercept per run) and their difference from "
                     "the baseline's", "slopes.csv")}


def _index(sweep) -> pl.DataFrame:
    if not sweep:
        raise Notice("Choose a sweep.")
    res = results()
    if not res.is_sweep(sweep):
        raise Notice(f"{sweep} is not a sweep: Compare needs a folder made by culturesim sweep.")
    index = res.sweep_index(sweep)
    if not res.swept_columns(index):
        raise Notice("This sweep varies no parameter (replicates only): nothing to compare.")
    return index


def _measured(sweep, embedder) -> pl.DataFrame:
    metrics = _metrics(sweep, embedder)
    if metrics.is_empty():
        raise Notice("No run of this sweep is measured yet: see the Diversity page's Measure button.")
    return metrics


def tables(sweep, metric, summary, embedder, baseline=None):
    """analysis.compare's tables for the page's choices (a baseline of another sweep is ignored)."""
    index = _index(sweep)
    if baseline not in conditions(index):
        baseline = None
    try:
        return compare_tables(index, _measured(sweep, embedder), metric, summary=summary, baseline=baseline)
    except CompareError as exc:
        raise Notice(str(exc)[:1].upper() + str(exc)[1:] + ".") from None


def per_run(sweep, metric, summary, embedder) -> pl.DataFrame:
    """run_id, the swept parameters, value: one row per measured run."""
    return tables(sweep, metric, summary, embedder).per_run


def _metrics(sweep: str, embedder: str | None) -> pl.DataFrame:
    from analysis.analyze import whole_population

    res = results()
    frames = []
    for rid in res.sweep_runs(sweep):
        m = res.metrics(rid)
        if m is None:
            continue
        frames.append(normalised(whole_population(m), rid))
    if not frames:
        return pl.DataFrame(schema={"run_id": pl.String, "step": pl.Int64, "metric": pl.String, "value": pl.Float64,
                                    "embedder": pl.String})
    frame = pl.concat(frames, how="vertical_relaxed")
    return frame.filter(pl.col("embedder") == embedder) if embedder else frame


def effect_sizes(frame: pl.DataFrame, baseline: str | None = None) -> pl.DataFrame:
    """compare_conditions for each swept parameter of a per_run frame (first value = baseline)."""
    from analysis.compare import baselines_for
    from analysis.compare import effect_sizes as effects

    index = frame.drop("value")
    return effects(frame, baselines_for(index, baseline))


def _ordered(levels: list[str], original: pl.Series) -> list[str]:
    """Parameter values in their natural order (numbers as numbers), as strings."""
    uniq = original.drop_nulls().unique().to_list()
    try:
        return [str(v) for v in sorted(uniq)]
    except TypeError:
        return sorted(levels)


def figure(frame: pl.DataFrame, sweep, metric, summary, embedder) -> go.Figure:
    from scipy import stats

    params = [c for c in frame.columns if c not in ("run_id", "value")]
    fig = make_subplots(rows=1, cols=len(params), shared_yaxes=True, subplot_titles=params)
    for col, param in enumerate(params, start=1):
        levels = _ordered(frame[param].cast(pl.String).unique().to_list(), frame[param])
        pts = frame.with_columns(pl.col(param).cast(pl.String).alias("_level"))
        fig.add_trace(go.Scatter(x=pts["_level"].to_list(), y=pts["value"].to_list(), mode="markers",
                                 marker={"size": 8, "opacity": 0.6, "color": "#1f77b4"}, name="runs",
                                 hovertext=pts["run_id"].to_list(), showlegend=col == 1), row=1, col=col)
        means, errs = [], []
        for level in levels:
            v = pts.filter(pl.col("_level") == level)["value"].to_numpy()
            means.append(float(v.mean()))
            half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else 0.0
            errs.append(float(half))
        fig.add_trace(go.Scatter(x=levels, y=means, mode="markers+lines", name="mean ± 95% CI",
                                 error_y={"type": "data", "array": errs}, marker={"size": 12, "color": "#d62728"},
                                 line={"dash": "dot"}, showlegend=col == 1), row=1, col=col)
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=levels, row=1, col=col)
    fig.update_layout(template="plotly_white", yaxis={"title": f"{metric} ({summary})"}, uirevision=str(sweep),
                      margin={"l": 60, "r": 20, "t": 50, "b": 40})
    return fig


def layout(run: str | None = None, **_):
    res = results()
    options = [{"label": f"{e.id} ({e.name})", "value": e.id} for e in res.sweeps()]
    value = run if run else (options[-1]["value"] if options else None)
    return html.Div([
        html.H2("Compare conditions of a sweep"),
        html.Div(className="cs-controls", children=[
            picker("cmp-sweep", options, value, placeholder="a sweep"),
            dcc.Dropdown(id="cmp-metric", clearable=False, className="cs-picker-small", placeholder="metric"),
            dcc.Dropdown(id="cmp-summary", clearable=False, value="last", className="cs-picker-small",
                         options=[{"label": v, "value": k} for k, v in SUMMARIES.items()]),
            dcc.Dropdown(id="cmp-embedder", clearable=False, className="cs-picker-small",
                         placeholder="embedding space"),
        ]),
        *(card.layout() for card in COMPARE_CARDS),
        plot_card("cmp", "Metric against each swept parameter", height=460),
        html.Div(className="cs-controls", children=[
            html.Label("Baseline", htmlFor="cmp-baseline"),
            dcc.Dropdown(id="cmp-baseline", clearable=False, className="cs-picker",
                         placeholder="baseline condition (default: each parameter's first value)"),
        ]),
        *(html.Div(className="cs-card", children=[
            html.H4(title),
            dcc.Loading(html.Div(id=f"cmp-{name}")),
            html.Button(f"{name.capitalize()} as CSV", id=f"cmp-{name}-btn", className="cs-button"),
            dcc.Download(id=f"cmp-{name}-csv"),
        ]) for name, (title, _) in TABLES.items()),
    ])


def register(app) -> None:
    dash.register_page(__name__, path="/compare", name="Compare", order=6, layout=layout)

    @app.callback(Output("cmp-metric", "options"), Output("cmp-metric", "value"), Output("cmp-embedder", "options"),
                  Output("cmp-embedder", "value"), Input("cmp-sweep", "value"), State("cmp-metric", "value"))
    def _choices(sweep, metric):
        try:
            metrics = _metrics(sweep, None) if sweep and results().is_sweep(sweep) else pl.DataFrame()
        except Exception:  # noqa: BLE001 - the plot card says why
            metrics = pl.DataFrame()
        if metrics.is_empty():
            return [], None, [], None
        names = sorted(set(metrics["metric"]))
        embedders = sorted(set(metrics["embedder"]))
        metric = metric if metric in names else ("diversity" if "diversity" in names else names[0])
        embedder = "minilm" if "minilm" in embedders else embedders[0]
        return names, metric, embedders, embedder

    inputs = [Input("cmp-sweep", "value"), Input("cmp-metric", "value"), Input("cmp-summary", "value"),
              Input("cmp-embedder", "value")]
    register_plot(app, "cmp", inputs, per_run, figure)
    for card in COMPARE_CARDS:
        card.register(app)

    @app.callback(Output("cmp-baseline", "options"), Output("cmp-baseline", "value"), Input("cmp-sweep", "value"),
                  State("cmp-baseline", "value"))
    def _baselines(sweep, current):
        try:
            options = conditions(_index(sweep))
        except Exception:  # noqa: BLE001 - the plot card says why
            return [], None
        return options, current if current in options else options[0] if options else None

    table_inputs = [*inputs, Input("cmp-baseline", "value")]

    @app.callback(Output("cmp-effects", "children"), Output("cmp-slopes", "children"), *table_inputs)
    def _tables(*values):
        try:
            result = tables(*values)
        except Exception as exc:  # noqa: BLE001
            return message_for(exc), None
        shown = []
        for name, (_, filename) in TABLES.items():
            frame = getattr(result, name)
            shown.append(grid(f"cmp-{name}-grid", frame, filename=filename) if not frame.is_empty()
                         else "No parameter with two or more values.")
        return tuple(shown)

    for name, (_, filename) in TABLES.items():
        def _csv(n_clicks, *values, name=name, filename=filename):
            try:
                frame = getattr(tables(*values), name)
            except Exception:  # noqa: BLE001
                return no_update
            return {"content": csv_ready(frame).write_csv(), "filename": filename, "type": "text/csv"}

        app.callback(Output(f"cmp-{name}-csv", "data"), Input(f"cmp-{name}-btn", "n_clicks"),
                     *[State(i.component_id, i.component_property) for i in table_inputs],
                     prevent_initial_call=True)(_csv)
