"""Run a scenario: pick a YAML file (or edit a copy), validate it, start it in the background,
watch its progress, cancel it.

Scenario files are offered from the folder that holds the results folder (two levels
deep): only files from that list are read. An edited copy is saved under
``<results>/.app/scenarios/`` and run from there, so paths inside it resolve from there.
Validation is the CLI's (``culturesim validate``: schema, then network and model built
without a model call), with its one-line messages, run in a confined subprocess
(``Launcher.validate``): no scenario is built in the app's process, and every file a
scenario names must lie inside the results folder.

The builder (``app.builder``, ``app.builder_view``) is a form generated from a kind's schema
beside the text area: editing the form rewrites the YAML, editing the YAML (once it parses
and fits the schema) refills the form, and the network it describes is drawn before running.
The YAML text stays what Validate and Start read, through the same confined subprocess.
"""

from __future__ import annotations

import time
from pathlib import Path

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update

from app import builder
from app.builder_view import FORM, PRESET, PROMPT_PRESET, kind_network, network_preview, render_form
from app.launcher import current as launcher
from app.ui import empty_figure, href, results
from culturesim.kinds import get_kind, kind_names

SKIP_DIRS = {".venv", "venv", "node_modules", "__pycache__", ".git", "site-packages"}
MAX_FILES = 200


def scenario_files() -> list[Path]:
    """YAML files under the results folder's parent (two levels), not inside results."""
    res = results()
    base = res.root.parent
    found: list[Path] = []
    for depth_glob in ("*.yaml", "*.yml", "*/*.yaml", "*/*.yml"):
        for p in sorted(base.glob(depth_glob)):
            parts = p.relative_to(base).parts
            if any(part.startswith(".") or part in SKIP_DIRS for part in parts):
                continue
            resolved = p.resolve()
            if resolved.is_relative_to(res.root) or not resolved.is_relative_to(base.resolve()) or not p.is_file():
                continue
            found.append(p)
    return found[:MAX_FILES]


def file_options() -> list[dict]:
    base = results().root.parent
    return [{"label": p.relative_to(base).as_posix(), "value": p.relative_to(base).as_posix()}
            for p in scenario_files()]


def read_listed(rel: str) -> tuple[Path, str]:
    """A listed file's text; anything not in the list is refused."""
    base = results().root.parent
    for p in scenario_files():
        if p.relative_to(base).as_posix() == rel:
            return p, p.read_text(encoding="utf-8")
    raise ValueError(f"refused: {rel!r} is not one of the scenario files offered here")


def check(rel: str | None, text: str | None):
    """(scenario file to run, its validation summary, problems): the listed file itself when
    its text is unchanged, else a saved copy of the edit."""
    from culturesim.yamlsource import YamlSyntaxError, check_size

    if not isinstance(text, str) or not text.strip():
        return None, None, ["the scenario is empty: pick a file or paste a scenario"]
    try:  # the loader's bound on size, before an edited copy is saved
        check_size(text, "the scenario")
    except YamlSyntaxError as exc:
        return None, None, [str(exc)]
    path = None
    if rel is not None and not isinstance(rel, str):
        return None, None, ["refused: the scenario file must be one of those offered here"]
    if rel:
        try:
            original, original_text = read_listed(rel)
        except (OSError, ValueError) as exc:
            return None, None, [str(exc)]
        path = original if original_text == text else None
    if path is None:
        path = launcher().save_copy(text, Path(rel).stem + "-edited" if rel else "pasted")
    loaded, problems = launcher().validate(path)
    return path, loaded, problems


def jobs_view():
    rows = []
    jobs = launcher().listing()
    if not jobs:
        return html.P("No run started from this app yet.", className="cs-hint")
    for job in jobs:
        done, total = launcher().progress(job)
        state = job.state()
        target = dcc.Link(job.target, href=href("/compare" if job.what == "sweep" else "/run", run=job.target),
                          className="cs-link")
        progress = [html.Progress(value=str(done or 0), max=str(total or 1)), f" {done}/{total}"] if total else "…"
        cancel = (html.Button("Cancel", id={"type": "cs-cancel", "job": job.id}, className="cs-button")
                  if state == "running" else "")
        rows.append(html.Tr([html.Td(job.what), html.Td(target), html.Td(state, className=f"cs-job-{state.split()[0]}"),
                             html.Td(progress), html.Td(time.strftime("%H:%M:%S", time.localtime(job.started))),
                             html.Td(cancel),
                             html.Td(html.Details([html.Summary("log"), html.Pre(job.log_tail())]))]))
    head = html.Thead(html.Tr([html.Th(c) for c in ("what", "writes", "state", "progress", "started", "", "")]))
    return html.Table([head, html.Tbody(rows)], className="cs-table", id="launch-jobs-table")


