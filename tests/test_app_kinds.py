"""The app's pages for the matechoice and gard kinds, on real runs made by the runner.

Data-level tests check what each section draws against the run's Parquet tables read
independently (polars on the files, numpy for the sums), the GARD Price rows against the
identity and against the change in mean trait computed from the raw genealogy, and the
sweep comparison against each run's own generations. One browser test loads a matechoice
run's page, a gard run's Selection page and a matechoice sweep's Compare page.

This module's ``results_dir`` replaces conftest_app's, so the browser fixture serves these
runs (a few seconds to make) instead of the idea runs.
"""
# ruff: noqa: F811 - fixtures imported from conftest_app are used as test arguments

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import polars as pl
import pytest
from conftest_app import REPO, browser_app, section_csv, section_graph, walk  # noqa: F401 - fixture
from dash import dcc, html

from app.data import Results

MC_QUICK = REPO / "scenarios" / "matechoice_quick.yaml"
GARD_QUICK = REPO / "scenarios" / "gard_quick.yaml"
MC_SET = ["steps=4", "matechoice.population=30", "matechoice.diversity_sample=8"]
GARD_SET = ["steps=4", "gard.assemblies=12", "gard.n_types=30", "gard.n_max=40"]


def make(root, path, run_id, *overrides):
    from culturesim import runner
    from culturesim import scenario as sc

    loaded = sc.load(path, [*overrides, f"output.run_id={run_id}"])
    return runner.start(loaded, out=root, base_dir=path.parent, show_progress=False)


def make_mc_sweep(folder) -> list[str]:
    from culturesim import scenario as sc
    from culturesim.sweep import Sweep, execute

    path = folder.parent / "mc-sweep.yaml"
    path.write_text(MC_QUICK.read_text() + "\nsweep:\n  grid:\n    matechoice.mode: [tournament, pimp]\n"
                    "  replicates: 2\n")
    sweep = Sweep(sc.load(path, [*MC_SET, "steps=2", "matechoice.population=20"]), folder, base_dir=MC_QUICK.parent)
    sweep.prepare()
    for spec in sweep.runs:
        _, state, error = execute(spec, str(folder), {})
        assert state == "done", error
    sweep.write_index()
    return [f"{folder.name}/{spec.run_id}" for spec in sweep.runs]


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("kinds") / "results"
    root.mkdir(parents=True)
    make(root, MC_QUICK, "mc", *MC_SET)
    make(root, MC_QUICK, "mc-tournament", *MC_SET, "matechoice.mode=tournament", "matechoice.record_individuals=false")
    make(root, GARD_QUICK, "gard", *GARD_SET)
    sweep_runs = make_mc_sweep(root / "mc-sweep")
    return {"root": root, "sweep_runs": sweep_runs}


@pytest.fixture(scope="module")
def res(results_dir) -> Results:
    from app.kinds import load_kind_views

    load_kind_views()
    return Results(results_dir["root"])


# ------------------------------------------------------------------------------ helpers


def section(kind: str, title_start: str):
    from app.kinds import sections_for

    return next(s for s in sections_for(kind) if s.title.startswith(title_start))


def traces_by_name(fig) -> dict:
    return {t.name: t for t in fig.data}


def as_plotted(values) -> list:
    return [None if v is None or not np.isfinite(v) else float(v) for v in values]


def texts(component) -> str:
    return " ".join(c for c in walk(component) if isinstance(c, str))


# ------------------------------------------------------------------------------ matechoice


