"""The app in a real browser (headless Chromium via dash.testing) on runs made by the runner.

One app and one browser serve the whole module; each test navigates to its own URL.
Skipped, with the reason, where Debian's chromium / chromium-driver are not installed.
"""
# ruff: noqa: F811 - fixtures imported from conftest_app are used as test arguments

from __future__ import annotations

import json
import time

import pytest
from conftest_app import EVIL, browser_app, results_dir  # noqa: F401 - fixtures
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

pytestmark = pytest.mark.timeout(180)


def visit(duo, path: str) -> None:
    duo.driver.get(duo.server_url + path)


def selector(id_: str | dict) -> str:
    """The CSS selector of a component id; Dash writes a pattern-matching (dict) id into the page
    as JSON with sorted keys and no spaces."""
    if isinstance(id_, dict):
        return "[id='" + json.dumps(id_, sort_keys=True, separators=(",", ":")) + "']"
    return "#" + id_


def plotly_div(duo, graph: str | dict) -> str:
    """A JS expression for the plotly div of a plot card's graph (``<prefix>``) or of a graph with
    a pattern-matching id (a section plot's)."""
    graph_id = graph if isinstance(graph, dict) else f"{graph}-graph"
    return f"document.querySelector({json.dumps(selector(graph_id) + ' .js-plotly-plot')})"


def traces(duo, graph: str | dict) -> int:
    """Traces plotly has drawn (SVG or WebGL) in a plot card's graph (see :func:`plotly_div`)."""
    return duo.driver.execute_script(
        f"const gd = {plotly_div(duo, graph)};"
        "return gd && gd._fullData ? gd._fullData.filter(t => (t.x || []).length > 0).length : 0;")


