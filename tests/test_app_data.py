"""The app without a browser: containment, listing, caching, reading live runs, and the
numbers pages draw, each checked against a computation done another way."""
# ruff: noqa: F811 - fixtures imported from conftest_app are used as test arguments

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time

import networkx as nx
import numpy as np
import polars as pl
import pytest
from conftest_app import QUICKSTART, make_run, results_dir  # noqa: F401 - fixture

from app import create_app
from app.data import DataError, MtimeCache, Refused, Results
from culturesim.store import RunDir


@pytest.fixture(scope="module")
def app(results_dir):
    return create_app(results_dir["root"])


@pytest.fixture
def ctx(app):
    with app.server.test_request_context():
        yield app.server.config["CULTURESIM_RESULTS"]


# ------------------------------------------------------------------------------ containment


@pytest.mark.parametrize("bad", ["..", "../x", "alpha/../../x", "/etc", "/", "~root", "", "  ", "a\\..\\b", "a\x00b",
                                 "C:/Windows", "outside", "outside/steps"])
def test_ids_leaving_the_folder_are_refused(results_dir, bad):
    res = Results(results_dir["root"])
    with pytest.raises(Refused):
        res.resolve(bad)
    with pytest.raises(Refused):
        res.ideas(bad)


def test_ids_inside_the_folder_resolve_including_links_that_stay_inside(results_dir, tmp_path):
    res = Results(results_dir["root"])
    assert res.resolve("alpha") == res.root / "alpha"
    rid = results_dir["sweep_runs"][0]
    assert res.resolve(rid) == res.root / rid
    assert res.resolve("alpha/./") == res.root / "alpha"
    inside = res.root / "alias"
    inside.symlink_to(res.root / "alpha", target_is_directory=True)
    try:
        assert res.ideas("alias").height == res.ideas("alpha").height
    finally:
        inside.unlink()


@pytest.fixture
def linked_out(tmp_path):
    """A results folder with one good run, and files outside it that a run's files may link to:
    a passwd-like text file, a manifest and a Parquet table that would read as a run's."""
    root = tmp_path / "results"
    make_run(root, "good")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    secret = outside / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    manifest = json.loads((root / "good" / "manifest.json").read_text())
    (outside / "manifest.json").write_text(json.dumps({**manifest, "name": "SECRET-MANIFEST"}))
    ideas = pl.read_parquet(root / "good" / "ideas.parquet").with_columns(pl.lit("SECRET-IDEA").alias("text"))
    ideas.write_parquet(outside / "ideas.parquet")
    return root, outside


def _link(path, target):
    path.unlink(missing_ok=True)
    path.symlink_to(target)


def test_a_run_file_symlinked_outside_is_refused_not_read(linked_out):
    root, outside = linked_out
    make_run(root, "ideas-link")
    _link(root / "ideas-link" / "ideas.parquet", outside / "ideas.parquet")
    make_run(root, "metrics-link")
    _link(root / "metrics-link" / "metrics.parquet", outside / "ideas.parquet")
    res = Results(root)
    entries = {e.id: e for e in res.listing()}
    assert entries["good"].error is None and res.ideas("good").height > 0  # a normal run still reads
    for rid, name in [("ideas-link", "ideas.parquet"), ("metrics-link", "metrics.parquet")]:
        assert f"refused: {rid}/{name} points outside the results folder" in entries[rid].error
    with pytest.raises(DataError, match="refused: ideas-link/ideas.parquet points outside the results folder"):
        res.ideas("ideas-link")
    with pytest.raises(DataError, match="metrics-link/metrics.parquet points outside the results folder"):
        res.metrics("metrics-link")
    assert res.ideas("metrics-link").height > 0  # its other files are its own