def test_matechoice_sections_draw_the_generations_table(res, results_dir):
    gens = pl.read_parquet(results_dir["root"] / "mc" / "generations.parquet").sort("step")
    assert gens.height == 5  # generation 0 and four bred
    checks = {
        ("Error", "mc-errors"): {"best (train)": "best_train", "median (train)": "median_train",
                                 "best (test)": "best_test", "median (test)": "median_test"},
        ("Diversity", "mc-diversity"): {"distinct structures": "unique_structures",
                                        "mean tree edit distance": "mean_tree_edit_distance",
                                        "distinct fitness values": "unique_fitness",
                                        "fitness entropy (bits)": "fitness_entropy",
                                        "mean output distance": "mean_output_distance"},
        ("Tree", "mc-sizes"): {"mean size": "mean_size", "best's size": "best_size", "mean depth": "mean_depth",
                               "preference mean size": "pref_mean_size", "preference mean depth": "pref_mean_depth",
                               "single-node share": "pref_single_node_share"},
    }
    for (title, prefix), columns in checks.items():
        body = section("matechoice", title).render(res, "mc")
        fig = section_graph(body, prefix).figure
        drawn = traces_by_name(fig)
        assert set(drawn) == set(columns), title
        for name, column in columns.items():
            assert list(drawn[name].x) == gens["step"].to_list()
            assert list(drawn[name].y) == as_plotted(gens[column].to_list()), (title, name)
        csv = section_csv(body, prefix)
        assert csv.columns == ["step", *columns.values()]
        for column in columns.values():
            assert np.allclose(csv[column].to_numpy(), gens[column].cast(pl.Float64).to_numpy(), equal_nan=True)


def test_best_individual_is_the_lowest_error_of_the_last_generation(res, results_dir):
    ind = pl.read_parquet(results_dir["root"] / "mc" / "individuals.parquet")
    last = ind.filter(pl.col("step") == ind["step"].max()).sort("slot")
    fitness = last["fitness"].to_numpy()
    k = int(np.argmin(np.where(np.isfinite(fitness), fitness, np.inf)))  # first minimum = lowest slot
    gens = pl.read_parquet(results_dir["root"] / "mc" / "generations.parquet")
    assert fitness[k] == gens.filter(pl.col("step") == gens["step"].max())["best_train"][0]  # the run's own record
    body = section("matechoice", "Best").render(res, "mc")
    genome = next(c for c in walk(body) if getattr(c, "id", None) == "mc-best-genome")
    assert genome.children == last["genome"][k]
    assert str(last["slot"][k]) in texts(body)
    # a run that did not record its individuals says so (the Run page shows a Notice as a note)
    from app.ui import Notice

    with pytest.raises(Notice, match="record_individuals: false"):
        section("matechoice", "Best").render(res, "mc-tournament")


def test_a_tournament_run_has_no_preferences_and_says_so(res):
    body = section("matechoice", "Tree").render(res, "mc-tournament")
    fig = section_graph(body, "mc-sizes").figure
    assert set(traces_by_name(fig)) == {"mean size", "best's size", "mean depth"}
    assert "no preference" in texts(body)


def test_a_running_run_is_drawn_from_its_step_parts(res, results_dir):
    root = results_dir["root"]
    shutil.copytree(root / "mc", root / "mc-live")
    for name in ("generations", "individuals", "ideas"):
        (root / "mc-live" / f"{name}.parquet").unlink()
    manifest = json.loads((root / "mc-live" / "manifest.json").read_text())
    manifest.update(run_id="mc-live", status="running")
    (root / "mc-live" / "manifest.json").write_text(json.dumps(manifest))
    done = section_graph(section("matechoice", "Error").render(res, "mc"), "mc-errors").figure
    live = section_graph(section("matechoice", "Error").render(res, "mc-live"), "mc-errors").figure
    assert [list(t.y) for t in live.data] == [list(t.y) for t in done.data]
    # the cached section follows the files: without the last step's parts, one generation fewer
    for folder in ("steps", "generations", "individuals"):
        (root / "mc-live" / folder / "00004.parquet").unlink()
    live = section_graph(section("matechoice", "Error").render(res, "mc-live"), "mc-errors").figure
    assert [list(t.y) for t in live.data] == [list(t.y)[:4] for t in done.data]
    genome = next(c for c in walk(section("matechoice", "Best").render(res, "mc-live"))
                  if getattr(c, "id", None) == "mc-best-genome")
    ind = pl.read_parquet(root / "mc" / "individuals.parquet").filter(pl.col("step") == 3)
    assert genome.children in ind.filter(pl.col("fitness") == ind["fitness"].min())["genome"].to_list()


