"""The app measures a finished, unmeasured run in the background when a page opens it, once
(app.measuring), and every step axis has integer ticks (app.sections.whole_steps).

The browser test is the first "Done when" of issue 17: the first Diversity view of a run
nobody measured shows curves, without any click."""
# ruff: noqa: F811 - fixtures imported from conftest_app are used as test arguments

from __future__ import annotations

import json
import time
from pathlib import Path

import polars as pl
import pytest
from conftest import free_port
from conftest_app import chrome_options, make_run, need_browser

from analysis import measure as ms

pytestmark = pytest.mark.timeout(300)


def wait(predicate, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture()
def results(tmp_path) -> Path:
    root = tmp_path / "results"
    make_run(root, "fresh")  # the runner alone: finished, not measured
    return root


def test_a_finished_run_is_measured_once_in_the_background(results):
    from app.data import Results
    from app.launcher import Launcher
    from app.measuring import ensure_measured

    res = Results(results)
    launcher = Launcher(res, measure_embedder="tfidf")
    first = ensure_measured(res, launcher, ["fresh"])
    assert [s.state for s in first] == ["measuring"]
    assert first[0].line().startswith("Measuring… fresh")
    from app.measuring import Standing

    assert Standing("fresh", "measuring", 3, 55).line() == "Measuring… fresh 3/55"  # from measure.json
    again = ensure_measured(res, launcher, ["fresh"])  # asked again while it runs: no second job
    assert [s.state for s in again] in (["measuring"], [])
    job = launcher.measuring("fresh")
    wait(lambda: job.proc.poll() is not None, what="the measuring job")
    assert job.proc.returncode == 0, job.log_tail()
    assert (results / "fresh" / "metrics.parquet").is_file()
    assert set(pl.read_parquet(results / "fresh" / "metrics.parquet")["embedder"]) == {"tfidf"}
    assert ensure_measured(res, launcher, ["fresh"]) == []
    assert [j.what for j in launcher.listing()] == ["measure"]
    assert "--if-unmeasured" in job.command


def test_a_failed_measuring_is_not_started_again_and_offers_the_button(results):
    from app.data import Results
    from app.launcher import Launcher
    from app.measuring import ensure_measured

    (results / "fresh" / ms.STATE_FILE).write_text(json.dumps({"status": "failed", "error": "boom"}))
    res = Results(results)
    launcher = Launcher(res, measure_embedder="tfidf")
    standings = ensure_measured(res, launcher, ["fresh"])
    assert [(s.state, s.error) for s in standings] == [("failed", "boom")]
    assert launcher.listing() == []


def test_measuring_off_starts_nothing(results):
    from app.data import Results
    from app.launcher import Launcher
    from app.measuring import ensure_measured

    res = Results(results)
    launcher = Launcher(res, measure_embedder=None)
    assert [s.state for s in ensure_measured(res, launcher, ["fresh"])] == ["waiting"]
    assert launcher.listing() == []


def test_step_axes_have_integer_ticks():
    import plotly.graph_objects as go

    from app.pages import diversity, selection
    from app.sections import whole_steps

    frame = pl.DataFrame({"run_id": ["a"] * 6, "metric": ["diversity"] * 3 + ["vendi_score"] * 3,
                          "step": [1, 2, 3] * 2, "value": [0.1, 0.2, 0.3, 1.0, 1.5, 2.0]})
    fig = diversity.figure(frame, ["a"], ["diversity", "vendi_score"], "run", None)
    for axis in ("xaxis", "xaxis2"):
        assert fig.layout[axis].tickformat == "d" and fig.layout[axis].dtick == 1
    deltas = pl.DataFrame({"step": [2, 3], "delta": [0.1, 0.2], **{t: [0.0, 0.0] for t in selection.TERMS}})
    fig = selection.figure(deltas, "a", "trait", None)
    assert fig.layout.xaxis.tickformat == "d" and fig.layout.xaxis.dtick == 1
    many = whole_steps(go.Figure(go.Scatter(x=list(range(100)), y=list(range(100)))), list(range(100)))
    assert many.layout.xaxis.tickformat == "d" and many.layout.xaxis.dtick is None


def test_first_diversity_view_of_an_unmeasured_run_shows_curves_without_a_click(results):
    need_browser()
    from dash.testing.application_runners import ThreadedRunner
    from dash.testing.composite import DashComposite

    from app import create_app

    app = create_app(results, measure_embedder="tfidf")
    with ThreadedRunner() as server, DashComposite(server=server, browser="Chrome", headless=True,
                                                   options=[chrome_options()], percy_run=False,
                                                   wait_timeout=20) as duo:
        duo.start_server(app, port=free_port())  # other apps may be serving on dash's default port
        duo.driver.get(duo.server_url + "/diversity?run=fresh")
        plot = "document.querySelector('#div-graph .js-plotly-plot')"
        traces = (f"const gd = {plot}; return gd && gd._fullData ? "
                  "gd._fullData.filter(t => (t.x || []).length > 0).length : 0;")
        wait(lambda: duo.driver.execute_script(traces) >= 2, what="the diversity curves")
        assert duo.driver.execute_script(f"return {plot}.layout.xaxis.tickformat") == "d"
        ticks = duo.driver.execute_script(
            f"return [...{plot}.querySelectorAll('.xaxislayer-above text')].map(t => t.textContent)")
        assert ticks and all(t.isdigit() for t in ticks), ticks
        assert not duo.driver.find_elements("css selector", "#div-measure")  # no button: nothing failed
    assert (results / "fresh" / "metrics.parquet").is_file()