def test_a_manifest_symlinked_outside_is_refused(linked_out):
    root, outside = linked_out
    make_run(root, "manifest-link")
    _link(root / "manifest-link" / "manifest.json", outside / "manifest.json")
    make_run(root, "passwd-link")
    _link(root / "passwd-link" / "manifest.json", outside / "passwd")
    res = Results(root)
    entries = {e.id: e for e in res.listing()}
    for rid in ("manifest-link", "passwd-link"):
        e = entries[rid]
        assert e.status == "unreadable" and e.name == "" and "SECRET" not in str(e)
        assert f"refused: {rid}/manifest.json points outside the results folder" in e.error
        with pytest.raises(DataError, match="points outside the results folder"):
            res.manifest(rid)
    assert res.manifest("good")["name"] == json.loads((root / "good" / "manifest.json").read_text())["name"]


def test_a_step_part_symlinked_outside_is_refused(linked_out):
    root, outside = linked_out
    make_run(root, "part-link")  # read from its parts, as a live run is
    (root / "part-link" / "ideas.parquet").unlink()
    _link(root / "part-link" / "steps" / "00004.parquet", outside / "passwd")
    make_run(root, "middle-link")
    (root / "middle-link" / "ideas.parquet").unlink()
    _link(root / "middle-link" / "steps" / "00002.parquet", outside / "ideas.parquet")
    res = Results(root)
    entry = {e.id: e for e in res.listing()}["part-link"]
    assert "refused: part-link/steps/00004.parquet points outside the results folder" in entry.error
    for rid, step in [("part-link", "00004"), ("middle-link", "00002")]:
        with pytest.raises(DataError, match=f"refused: {rid}/steps/{step}.parquet points outside"):
            res.ideas(rid)


def test_the_listing_marks_a_run_with_any_part_linked_outside(linked_out, capsys):
    """Every part of a run is checked by the listing (a scan and a resolve, no reads), not only
    the last step part: a middle step part, a prompts part, a whole subfolder linked out mark
    the run's row on the Runs page and in ``culturesim runs``. Before, only reading the table
    found them out."""
    from culturesim import cli

    root, outside = linked_out
    for rid in ("middle-link", "prompt-link", "folder-link", "late-link"):
        make_run(root, rid)
        (root / rid / "ideas.parquet").unlink()  # read from its parts, as a live run is
    _link(root / "middle-link" / "steps" / "00002.parquet", outside / "ideas.parquet")
    _link(root / "prompt-link" / "prompts" / "00003.parquet", outside / "passwd")
    shutil.copytree(root / "folder-link" / "prompts", outside / "prompts")
    shutil.rmtree(root / "folder-link" / "prompts")
    (root / "folder-link" / "prompts").symlink_to(outside / "prompts", target_is_directory=True)
    res = Results(root)
    entries = {e.id: e for e in res.listing()}
    assert entries["good"].error is None and entries["late-link"].error is None
    for rid, name in [("middle-link", "steps/00002.parquet"), ("prompt-link", "prompts/00003.parquet"),
                      ("folder-link", "prompts")]:
        assert entries[rid].error == f"refused: {rid}/{name} points outside the results folder", entries[rid]
        assert entries[rid].status == "done"  # the row still says what the manifest says
    # a link made after a listing is seen by the next one (the cache's token covers subfolders)
    _link(root / "late-link" / "prompts" / "00001.parquet", outside / "passwd")
    late = {e.id: e for e in res.listing()}["late-link"]
    assert late.error == "refused: late-link/prompts/00001.parquet points outside the results folder"
    capsys.readouterr()
    assert cli.main(["runs", str(root)]) == 0
    printed = capsys.readouterr().out
    for rid, name in [("middle-link", "steps/00002.parquet"), ("prompt-link", "prompts/00003.parquet"),
                      ("folder-link", "prompts"), ("late-link", "prompts/00001.parquet")]:
        assert f"refused: {rid}/{name} points outside {root}" in printed
    assert printed.count("refused files") == 4 and "SECRET" not in printed


def test_runs_refuses_a_manifest_linked_outside(linked_out, capsys):
    from culturesim import cli

    root, outside = linked_out
    make_run(root, "manifest-link")
    _link(root / "manifest-link" / "manifest.json", outside / "manifest.json")
    assert cli.main(["runs", str(root)]) == 0
    printed = capsys.readouterr().out
    assert f"unreadable: refused: manifest-link/manifest.json points outside {root}" in printed
    assert "SECRET" not in printed