def test_run_page_shows_every_section_without_an_error(res, results_dir):
    from app import create_app
    from app.kinds import sections_for
    from app.pages import run as run_page

    app = create_app(results_dir["root"])
    with app.server.test_request_context():
        for rel, kind in (("mc", "matechoice"), ("gard", "gard")):
            page = run_page.render(rel)
            titles = [c.children for c in walk(page) if isinstance(c, html.H4)]
            assert titles == [s.title for s in sections_for(kind)]
            assert not [c for c in walk(page) if getattr(c, "className", None) == "cs-error"], rel


def test_every_section_plot_has_a_format_switch_that_one_callback_serves(res, results_dir):
    from app import create_app
    from app.pages import run as run_page
    from app.sections import FORMAT, GRAPH, section_id
    from app.ui import graph_config

    app = create_app(results_dir["root"])
    with app.server.test_request_context():
        for rel, expected in (("mc", {"mc-errors", "mc-diversity", "mc-sizes"}),
                              ("gard", {"gard-sim", "gard-share", "gard-compotypes", "gard-timeline"})):
            page = run_page.render(rel)
            graphs = {c.id["index"]: c for c in walk(page) if isinstance(c, dcc.Graph)}
            switches = {c.id["index"]: c for c in walk(page) if isinstance(c, dcc.RadioItems)}
            assert set(graphs) == set(switches) == expected, rel
            for prefix, graph in graphs.items():
                assert graph.id == section_id(GRAPH, prefix) and switches[prefix].id == section_id(FORMAT, prefix)
                assert graph.config == graph_config(prefix, "png") and switches[prefix].value == "png"
                assert switches[prefix].options == ["png", "svg"] and switches[prefix].persistence  # kept on re-render
    # one callback for them all (a MATCH pattern), wired once
    graphs = json.dumps(section_id(GRAPH, ["MATCH"]), sort_keys=True, separators=(",", ":"))
    pattern = f"..{graphs}.config...{graphs}.figure.."
    assert [k for k in app.callback_map if "section-graph" in k] == [pattern]

    # asked over HTTP as the browser asks it: the switch of one plot sets that plot's config, and
    # patches its figure with nothing (dcc.Graph takes a new config only with a new figure)
    def ask(prefix: str, fmt: str, changed: bool = True):
        graph, switch = section_id(GRAPH, prefix), section_id(FORMAT, prefix)
        body = {"output": pattern,
                "outputs": [{"id": graph, "property": "config"}, {"id": graph, "property": "figure"}],
                "inputs": [{"id": switch, "property": "value", "value": fmt}],
                "state": [{"id": switch, "property": "id", "value": switch}],
                "changedPropIds": [json.dumps(switch, sort_keys=True, separators=(",", ":")) + ".value"] * changed}
        reply = app.server.test_client().post("/_dash-update-component", json=body)
        assert reply.status_code in (200, 204), reply.text
        answers = list(reply.get_json()["response"].values()) if reply.status_code == 200 else []
        if not answers:  # nothing to change
            return None
        (answer,) = answers
        assert answer["figure"]["__dash_patch_update"] and all(v == {} for v in
                                                               (o["params"]["value"] for o in answer["figure"]
                                                                ["operations"]))
        return answer["config"]["toImageButtonOptions"]

    assert ask("gard-share", "svg") == {"format": "svg", "filename": "gard-share", "scale": 2}
    assert ask("mc-errors", "png") == {"format": "png", "filename": "mc-errors", "scale": 2}
    assert ask("mc-errors", "pdf")["format"] == "png"  # only png and svg
    # a plot just drawn (a re-render) is png already; a switch kept at svg sets it again
    assert ask("mc-errors", "png", changed=False) is None
    assert ask("mc-errors", "svg", changed=False)["format"] == "svg"


# ------------------------------------------------------------------------------ a matechoice sweep


