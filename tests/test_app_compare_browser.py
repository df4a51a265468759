"""The Compare page in headless Chromium: pick a baseline, read the AG Grid tables' cells, and
find the numbers ``culturesim compare`` writes for the same sweep and baseline.

The app and the CLI call the same function (analysis.compare); this checks the whole path a
user sees: dropdown, callbacks, grid rendering (numbers shown to 4 significant digits) and the
tables' CSV downloads.
"""
# ruff: noqa: F811 - fixtures imported from conftest_app are used as test arguments

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest
from conftest_app import browser_app, results_dir  # noqa: F401 - fixtures
from test_app_browser import errors_on_page, pick, severe_console, visit, wait_until

pytestmark = pytest.mark.timeout(300)
PARAM = "culture.operation"

CELLS = """
return [...document.querySelectorAll(arguments[0] + ' .ag-center-cols-container .ag-row')]
  .sort((a, b) => +a.getAttribute('row-index') - +b.getAttribute('row-index'))
  .map(r => Object.fromEntries([...r.querySelectorAll('[col-id]')].map(c => [c.getAttribute('col-id'), c.innerText])));
"""


def grid_rows(duo, grid: str) -> list[dict]:
    return duo.driver.execute_script(CELLS, f"#{grid}")


def cli_tables(sweep, baseline: str, out) -> pl.DataFrame:
    done = subprocess.run([sys.executable, "-m", "culturesim.cli", "compare", str(sweep), "--embedder", "tfidf",
                           "--baseline", baseline, "--csv", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return pl.read_csv(out)


def same(shown: str, expected) -> bool:
    """A grid cell (4 significant digits, d3's minus sign) against the CLI's full-precision value."""
    if expected is None:
        return shown == ""
    if isinstance(expected, bool):
        return shown.lower() == str(expected).lower()
    if isinstance(expected, float):
        return float(shown.replace("\u2212", "-")) == pytest.approx(expected, rel=1e-3, abs=1e-12)
    return shown == str(expected)


def test_compare_tables_match_the_cli_for_the_chosen_baseline(browser_app, results_dir, tmp_path):
    duo = browser_app
    visit(duo, "/compare?run=grid-sweep")
    wait_until(lambda: len(grid_rows(duo, "cmp-slopes-grid")) == 2, timeout=30, what="slopes grid")
    first = grid_rows(duo, "cmp-effects-grid")
    assert [(r["baseline"], r["condition"]) for r in first] == [("combine", "transform")]

    pick(duo, "#cmp-baseline", f"{PARAM}=transform")
    wait_until(lambda: [r["condition"] for r in grid_rows(duo, "cmp-effects-grid")] == ["combine"],
               timeout=30, what="effects against the new baseline")
    wait_until(lambda: {r["baseline"] for r in grid_rows(duo, "cmp-slopes-grid")} == {"transform"},
               timeout=30, what="slopes against the new baseline")

    expected = cli_tables(results_dir["root"] / "grid-sweep", f"{PARAM}=transform", tmp_path / "cli.csv")
    for name in ("effects", "slopes"):
        rows = grid_rows(duo, f"cmp-{name}-grid")
        cli_rows = expected.filter(pl.col("table") == name).drop("table")
        cli_rows = cli_rows.select([c for c in cli_rows.columns if c in rows[0]])
        assert len(rows) == cli_rows.height
        assert set(rows[0]) == set(cli_rows.columns)
        if name == "slopes":  # the Holm-adjusted p of each slope difference, shown as the CLI prints it
            assert "diff_p_holm" in rows[0]
            shown = {r["condition"]: r["diff_p_holm"] for r in rows}
            want = dict(zip(cli_rows["condition"], cli_rows["diff_p_holm"], strict=True))
            assert shown["transform"] == "" and want["transform"] is None  # the baseline's own row
            assert same(shown["combine"], want["combine"]) and want["combine"] is not None
        for shown, want in zip(rows, cli_rows.iter_rows(named=True), strict=True):
            bad = {c: (shown[c], v) for c, v in want.items() if not same(shown[c], v)}
            assert not bad, f"{name}: cells differ from culturesim compare's CSV: {bad}"

    # the slopes' CSV download holds the same numbers, at full precision
    duo.find_element("#cmp-slopes-btn").click()
    target = duo.download_dir / "slopes.csv"
    wait_until(target.exists, what="slopes CSV")
    downloaded = pl.read_csv(target)
    want = expected.filter(pl.col("table") == "slopes")
    for column in ("slope", "ci_low", "ci_high", "p_value", "slope_diff", "diff_p", "diff_p_holm"):
        got, wanted = (f[column].cast(pl.Float64).fill_null(float("nan")).to_list() for f in (downloaded, want))
        assert got == pytest.approx(wanted, rel=1e-9, nan_ok=True)
    assert errors_on_page(duo) == []
    assert severe_console(duo) == []
