"""Network: who holds which idea at a chosen step, and where clusters of ideas sit.

An agent holds the last idea it made at or before the step (an agent that failed or was
not its turn keeps its previous idea). Node positions are computed once per network
(spring layout, seeded) so the picture does not jump as the slider moves.
"""

from __future__ import annotations

import dash
import networkx as nx
import numpy as np
import plotly.graph_objects as go
import polars as pl
from dash import Input, Output, dcc, html
from plotly.colors import qualitative

from app.data import stamp
from app.kinds import kinds_with_ideas
from app.ui import Notice, default_run, hover_text, picker, plot_card, register_plot, results, run_options

COLOURS = {"cluster": "idea cluster (TF-IDF)", "chars": "idea length (chars)", "copies": "times copied (whole run)",
           "degree": "degree"}
CATEGORICAL = {"cluster"}
MAX_MARKS = 12
SPRING_MAX = 300  # nodes; spring layout is O(n^2) per iteration in networkx
SPECTRAL_MAX = 5000


def held_ideas(ideas: pl.DataFrame, step: int) -> pl.DataFrame:
    """agent_id -> the idea it holds at ``step``: its latest valid idea made at or before it."""
    return (ideas.filter(pl.col("step") <= step).sort("step")
            .group_by("agent_id", maintain_order=True).last()
            .select("agent_id", "idea_id", pl.col("step").alias("idea_step"), "text"))


