"""Ideas and lineage: read what agents wrote, follow one idea's family, see the idea space.

Idea texts are untrusted (a model wrote them): they reach the page only as text children
of table cells and list items, or escaped in hover labels, never as markup.
The map projects a sample of ideas (seeded, at most ``MAP_SAMPLE``) on the first two
principal components of their embeddings: TF-IDF fitted on the sample by default, or
MiniLM (slower; vectors cached in the run's embeddings/ folder, as ``culturesim analyze`` does).
The similarity heatmap (``app.similarity``) shows one or two steps of one run idea by idea,
in cluster order, or one step's ideas (rows) against another step's (columns, "against
step"), its hover labels escaped like the map's.
"""

from __future__ import annotations

import dash
import numpy as np
import plotly.graph_objects as go
import polars as pl
from dash import Input, Output, State, ctx, dcc, html, no_update
from plotly.colors import qualitative

from app.data import DataError, Refused, condition_label
from app.kinds import kinds_with_ideas
from app.sections import whole_steps
from app.similarity import MAX_IDEAS, heatmap_data, heatmap_figure
from app.ui import (
    Notice,
    default_run,
    hover_text,
    href,
    message_for,
    note_box,
    picker,
    plot_card,
    register_plot,
    results,
    run_options,
)

PAGE_SIZE = 50
MAP_SAMPLE = 2000
MAX_PER_GENERATION = 40
COLUMNS = ["step", "agent_id", "idea_id", "operation", "text"]


# ------------------------------------------------------------------------------ data


def source_ideas(src: str) -> tuple[pl.DataFrame, list[str]]:
    """Valid ideas of a run, or of every run of a sweep (with run and condition columns),
    and the one-line errors of runs that could not be read."""
    res = results()
    frames, errors = [], []
    for rid in res.expand(src):
        try:
            ideas = res.valid_ideas(rid)
        except (DataError, Refused) as exc:
            errors.append(str(exc))
            continue
        frames.append(ideas.select(*COLUMNS, "parent_ids").with_columns(
            pl.lit(rid).alias("run"), pl.lit(condition_label(res.conditions(rid))).alias("condition")))
    if not frames:
        if errors:
            raise DataError(errors[0])
        return pl.DataFrame(schema={c: pl.String for c in (*COLUMNS, "run", "condition")}), errors
    return pl.concat(frames, how="vertical_relaxed"), errors


def search(ideas: pl.DataFrame, needle: str | None, step: int | None) -> pl.DataFrame:
    """Literal, case-insensitive text search (no regex: a user's '(' is just a bracket)."""
    if step is not None:
        ideas = ideas.filter(pl.col("step") == int(step))
    if needle and needle.strip():
        ideas = ideas.filter(pl.col("text").str.to_lowercase().str.contains(needle.strip().lower(), literal=True))
    return ideas


def links_table(res, rel: str) -> pl.DataFrame:
    """(idea_id, parent) of every valid idea: one row per parent link."""
    return res.derived(rel, "links", lambda: res.valid_ideas(rel).select("idea_id", "parent_ids")
                       .explode("parent_ids").rename({"parent_ids": "parent"}).drop_nulls("parent"))