def test_sweep_comparison_per_mode_matches_the_runs(res, results_dir):
    from culturesim.kinds.matechoice import view as km

    root = results_dir["root"]
    assert km.is_matechoice_sweep(res, "mc-sweep") and not km.is_matechoice_sweep(res, "mc")
    index = pl.read_parquet(root / "mc-sweep" / "sweep.parquet")
    truth = []
    for run_id, mode in zip(index["run_id"], index["matechoice.mode"], strict=True):
        g = pl.read_parquet(root / "mc-sweep" / run_id / "generations.parquet").sort("step")
        truth.append({"run_id": f"mc-sweep/{run_id}", "mode": mode, "success": float(g["success"].any()),
                      "unique_structures": float(g["unique_structures"][-1]),
                      "fitness_entropy": float(g["fitness_entropy"][-1])})
    truth = pl.DataFrame(truth).sort("run_id")
    assert [o["label"] for o in km.group_options(km.sweep_tables(res, "mc-sweep")[0])] == [
        "problem=keijzer6, mutation=subtree, mutation_rate=0.1"]
    runs = km.mode_runs(res, "mc-sweep", "0").sort("run_id")
    assert runs["run_id"].to_list() == truth["run_id"].to_list() and runs["mode"].to_list() == truth["mode"].to_list()
    for column in ("success", "unique_structures", "fitness_entropy"):
        assert np.allclose(runs[column].cast(pl.Float64).to_numpy(), truth[column].to_numpy())
    report = km.mode_report(res, "mc-sweep", "0")
    assert set(report["measure"]) == set(km.MODE_MEASURES)
    for mode in ("tournament", "pimp"):
        mine = truth.filter(pl.col("mode") == mode)
        row = report.filter((pl.col("mode") == mode) & (pl.col("measure") == "unique_structures")).row(0, named=True)
        assert row["n"] == 2 and np.isclose(row["mean"], mine["unique_structures"].mean())
    fig = km.mode_figure(runs, "mc-sweep", "0")
    bars = {t.x[0]: t.y[0] for t in fig.data if t.type == "bar"}
    assert bars == {m: truth.filter(pl.col("mode") == m)["success"].mean() for m in ("tournament", "pimp")}


# ------------------------------------------------------------------------------ gard


def test_gard_sections_draw_the_tables(res, results_dir):
    run = results_dir["root"] / "gard"
    splits = pl.read_parquet(run / "assemblies.parquet").sort("split_id").filter(
        pl.col("similarity_to_parent").is_not_null())
    body = section("gard", "Heredity").render(res, "gard")
    fig = section_graph(body, "gard-sim").figure
    drawn = sorted(y for t in fig.data for y in t.y)
    assert drawn == sorted(splits["similarity_to_parent"].to_list())
    above = [y for t in fig.data if t.name.startswith("composome") for y in t.y]
    assert sorted(above) == sorted(v for v in splits["similarity_to_parent"] if v > 0.9)
    assert [s.y0 for s in fig.layout.shapes] == [0.9]
    assert section_csv(body, "gard-sim")["split_id"].to_list() == splits["split_id"].to_list()

    body = section("gard", "Composomes").render(res, "gard")
    fig = section_graph(body, "gard-share").figure
    steps = sorted(set(splits["step"].to_list()))
    share = [float(np.mean(splits.filter(pl.col("step") == s)["similarity_to_parent"].to_numpy() > 0.9))
             for s in steps]
    bar = next(t for t in fig.data if t.type == "bar")
    assert list(bar.x) == steps and np.allclose(bar.y, share)

    body = section("gard", "Compotypes").render(res, "gard")
    fig = section_graph(body, "gard-compotypes").figure
    clustered = sum(len(t.x) for t in fig.data if t.name.startswith("compotype"))
    assert clustered == sum(v > 0.9 for v in splits["similarity_to_parent"])  # every composome has a compotype
    assert sum(len(t.x) for t in fig.data) == pl.read_parquet(run / "assemblies.parquet").height

    beta = pl.read_parquet(run / "beta.parquet")
    b = np.zeros((30, 30))
    b[beta["i"].to_numpy(), beta["j"].to_numpy()] = beta["beta"].to_numpy()
    body = section("gard", "Catalysis").render(res, "gard")
    assert f"{b.sum() / (30 * np.trace(b)):.4g}" in texts(body)

    timeline = pl.read_parquet(run / "timeline.parquet").sort("step")
    body = section("gard", "Timeline").render(res, "gard")
    drawn = traces_by_name(section_graph(body, "gard-timeline").figure)
    for name, column in (("time", "time"), ("events", "events"), ("deaths", "deaths"), ("mean size", "mean_size")):
        assert list(drawn[name].y) == timeline[column].to_list()
    assert section_csv(body, "gard-timeline").equals(timeline)


