"""What the app shows for ``matechoice`` runs (GP with mate choice) and their sweeps.

The Run page gets four sections, all drawn from the run's ``generations`` table (one row per
generation, written by the kind's model.py) and, for the best individual, its
``individuals`` table: errors, genotypic and phenotypic diversity, tree and preference sizes,
and the best expression of the last generation. The Selection page gets the exact Price decomposition
of the genealogy (culturesim.kinds.matechoice.price, registered here with ``register_price``,
so the app shell needs no matechoice code): the mean training error or tree size, generation
by generation, split into selection and transmission. A sweep's modes are compared on the Compare
page (:func:`compare_card`, :func:`register_compare`) with culturesim.kinds.matechoice.measures's run and report
tables, the same numbers ``culturesim report`` prints.

Plots (with their PNG/SVG switch and CSV link), caching and the drawing helpers are
app/sections.py's, shared by every kind.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from dash import Input, Output, State, dcc, html, no_update
from plotly.subplots import make_subplots

from app.data import stamp
from app.kinds import PRICE_COLUMNS, CompareCard, PriceSource, register_compare_card, register_price, register_sections
from app.sections import COLORS, cached, cached_section, evenly, finite, layout, section_plot, whole_steps
from app.ui import Notice, csv_ready, message_for, plot_card, register_plot, table
from culturesim.kinds.matechoice.price import TRAITS as PRICE_TRAITS

ERRORS = {"best_train": "best (train)", "median_train": "median (train)", "best_test": "best (test)",
          "median_test": "median (test)"}
GENOTYPIC = {"unique_structures": "distinct structures", "mean_tree_edit_distance": "mean tree edit distance"}
PHENOTYPIC = {"unique_fitness": "distinct fitness values", "fitness_entropy": "fitness entropy (bits)",
              "mean_output_distance": "mean output distance"}
TREES = {"mean_size": "mean size", "best_size": "best's size", "mean_depth": "mean depth"}
PREFERENCES = {"pref_mean_size": "mean size", "pref_mean_depth": "mean depth"}
SINGLE = {"pref_single_node_share": "single-node share"}
# what the Compare card shows per mode: success and the last generation's diversity
MODE_MEASURES = {"success": "success rate", "unique_structures": "distinct structures (final)",
                 "mean_tree_edit_distance": "tree edit distance (final)",
                 "fitness_entropy": "fitness entropy (final)", "mean_output_distance": "output distance (final)"}


# ------------------------------------------------------------------------------ one run


def generations(res, rel: str) -> pl.DataFrame:
    gens = res.table(rel, "generations")
    if gens.is_empty():
        raise Notice("No generation recorded yet.")
    return gens.sort("step")


def _lines(fig: go.Figure, frame: pl.DataFrame, columns: dict[str, str], row: int | None = None,
           col: int | None = None, legend: bool = True) -> None:
    x = frame["step"].to_list()
    for i, (name, label) in enumerate(columns.items()):
        trace = go.Scatter(x=x, y=finite(frame[name].to_list()), mode="lines+markers", name=label,
                           line={"color": COLORS[i % len(COLORS)], "dash": "dot" if "test" in name else None},
                           showlegend=legend)
        if row:
            fig.add_trace(trace, row=row, col=col)
        else:
            fig.add_trace(trace)


def error_frame(res, rel: str) -> pl.DataFrame:
    return generations(res, rel).select("step", *ERRORS)


def _errors(res, rel: str):
    frame = error_frame(res, rel)
    fig = go.Figure()
    _lines(fig, frame, ERRORS)
    values = [v for c in ERRORS for v in finite(frame[c].to_list()) if v is not None]
    log = bool(values) and min(values) > 0
    layout(fig, xaxis={"title": "generation"}, yaxis={"title": "RMSE" + (" (log scale)" if log else ""),
                                                       "type": "log" if log else "linear"})
    whole_steps(fig, frame["step"].to_list())
    return section_plot("mc-errors", rel, fig, frame)


def diversity_frame(res, rel: str) -> pl.DataFrame:
    return generations(res, rel).select("step", *GENOTYPIC, *PHENOTYPIC)


def _diversity(res, rel: str):
    frame = diversity_frame(res, rel)
    names = [*GENOTYPIC, *PHENOTYPIC]
    titles = [f"genotypic: {GENOTYPIC[n]}" for n in GENOTYPIC] + [""] + [
        f"phenotypic: {PHENOTYPIC[n]}" for n in PHENOTYPIC]
    fig = make_subplots(rows=2, cols=3, subplot_titles=titles, vertical_spacing=0.16)
    cells = [(1, 1), (1, 2), (2, 1), (2, 2), (2, 3)]
    for i, (name, (r, c)) in enumerate(zip(names, cells, strict=True)):
        label = {**GENOTYPIC, **PHENOTYPIC}[name]
        fig.add_trace(go.Scatter(x=frame["step"].to_list(), y=finite(frame[name].to_list()), name=label,
                                 mode="lines+markers", line={"color": COLORS[i % len(COLORS)]}, showlegend=False),
                      row=r, col=c)
    layout(fig)
    fig.update_xaxes(title_text="generation", row=2)
    whole_steps(fig, frame["step"].to_list())
    return section_plot("mc-diversity", rel, fig, frame, height=560)


def size_frame(res, rel: str) -> pl.DataFrame:
    return generations(res, rel).select("step", *TREES, *PREFERENCES, *SINGLE)


def _sizes(res, rel: str):
    frame = size_frame(res, rel)
    fig = make_subplots(rows=1, cols=3, subplot_titles=["solution trees", "ideal-mate preferences",
                                                        "single-node preferences"])
    _lines(fig, frame, TREES, 1, 1)
    has_prefs = any(frame[c].is_not_null().any() for c in PREFERENCES)
    note = None
    if has_prefs:
        x = frame["step"].to_list()
        for i, (name, label) in enumerate(PREFERENCES.items()):
            fig.add_trace(go.Scatter(x=x, y=finite(frame[name].to_list()), name=f"preference {label}",
                                     mode="lines+markers", line={"color": COLORS[3 + i]}), row=1, col=2)
        fig.add_trace(go.Scatter(x=x, y=finite(frame["pref_single_node_share"].to_list()), name=SINGLE[
            "pref_single_node_share"], mode="lines+markers", line={"color": "#7f7f7f"}), row=1, col=3)
        fig.update_yaxes(range=[0, 1.02], row=1, col=3)
    else:
        note = "This run's individuals carry no preference (only PIMP evolves an ideal mate)."
    layout(fig)
    fig.update_xaxes(title_text="generation")
    whole_steps(fig, frame["step"].to_list())
    return section_plot("mc-sizes", rel, fig, frame, note=note)


def best_individual(res, rel: str) -> dict:
    """The individual with the lowest training error in the last recorded generation (the
    lowest slot among equals), as a row of the ``individuals`` table."""
    individuals = res.table(rel, "individuals")
    if individuals.is_empty():
        manifest = res.manifest(rel)
        spec = (manifest.get("scenario") or {}).get("matechoice") or {}
        if spec.get("record_individuals") is False:
            raise Notice("This run did not record its individuals (matechoice.record_individuals: false).")
        raise Notice("No generation recorded yet.")
    last = individuals.filter(pl.col("step") == individuals["step"].max())
    ranked = last.with_columns(pl.when(pl.col("fitness").is_finite()).then(pl.col("fitness")).alias("_f"))
    return ranked.sort("_f", "slot", nulls_last=True).drop("_f").row(0, named=True)


def _best(res, rel: str):
    best = best_individual(res, rel)
    facts = [("generation", best["step"]), ("slot", best["slot"]), ("training error (RMSE)", best["fitness"]),
             ("test error (RMSE)", best["test_error"]), ("size", best["size"]), ("depth", best["depth"]),
             ("elite", best["elite"])]
    rows = [html.Tr([html.Th(k), html.Td(f"{v:.6g}" if isinstance(v, float) else str(v))]) for k, v in facts]
    parts = [html.Table(html.Tbody(rows), className="cs-facts"),
             html.P("expression:"), html.Pre(best["genome"], id="mc-best-genome", className="cs-quote")]
    if best.get("preference"):
        parts += [html.P("its ideal mate (preference):"), html.Pre(best["preference"], className="cs-quote")]
    return html.Div(parts)


register_sections(
    "matechoice",
    cached_section("Error over generations", _errors, "generations"),
    cached_section("Diversity over generations (genotypic and phenotypic)", _diversity, "generations"),
    cached_section("Tree and preference sizes over generations", _sizes, "generations"),
    cached_section("Best individual of the last generation", _best, "individuals"),
)


# ------------------------------------------------------------------------------ Price source

MAX_PRICE_STEPS = 200  # generations decomposed on the Selection page, evenly spaced


def matechoice_price(res, rel: str, trait: str, grouping: str, innovation_form: str = "immigration") -> pl.DataFrame:
    """culturesim.kinds.matechoice.price.price_over_generations of the run's individuals table."""
    from culturesim.kinds.matechoice.price import price_over_generations

    def make() -> pl.DataFrame:
        individuals = res.table(rel, "individuals")
        if individuals.is_empty():
            raise Notice("No individuals recorded: the Price decomposition needs matechoice.record_individuals: "
                         "true and two generations.")
        recorded = sorted(individuals["step"].unique().to_list())
        steps = evenly([s for s in recorded if s >= 1 and s - 1 in set(recorded)], MAX_PRICE_STEPS)
        frame = price_over_generations(individuals, trait, innovation_form, steps)
        extra = [c for c in frame.columns if c not in PRICE_COLUMNS]
        return frame.select(*PRICE_COLUMNS, *extra)

    return cached(res, rel, ("price", trait, innovation_form), ("individuals",), make)


