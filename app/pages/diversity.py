"""Diversity: did the population diversify or converge, and did conditions differ?

Metrics come from each run's metrics.parquet (``culturesim analyze``, or the measuring
that ``culturesim run`` does at its end). A finished run found unmeasured is measured in the
background as soon as this page opens it (app.measuring), with "Measuring… n/m" shown and the
plot filling in when it is done; if that fails, the run can be measured from here (TF-IDF).
Lines are runs, or conditions of a sweep with a confidence band across replicate runs: mean ± t(0.975, n-1)·sd/√n at
each step, the run being the unit of replication.
"""

from __future__ import annotations

import dash
import numpy as np
import plotly.graph_objects as go
import polars as pl
from dash import Input, Output, State, dcc, html, no_update
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from app.data import condition_label
from app.sections import whole_steps
from app.ui import Notice, default_run, error_box, note_box, picker, plot_card, register_plot, results, run_options

DEFAULT_METRICS = ("diversity", "vendi_score")


def condition_bands(frame: pl.DataFrame, level: float = 0.95) -> pl.DataFrame:
    """Per (condition, metric, step): n runs, mean, sd, and the t interval of the mean.
    With one run there is no spread to speak of: the band is null."""
    from scipy import stats

    agg = frame.group_by("condition", "metric", "step").agg(
        pl.len().alias("n"), pl.col("value").mean().alias("mean"), pl.col("value").std(ddof=1).alias("sd"),
    ).sort("condition", "metric", "step")
    n = agg["n"].to_numpy()
    sd = agg["sd"].fill_null(np.nan).to_numpy()
    t = np.where(n > 1, stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1)), np.nan)
    half = t * sd / np.sqrt(n)
    return agg.with_columns(
        (pl.col("mean") - pl.Series(half)).fill_nan(None).alias("low"),
        (pl.col("mean") + pl.Series(half)).fill_nan(None).alias("high"),
    )


def long_metrics(sources: list[str] | None) -> tuple[pl.DataFrame, list[str]]:
    """(run_id, condition, embedder, step, metric, value) of every measured run, and the
    runs not measured yet."""
    res = results()
    frames, missing = [], []
    for rid in res.expand(sources):
        m = res.metrics(rid)
        if m is None:
            missing.append(rid)
            continue
        embedder = pl.col("embedder") if "embedder" in m.columns else pl.lit("?")
        model = pl.col("model") if "model" in m.columns else pl.lit(None)  # culturesim analyze --by model
        frames.append(m.filter(pl.col("step").is_not_null()).select(
            pl.lit(rid).alias("run_id"), pl.lit(condition_label(res.conditions(rid))).alias("condition"),
            embedder.cast(pl.String).alias("embedder"), pl.col("step").cast(pl.Int64), pl.col("metric"),
            pl.col("value").cast(pl.Float64), model.cast(pl.String).alias("model")))
    schema = {"run_id": pl.String, "condition": pl.String, "embedder": pl.String, "step": pl.Int64,
              "metric": pl.String, "value": pl.Float64, "model": pl.String}
    return (pl.concat(frames) if frames else pl.DataFrame(schema=schema)), missing


def data(sources, metrics, group, embedder) -> pl.DataFrame:
    if not sources:
        raise Notice("Choose runs or a sweep.")
    frame, missing = long_metrics(sources if isinstance(sources, list) else [sources])
    if frame.is_empty():
        raise Notice(f"Not measured yet: {', '.join(missing[:5])}. Measuring starts by itself for a finished "
                     f"run; else use 'Measure' above, or run culturesim analyze <run folder>.")
    if embedder:
        frame = frame.filter(pl.col("embedder") == embedder)
    frame = frame.filter(pl.col("metric").is_in(metrics or list(DEFAULT_METRICS)))
    if group == "model":  # a line per run and model: the rows culturesim analyze --by model wrote
        frame = frame.filter(pl.col("model").is_not_null())
        if frame.is_empty():
            raise Notice("No metrics per model yet: run culturesim analyze --by model <run folder>.")
        return frame.with_columns((pl.col("run_id") + " · " + pl.col("model")).alias("line")).sort(
            "line", "metric", "step")
    frame = frame.filter(pl.col("model").is_null())
    if frame.is_empty():
        raise Notice("No values for these metrics in this embedding space.")
    if group == "condition":
        return condition_bands(frame)
    return frame.sort("run_id", "metric", "step")


def figure(frame: pl.DataFrame, sources, metrics, group, embedder) -> go.Figure:
    metric_list = [m for m in (metrics or DEFAULT_METRICS) if m in set(frame["metric"])]
    fig = make_subplots(rows=len(metric_list), cols=1, shared_xaxes=True, subplot_titles=metric_list,
                        vertical_spacing=0.08)
    key = {"condition": "condition", "model": "line"}.get(group, "run_id")
    palette = qualitative.Plotly
    for i, name in enumerate(sorted(set(frame[key]))):
        color = palette[i % len(palette)]
        for row, metric in enumerate(metric_list, start=1):
            part = frame.filter((pl.col(key) == name) & (pl.col("metric") == metric)).sort("step")
            if part.is_empty():
                continue
            x = part["step"].to_list()
            y = part["mean" if group == "condition" else "value"].to_list()
            if group == "condition" and part["low"].null_count() < part.height:
                band = part.drop_nulls("low")
                bx = band["step"].to_list()
                fig.add_trace(go.Scatter(x=bx + bx[::-1], y=band["high"].to_list() + band["low"].to_list()[::-1],
                                         fill="toself", fillcolor=color, opacity=0.2, line={"width": 0},
                                         hoverinfo="skip", showlegend=False, legendgroup=name), row=row, col=1)
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=name, legendgroup=name,
                                     line={"color": color}, showlegend=row == 1), row=row, col=1)
    fig.update_layout(template="plotly_white", height=max(360, 280 * len(metric_list)), uirevision="diversity",
                      margin={"l": 50, "r": 20, "t": 40, "b": 40}, legend={"orientation": "h", "y": -0.12})
    fig.update_xaxes(title_text="step", row=len(metric_list), col=1)
    return whole_steps(fig, frame["step"].unique().to_list())