def layout(**_):
    return html.Div([
        html.H2("Run a scenario"),
        html.P(f"Scenario files from {results().root.parent} (edit freely: an edited copy is saved in the results "
               f"folder and run from there). Files a scenario names (edge lists, CSVs, caches) must lie inside "
               f"{results().root}.", className="cs-hint"),
        dcc.Dropdown(id="launch-file", options=file_options(), placeholder="a scenario file", className="cs-picker"),
        html.Div(className="cs-build", style={"display": "flex", "gap": "1.5em", "alignItems": "flex-start"}, children=[
            html.Div(style={"flex": "1 1 50%", "minWidth": 0}, children=[
                html.H3("Build"),
                dcc.Dropdown(id="builder-kind", options=[{"label": k, "value": k} for k in kind_names()],
                             placeholder="build a scenario of kind …", className="cs-picker"),
                dcc.Store(id="builder-shown"),
                html.Div(id="builder-msg", className="cs-hint"),
                html.Div(id="builder-form", className="cs-build-form"),
            ]),
            html.Div(style={"flex": "1 1 50%", "minWidth": 0}, children=[
                html.H3("YAML"),
                dcc.Textarea(id="launch-text", className="cs-textarea",
                             placeholder=f"kind: {' | '.join(kind_names())}\nname: ...",
                             style={"width": "100%", "height": "420px", "fontFamily": "monospace"}),
                html.H4("Network"),
                html.P(id="builder-network-line", className="cs-hint"),
                dcc.Graph(id="builder-network", figure=empty_figure(), style={"height": "360px"},
                          config={"displaylogo": False}),
            ]),
        ]),
        html.Div(className="cs-controls", children=[
            html.Button("Validate", id="launch-validate", className="cs-button"),
            html.Button("Start in the background", id="launch-start", className="cs-button cs-primary"),
        ]),
        dcc.Loading(html.Div(id="launch-msg")),
        html.H3("Started here"),
        html.Div(jobs_view(), id="launch-jobs"),
        dcc.Interval(id="launch-tick", interval=1500),
        html.Div(id="launch-cancel-msg", className="cs-hint"),
    ])


def register(app) -> None:
    dash.register_page(__name__, path="/launch", name="Run a scenario", order=9, layout=layout, keeps_run=False)

    register_builder(app)

    @app.callback(Output("launch-msg", "children"), Output("launch-jobs", "children", allow_duplicate=True),
                  Input("launch-validate", "n_clicks"), Input("launch-start", "n_clicks"),
                  State("launch-file", "value"), State("launch-text", "value"), prevent_initial_call=True)
    def _go(_validate, _start, rel, text):
        path, loaded, problems = check(rel, text)
        if problems:
            return html.Div([html.P("The scenario has problems:"),
                             html.Ul([html.Li(p) for p in problems], className="cs-problems")],
                            className="cs-error"), no_update
        summary = f"{loaded.name}: valid ({loaded.kind}, {loaded.steps} steps" + (", a sweep)" if loaded.sweep else ")")
        if ctx.triggered_id != "launch-start":
            return html.Div(summary, className="cs-ok"), no_update
        job = launcher().start_scenario(path, loaded.name, loaded.sweep)
        return html.Div([f"{summary}: started, writing ", dcc.Link(job.target, href=href(
            "/compare" if job.what == "sweep" else "/run", run=job.target))], className="cs-ok"), jobs_view()

    @app.callback(Output("launch-jobs", "children"), Input("launch-tick", "n_intervals"))
    def _jobs(_tick):
        return jobs_view()

    @app.callback(Output("launch-cancel-msg", "children"), Input({"type": "cs-cancel", "job": ALL}, "n_clicks"),
                  prevent_initial_call=True)
    def _cancel(clicks):
        trigger = ctx.triggered_id
        if not trigger or not any(clicks or []) or not ctx.triggered[0].get("value"):
            return no_update
        ok = launcher().cancel(trigger["job"])
        return f"cancelling {trigger['job']} (stops after the step in flight)" if ok else "already finished"


# ------------------------------------------------------------------------------ the builder


def _kind_of(text: str | None) -> str | None:
    """The ``kind:`` of a YAML text when it parses and names a known kind."""
    from culturesim.yamlsource import YamlSyntaxError, parse_yaml

    if not isinstance(text, str):
        return None
    try:
        data, _ = parse_yaml(text, "the scenario")
    except YamlSyntaxError:
        return None
    kind = data.get("kind") if isinstance(data, dict) else None
    return kind if isinstance(kind, str) and kind in kind_names() else None


def _form_for(kind: str, text: str | None):
    """The rendered form of ``kind``, holding the YAML's values when it fits, else the defaults."""
    schema = get_kind(kind).load_schema()
    items = builder.form_of(schema)
    data, _ = builder.read_yaml(text, schema) if text else (None, None)
    values = builder.form_values(items, data) if data is not None else builder.starting_values(schema, kind)
    return render_form(kind, items, values)