def test_sweep_files_symlinked_outside_are_refused(linked_out, tmp_path):
    root, outside = linked_out
    sweep = root / "sw"
    make_run(sweep, "r1")
    (outside / "sweep.json").write_text(json.dumps({"scenario": {"name": "SECRET-SWEEP"}, "runs": 1}))
    pl.DataFrame({"run_id": ["r1"], "status": ["done"], "secret": ["SECRET-INDEX"]}).write_parquet(
        outside / "sweep.parquet")
    _link(sweep / "sweep.json", outside / "sweep.json")
    _link(sweep / "sweep.parquet", outside / "sweep.parquet")
    res = Results(root)
    entry = {e.id: e for e in res.listing()}["sw"]
    assert entry.kind == "sweep" and entry.name != "SECRET-SWEEP"
    assert "refused: sw/sweep.json points outside the results folder" in entry.error
    with pytest.raises(DataError, match="refused: sw/sweep.parquet points outside the results folder"):
        res.sweep_index("sw")
    assert res.conditions("sw/r1") == {}  # the index is refused, so no condition is taken from it


def test_links_between_files_inside_the_results_folder_still_read(linked_out):
    root, _ = linked_out
    make_run(root, "inner-link")
    _link(root / "inner-link" / "ideas.parquet", root / "good" / "ideas.parquet")
    res = Results(root)
    assert {e.id: e for e in res.listing()}["inner-link"].error is None
    assert res.ideas("inner-link").equals(res.ideas("good"))


# ------------------------------------------------------------------------------ listing


def test_listing_matches_the_manifests_and_flags_bad_runs(results_dir):
    res = Results(results_dir["root"])
    entries = {e.id: e for e in res.listing()}
    assert "outside" not in entries and ".app" not in entries
    for rid in ["alpha", *results_dir["sweep_runs"]]:
        m = json.loads((res.root / rid / "manifest.json").read_text())
        e = entries[rid]
        assert (e.kind, e.status, e.steps_done, e.steps_total, e.model) == (
            m["kind"], m["status"], m["steps_completed"], m["steps_total"], m["llm"]["model"])
        assert e.error is None
    sweep = entries["grid-sweep"]
    assert sweep.kind == "sweep" and sweep.status == "6 done" and (sweep.steps_done, sweep.steps_total) == (6, 6)
    assert all(entries[r].parent == "grid-sweep" for r in results_dir["sweep_runs"])
    assert "unreadable Parquet" in entries["broken"].error
    with pytest.raises(DataError, match="broken: ideas.parquet unreadable"):
        res.ideas("broken")


def test_an_unreadable_manifest_is_a_row_with_an_error(tmp_path):
    root = tmp_path / "results"
    (root / "bad").mkdir(parents=True)
    (root / "bad" / "manifest.json").write_text("{not json")
    [entry] = Results(root).listing()
    assert entry.status == "unreadable" and "unreadable manifest" in entry.error



@pytest.mark.parametrize("content", [b"[1, 2]", bytes(range(256)), b"42"])
def test_a_manifest_or_sweep_json_that_is_not_an_object_is_an_error_row(tmp_path, content):
    root = tmp_path / "results"
    (root / "bad").mkdir(parents=True)
    (root / "bad" / "manifest.json").write_bytes(content)
    make_run(root / "s", "r0")
    (root / "s" / "sweep.json").write_bytes(content)
    entries = {e.id: e for e in Results(root).listing()}
    assert entries["bad"].status == "unreadable" and "unreadable manifest" in entries["bad"].error
    assert entries["s"].is_sweep and "sweep.json: unreadable" in entries["s"].error
    assert entries["s/r0"].status == "done" and not entries["s/r0"].error


# ------------------------------------------------------------------------------ caching


def test_cache_rereads_only_when_the_file_changes(tmp_path):
    root = tmp_path / "results"
    make_run(root, "r")
    res = Results(root)
    first = res.ideas("r")
    assert res.ideas("r") is first  # unchanged: served from the cache
    path = root / "r" / "ideas.parquet"
    extra = pl.concat([first, first.head(1)])
    extra.write_parquet(path)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert res.ideas("r").height == first.height + 1


