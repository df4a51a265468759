"""Run: one run's manifest, progress, and the sections its kind registered (app.kinds).

Sections are rendered by this page's callback, so the one callback their plots share (the PNG/SVG
switch, app/sections.py) is wired here, once per app."""

from __future__ import annotations

import json

import dash
from dash import Input, Output, State, ctx, dcc, html, no_update

from app import sections
from app.kinds import sections_for
from app.ui import default_run, href, message_for, picker, results, run_options

FIELDS = ["kind", "name", "status", "steps_completed", "steps_total", "started_at", "ended_at", "host", "error"]


def layout(run: str | None = None, **_):
    options = run_options(results())
    return html.Div([
        html.H2("Run"),
        picker("run-pick", options, default_run(options, run)),
        html.Div(id="run-body"),
        dcc.Interval(id="run-tick", interval=3000),
        dcc.Store(id="run-seen"),
    ])


def folder_stamp(rel: str | None) -> list | None:
    """What changes when the run's folder does (its manifest, its files and subfolders): a tick
    redraws the page only then, so a table's filter, sort or page in the browser is not reset
    every 3 s under the user (a remounted grid starts afresh)."""
    from app.data import _subfolders, stamp

    if not rel:
        return None
    try:
        path = results().run_dir(rel).path
        files = sorted(path.iterdir())
    except Exception:  # noqa: BLE001 - render says what is wrong, on every tick
        return None
    # as text: nanosecond mtimes exceed the integers a browser's JSON keeps exactly
    return [rel, [f"{s[0]}:{s[1]}" if s else None for s in stamp(path, *files, *_subfolders(path))]]


def render(rel: str | None):
    if not rel:
        return html.P("No run chosen.")
    res = results()
    try:
        m = res.manifest(rel)
    except Exception as exc:  # noqa: BLE001
        return message_for(exc)
    facts = [html.Tr([html.Th(k), html.Td(str(m.get(k, "")))]) for k in FIELDS if m.get(k) is not None]
    llm = m.get("llm") or {}
    facts.append(html.Tr([html.Th("model"), html.Td(str(llm.get("model", "")))]))
    conditions = res.conditions(rel)
    if conditions:
        facts.append(html.Tr([html.Th("condition"), html.Td(", ".join(f"{k}={v}" for k, v in conditions.items()))]))
    links = [dcc.Link(name, href=href(path, run=rel), className="cs-link")
             for name, path in (("Diversity", "/diversity"), ("Network", "/network"), ("Ideas", "/ideas"),
                                ("Selection", "/selection"))]
    sections = []
    for section in sections_for(str(m.get("kind"))):
        try:
            body = section.render(res, rel)
        except Exception as exc:  # noqa: BLE001 - one broken section, not a broken page
            body = message_for(exc)
        sections.append(html.Div([html.H4(section.title), body], className="cs-card"))
    return html.Div([
        html.Table(html.Tbody(facts), className="cs-facts"),
        html.P(links),
        *sections,
        html.Details([html.Summary("scenario as resolved"),
                      html.Pre(json.dumps(m.get("scenario"), indent=2, ensure_ascii=False))]),
    ])


def register(app) -> None:
    dash.register_page(__name__, path="/run", name="Run", order=1, layout=layout)
    sections.register(app)

    @app.callback(Output("run-body", "children"), Output("run-seen", "data"), Input("run-pick", "value"),
                  Input("run-tick", "n_intervals"), State("run-seen", "data"))
    def _body(rel, _tick, seen):
        now = folder_stamp(rel)
        if ctx.triggered_id == "run-tick" and now is not None and now == seen:
            return no_update, no_update
        return render(rel), now