def positions(rel: str) -> dict[int, tuple[float, float]]:
    res = results()
    run = res.run_dir(rel)

    def make():
        agents, edges = res.agents(rel), res.edges(rel)
        graph = nx.Graph()
        graph.add_nodes_from(agents["agent_id"].to_list())
        graph.add_edges_from(edges.select("source", "target").iter_rows())
        n = graph.number_of_nodes()
        if graph.number_of_edges() == 0:  # chains or a panmictic population: a grid
            side = max(1, int(np.ceil(np.sqrt(n))))
            return {node: (float(i % side), float(-(i // side))) for i, node in enumerate(sorted(graph.nodes))}
        if n <= SPRING_MAX:
            layout = nx.spring_layout(graph, seed=0, iterations=50)
        elif n <= SPECTRAL_MAX and nx.is_connected(graph):
            layout = nx.spectral_layout(graph)  # ~1 s for 1,000 nodes where spring takes ~5
        else:
            layout = nx.circular_layout(sorted(graph.nodes))
        return {k: (float(v[0]), float(v[1])) for k, v in layout.items()}

    return res.cache.get(("positions", rel), stamp(run.path / "agents.parquet", run.path / "edges.parquet"), make)


def copies(rel: str) -> pl.DataFrame:
    from analysis.dynamics import lineage

    res = results()
    return res.derived(rel, "copies", lambda: lineage(res.ideas(rel), descendants=False, root_ids=False)
                       .select("idea_id", "copies"))


def colour_options(rel: str | None) -> list[dict]:
    options = [{"label": v, "value": k} for k, v in COLOURS.items()]
    if rel:
        try:
            agents = results().agents(rel)
        except Exception:  # noqa: BLE001 - the plot card shows the error
            return options
        for col in agents.columns:
            if col not in ("agent_id", "in_degree") and agents[col].null_count() < agents.height:
                options.append({"label": f"agent {col}", "value": f"agent:{col}"})
    return options


def step_bounds(rel: str | None) -> tuple[int, int]:
    if not rel:
        return 0, 0
    try:
        steps = results().valid_ideas(rel)["step"]
    except Exception:  # noqa: BLE001
        return 0, 0
    return (int(steps.min()), int(steps.max())) if steps.len() else (0, 0)


def marks(lo: int, hi: int) -> dict:
    every = max(1, int(np.ceil((hi - lo + 1) / MAX_MARKS)))
    out = {s: str(s) for s in range(lo, hi + 1, every)}
    out[hi] = str(hi)
    return out


def data(rel, step, colour) -> pl.DataFrame:
    if not rel:
        raise Notice("Choose a run.")
    res = results()
    kind = res.manifest(rel).get("kind")
    agents = res.agents(rel)
    pos = positions(rel)
    ideas = res.valid_ideas(rel) if kind in kinds_with_ideas() else None
    step = int(step) if step is not None else (int(ideas["step"].max()) if ideas is not None and ideas.height else 0)
    nodes = agents.select("agent_id", *[c for c in agents.columns if c != "agent_id"])
    if ideas is not None:
        nodes = nodes.join(held_ideas(ideas, step), on="agent_id", how="left")
    else:
        nodes = nodes.with_columns(pl.lit(None, pl.String).alias(c) for c in ("idea_id", "text"))
    nodes = nodes.with_columns(
        pl.col("agent_id").replace_strict({k: v[0] for k, v in pos.items()}, default=None,
                                          return_dtype=pl.Float64).alias("x"),
        pl.col("agent_id").replace_strict({k: v[1] for k, v in pos.items()}, default=None,
                                          return_dtype=pl.Float64).alias("y"),
    )
    colour = colour or "cluster"
    if colour == "cluster":
        texts = nodes["text"].to_list()
        labels = res.derived(rel, ("clusters", step), lambda: _clusters(texts))
        nodes = nodes.with_columns(pl.Series("colour", labels, dtype=pl.Int64))
    elif colour == "chars":
        nodes = nodes.with_columns(pl.col("text").str.len_chars().cast(pl.Float64).alias("colour"))
    elif colour == "copies":
        nodes = nodes.join(copies(rel).rename({"copies": "colour"}), on="idea_id", how="left")
    elif colour == "degree":
        edges = res.edges(rel)
        ends = pl.concat([edges["source"], edges["target"]])
        degree = ends.value_counts(name="colour").rename({"source": "agent_id"})
        nodes = nodes.join(degree, on="agent_id", how="left").with_columns(pl.col("colour").fill_null(0))
    elif colour.startswith("agent:") and colour[6:] in agents.columns:
        nodes = nodes.with_columns(pl.col(colour[6:]).cast(pl.String).alias("colour"))
    else:
        raise Notice(f"Unknown colouring {colour!r}.")
    return nodes.with_columns(pl.lit(step).alias("step")).sort("agent_id")


def _clusters(texts: list[str | None]) -> list[int | None]:
    """Cluster labels of the held ideas (agents without an idea get none)."""
    from analysis.diversity import clusters
    from analysis.embeddings import TfidfEmbedder

    have = [i for i, t in enumerate(texts) if t]
    labels: list[int | None] = [None] * len(texts)
    if len(have) < 2:
        return [0 if t else None for t in texts]
    X = TfidfEmbedder().embed([texts[i] for i in have])
    keep = np.linalg.norm(X, axis=1) > 0
    if keep.sum() < 2:
        return labels
    found = clusters(X[keep], rng=np.random.default_rng(0)).labels
    for i, label in zip(np.array(have)[keep], found, strict=True):
        labels[int(i)] = int(label)
    return labels


def figure(nodes: pl.DataFrame, rel, step, colour) -> go.Figure:
    res = results()
    pos = positions(rel)
    edges = res.edges(rel)
    ex, ey = [], []
    for u, v in edges.select("source", "target").iter_rows():
        if u in pos and v in pos:
            ex += [pos[u][0], pos[v][0], None]
            ey += [pos[u][1], pos[v][1], None]
    fig = go.Figure(go.Scatter(x=ex, y=ey, mode="lines", line={"width": 0.6, "color": "#bbb"}, hoverinfo="skip",
                               showlegend=False))
    rows = nodes.to_dicts()
    for r in rows:
        held = (f"idea {hover_text(r['idea_id'])} (step {r['idea_step']})<br>{hover_text(r['text'])}"
                if r.get("text") else "no idea yet")
        r["_hover"] = f"agent {r['agent_id']} · {hover_text(str(r['colour']))}<br>{held}"
    colour = colour or "cluster"
    categorical = colour in CATEGORICAL or colour.startswith("agent:")
    if categorical:
        groups = sorted({r["colour"] for r in rows}, key=lambda v: (v is None, str(v)))
        palette = qualitative.Plotly + qualitative.D3
        for i, g in enumerate(groups):
            part = [r for r in rows if r["colour"] == g]
            fig.add_trace(go.Scatter(
                x=[r["x"] for r in part], y=[r["y"] for r in part], mode="markers", name=str(g),
                marker={"size": 12, "color": "#ccc" if g is None else palette[i % len(palette)],
                        "line": {"width": 1, "color": "#333"}},
                hovertext=[r["_hover"] for r in part], hoverinfo="text"))
    else:
        fig.add_trace(go.Scatter(
            x=[r["x"] for r in rows], y=[r["y"] for r in rows], mode="markers", showlegend=False,
            marker={"size": 12, "color": [r["colour"] for r in rows], "colorscale": "Viridis", "showscale": True,
                    "colorbar": {"title": COLOURS.get(colour, colour)}, "line": {"width": 1, "color": "#333"}},
            hovertext=[r["_hover"] for r in rows], hoverinfo="text"))
    fig.update_layout(title=f"step {nodes['step'][0] if nodes.height else step}", template="plotly_white",
                      xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"},
                      uirevision=rel, margin={"l": 10, "r": 10, "t": 40, "b": 10}, hoverlabel={"align": "left"})
    return fig


def layout(run: str | None = None, step: str | None = None, **_):
    options = run_options(results(), kinds=None)
    rel = default_run(options, run)
    lo, hi = step_bounds(rel)
    try:
        value = min(max(int(step), lo), hi) if step is not None else hi
    except ValueError:
        value = hi
    return html.Div([
        html.H2("Network"),
        html.Div(className="cs-controls", children=[
            picker("net-run", options, rel),
            dcc.Dropdown(id="net-colour", options=colour_options(rel), value="cluster", clearable=False,
                         className="cs-picker-small"),
        ]),
        html.Div(className="cs-slider", children=[
            html.Span("step"),
            dcc.Slider(id="net-step", min=lo, max=hi, step=1, value=value, marks=marks(lo, hi),
                       updatemode="mouseup"),
        ]),
        plot_card("net", "Agents and their ideas", height=620),
    ])


def register(app) -> None:
    dash.register_page(__name__, path="/network", name="Network", order=3, layout=layout)

    @app.callback(Output("net-step", "min"), Output("net-step", "max"), Output("net-step", "marks"),
                  Output("net-step", "value"), Output("net-colour", "options"),
                  Input("net-run", "value"), prevent_initial_call=True)
    def _bounds(rel):
        lo, hi = step_bounds(rel)
        return lo, hi, marks(lo, hi), hi, colour_options(rel)

    register_plot(app, "net", [Input("net-run", "value"), Input("net-step", "value"), Input("net-colour", "value")],
                  data, figure)