def test_mtime_cache_evicts_least_recently_used():
    cache = MtimeCache(size=2)
    calls = []
    get = lambda k: cache.get(k, (1,), lambda: calls.append(k) or k)  # noqa: E731
    get("a"), get("b"), get("a"), get("c"), get("a"), get("b")
    assert calls == ["a", "b", "c", "b"]


def test_reading_a_run_while_it_is_written_never_fails(tmp_path):
    """A writer lands steps (atomic renames) while the app lists and reads the run."""
    from culturesim.store import IDEAS_SCHEMA

    root = tmp_path / "results"
    run = RunDir(root / "live")
    run.path.mkdir(parents=True)
    pl.DataFrame({"agent_id": [0, 1, 2]}).write_parquet(run.path / "agents.parquet")
    run.write_manifest({"run_id": "live", "kind": "culture", "status": "running", "steps_total": 40,
                        "steps_completed": 0, "llm": {"model": "echo/x"}})
    agents = 3
    done = threading.Event()

    def writer():
        for step in range(1, 41):
            rows = [{k: None for k in IDEAS_SCHEMA} | {"step": step, "agent_id": a, "idea_id": f"s{step}-a{a}",
                                                        "text": f"idea {step} {a}", "parent_ids": []}
                    for a in range(agents)]
            run.write_step(step, rows, [])
            run.update_manifest(steps_completed=step)
        run.compact()
        run.update_manifest(status="done")
        done.set()

    res = Results(root)
    thread = threading.Thread(target=writer)
    thread.start()
    heights = []
    while not done.is_set():
        heights.append(res.ideas("live").height)
        [entry] = res.listing()
        assert entry.error is None
    thread.join()
    heights.append(res.ideas("live").height)
    assert all(h % agents == 0 for h in heights)
    assert heights == sorted(heights) and heights[-1] == 40 * agents


# ------------------------------------------------------------------------------ page numbers


def test_condition_bands_are_the_t_interval_of_the_replicates():
    from scipy import stats

    from app.pages.diversity import condition_bands

    rng = np.random.default_rng(3)
    rows = [{"condition": c, "metric": "diversity", "step": s, "value": float(rng.normal(s, 1)), "run_id": f"{c}{r}"}
            for c in "ab" for s in (1, 2) for r in range(4)]
    rows.append({"condition": "c", "metric": "diversity", "step": 1, "value": 0.5, "run_id": "c0"})
    bands = condition_bands(pl.DataFrame(rows))
    for r in bands.filter(pl.col("condition") != "c").iter_rows(named=True):
        values = [x["value"] for x in rows if (x["condition"], x["step"]) == (r["condition"], r["step"])]
        low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
        assert r["n"] == 4 and r["low"] == pytest.approx(low) and r["high"] == pytest.approx(high)
    lone = bands.filter(pl.col("condition") == "c").row(0, named=True)
    assert lone["mean"] == 0.5 and lone["low"] is None and lone["high"] is None


def test_held_ideas_are_each_agents_latest_idea(results_dir, ctx):
    from app.pages.network import held_ideas

    ideas = ctx.valid_ideas("alpha")
    for step in (1, 3, 4):
        held = dict(held_ideas(ideas, step).select("agent_id", "idea_id").iter_rows())
        for agent in ideas["agent_id"].unique().to_list():
            mine = [r for r in ideas.to_dicts() if r["agent_id"] == agent and r["step"] <= step]
            assert held[agent] == max(mine, key=lambda r: r["step"])["idea_id"]


def test_network_page_data_covers_every_agent(ctx):
    from app.pages import network

    nodes = network.data("alpha", 2, "chars")
    agents = ctx.agents("alpha")
    assert sorted(nodes["agent_id"]) == sorted(agents["agent_id"])
    assert (nodes["colour"] == nodes["text"].str.len_chars()).all()
    fig = network.figure(nodes, "alpha", 2, "chars")
    assert fig.layout.title.text == "step 2"