def family(rel: str, idea: str, up: int, down: int) -> pl.DataFrame:
    """The idea, its ancestors ``up`` generations back and descendants ``down`` forward:
    idea_id, step, agent_id, text, parent_ids, relation, generation (negative: ancestors).
    A generation wider than ``MAX_PER_GENERATION`` keeps its first ideas by step and agent."""
    res = results()
    ideas = res.valid_ideas(rel)
    links = links_table(res, rel)
    if ideas.filter(pl.col("idea_id") == idea).is_empty():
        raise Notice(f"No idea {idea!r} in {rel}.")
    found = {idea: (0, "idea")}
    frontier = [idea]
    for g in range(1, up + 1):
        parents = links.filter(pl.col("idea_id").is_in(frontier))["parent"].unique().to_list()
        frontier = [p for p in sorted(parents) if p not in found][:MAX_PER_GENERATION]
        found.update({p: (-g, "ancestor") for p in frontier})
        if not frontier:
            break
    frontier = [idea]
    for g in range(1, down + 1):
        children = links.filter(pl.col("parent").is_in(frontier))["idea_id"].unique().to_list()
        frontier = [c for c in sorted(children) if c not in found][:MAX_PER_GENERATION]
        found.update({c: (g, "descendant") for c in frontier})
        if not frontier:
            break
    rel_frame = pl.DataFrame({"idea_id": list(found), "generation": [v[0] for v in found.values()],
                              "relation": [v[1] for v in found.values()]})
    return (ideas.select("idea_id", "step", "agent_id", "text", "parent_ids")
            .join(rel_frame, on="idea_id", how="inner").sort("step", "agent_id"))


# ------------------------------------------------------------------------------ figures


def family_data(rel, idea, generations) -> pl.DataFrame:
    if not rel or not idea:
        raise Notice("Pick an idea in the table (its id) to see its family tree.")
    if results().is_sweep(rel):
        raise Notice("Family trees are per run: pick the idea from a run's table.")
    up, down = (int(x) for x in (generations or "3,2").split(","))
    tree = family(rel, idea, up, down)
    ys = {}
    for _, part in tree.group_by("step", maintain_order=True):
        n = part.height
        for i, iid in enumerate(part["idea_id"]):
            ys[iid] = i - (n - 1) / 2
    return tree.with_columns(pl.col("idea_id").replace_strict(ys, return_dtype=pl.Float64).alias("y"))


def family_figure(tree: pl.DataFrame, rel, idea, generations) -> go.Figure:
    pos = {r["idea_id"]: (r["step"], r["y"]) for r in tree.iter_rows(named=True)}
    ex, ey = [], []
    for r in tree.iter_rows(named=True):
        for p in r["parent_ids"] or []:
            if p in pos:
                ex += [pos[p][0], pos[r["idea_id"]][0], None]
                ey += [pos[p][1], pos[r["idea_id"]][1], None]
    fig = go.Figure(go.Scatter(x=ex, y=ey, mode="lines", line={"color": "#aaa", "width": 1}, hoverinfo="skip",
                               showlegend=False))
    styles = {"ancestor": ("#1f77b4", 11), "idea": ("#d62728", 18), "descendant": ("#2ca02c", 11)}
    for relation, (color, size) in styles.items():
        part = tree.filter(pl.col("relation") == relation)
        if part.is_empty():
            continue
        fig.add_trace(go.Scatter(
            x=part["step"].to_list(), y=part["y"].to_list(), mode="markers", name=relation,
            marker={"color": color, "size": size, "line": {"width": 1, "color": "#333"}},
            hovertext=[f"{hover_text(r['idea_id'])} · step {r['step']} · agent {r['agent_id']}"
                       f"<br>{hover_text(r['text'])}" for r in part.iter_rows(named=True)], hoverinfo="text"))
    fig.update_layout(template="plotly_white", title=f"family of {idea}", xaxis={"title": "step"},
                      yaxis={"visible": False}, margin={"l": 40, "r": 20, "t": 40, "b": 40},
                      hoverlabel={"align": "left"})
    return whole_steps(fig, tree["step"].to_list())