def test_a_long_run_draws_evenly_spaced_splits_and_says_so(results_dir, monkeypatch):
    from culturesim.kinds.gard import view as kind_gard

    monkeypatch.setattr(kind_gard, "MAX_POINTS", 10)
    res = Results(results_dir["root"])  # its own cache
    splits = pl.read_parquet(results_dir["root"] / "gard" / "assemblies.parquet").sort("split_id").filter(
        pl.col("similarity_to_parent").is_not_null())
    body = section("gard", "Heredity").render(res, "gard")
    ids = section_csv(body, "gard-sim")["split_id"].to_list()
    assert len(ids) == 10 and ids[0] == splits["split_id"][0] and ids[-1] == splits["split_id"][-1]
    assert set(ids) <= set(splits["split_id"]) and ids == sorted(ids)
    assert f"showing 10 of {splits.height} splits" in texts(body)


def test_gard_price_rows_add_up_to_the_change_in_mean_trait(results_dir):
    from app import create_app
    from app.pages import selection

    run = results_dir["root"] / "gard"
    beta = pl.read_parquet(run / "beta.parquet")
    b = np.zeros((30, 30))
    b[beta["i"].to_numpy(), beta["j"].to_numpy()] = beta["beta"].to_numpy()
    z = np.log10((b.sum(axis=0) - np.diag(b)) / np.diag(b))  # others_vs_self, from its definition
    genealogy = pl.read_parquet(run / "genealogy.parquet")
    means = {}
    for step, part in genealogy.group_by("step"):
        counts, types = part["count"].to_numpy(), part["type"].to_numpy()
        means[step[0]] = float((counts * z[types]).sum() / counts.sum())

    app = create_app(results_dir["root"])
    with app.server.test_request_context():
        frame = selection.data("gard", "others_vs_self", None)
        fig = selection.figure(frame, "gard", "others_vs_self", None)
    assert frame["step"].to_list() == [1, 2, 3, 4]
    parts = frame["between"] + frame["within"] + frame["transmission"] + frame["innovation"]
    assert np.allclose(parts.to_numpy(), frame["delta"].to_numpy(), atol=1e-12)
    assert np.allclose(frame["delta"].to_numpy(), [means[s] - means[s - 1] for s in frame["step"]], atol=1e-12)
    assert {t.name for t in fig.data} == {"between", "within", "transmission", "innovation", "observed change"}


def test_gard_price_is_limited_to_evenly_spaced_steps(results_dir, monkeypatch):
    from culturesim.kinds.gard import view as kind_gard

    monkeypatch.setattr(kind_gard, "MAX_PRICE_STEPS", 3)
    res = Results(results_dir["root"])  # its own cache
    frame = kind_gard.gard_price(res, "gard", "catalytic_out", "assemblies")
    assert frame["step"].to_list() == [1, 3, 4]  # linspace(0, 3, 3) = 0, 1.5, 3 over steps 1..4
    assert kind_gard.gard_price(res, "gard", "catalytic_out", "assemblies") is frame  # cached until the run changes
    with pytest.raises(ValueError, match="unknown trait"):
        kind_gard.gard_price(res, "gard", "size", "assemblies")