register_price("matechoice", PriceSource(
    PRICE_TRAITS, matechoice_price, forms=True,
    note=f"Individuals of one generation are the parents of the next; each of a child's two mates is credited "
         f"1/2 (an elite copy 1 to itself). Every bred child has parents, so there is no innovation term. A lower "
         f"error is better: selection that works is negative. At most {MAX_PRICE_STEPS} evenly spaced "
         f"generations are decomposed."))


# ------------------------------------------------------------------------------ a sweep's modes


def is_matechoice_sweep(res, sweep: str | None) -> bool:
    if not sweep or not res.is_sweep(sweep):
        return False
    for rid in res.sweep_runs(sweep):
        try:
            return res.manifest(rid).get("kind") == "matechoice"
        except Exception:  # noqa: BLE001 - an unreadable run says nothing about the sweep's kind
            continue
    return False


def _sweep_token(res, sweep: str) -> tuple:
    path = res.sweep_dir(sweep)
    runs = [res.resolve(r) for r in res.sweep_runs(sweep)]
    return stamp(path / "sweep.parquet", *(p / f for p in runs for f in ("manifest.json", "generations.parquet")))


def sweep_tables(res, sweep: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """culturesim.kinds.matechoice.measures's run table (run ids as the app's) and report table of a sweep,
    cached until a run of it changes."""
    if not sweep:
        raise Notice("Choose a sweep.")
    if not is_matechoice_sweep(res, sweep):
        raise Notice(f"{sweep} is not a sweep of matechoice runs.")

    def make():
        from culturesim.kinds.matechoice.measures import run_table, table_of_runs

        path = res.sweep_dir(sweep)
        try:
            runs = run_table(path)
            report = table_of_runs(runs)
        except ValueError as exc:
            raise Notice(str(exc).replace(str(path), sweep)) from None
        return runs.with_columns((pl.lit(sweep + "/") + pl.col("run_id")).alias("run_id")), report

    return res.cache.get(("matechoice-sweep", sweep), _sweep_token(res, sweep), make)


def group_keys(runs: pl.DataFrame) -> list[str]:
    from culturesim.kinds.matechoice.measures import MEASURES

    return [c for c in runs.columns if c not in {"run_id", "mode", "generations", *MEASURES}]


def group_options(runs: pl.DataFrame) -> list[dict]:
    """One option per group of runs compared across modes (problem, mutation, rate, ...)."""
    keys = group_keys(runs)
    groups = runs.select(keys).unique(maintain_order=True).sort(keys)
    return [{"label": ", ".join(f"{k}={v}" for k, v in row.items()), "value": str(i)}
            for i, row in enumerate(groups.iter_rows(named=True))]


def _in_group(frame: pl.DataFrame, runs: pl.DataFrame, group: str | None) -> pl.DataFrame:
    keys = group_keys(runs)
    groups = runs.select(keys).unique(maintain_order=True).sort(keys)
    index = int(group) if group is not None and str(group).isdigit() and int(group) < groups.height else 0
    return frame.join(groups.slice(index, 1), on=keys, how="semi", nulls_equal=True)


def mode_runs(res, sweep: str | None, group: str | None) -> pl.DataFrame:
    """One row per finished run of the chosen group: run_id, mode, and the compared measures."""
    runs, _ = sweep_tables(res, sweep)
    keys = group_keys(runs)
    return _in_group(runs, runs, group).select("run_id", *keys, "mode", *MODE_MEASURES).sort("mode", "run_id")


def mode_report(res, sweep: str | None, group: str | None) -> pl.DataFrame:
    runs, report = sweep_tables(res, sweep)
    return _in_group(report, runs, group).filter(pl.col("measure").is_in(list(MODE_MEASURES)))


def mode_figure(frame: pl.DataFrame, sweep, group) -> go.Figure:
    from culturesim.kinds.matechoice.measures import MODES

    present = frame["mode"].unique().to_list()
    modes = [m for m in MODES if m in present] + sorted(set(present) - set(MODES))
    fig = make_subplots(rows=1, cols=len(MODE_MEASURES), subplot_titles=list(MODE_MEASURES.values()))
    for col, measure in enumerate(MODE_MEASURES, start=1):
        for i, mode in enumerate(modes):
            part = frame.filter(pl.col("mode") == mode)
            values = finite(part[measure].cast(pl.Float64).to_list())
            color = COLORS[i % len(COLORS)]
            if measure == "success":
                ok = [v for v in values if v is not None]
                rate = sum(ok) / len(ok) if ok else None
                fig.add_trace(go.Bar(x=[mode], y=[rate], name=mode, marker_color=color, showlegend=False,
                                     text=[f"{int(sum(ok))}/{len(ok)}"], textposition="outside"), row=1, col=col)
            else:
                fig.add_trace(go.Box(x=[mode] * len(values), y=values, name=mode, marker_color=color,
                                     boxpoints="all", pointpos=0, jitter=0.3, hovertext=part["run_id"].to_list(),
                                     showlegend=False), row=1, col=col)
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=modes, row=1, col=col)
    fig.update_yaxes(range=[0, 1.1], row=1, col=1)
    return layout(fig, uirevision=str(sweep))