def sync(trigger, text: str | None, keys: list[str], values: list, preset_keys: list[str], presets: list,
         shown: str | None, prompt_preset: str | None = None):
    """(YAML text or no_update, the form's values, a message): one side's edit shown in the other.
    ``prompt_preset``: the name picked in the kind's prompt presets (when that is the trigger)."""
    nothing = [no_update] * len(keys)
    text = text if isinstance(text, str) else ""
    if not shown or not isinstance(shown, str) or shown not in kind_names():
        return no_update, nothing, None
    schema = get_kind(shown).load_schema()
    items = builder.form_of(schema)
    by_key = {i.key: i for i in builder.inputs(items)}
    fresh = trigger is None and text.strip() and _kind_of(text) == shown  # a form just drawn for this YAML
    if trigger == "launch-text" or fresh:  # the YAML was edited: refill the form when it fits
        data, why = builder.read_yaml(text, schema)
        if data is None or data.get("kind") != shown:
            return no_update, nothing, why
        scenario_values = builder.form_values(items, data)
        return no_update, [builder.to_widget(by_key[k], scenario_values[k]) if k in by_key else no_update
                           for k in keys], None
    current = dict(zip(keys, values, strict=True))
    out = list(nothing)
    if isinstance(trigger, dict) and trigger.get("type") == PRESET:
        chosen = dict(zip(preset_keys, presets, strict=True)).get(trigger["key"])
        if not chosen:
            return no_update, nothing, None
        current[trigger["key"]] = out[keys.index(trigger["key"])] = builder.flow(builder.mix_of(chosen))
    loose: dict = {}
    note = None
    if isinstance(trigger, dict) and trigger.get("type") == PROMPT_PRESET:
        # also Dash's call for a form just drawn (the picker is new, its value None): then, as
        # for any new input, the YAML is written from the form, with no preset applied
        try:
            known = builder.prompt_presets(shown)
        except Exception as exc:  # noqa: BLE001 - a plug-in's broken presets: said, the form still works
            known, note = {}, f"prompt presets unavailable: {exc}"
        preset = known.get(prompt_preset) if isinstance(prompt_preset, str) else None
        if preset:
            current, loose = builder.apply_preset(items, current, preset)
            out = [current[k] if k in preset else no_update for k in keys]
    from culturesim.yamlsource import YamlSyntaxError, parse_yaml

    try:
        base, _ = parse_yaml(text or "", "the scenario")
    except YamlSyntaxError:
        base = None
    if not isinstance(base, dict) or base.get("kind") != shown:
        base = {}
    data, problems = builder.scenario_data(shown, items, current, base)
    data = builder.set_keys(data, loose)
    message = html.Ul([html.Li(p) for p in problems], className="cs-problems") if problems else note
    return builder.dump(data), out, message


def register_builder(app) -> None:
    @app.callback(Output("builder-form", "children"), Output("builder-shown", "data"), Output("builder-kind", "value"),
                  Input("builder-kind", "value"), Input("launch-text", "value"), State("builder-shown", "data"))
    def _form(kind, text, shown):
        if ctx.triggered_id == "builder-kind":
            if not isinstance(kind, str) or kind not in kind_names() or kind == shown:
                return no_update, no_update, no_update
            return _form_for(kind, None), kind, no_update
        found = _kind_of(text)
        if not found or found == shown:
            return no_update, no_update, no_update
        return _form_for(found, text), found, found

    @app.callback(Output("launch-text", "value"), Output({"type": FORM, "key": ALL}, "value"),
                  Output("builder-msg", "children"),
                  Input("launch-file", "value"), Input("launch-text", "value"),
                  Input({"type": FORM, "key": ALL}, "value"), Input({"type": PRESET, "key": ALL}, "value"),
                  Input({"type": PROMPT_PRESET, "key": ALL}, "value"), State("builder-shown", "data"))
    def _sync(rel, text, values, presets, prompt_presets, shown):
        keys = [item["id"]["key"] for item in ctx.inputs_list[2]]
        preset_keys = [item["id"]["key"] for item in ctx.inputs_list[3]]
        if ctx.triggered_id == "launch-file":
            if not rel:
                return no_update, [no_update] * len(keys), None
            try:
                loaded = read_listed(rel)[1]
            except (OSError, ValueError) as exc:
                loaded = f"# {exc}"
            _, form, message = sync("launch-text", loaded, keys, values, preset_keys, presets, shown)
            return loaded, form, message
        return sync(ctx.triggered_id, text, keys, values, preset_keys, presets, shown,
                    next(iter(prompt_presets or []), None))

    @app.callback(Output("builder-network", "figure"), Output("builder-network-line", "children"),
                  Input("launch-text", "value"))
    def _network(text):
        from culturesim.yamlsource import YamlSyntaxError, parse_yaml

        try:
            data, _ = parse_yaml(text if isinstance(text, str) else "", "the scenario")
        except YamlSyntaxError as exc:
            return empty_figure(), f"The YAML does not parse: {exc}"
        if not isinstance(data, dict):
            return empty_figure(), "Build or paste a scenario to see its network."
        fig, line = network_preview(data, kind_network(data.get("kind")))
        return fig if fig is not None else empty_figure(), line
