"""What the scenario builder shows: the form's Dash inputs (from ``app.builder``) and the
network the form describes, drawn before running.

The network is built here, in the app's process, only from a topology and its parameters
(``culturesim.networks.build_network``), never from a file: an ``edgelist`` is drawn after
Validate (which builds it, confined, in a subprocess). Networks over ``MAX_DRAWN`` nodes, or
with more than ``MAX_EDGES_DRAWN`` edges expected, are a summary line, not a drawing.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from dash import dcc, html

from app.builder import Input, Section, form_of, to_widget
from culturesim.personalities import registry

MAX_DRAWN = 500
MAX_EDGES_DRAWN = 20_000
LONG_TEXT = 40  # a text input whose default is longer is a text area
FORM = "cs-build"
PRESET = "cs-build-preset"
PROMPT_PRESET = "cs-build-prompt-preset"


def input_id(inp: Input) -> dict:
    return {"type": FORM, "key": inp.key}


def _bounds_text(inp: Input) -> str:
    if inp.lo is None and inp.hi is None:
        return ""
    lo = "" if inp.lo is None else f"{inp.lo:g}"
    hi = "" if inp.hi is None or inp.hi >= 2**62 else f"{inp.hi:g}"
    return f" [{lo} … {hi}]" if lo or hi else ""


def multiline(inp: Input, long_keys: frozenset[str] = frozenset()) -> bool:
    """Whether a text input is a text area: prompts and other long texts keep their line
    breaks there (an ``<input>`` drops them as soon as it is edited). Long: a default with a
    line break or over ``LONG_TEXT`` characters, or a key a prompt preset fills."""
    default = inp.default if isinstance(inp.default, str) else ""
    return inp.widget == "text" and (inp.key in long_keys or "\n" in default or len(default) > LONG_TEXT)


def control(inp: Input, value: Any, long: bool = False):
    """The Dash input of one form input, holding ``value`` (a scenario value)."""
    shown = to_widget(inp, value)
    if long:
        return dcc.Textarea(id=input_id(inp), value=shown if shown is not None else "", rows=4,
                            className="cs-input cs-build-text cs-build-long")
    if inp.widget == "choice":
        return dcc.Dropdown(id=input_id(inp), options=[{"label": str(c), "value": c} for c in inp.choices],
                            value=shown, clearable=inp.optional, className="cs-build-choice")
    if inp.widget == "bool":
        return dcc.Checklist(id=input_id(inp), options=[{"label": "", "value": "on"}], value=shown, inline=True)
    if inp.widget in ("integer", "number"):
        extra = {"min": inp.lo} if inp.lo is not None else {}
        if inp.hi is not None and inp.hi < 2**62:
            extra["max"] = inp.hi
        return dcc.Input(id=input_id(inp), type="number", value=shown, debounce=True,
                         step=1 if inp.widget == "integer" else "any", className="cs-input-small", **extra)
    placeholder = "YAML, e.g. {a: 1} or [1, 2]" if inp.widget == "yaml" else ""
    return dcc.Input(id=input_id(inp), type="text", value=shown if shown is not None else "", debounce=True,
                     placeholder=placeholder, className="cs-input cs-build-text")


def _personality_presets(inp: Input):
    """Beside a population's ``mix``: the personality registry to pick from (equal shares)."""
    known = registry()
    return dcc.Dropdown(id={"type": PRESET, "key": inp.key}, multi=True, placeholder="personality presets",
                        options=[{"label": name, "value": name, "title": text} for name, text in known.items()],
                        className="cs-build-choice")


def prompt_picker(presets: dict[str, dict[str, str]]):
    """The kind's prompt presets, one to pick (its texts as the option's tooltip); None when it has none."""
    if not presets:
        return None
    return html.Div(className="cs-build-row", children=[
        html.Label("prompt preset", className="cs-build-label",
                   title="fills the prompt inputs below (and the YAML) with a named set of prompts"),
        dcc.Dropdown(id={"type": PROMPT_PRESET, "key": "prompts"}, placeholder="prompt presets",
                     options=[{"label": name, "value": name,
                               "title": "\n\n".join(f"{k}: {v}" for k, v in texts.items())}
                              for name, texts in presets.items()],
                     className="cs-build-choice"),
        html.Div("fills " + ", ".join(dict.fromkeys(k for texts in presets.values() for k in texts)),
                 className="cs-hint cs-build-help"),
    ])


def render_form(kind: str, items: list[Input | Section], values: dict[str, Any]) -> list:
    """The whole form of ``kind``: its prompt presets' picker (when it declares any), then the inputs."""
    from app.builder import prompt_presets

    try:
        presets = prompt_presets(kind)
        picker = prompt_picker(presets)
    except Exception as exc:  # noqa: BLE001 - a plug-in's broken presets: said, and the form still works
        presets, picker = {}, html.Div(f"prompt presets unavailable: {exc}", className="cs-hint")
    long_keys = frozenset(k for texts in presets.values() for k in texts)
    return ([picker] if picker is not None else []) + render(items, values, long_keys=long_keys)


