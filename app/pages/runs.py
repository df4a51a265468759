"""Runs: what is in this results folder, what is still running, what broke.

The table refreshes every two seconds but only re-renders when a row changed, so a long
run's progress is live and a quiet folder costs a few stat calls per poll.
"""

from __future__ import annotations

import hashlib

import dash
from dash import Input, Output, State, dcc, html, no_update

from app.ui import href, results

COLUMNS = ["id", "kind", "scenario", "model", "steps", "status", "tokens", "cost", "started", "duration", "open"]
POLL_MS = 2000


def layout(**_):
    return html.Div([
        html.H2("Runs and sweeps"),
        html.Div(className="cs-controls", children=[
            dcc.Input(id="runs-filter", type="text", placeholder="filter: id, scenario, model ...", debounce=False,
                      className="cs-input"),
            dcc.Dropdown(id="runs-kind", multi=True, placeholder="kind", className="cs-picker-small"),
            dcc.Dropdown(id="runs-status", multi=True, placeholder="status", className="cs-picker-small"),
            dcc.Checklist(id="runs-members", options=[{"label": "runs inside sweeps", "value": "members"}],
                          value=["members"], inline=True),
        ]),
        html.Div(id="runs-count", className="cs-hint"),
        html.Div(id="runs-table"),
        dcc.Store(id="runs-signature"),
        dcc.Interval(id="runs-tick", interval=POLL_MS),
    ])


def _links(row: dict) -> list:
    rid = row["id"]
    if row["kind"] == "sweep":
        pages = [("compare", "/compare"), ("diversity", "/diversity"), ("ideas", "/ideas")]
    else:
        pages = [("diversity", "/diversity"), ("network", "/network"), ("ideas", "/ideas"),
                 ("selection", "/selection")]
    out = []
    for label, path in pages:
        out += [dcc.Link(label, href=href(path, run=rid), className="cs-link"), " "]
    return out


def _cell(column: str, row: dict):
    if column == "id":
        inner = [dcc.Link(row["id"], href=href("/run", run=row["id"]) if row["kind"] != "sweep"
                          else href("/compare", run=row["id"]))]
        return html.Span(inner, className="cs-child" if row["sweep"] else None)
    if column == "status":
        parts = [html.Span(row["status"], className=f"cs-status cs-status-{row['status'].split(' ')[0]}")]
        if row["stale"]:
            parts.append(html.Span(f" (no update for {row['stale']})", className="cs-hint"))
        if row.get("stop"):
            parts.append(html.Div(f"stopped: {row['stop']}", className="cs-hint"))
        if row["error"]:
            parts.append(html.Div(row["error"], className="cs-row-error"))
        return parts
    if column == "steps":
        done, total = row["done"], row["total"]
        if isinstance(done, int) and isinstance(total, int) and total > 0:
            return [html.Progress(value=str(done), max=str(total)), f" {row['steps']}"]
        return row["steps"]
    if column == "open":
        return _links(row)
    return row.get(column) or ""


def register(app) -> None:
    dash.register_page(__name__, path="/", name="Runs", order=0, layout=layout, keeps_run=False)

    @app.callback(
        Output("runs-table", "children"), Output("runs-count", "children"), Output("runs-signature", "data"),
        Output("runs-kind", "options"), Output("runs-status", "options"),
        Input("runs-filter", "value"), Input("runs-kind", "value"), Input("runs-status", "value"),
        Input("runs-members", "value"), Input("runs-tick", "n_intervals"), State("runs-signature", "data"),
    )
    def _table(text, kinds, statuses, members, _tick, signature):
        from app.data import fmt_duration

        entries = results().listing()
        rows = []
        for e in entries:
            row = e.as_row()
            row.update(done=e.steps_done, total=e.steps_total,
                       stale=fmt_duration(e.stale_s) if e.stale_s and e.stale_s > 60 else "")
            rows.append(row)
        kind_options = sorted({r["kind"] for r in rows})
        status_options = sorted({r["status"] for r in rows if r["kind"] != "sweep"})
        needle = (text or "").strip().lower()
        shown = [r for r in rows
                 if (not needle or any(needle in str(r[c]).lower() for c in ("id", "scenario", "model", "kind",
                                                                             "status", "error")))
                 and (not kinds or r["kind"] in kinds)
                 and (not statuses or r["status"] in statuses or r["kind"] == "sweep")
                 and ("members" in (members or []) or not r["sweep"])]
        key = hashlib.sha256(repr((shown, kind_options, status_options)).encode()).hexdigest()
        if key == signature:
            return no_update, no_update, no_update, no_update, no_update
        count = f"{sum(r['kind'] != 'sweep' for r in shown)} runs, {sum(r['kind'] == 'sweep' for r in shown)} sweeps"
        if not rows:
            body = html.P(f"No runs in {results().root} yet. Start one on the 'Run a scenario' page, or with "
                          f"culturesim run scenarios/quickstart.yaml --out {results().root}")
        else:
            from app.ui import table

            body = table(shown, COLUMNS, cell=_cell, row_class=lambda r: "cs-row-bad" if r["error"] else "")
        return body, count, key, kind_options, status_options
