"""Compare: in a sweep, how does a metric move with each swept parameter, and how much?

Each run is summarised by one number (the metric at its last step, its mean over steps,
or a run-level metric such as diversity_slope); runs are the units. For each swept
parameter the first value is the baseline and every other value is compared with it by
analysis.stats.compare_conditions (difference of means with bootstrap CI, Cliff's delta,
permutation p, Holm-adjusted), pooling over the other parameters of a grid.
"""

from __future__ import annotations

import dash
import numpy as np
import plotly.graph_objects as go
import polars as pl
from dash import Input, Output, State, dcc, html, no_update
from plotly.subplots import make_subplots

from app.kinds import COMPARE_CARDS
from app.ui import Notice, csv_ready, message_for, picker, plot_card, register_plot, results, table

SUMMARIES = {"last": "value at the last step", "mean": "mean over steps", "run": "run-level value (no step)"}
N_RESAMPLES = 2000


def per_run(sweep, metric, summary, embedder) -> pl.DataFrame:
    """run_id, the swept parameters, value: one row per measured run."""
    if not sweep:
        raise Notice("Choose a sweep.")
    res = results()
    if not res.is_sweep(sweep):
        raise Notice(f"{sweep} is not a sweep: Compare needs a folder made by culturesim sweep.")
    index = res.sweep_index(sweep)
    params = res.swept_columns(index)
    if not params:
        raise Notice("This sweep varies no parameter (replicates only): nothing to compare.")
    metrics = _metrics(sweep, embedder)
    if metrics.is_empty():
        raise Notice("No run of this sweep is measured yet: see the Diversity page's Measure button.")
    part = metrics.filter(pl.col("metric") == metric)
    if summary == "run":
        part = part.filter(pl.col("step").is_null())
    else:
        part = part.filter(pl.col("step").is_not_null())
        if summary == "last":
            part = part.filter(pl.col("step") == pl.col("step").max().over("run_id"))
    values = part.group_by("run_id").agg(pl.col("value").mean())
    if values.is_empty():
        raise Notice(f"No {SUMMARIES.get(summary, summary)} for {metric!r}.")
    return index.select("run_id", *params).join(values, on="run_id", how="inner").sort("run_id")


def _metrics(sweep: str, embedder: str | None) -> pl.DataFrame:
    res = results()
    frames = []
    for rid in res.sweep_runs(sweep):
        m = res.metrics(rid)
        if m is None:
            continue
        m = m.select(pl.lit(rid).alias("run_id"), "step", "metric", pl.col("value").cast(pl.Float64),
                     (pl.col("embedder") if "embedder" in m.columns else pl.lit("?")).cast(pl.String).alias("embedder"))
        frames.append(m)
    if not frames:
        return pl.DataFrame(schema={"run_id": pl.String, "step": pl.Int64, "metric": pl.String, "value": pl.Float64,
                                    "embedder": pl.String})
    frame = pl.concat(frames, how="vertical_relaxed")
    return frame.filter(pl.col("embedder") == embedder) if embedder else frame


def effect_sizes(frame: pl.DataFrame) -> pl.DataFrame:
    """compare_conditions for each swept parameter (first value = baseline)."""
    from analysis.stats import compare_conditions

    rows = []
    for param in [c for c in frame.columns if c not in ("run_id", "value")]:
        sub = frame.select("run_id", pl.col(param).cast(pl.String).alias("condition"), "value").drop_nulls()
        levels = sub["condition"].unique(maintain_order=True).to_list()
        if len(levels) < 2:
            continue
        baseline = _ordered(levels, frame[param])[0]
        try:
            table_ = compare_conditions(sub, value="value", condition="condition", baseline=baseline,
                                        group="run_id", rng=np.random.default_rng(0), n_boot=N_RESAMPLES,
                                        n_permutations=N_RESAMPLES)
        except ValueError as exc:
            rows.append(pl.DataFrame({"parameter": [param], "baseline": [baseline], "note": [str(exc)]}))
            continue
        rows.append(table_.with_columns(pl.lit(param).alias("parameter"), pl.lit(baseline).alias("baseline"),
                                        pl.lit(None, pl.String).alias("note")))
    if not rows:
        return pl.DataFrame()
    out = pl.concat(rows, how="diagonal_relaxed")
    first = ["parameter", "baseline", "condition"]
    return out.select([c for c in first if c in out.columns] + [c for c in out.columns if c not in first])


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
        html.Div(className="cs-card", children=[
            html.H4("Effect sizes (each value against the parameter's first value)"),
            dcc.Loading(html.Div(id="cmp-effects")),
            html.Button("Effect sizes as CSV", id="cmp-effects-btn", className="cs-button"),
            dcc.Download(id="cmp-effects-csv"),
        ]),
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

    @app.callback(Output("cmp-effects", "children"), *inputs)
    def _effects(*values):
        try:
            effects = effect_sizes(per_run(*values))
        except Exception as exc:  # noqa: BLE001
            return message_for(exc)
        if effects.is_empty():
            return "No parameter with two or more values."
        return table(effects.to_dicts(), effects.columns)

    @app.callback(Output("cmp-effects-csv", "data"), Input("cmp-effects-btn", "n_clicks"),
                  *[State(i.component_id, i.component_property) for i in inputs], prevent_initial_call=True)
    def _effects_csv(n_clicks, *values):
        try:
            effects = effect_sizes(per_run(*values))
        except Exception:  # noqa: BLE001
            return no_update
        return {"content": csv_ready(effects).write_csv(), "filename": "effect_sizes.csv", "type": "text/csv"}
