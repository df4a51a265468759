"""Selection: why did a trait's mean change from one step to the next?

The exact Price decomposition (analysis.price) splits each step's change into selection
between groups, selection within groups, transmission and innovation; the parts add up
to the observed change (the residual is in the CSV). What to decompose comes from the
run's kind (app.kinds.PRICE_SOURCES): a kind without a source says so.

The innovation term comes in two forms (analysis.price.decomposition): the immigration form of
Kerr & Godfrey-Smith (2009), the default, and the residual form. They split the same change
differently when some children are new, so the page lets the reader choose and says in the
plot's title (and the CSV's ``innovation_form`` column) which one a plot uses.
"""

from __future__ import annotations

import dash
import plotly.graph_objects as go
import polars as pl
from dash import Input, Output, dcc, html

from analysis.price.decomposition import INNOVATION_FORMS
from app.kinds import price_source
from app.sections import whole_steps
from app.ui import Notice, default_run, picker, plot_card, register_plot, results, run_options

TERMS = {"between": "#1f77b4", "within": "#9467bd", "transmission": "#ff7f0e", "innovation": "#2ca02c"}
FORMS = {"immigration": "innovation: immigration form (Kerr & Godfrey-Smith 2009)",
         "residual": "innovation: residual form"}


def _source(rel: str | None):
    if not rel:
        raise Notice("Choose a run.")
    kind = str(results().manifest(rel).get("kind"))
    source = price_source(kind)
    if source is None:
        raise Notice(f"No Price decomposition for runs of kind {kind!r} yet.")
    return source


def data(rel, trait, grouping, form=None) -> pl.DataFrame:
    source = _source(rel)
    trait = trait if trait in source.traits else next(iter(source.traits))
    grouping = grouping if grouping in source.groupings else next(iter(source.groupings))
    if source.forms:
        form = form if form in INNOVATION_FORMS else INNOVATION_FORMS[0]
        frame = source.compute(results(), rel, trait, grouping, innovation_form=form)
    else:
        frame = source.compute(results(), rel, trait, grouping)
    if frame.filter(pl.col("delta").is_not_null()).is_empty():
        reasons = frame["skipped"].drop_nulls().unique().to_list() if "skipped" in frame.columns else []
        raise Notice("Nothing to decompose: needs two recorded steps linked by a genealogy (parents and children)."
                     + (f" ({reasons[0]})" if reasons else ""))
    return frame


def form_of(frame: pl.DataFrame) -> str:
    """Which form of the innovation term the frame's terms use, as the page says it."""
    if "innovation_form" not in frame.columns:
        return "innovation form not recorded by this kind"
    forms = frame["innovation_form"].drop_nulls().unique().to_list()
    return FORMS.get(forms[0], forms[0]) if len(forms) == 1 else "innovation form not recorded by this kind"


def figure(frame: pl.DataFrame, rel, trait, grouping, form=None) -> go.Figure:
    done = frame.filter(pl.col("delta").is_not_null())
    x = done["step"].to_list()
    fig = go.Figure()
    for term, color in TERMS.items():
        fig.add_trace(go.Bar(x=x, y=done[term].to_list(), name=term, marker_color=color))
    fig.add_trace(go.Scatter(x=x, y=done["delta"].to_list(), name="observed change", mode="lines+markers",
                             line={"color": "black", "width": 2}))
    fig.update_layout(barmode="relative", template="plotly_white", uirevision=f"{rel}",
                      title=f"change in mean {trait} from the step before, by cause ({form_of(frame)})",
                      xaxis={"title": "step"}, yaxis={"title": "Δ mean trait"},
                      margin={"l": 60, "r": 20, "t": 50, "b": 40}, legend={"orientation": "h", "y": -0.15})
    return whole_steps(fig, x)


def layout(run: str | None = None, **_):
    options = run_options(results())
    rel = default_run(options, run)
    return html.Div([
        html.H2("Selection (Price equation)"),
        html.Div(className="cs-controls", children=[
            picker("sel-run", options, rel),
            dcc.Dropdown(id="sel-trait", clearable=False, className="cs-picker-small"),
            dcc.Dropdown(id="sel-group", clearable=False, className="cs-picker-small"),
            dcc.Dropdown(id="sel-form", clearable=False, className="cs-picker-small",
                         options=[{"label": FORMS[f], "value": f} for f in INNOVATION_FORMS],
                         value=INNOVATION_FORMS[0]),
        ]),
        html.Div(id="sel-note", className="cs-hint"),
        plot_card("sel", "Price decomposition over steps", height=520),
    ])


def register(app) -> None:
    dash.register_page(__name__, path="/selection", name="Selection", order=5, layout=layout)

    @app.callback(Output("sel-trait", "options"), Output("sel-trait", "value"), Output("sel-group", "options"),
                  Output("sel-group", "value"), Output("sel-note", "children"), Input("sel-run", "value"))
    def _choices(rel):
        try:
            source = _source(rel)
        except Exception:  # noqa: BLE001 - the plot card says why
            return [], None, [], None, None
        traits = [{"label": v, "value": k} for k, v in source.traits.items()]
        groups = [{"label": v, "value": k} for k, v in source.groupings.items()]
        return traits, traits[0]["value"], groups, groups[0]["value"], source.note or None

    register_plot(app, "sel", [Input("sel-run", "value"), Input("sel-trait", "value"), Input("sel-group", "value"),
                               Input("sel-form", "value")], data, figure)
