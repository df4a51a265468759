"""Tables as AG Grid (dash-ag-grid): sort, filter, resize and CSV export in the browser.

Dash 4.4 deprecates ``dash_table.DataTable``; every table that a user filters, sorts or
exports is an ``AgGrid`` built here so they all behave alike. Cells are plain text (AG Grid's
default renderer writes text, never HTML), so a language model's output stays text. Numbers
are shown to 4 significant digits; the grid's data and its CSV export keep full precision.
Field names may contain dots (swept parameter names): dot notation (nested fields) is off.
"""

from __future__ import annotations

import dash_ag_grid as dag  # at import: Dash refuses a component library first imported in a callback
import polars as pl

NUMBER_FORMAT = {"function": "params.value == null ? '' : d3.format('.4~g')(params.value)"}


def column_defs(frame: pl.DataFrame) -> list[dict]:
    defs = []
    for name, dtype in frame.schema.items():
        col = {"field": name, "headerName": name}
        if dtype.is_numeric():
            col["filter"] = "agNumberColumnFilter"
            col["type"] = "numericColumn"
            if dtype.is_float():
                col["valueFormatter"] = NUMBER_FORMAT
        else:
            col["filter"] = "agTextColumnFilter"
        defs.append(col)
    return defs


def grid(id_, frame: pl.DataFrame, *, filename: str, page_size: int | None = None, persistence=None,
         height: int | None = None):
    """An AgGrid of ``frame`` whose CSV export (``exportDataAsCsv``) is named ``filename``."""
    from app.ui import csv_ready

    options = {"suppressFieldDotNotation": True, "domLayout": "autoHeight" if height is None else "normal",
               "enableCellTextSelection": True, "suppressColumnVirtualisation": True}
    if page_size:
        options |= {"pagination": True, "paginationPageSize": page_size,
                    "paginationPageSizeSelector": sorted({page_size, 20, 50, 100})}
    extra = {"persistence": persistence, "persistence_type": "session",
             "persisted_props": ["filterModel", "columnState"]} if persistence is not None else {}
    # booleans as words: AG Grid would draw a checkbox, which has no text to read or search
    frame = frame.with_columns(pl.col(pl.Boolean).replace_strict({True: "true", False: "false"},
                                                                  return_dtype=pl.String))
    return dag.AgGrid(
        id=id_, rowData=csv_ready(frame).to_dicts(), columnDefs=column_defs(frame),
        defaultColDef={"sortable": True, "filter": True, "floatingFilter": True, "resizable": True,
                       "wrapText": True, "autoHeight": True, "minWidth": 90},
        dashGridOptions=options, csvExportParams={"fileName": filename}, columnSize="responsiveSizeToFit",
        style={"height": f"{height}px"} if height else {"width": "100%"}, **extra)


# ------------------------------------------------------------------------------ CSV export button

GRID, EXPORT = "cs-grid", "cs-grid-export"


def grid_id(name: str) -> dict:
    """The id of a grid with an export button (pattern-matching, so one callback serves all)."""
    return {"role": GRID, "index": name}


def export_button(name: str, label: str = "Table as CSV"):
    """A button that makes grid ``grid_id(name)`` write its rows, as filtered and sorted in the
    browser, to a CSV file (AG Grid Community has no export menu of its own)."""
    from dash import html

    return html.Button(label, id={"role": EXPORT, "index": name}, className="cs-button")


def register(app) -> None:
    """The one callback behind every grid's export button (wired once, by the Run page)."""
    from dash import MATCH, Input, Output

    @app.callback(Output(grid_id(MATCH), "exportDataAsCsv"), Input({"role": EXPORT, "index": MATCH}, "n_clicks"),
                  prevent_initial_call=True)
    def _export(n_clicks):
        return bool(n_clicks)