def project(sample: pl.DataFrame, embedder: str) -> np.ndarray:
    """The sample's first two principal components: of TF-IDF vectors fitted on the sample
    (one space for all runs of a sweep; sparse, centred implicitly), or of MiniLM vectors."""
    from sklearn.decomposition import PCA

    texts = sample["text"].to_list()
    if embedder == "tfidf":
        from sklearn.feature_extraction.text import TfidfVectorizer

        X = TfidfVectorizer(max_features=4096).fit_transform(texts)
        if min(X.shape) <= 2:
            raise Notice("Too few distinct words to map these ideas.")
        return PCA(n_components=2, svd_solver="arpack", random_state=0).fit_transform(X)
    from analysis.embeddings import embed_texts, make_embedder

    model = make_embedder("minilm")
    res = results()
    runs = sample["run"].to_list()
    parts: dict[int, np.ndarray] = {}
    for rid in dict.fromkeys(runs):
        rows = [i for i, r in enumerate(runs) if r == rid]
        X = embed_texts([texts[i] for i in rows], model, cache_dir=res.run_dir(rid).path / "embeddings")
        parts.update(zip(rows, X, strict=True))
    X = np.stack([parts[i] for i in range(len(texts))]).astype(np.float64)
    return PCA(n_components=2, random_state=0).fit_transform(X)


def map_data(src, embedder, colour) -> pl.DataFrame:
    if not src:
        raise Notice("Choose a run or a sweep.")
    res = results()

    def make() -> pl.DataFrame:
        ideas, _ = source_ideas(src)
        if ideas.height < 3:
            raise Notice("Too few ideas to map.")
        if ideas.height > MAP_SAMPLE:
            rows = np.sort(np.random.default_rng(0).choice(ideas.height, size=MAP_SAMPLE, replace=False))
            ideas = ideas.with_row_index("_row").filter(pl.col("_row").is_in(rows.tolist())).drop("_row")
        pcs = project(ideas, embedder or "tfidf")
        return ideas.drop("parent_ids").with_columns(pl.Series("pc1", pcs[:, 0]), pl.Series("pc2", pcs[:, 1]))

    token_runs = res.expand(src)
    token = tuple(res.ideas_token(r) for r in token_runs)
    return res.cache.get(("map", src, embedder), token, make)


def map_figure(frame: pl.DataFrame, src, embedder, colour) -> go.Figure:
    hover = [f"{hover_text(r['run'])} · step {r['step']} · agent {r['agent_id']}<br>{hover_text(r['text'])}"
             for r in frame.iter_rows(named=True)]
    fig = go.Figure()
    if colour == "step":
        fig.add_trace(go.Scattergl(
            x=frame["pc1"].to_list(), y=frame["pc2"].to_list(), mode="markers", hovertext=hover, hoverinfo="text",
            marker={"color": frame["step"].to_list(), "colorscale": "Viridis", "showscale": True, "size": 6,
                    "colorbar": {"title": "step"}, "opacity": 0.75}))
    else:
        key = "condition" if colour == "condition" else "run"
        palette = qualitative.Plotly + qualitative.D3
        values = frame[key].to_list()
        for i, g in enumerate(sorted(set(values))):
            idx = [j for j, v in enumerate(values) if v == g]
            fig.add_trace(go.Scattergl(
                x=frame["pc1"].gather(idx).to_list(), y=frame["pc2"].gather(idx).to_list(), mode="markers", name=g,
                hovertext=[hover[j] for j in idx], hoverinfo="text",
                marker={"color": palette[i % len(palette)], "size": 6, "opacity": 0.75}))
    fig.update_layout(template="plotly_white", xaxis={"title": "PC 1"}, yaxis={"title": "PC 2"},
                      title=f"{frame.height} ideas, {embedder or 'tfidf'} embeddings", uirevision=str(src),
                      margin={"l": 50, "r": 20, "t": 40, "b": 40}, hoverlabel={"align": "left"})
    return fig


# ------------------------------------------------------------------------------ page


def _idea_cell(column: str, row: dict):
    if column == "idea_id":
        return dcc.Link(row["idea_id"], href=href("/ideas", run=row["run"], idea=row["idea_id"]), className="cs-link")
    value = row.get(column)
    return "" if value is None else str(value)


