"""Run a scenario: pick a YAML file (or edit a copy), validate it, start it in the background,
watch its progress, cancel it.

Scenario files are offered from the folder that holds the results folder (two levels
deep): only files from that list are read. An edited copy is saved under
``<results>/.app/scenarios/`` and run from there, so paths inside it resolve from there.
Validation is the CLI's (``culturesim validate``: schema, then network and model built
without a model call), with its one-line messages, run in a confined subprocess
(``Launcher.validate``): no scenario is built in the app's process, and every file a
scenario names must lie inside the results folder.
"""

from __future__ import annotations

import time
from pathlib import Path

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update

from app.launcher import current as launcher
from app.ui import href, results
from culturesim.kinds import kind_names

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
        dcc.Textarea(id="launch-text", className="cs-textarea",
                     placeholder=f"kind: {' | '.join(kind_names())}\nname: ...",
                     style={"width": "100%", "height": "320px", "fontFamily": "monospace"}),
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

    @app.callback(Output("launch-text", "value"), Input("launch-file", "value"), prevent_initial_call=True)
    def _load(rel):
        if not rel:
            return no_update
        try:
            return read_listed(rel)[1]
        except (OSError, ValueError) as exc:
            return f"# {exc}"

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