def render(items: list[Input | Section], values: dict[str, Any], depth: int = 0,
           long_keys: frozenset[str] = frozenset()) -> list:
    rows: list = []
    for item in items:
        if isinstance(item, Section):
            rows.append(html.Details(open=depth == 0 and len(item.path) == 1, className="cs-build-section", children=[
                html.Summary(item.path[-1]),
                html.P(item.description, className="cs-hint") if item.description else None,
                *render(item.items, values, depth + 1, long_keys)]))
            continue
        label = item.path[-1] + (" *" if item.required else "")
        help_text = (item.description + _bounds_text(item)).strip()
        row = [html.Label(label, title=help_text, className="cs-build-label"),
               control(item, values.get(item.key), multiline(item, long_keys))]
        if item.path[-1] == "mix" and len(item.path) >= 2 and item.path[-2] == "population":
            row.append(_personality_presets(item))
        if help_text:
            row.append(html.Div(help_text, className="cs-hint cs-build-help"))
        rows.append(html.Div(row, className="cs-build-row"))
    return rows


# ----------------------------------------------------------------------- the network


def kind_network(kind: object) -> dict | None:
    """The default ``network`` block of a kind's schema, or None when it has no network."""
    from culturesim.kinds import get_kind, kind_names

    if not isinstance(kind, str) or kind not in kind_names():
        return None
    from app.builder import form_values

    values = form_values(form_of(get_kind(kind).load_schema()), {})
    block: dict = {}
    for key, value in values.items():
        if key.startswith("network."):
            block[key.removeprefix("network.")] = value
    return block or None  # a network section (a NetworkSpec), not an optional block


def network_preview(data: dict, default: dict | None = None) -> tuple[go.Figure | None, str]:
    """(a drawing or None, one line) of the network a scenario mapping describes; ``default``
    is the kind's default ``network`` block (None: the kind has none)."""
    import networkx as nx
    import numpy as np

    from culturesim.networks import NetworkError, build_network, estimate_edges

    net = data.get("network", default)
    net = {**(default or {}), **net} if isinstance(net, dict) else None
    population = data.get("population") if isinstance(data.get("population"), dict) else {}
    size = population.get("size")
    if net is None:
        return None, "This kind's scenario has no network block."
    topology = net.get("topology", "complete")
    params = net.get("params") or {}
    if topology == "edgelist":
        return None, "An edge list is read from its file: it is drawn after Validate, not here."
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        return None, "Give population.size to see the network."
    if not isinstance(params, dict):
        return None, "network.params must be a mapping."
    try:
        edges = estimate_edges(topology, size, params)
    except Exception:  # noqa: BLE001 - a bad parameter: build_network says which below
        edges = 0
    if size > MAX_DRAWN or edges > MAX_EDGES_DRAWN:
        return None, (f"{topology} over {size:,} agents (about {edges:,.0f} edges): too large to draw here "
                      f"(at most {MAX_DRAWN} agents and {MAX_EDGES_DRAWN:,} edges).")
    seed = data.get("seed", 0)
    seed = seed if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**63 else 0
    try:
        graph = build_network(topology, size, params, directed=bool(net.get("directed", False)),
                              self_loops=bool(net.get("self_loops", False)), rng=np.random.default_rng([seed, 1]))
    except (NetworkError, ValueError, TypeError) as exc:
        return None, f"network: {exc}"
    pos = nx.spring_layout(graph, seed=0) if graph.number_of_nodes() > 1 else {n: (0.0, 0.0) for n in graph}
    xs, ys = [], []
    for u, v in graph.edges():
        xs += [pos[u][0], pos[v][0], None]
        ys += [pos[u][1], pos[v][1], None]
    nodes = list(graph.nodes)
    community = [graph.nodes[n].get("community", 0) for n in nodes]
    fig = go.Figure([
        go.Scatter(x=xs, y=ys, mode="lines", line={"width": 0.6, "color": "#aaa"}, hoverinfo="skip"),
        go.Scatter(x=[pos[n][0] for n in nodes], y=[pos[n][1] for n in nodes], mode="markers",
                   marker={"size": 7, "color": community, "colorscale": "Viridis"},
                   hovertext=[f"agent {n}, degree {graph.degree(n)}" for n in nodes], hoverinfo="text"),
    ])
    fig.update_layout(template="plotly_white", showlegend=False, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      xaxis={"visible": False}, yaxis={"visible": False})
    line = (f"{topology}: {graph.number_of_nodes()} agents, {graph.number_of_edges()} "
            f"{'directed ' if graph.is_directed() else ''}edges")
    return fig, line