# ------------------------------------------------------------------------------ in a browser


@pytest.mark.timeout(120)
def test_kind_pages_in_a_browser(browser_app, results_dir):
    from selenium.webdriver.common.by import By
    from test_app_browser import errors_on_page, severe_console, traces, visit, wait_until

    from app.sections import GRAPH, section_id

    duo = browser_app
    visit(duo, "/run?run=mc")
    for prefix in ("mc-errors", "mc-diversity", "mc-sizes"):
        wait_until(lambda p=prefix: traces(duo, section_id(GRAPH, p)) > 0, what=f"{prefix} traces")
    genome = pl.read_parquet(results_dir["root"] / "mc" / "individuals.parquet")
    assert duo.find_element("#mc-best-genome").text in genome["genome"].to_list()
    duo.find_element("#mc-errors-csv-link").click()
    target = duo.download_dir / "mc-errors.csv"
    wait_until(target.exists, what="CSV download")
    assert len(target.read_text().strip().splitlines()) == 1 + 5  # header + generations 0..4
    assert errors_on_page(duo) == [] and severe_console(duo) == []

    visit(duo, "/selection?run=gard")
    wait_until(lambda: traces(duo, "sel") >= 5, what="Price bars")
    assert "Molecules are the individuals" in duo.find_element("#sel-note").text
    assert errors_on_page(duo) == [] and severe_console(duo) == []

    visit(duo, "/compare?run=mc-sweep")
    wait_until(lambda: traces(duo, "mccmp") > 0, what="modes compared")
    table = wait_until(lambda: duo.driver.find_elements(By.CSS_SELECTOR, "#mccmp-report table"), what="report")
    assert "pimp" in table[0].text and "tournament" in table[0].text
    assert errors_on_page(duo) == [] and severe_console(duo) == []


@pytest.mark.timeout(120)
def test_a_section_plot_switches_its_image_to_svg_in_a_browser(browser_app):
    from selenium.webdriver.common.by import By
    from test_app_browser import errors_on_page, plotly_div, selector, severe_console, traces, visit, wait_until

    from app.sections import FORMAT, GRAPH, section_id

    duo = browser_app
    visit(duo, "/run?run=mc")

    def image_format(prefix: str):
        """The camera icon's format as plotly holds it (the graph's config, applied)."""
        return duo.driver.execute_script(
            f"const gd = {plotly_div(duo, section_id(GRAPH, prefix))};"
            "return gd && gd._context ? [gd._context.toImageButtonOptions.format,"
            " gd._context.toImageButtonOptions.filename] : null;")

    for prefix in ("mc-errors", "mc-sizes"):
        wait_until(lambda p=prefix: traces(duo, section_id(GRAPH, p)) > 0, what=f"{prefix} traces")
        wait_until(lambda p=prefix: image_format(p) == ["png", p], what=f"{prefix} as png")
    svg = selector(section_id(FORMAT, "mc-errors")) + " input[value='svg']"

    def choose_svg() -> bool:  # the page re-renders every 3 s: a click may land on a replaced element
        duo.driver.find_element(By.CSS_SELECTOR, svg).click()
        return duo.driver.find_element(By.CSS_SELECTOR, svg).is_selected()

    wait_until(choose_svg, what="svg chosen")
    wait_until(lambda: image_format("mc-errors") == ["svg", "mc-errors"], what="svg for mc-errors")
    assert image_format("mc-sizes") == ["png", "mc-sizes"]  # its own switch, untouched
    # the page re-renders its sections every 3 s: the choice stays, and so does the config
    time.sleep(7)
    wait_until(lambda: duo.driver.find_element(By.CSS_SELECTOR, svg).is_selected(), timeout=3, what="svg kept")
    wait_until(lambda: image_format("mc-errors") == ["svg", "mc-errors"], timeout=5, what="svg after re-render")
    assert image_format("mc-sizes") == ["png", "mc-sizes"]
    assert errors_on_page(duo) == [] and severe_console(duo) == []