def wait_until(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (StaleElementReferenceException, NoSuchElementException, StopIteration):
            value = None  # the page re-rendered under us: ask again
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def pick(duo, css: str, value: str) -> None:
    """Choose ``value`` in a Dash 4 dcc.Dropdown found by CSS: open it, click the option."""
    duo.driver.find_element(By.CSS_SELECTOR, css).click()
    option = wait_until(lambda: next(o for o in duo.driver.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
                                     if o.find_element(By.CSS_SELECTOR, "input").get_attribute("value") == value),
                        what=f"option {value}")
    option.click()


def errors_on_page(duo) -> list[str]:
    return [e.text for e in duo.driver.find_elements(By.CSS_SELECTOR, ".cs-error")]


def severe_console(duo) -> list[dict]:
    return [e for e in duo.driver.get_log("browser") if e.get("level") == "SEVERE" and "favicon" not in e["message"]]


def test_runs_page_lists_runs_and_sweeps_and_flags_the_corrupt_run(browser_app):
    duo = browser_app
    visit(duo, "/")
    duo.wait_for_element("#runs-table table")
    rows = {r.find_element(By.CSS_SELECTOR, "td").text.split("\n")[0]: r
            for r in duo.driver.find_elements(By.CSS_SELECTOR, "#runs-table tbody tr")}
    assert {"alpha", "evil", "broken", "grid-sweep"} <= set(rows)
    assert "outside" not in rows  # a symlink out of the folder is not listed
    assert sum(1 for k in rows if k.startswith("grid-sweep/")) == 6
    broken_error = rows["broken"].find_element(By.CSS_SELECTOR, ".cs-row-error").text
    assert "ideas.parquet" in broken_error and "unreadable" in broken_error
    assert not rows["alpha"].find_elements(By.CSS_SELECTOR, ".cs-row-error")
    assert "6 done" in rows["grid-sweep"].text
    # the filter narrows the table
    duo.find_element("#runs-filter").send_keys("broken")
    wait_until(lambda: len(duo.driver.find_elements(By.CSS_SELECTOR, "#runs-table tbody tr")) == 1, what="filter")


def test_a_running_run_updates_live(browser_app, results_dir):
    duo = browser_app
    root = results_dir["root"]
    live = root / "live"
    live.mkdir()
    for name in ("agents.parquet", "edges.parquet"):
        (live / name).write_bytes((root / "alpha" / name).read_bytes())
    manifest = json.loads((root / "alpha" / "manifest.json").read_text())
    manifest.update(run_id="live", status="running", steps_completed=1, steps_total=9, ended_at=None)
    (live / "manifest.json").write_text(json.dumps(manifest))
    visit(duo, "/")
    script = "return [...document.querySelectorAll('#runs-table tbody tr')].map(r => r.innerText)"
    row = lambda: next(t for t in duo.driver.execute_script(script) if t.startswith("live"))  # noqa: E731
    wait_until(lambda: "1/9" in row(), what="first progress")
    manifest.update(steps_completed=7)
    (live / "manifest.json").write_text(json.dumps(manifest))
    wait_until(lambda: "7/9" in row(), timeout=10, what="live update without reload")


def test_cross_page_link_from_runs_to_diversity(browser_app):
    duo = browser_app
    visit(duo, "/")
    duo.wait_for_element("#runs-table table")
    link = next(a for a in duo.driver.find_elements(By.CSS_SELECTOR, "#runs-table a")
                if a.text == "diversity" and "run=alpha" in a.get_attribute("href"))
    link.click()
    wait_until(lambda: duo.driver.current_url.endswith("/diversity?run=alpha"), what="navigation")
    wait_until(lambda: traces(duo, "div") >= 2, what="diversity lines")
    assert errors_on_page(duo) == []
    # the nav keeps the run when switching pages
    nav = duo.find_element("#nav-network")
    assert nav.get_attribute("href").endswith("/network?run=alpha")


@pytest.mark.parametrize("path, graph", [
    ("/run?run=alpha", None), ("/diversity?run=grid-sweep", "div"), ("/network?run=alpha", "net"),
    ("/ideas?run=alpha&idea=s3-a2", "lineage"), ("/ideas?run=grid-sweep", "map"), ("/selection?run=alpha", "sel"),
    ("/compare?run=grid-sweep", "cmp"), ("/launch", None),
])
def test_each_page_loads_on_real_runs(browser_app, path, graph):
    duo = browser_app
    visit(duo, path)
    duo.wait_for_element("h2")
    if graph:
        wait_until(lambda: traces(duo, graph) > 0, what=f"{graph} traces")
        # every plot offers its data as CSV and a PNG/SVG switch
        duo.find_element(f"#{graph}-csv-btn")
        duo.find_element(f"#{graph}-format")
    else:
        time.sleep(0.5)
    assert errors_on_page(duo) == []
    assert severe_console(duo) == []


def test_compare_shows_effect_sizes_and_csv_downloads(browser_app):
    duo = browser_app
    visit(duo, "/compare?run=grid-sweep")
    table = wait_until(lambda: duo.driver.find_elements(By.CSS_SELECTOR, "#cmp-effects-grid .ag-row"),
                       what="effects")
    assert "culture.operation" in table[0].text and "transform" in table[0].text
    wait_until(lambda: traces(duo, "cmp") > 0, what="compare plot")
    duo.find_element("#cmp-csv-btn").click()
    target = duo.download_dir / "cmp.csv"
    wait_until(target.exists, what="CSV download")
    lines = target.read_text().strip().splitlines()
    assert lines[0].split(",")[0] == "run_id" and len(lines) == 7  # header + six runs


def test_network_slider_changes_the_step(browser_app):
    duo = browser_app
    visit(duo, "/network?run=alpha")
    title = lambda: duo.driver.find_element(By.CSS_SELECTOR, "#net-graph .gtitle").text  # noqa: E731
    wait_until(lambda: traces(duo, "net") > 0 and title() == "step 4", what="last step drawn")
    thumb = duo.driver.find_element(By.CSS_SELECTOR, "#net-step [role=slider]")
    thumb.send_keys(Keys.HOME)
    wait_until(lambda: title() == "step 1", what="slider moved to the first step")
    thumb.send_keys(Keys.ARROW_RIGHT)
    wait_until(lambda: title() == "step 2", what="slider moved one step")


@pytest.mark.parametrize("run_id", ["../outside-run", "../../etc", "/etc", "outside", "grid-sweep/../../x"])
def test_run_ids_leaving_the_results_folder_are_refused(browser_app, run_id):
    duo = browser_app
    from urllib.parse import quote

    visit(duo, f"/ideas?run={quote(run_id)}")
    text = wait_until(lambda: " ".join(errors_on_page(duo)), what="refusal")
    assert "refused" in text
    # ../outside-run and the symlink 'outside' are real runs, just not in the folder: nothing of them shows
    assert duo.driver.find_elements(By.CSS_SELECTOR, "#ideas-table td") == []


def test_idea_text_is_shown_as_text_never_as_html(browser_app):
    duo = browser_app
    visit(duo, "/ideas?run=evil&q=bold")
    cell = wait_until(lambda: [td for td in duo.driver.find_elements(By.CSS_SELECTOR, "#ideas-table td")
                               if "bold" in td.text], what="the idea")
    assert cell[0].text == EVIL
    assert duo.driver.find_elements(By.CSS_SELECTOR, "#ideas-table img, #ideas-table b, #ideas-table script") == []
    visit(duo, "/ideas?run=evil&idea=s2-a1")
    quote = wait_until(lambda: duo.driver.find_elements(By.CSS_SELECTOR, ".cs-quote"), what="family list")
    assert quote[0].text == EVIL
    wait_until(lambda: traces(duo, "lineage") > 0, what="family tree")
    assert duo.driver.execute_script("return window.__pwned === undefined")


def test_a_corrupt_run_shows_an_error_and_the_rest_keeps_working(browser_app):
    duo = browser_app
    visit(duo, "/ideas?run=broken")
    text = wait_until(lambda: " ".join(errors_on_page(duo)), what="error")
    assert "broken" in text and "unreadable" in text
    visit(duo, "/network?run=broken")
    wait_until(lambda: " ".join(errors_on_page(duo)), what="error on network page")
    visit(duo, "/ideas?run=alpha")
    wait_until(lambda: duo.driver.find_elements(By.CSS_SELECTOR, "#ideas-table td"), what="a good run's ideas")
    assert errors_on_page(duo) == []


def test_a_page_plot_switches_its_image_to_svg(browser_app):
    """The switch reaches plotly's camera icon (dcc.Graph takes a new config only on redraw)."""
    from selenium.webdriver.common.by import By

    duo = browser_app
    visit(duo, "/diversity?run=grid-sweep")
    wait_until(lambda: traces(duo, "div") > 0, what="div traces")

    def image_format():
        return duo.driver.execute_script(
            f"const gd = {plotly_div(duo, 'div')};"
            "return gd && gd._context ? gd._context.toImageButtonOptions.format : null;")

    assert wait_until(lambda: image_format() == "png", what="png first")
    duo.driver.find_element(By.CSS_SELECTOR, "#div-format input[value='svg']").click()
    wait_until(lambda: image_format() == "svg", what="svg after the switch")
    assert traces(duo, "div") > 0 and errors_on_page(duo) == []