def ideas_table(src, needle, step, page):
    from app.ui import table

    ideas, errors = source_ideas(src)
    found = search(ideas, needle, step)
    pages = max(1, -(-found.height // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    rows = found.sort("step", "agent_id").slice(page * PAGE_SIZE, PAGE_SIZE).to_dicts()
    multi = ideas["run"].n_unique() > 1 if ideas.height else False
    columns = (["run"] if multi else []) + COLUMNS
    body = [note_box(e) for e in errors]
    body.append(table(rows, columns, cell=_idea_cell, className="cs-table cs-ideas-table"))
    return body, f"{found.height} of {ideas.height} ideas · page {page + 1} of {pages}", page


def family_list(rel: str | None, idea: str | None):
    if not rel or not idea:
        return None
    try:
        tree = family(rel, idea, 1, 1)
    except Exception as exc:  # noqa: BLE001
        return message_for(exc)

    def items(relation):
        return [html.Li([dcc.Link(r["idea_id"], href=href("/ideas", run=rel, idea=r["idea_id"]), className="cs-link"),
                         f" (step {r['step']}, agent {r['agent_id']}): ", html.Span(r["text"])])
                for r in tree.filter(pl.col("relation") == relation).iter_rows(named=True)]

    me = tree.filter(pl.col("relation") == "idea").row(0, named=True)
    return html.Div(className="cs-card", children=[
        html.H4(f"Idea {me['idea_id']} (step {me['step']}, agent {me['agent_id']})"),
        html.Blockquote(me["text"], className="cs-quote"),
        html.H5("made from"), html.Ul(items("ancestor") or [html.Li("nothing: it is a root")]),
        html.H5("used by"), html.Ul(items("descendant") or [html.Li("no later idea")]),
    ])


def layout(run: str | None = None, idea: str | None = None, q: str | None = None, **_):
    res = results()
    options = run_options(res, kinds=kinds_with_ideas(), sweeps=True)
    src = default_run(options, run)
    return html.Div([
        html.H2("Ideas and lineage"),
        html.Div(className="cs-controls", children=[
            picker("ideas-src", options, src, placeholder="a run or a sweep"),
            dcc.Input(id="ideas-search", type="text", value=q or "", placeholder="search the texts", debounce=True,
                      className="cs-input"),
            dcc.Input(id="ideas-step", type="number", placeholder="step", debounce=True, className="cs-input-small"),
        ]),
        html.Div(id="ideas-msg"),
        html.Div(className="cs-pager", children=[
            html.Button("◀ previous", id="ideas-prev", className="cs-button"),
            html.Span(id="ideas-count", className="cs-hint"),
            html.Button("next ▶", id="ideas-next", className="cs-button"),
        ]),
        dcc.Store(id="ideas-page", data=0),
        dcc.Store(id="ideas-focus", data={"run": src, "idea": idea}),
        dcc.Loading(html.Div(id="ideas-table")),
        html.Div(family_list(src, idea), id="ideas-family"),
        html.Div(className="cs-controls", children=[
            html.Span("family tree:"),
            dcc.RadioItems(id="ideas-generations", inline=True, value="3,2", options=[
                {"label": "1 up, 1 down", "value": "1,1"}, {"label": "3 up, 2 down", "value": "3,2"},
                {"label": "6 up, 4 down", "value": "6,4"}]),
        ]),
        plot_card("lineage", "Family tree", height=420),
        html.Div(className="cs-controls", children=[
            html.Span("idea map:"),
            dcc.RadioItems(id="map-embedder", inline=True, value="tfidf", options=[
                {"label": "TF-IDF (fast)", "value": "tfidf"}, {"label": "MiniLM (slow the first time)",
                                                              "value": "minilm"}]),
            dcc.RadioItems(id="map-colour", inline=True, value="step", options=[
                {"label": "colour by step", "value": "step"}, {"label": "by condition", "value": "condition"},
                {"label": "by run", "value": "run"}]),
        ]),
        plot_card("map", f"Idea space (PCA of a sample of at most {MAP_SAMPLE} ideas)", height=560),
        html.Div(className="cs-controls", children=[
            html.Span("idea-by-idea similarity of one run at step"),
            dcc.Input(id="sim-step-a", type="number", placeholder="last", debounce=True, className="cs-input-small"),
            html.Span("and step"),
            dcc.Input(id="sim-step-b", type="number", placeholder="(none)", debounce=True, className="cs-input-small"),
            html.Span("against step"),
            dcc.Dropdown(id="sim-against", placeholder="(itself)", clearable=True, className="cs-picker-small"),
        ]),
        plot_card("sim", f"Idea-by-idea similarity (cosine; clustered; at most {MAX_IDEAS} ideas; hover for "
                         f"both texts)", height=640),
    ])


def register(app) -> None:
    dash.register_page(__name__, path="/ideas", name="Ideas", order=4, layout=layout)

    @app.callback(
        Output("ideas-table", "children"), Output("ideas-count", "children"), Output("ideas-page", "data"),
        Output("ideas-msg", "children"),
        Input("ideas-src", "value"), Input("ideas-search", "value"), Input("ideas-step", "value"),
        Input("ideas-prev", "n_clicks"), Input("ideas-next", "n_clicks"), State("ideas-page", "data"),
    )
    def _table(src, needle, step, _prev, _next, page):
        if not src:
            return None, "", 0, note_box("Choose a run or a sweep.")
        trigger = ctx.triggered_id
        page = (page or 0) + (1 if trigger == "ideas-next" else -1 if trigger == "ideas-prev" else 0)
        if trigger not in ("ideas-next", "ideas-prev"):
            page = 0
        try:
            body, count, page = ideas_table(src, needle, step, page)
        except Exception as exc:  # noqa: BLE001
            return None, "", 0, message_for(exc)
        return body, count, page, None

    @app.callback(Output("ideas-focus", "data"), Input("ideas-src", "value"), State("ideas-focus", "data"),
                  prevent_initial_call=True)
    def _forget(src, focus):
        if focus and focus.get("run") == src:
            return no_update
        return {"run": src, "idea": None}

    register_plot(app, "lineage", [Input("ideas-focus", "data"), Input("ideas-generations", "value")],
                  lambda focus, gens: family_data((focus or {}).get("run"), (focus or {}).get("idea"), gens),
                  lambda tree, focus, gens: family_figure(tree, focus.get("run"), focus.get("idea"), gens))
    # the map waits for the table (its input is the table's count): the ideas come first
    register_plot(app, "map", [Input("ideas-src", "value"), Input("map-embedder", "value"),
                               Input("map-colour", "value"), Input("ideas-count", "children")],
                  lambda src, emb, colour, _count: map_data(src, emb, colour),
                  lambda frame, src, emb, colour, _count: map_figure(frame, src, emb, colour))
    @app.callback(Output("sim-against", "options"), Output("sim-against", "value"), Input("ideas-src", "value"),
                  State("sim-against", "value"))
    def _against_steps(src, current):
        """The run's steps, for "against step" (none for a sweep: the heatmap is per run)."""
        res = results()
        try:
            if not src or res.is_sweep(src):
                return [], None
            steps = sorted(int(s) for s in res.valid_ideas(src)["step"].unique().to_list())
        except Exception:  # noqa: BLE001 - the heatmap's card says why
            return [], None
        return [{"label": f"step {s}", "value": s} for s in steps], current if current in steps else None

    register_plot(app, "sim", [Input("ideas-src", "value"), Input("sim-step-a", "value"), Input("sim-step-b", "value"),
                               Input("sim-against", "value"), Input("ideas-count", "children")],
                  lambda src, a, b, against, _count: heatmap_data(results(), src, [s for s in (a, b) if s is not None],
                                                                  against),
                  lambda frame, *_: heatmap_figure(frame))