def test_family_tree_matches_networkx_ancestors_and_descendants(ctx):
    from app.pages.ideas import family

    ideas = ctx.valid_ideas("alpha")
    graph = nx.DiGraph()
    for r in ideas.iter_rows(named=True):
        graph.add_node(r["idea_id"])
        graph.add_edges_from((p, r["idea_id"]) for p in r["parent_ids"] or [])
    focus = "s3-a4"
    tree = family("alpha", focus, 2, 1)
    up = nx.single_source_shortest_path_length(graph.reverse(), focus, cutoff=2)
    down = nx.single_source_shortest_path_length(graph, focus, cutoff=1)
    got = dict(tree.select("idea_id", "generation").iter_rows())
    assert {k for k, g in got.items() if g < 0} == {k for k, d in up.items() if d > 0}
    assert {k for k, g in got.items() if g > 0} == {k for k, d in down.items() if d > 0}
    assert all(got[k] == -up[k] for k in up if k != focus)


def test_price_terms_add_up_to_the_observed_change_in_mean_length(ctx):
    from app.ideas_view import idea_price

    ideas = ctx.valid_ideas("alpha")
    table = idea_price(ctx, "alpha", "chars", "personality")
    mean = {s: float(g["text"].str.len_chars().mean()) for (s,), g in ideas.group_by("step")}
    for r in table.iter_rows(named=True):
        assert r["delta"] == pytest.approx(mean[r["step"]] - mean[r["step"] - 1])
        parts = r["between"] + r["within"] + r["transmission"] + r["innovation"]
        assert parts == pytest.approx(r["delta"], abs=1e-9)
    assert table["step"].to_list() == [2, 3, 4]


def test_compare_per_run_values_are_each_runs_last_step(ctx, results_dir):
    from app.pages import compare

    frame = compare.per_run("grid-sweep", "diversity", "last", "tfidf")
    assert frame.height == 6 and "culture.operation" in frame.columns
    for r in frame.iter_rows(named=True):
        m = pl.read_parquet(ctx.root / r["run_id"] / "metrics.parquet").filter(pl.col("metric") == "diversity")
        assert r["value"] == pytest.approx(m.filter(pl.col("step") == m["step"].max())["value"][0])
    effects = compare.effect_sizes(frame)
    combine = frame.filter(pl.col("culture.operation") == "combine")["value"].mean()
    transform = frame.filter(pl.col("culture.operation") == "transform")["value"].mean()
    assert effects["diff"][0] == pytest.approx(transform - combine)


def test_ideas_search_is_literal_and_case_insensitive(ctx):
    from app.pages.ideas import search, source_ideas

    ideas, errors = source_ideas("alpha")
    assert errors == []
    word = ideas["text"][0].split()[0]
    found = search(ideas, word.upper(), None)
    assert found.height == sum(word.lower() in t.lower() for t in ideas["text"])
    assert search(ideas, "(", None).height == sum("(" in t for t in ideas["text"])  # not a regex error


def test_sweep_ideas_skip_an_unreadable_run_and_say_so(tmp_path):
    from app.pages.ideas import source_ideas

    root = tmp_path / "results"
    shutil.copytree(QUICKSTART.parent, tmp_path / "unused", dirs_exist_ok=True)
    make_run(root / "s", "r0")
    make_run(root / "s", "r1")
    (root / "s" / "sweep.json").write_text(json.dumps({"scenario": {"name": "s"}, "runs": 2}))
    (root / "s" / "r1" / "ideas.parquet").write_bytes(b"PAR1 broken")
    app = create_app(root)
    with app.server.test_request_context():
        ideas, errors = source_ideas("s")
    assert set(ideas["run"]) == {"s/r0"} and len(errors) == 1 and "s/r1" in errors[0]


def test_hover_text_escapes_markup_and_csv_flattens_lists():
    from app.ui import csv_ready, hover_text

    assert hover_text('<a href="javascript:x">&</a>') == "&lt;a href=&quot;javascript:x&quot;&gt;&amp;&lt;/a&gt;"
    frame = pl.DataFrame({"parent_ids": [["a", "b"], []], "n": [1, 2]})
    assert csv_ready(frame).write_csv().splitlines() == ["parent_ids,n", "a; b,1", '"",2']