def layout(run: str | None = None, **_):
    res = results()
    options = run_options(res, sweeps=True)
    value = default_run(options, run)
    return html.Div([
        html.H2("Diversity over steps"),
        html.Div(className="cs-controls", children=[
            picker("div-sources", options, [value] if value else [], multi=True, placeholder="runs or sweeps"),
            dcc.Dropdown(id="div-metrics", multi=True, placeholder="metrics", className="cs-picker"),
            dcc.RadioItems(id="div-group", options=[{"label": "one line per run", "value": "run"},
                                                    {"label": "per condition, 95% band", "value": "condition"},
                                                    {"label": "per run and model", "value": "model"}],
                           value="condition" if res.is_sweep(value) else "run",
                           inline=True),
            dcc.Dropdown(id="div-embedder", placeholder="embedding space", clearable=False,
                         className="cs-picker-small"),
        ]),
        html.Div(id="div-missing"),
        dcc.Interval(id="div-tick", interval=1000, disabled=True),
        dcc.Store(id="div-unmeasured"),  # the runs not measured yet: the plot redraws when it changes
        plot_card("div", "Metrics over steps", height=600),
    ])


def register(app) -> None:
    dash.register_page(__name__, path="/diversity", name="Diversity", order=2, layout=layout)

    @app.callback(
        Output("div-metrics", "options"), Output("div-metrics", "value"), Output("div-embedder", "options"),
        Output("div-embedder", "value"), Output("div-missing", "children"), Output("div-tick", "disabled"),
        Output("div-unmeasured", "data"), Input("div-sources", "value"), Input("div-tick", "n_intervals"),
        State("div-metrics", "value"), State("div-embedder", "value"),
    )
    def _options(sources, _tick, chosen, embedder):
        try:
            frame, missing = long_metrics(sources or [])
        except Exception as exc:  # noqa: BLE001
            return [], [], [], None, error_box(str(exc)), True, no_update
        metrics = sorted(set(frame["metric"])) if frame.height else []
        embedders = sorted(set(frame["embedder"])) if frame.height else []
        keep = ([m for m in (chosen or []) if m in metrics] or [m for m in DEFAULT_METRICS if m in metrics]
                or metrics[:1])
        embedder = embedder if embedder in embedders else ("minilm" if "minilm" in embedders else
                                                           (embedders[0] if embedders else None))
        note, measuring = None, False
        if missing:
            from app.measuring import ensure_measured

            standings = ensure_measured(results(), _launcher(), missing)
            measuring = any(s.state == "measuring" for s in standings)
            stuck = [s for s in standings if s.state != "measuring"]
            lines = [note_box(s.line()) for s in standings if s.state == "measuring"][:4]
            if stuck:  # failed, or not finished: the fallback, by hand
                lines += [note_box(f"{len(stuck)} run(s) not measured: "
                                   + "; ".join(s.line() for s in stuck[:4]) + (" ..." if len(stuck) > 4 else "")),
                          html.Button("Measure them now (TF-IDF, in the background)", id="div-measure",
                                      className="cs-button"),
                          html.Span(id="div-measure-msg", className="cs-hint")]
            note = html.Div(lines, className="cs-measuring" if measuring else "cs-unmeasured")
        running = any(j.what == "analyze" and j.state() == "running" for j in _launcher().listing())
        return (metrics, keep, embedders, embedder, note, not (missing and (running or measuring)),
                sorted(missing))

    @app.callback(Output("div-measure-msg", "children"), Output("div-tick", "disabled", allow_duplicate=True),
                  Input("div-measure", "n_clicks"), State("div-sources", "value"), prevent_initial_call=True)
    def _measure(n_clicks, sources):
        if not n_clicks:
            return no_update, no_update
        _, missing = long_metrics(sources or [])
        launcher = _launcher()
        for rid in missing:
            launcher.start_analyze(rid)
        return f"measuring {len(missing)} run(s)...", False

    register_plot(app, "div", [Input("div-sources", "value"), Input("div-metrics", "value"),
                               Input("div-group", "value"), Input("div-embedder", "value"),
                               Input("div-unmeasured", "data")],
                  lambda sources, metrics, group, embedder, _unmeasured: data(sources, metrics, group, embedder),
                  lambda frame, sources, metrics, group, embedder, _unmeasured: figure(frame, sources, metrics, group,
                                                                                       embedder))


def _launcher():
    from app.launcher import current

    return current()