def compare_card() -> html.Div:
    """The Compare page's card for sweeps of matechoice runs (hidden for other sweeps)."""
    return html.Div(id="mccmp-box", style={"display": "none"}, children=[
        html.Div(className="cs-controls", children=[
            html.Span("mate choice: runs compared within", className="cs-hint"),
            dcc.Dropdown(id="mccmp-group", clearable=False, className="cs-picker"),
        ]),
        plot_card("mccmp", "Mating modes: success rate and final diversity", height=440),
        html.Div(className="cs-card", children=[
            html.H4("Per mode: mean (median, sd); Kruskal-Wallis p across modes; Holm-corrected Mann-Whitney p"),
            dcc.Loading(html.Div(id="mccmp-report")),
            html.Button("Report as CSV", id="mccmp-report-btn", className="cs-button"),
            dcc.Download(id="mccmp-report-csv"),
        ]),
    ])


def register_compare(app) -> None:
    from app.ui import results

    @app.callback(Output("mccmp-box", "style"), Output("mccmp-group", "options"), Output("mccmp-group", "value"),
                  Input("cmp-sweep", "value"), State("mccmp-group", "value"))
    def _group(sweep, value):
        res = results()
        try:
            if not is_matechoice_sweep(res, sweep):
                return {"display": "none"}, [], None
            options = group_options(sweep_tables(res, sweep)[0])
        except Exception:  # noqa: BLE001 - the plot card below says why
            return {}, [], None
        values = [o["value"] for o in options]
        return {}, options, value if value in values else (values[0] if values else None)

    inputs = [Input("cmp-sweep", "value"), Input("mccmp-group", "value")]
    register_plot(app, "mccmp", inputs, lambda sweep, group: mode_runs(results(), sweep, group), mode_figure)

    @app.callback(Output("mccmp-report", "children"), *inputs)
    def _report(sweep, group):
        try:
            if not is_matechoice_sweep(results(), sweep):
                return None
            frame = mode_report(results(), sweep, group)
        except Exception as exc:  # noqa: BLE001
            return message_for(exc)
        return table(frame.to_dicts(), frame.columns)

    @app.callback(Output("mccmp-report-csv", "data"), Input("mccmp-report-btn", "n_clicks"),
                  *[State(i.component_id, i.component_property) for i in inputs], prevent_initial_call=True)
    def _report_csv(n_clicks, sweep, group):
        try:
            frame = mode_report(results(), sweep, group)
        except Exception:  # noqa: BLE001
            return no_update
        return {"content": csv_ready(frame).write_csv(), "filename": "matechoice_modes.csv", "type": "text/csv"}


register_compare_card(CompareCard(compare_card, register_compare))