# ------------------------------------------------------------------------------ kinds extension point


def test_a_new_kind_plugs_in_sections_and_a_price_source(tmp_path):
    from app import kinds
    from app.pages import run as run_page
    from app.pages import selection

    root = tmp_path / "results"
    run = RunDir(root / "g1")
    run.path.mkdir(parents=True)
    run.write_manifest({"run_id": "g1", "kind": "toykind", "status": "done", "steps_total": 2, "steps_completed": 2})
    for step in (1, 2):
        run.write_step(step, [], [], {"assemblies": ([{"step": step, "size": step * 10}],
                                                     {"step": pl.Int64, "size": pl.Int64})})
    kinds.register_sections("toykind", kinds.Section("Assemblies", lambda res, rel: str(
        res.table(rel, "assemblies")["size"].sum())))
    terms = {"step": [2], "delta": [10.0], "between": [4.0], "within": [0.0], "transmission": [6.0],
             "innovation": [0.0]}
    kinds.register_price("toykind", kinds.PriceSource({"size": "assembly size"},
                                                      lambda res, rel, trait, g: pl.DataFrame(terms)))
    try:
        app = create_app(root)
        with app.server.test_request_context():
            page = str(run_page.render("g1"))
            assert "Assemblies" in page and "'30'" in page
            frame = selection.data("g1", None, None)
            assert frame["delta"].to_list() == [10.0]
    finally:
        kinds.SECTIONS.pop("toykind", None)
        kinds.PRICE_SOURCES.pop("toykind", None)


# ------------------------------------------------------------------------------ launching


def test_validation_reports_one_line_problems_and_refuses_unlisted_files(ctx):
    from app.pages import launch

    _, loaded, problems = launch.check(None, QUICKSTART.read_text().replace("steps: 5", "steps: -3"))
    assert loaded is None and len(problems) == 1 and "steps" in problems[0] and "\n" not in problems[0]
    _, loaded, problems = launch.check(None, QUICKSTART.read_text())
    assert problems == [] and loaded.name == "quickstart"
    _, _, problems = launch.check("../../etc/passwd", "kind: culture")
    assert "refused" in problems[0]


def test_a_started_run_progresses_in_the_background_and_cancels(tmp_path):
    from app.launcher import Launcher

    root = tmp_path / "results"
    root.mkdir()
    res = Results(root)
    launcher = Launcher(res, grace_s=20)
    text = QUICKSTART.read_text().replace("model: local/smollm2", "model: echo/delay-0.3").replace(
        "steps: 5", "steps: 200")
    path = launcher.save_copy(text, "slow")
    job = launcher.start_scenario(path, "quickstart", is_sweep=False)
    deadline = time.monotonic() + 60
    while (launcher.progress(job)[0] or 0) < 2:
        assert job.proc.poll() is None, job.log_tail()
        assert time.monotonic() < deadline, "no step landed"
        time.sleep(0.2)
    assert launcher.progress(job)[1] == 200
    assert launcher.cancel(job.id)
    job.proc.wait(timeout=30)
    assert job.state() == "cancelled"
    manifest = res.manifest(job.target)
    assert manifest["status"] == "interrupted" and 2 <= manifest["steps_completed"] < 200
    assert job.proc.returncode != -signal.SIGTERM  # SIGINT was enough: the runner stopped cleanly


# ------------------------------------------------------------------------------ serving


def test_wsgi_server_and_cli_entry(results_dir, monkeypatch):
    import importlib

    from culturesim.cli import main, parser

    monkeypatch.setenv("CULTURESIM_RESULTS", str(results_dir["root"]))
    import app.wsgi as wsgi

    wsgi = importlib.reload(wsgi)
    client = wsgi.server.test_client()
    assert client.get("/").status_code == 200
    assert client.get("/_dash-layout").status_code == 200
    args = parser().parse_args(["app", str(results_dir["root"]), "--port", "8123"])
    assert (args.host, args.port, args.func.__name__) == ("127.0.0.1", 8123, "cmd_app")
    assert main(["app", str(results_dir["root"] / "nope")]) == 2
