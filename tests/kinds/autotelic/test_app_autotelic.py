"""The Run page's sections for autotelic runs, on a real run made by the runner in a real generated
CookingWorld game, with ScriptedJudge (tests/test_autotelic_model.py) standing in for the language
model's judgement, made to disagree with the game's oracle on goals about a pepper so that the
reward agreement is not trivially perfect.

Each section's plotted data is checked against culturesim/kinds/autotelic/measures.py run on the run's Parquet
files read independently, and the headline numbers against a second computation (Python sets,
scikit-learn's TF-IDF, kappa and confusion matrix, numpy's eigenvalues).
"""

from __future__ import annotations

import json

import re
import shutil
import time

import dash_ag_grid as dag
import numpy as np
import polars as pl
import pytest
from conftest_app import copy_run, section_csv, section_graph, walk
from dash import dcc, html
from test_autotelic_model import ScriptedJudge

from app.data import Results

EVIL = '<b>bold</b><img src="x" onerror="window.__pwned=1"> & [link](javascript:alert(1)) **x**'


class LyingJudge(ScriptedJudge):
    """ScriptedJudge, except that it gets every reward about a pepper backwards (a goal this game gives)."""

    def answer(self, prompt: str) -> str:
        text = super().answer(prompt)
        if self.operation(prompt) == "reward" and "pepper" in prompt.split("Here is what")[0]:
            verdict = json.loads(text)
            return json.dumps({**verdict, "reached": not verdict["reached"]})
        return text


def scripted_provider(judge: ScriptedJudge):
    import litellm
    from litellm.llms.custom_llm import CustomLLM

    class Scripted(CustomLLM):
        def completion(self, model, messages, *args, **kwargs):
            return litellm.ModelResponse(model="atjudge/x", choices=[
                {"message": {"role": "assistant", "content": judge.answer(messages[-1]["content"])},
                 "finish_reason": "stop"}])

        async def acompletion(self, *args, **kwargs):
            return self.completion(*args, **kwargs)

    return Scripted()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """One finished run ("at"), and copies of it: cut after step 3 and not compacted, as a running
    run reads ("at-live"); no step yet ("at-empty"); an HTML goal in its repertoire ("at-evil")."""
    from culturesim import runner
    from culturesim import scenario as sc
    from culturesim.llm import client

    client.litellm_module()
    client.register_provider("atjudge", scripted_provider(LyingJudge()))
    base = tmp_path_factory.mktemp("autotelic")
    root = base / "results"
    s = sc.validate_data({
        "kind": "autotelic", "name": "t", "seed": 5, "steps": 6, "population": {"size": 4},
        "network": {"topology": "ring", "params": {"k": 1}}, "llm": {"model": "atjudge/x", "cache": False},
        "game": {"cache_dir": str(base / "games"), "recipe": 2, "take": 1, "go": 6},
        "autotelic": {"max_actions": 10, "episodes_per_step": 2, "share_every": 2,
                      "sources": {"own": 0.4, "social": 0.3, "imagine": 0.3}},
        "output": {"run_id": "at"}}, "test")
    run = runner.start(s, out=root, show_progress=False)
    assert run.read_manifest()["status"] == "done"
    live = copy_run(root, "at", "at-live")
    for table in ("ideas", "prompts", "episodes", "repertoire"):
        (live / f"{table}.parquet").unlink()
    for folder in ("steps", "prompts", "episodes", "repertoire"):
        for part in (live / folder).glob("*.parquet"):
            if int(part.stem) > 3:
                part.unlink()
    empty = copy_run(root, "at", "at-empty")
    for table in ("ideas", "prompts", "episodes", "repertoire"):
        (empty / f"{table}.parquet").unlink()
    for folder in ("steps", "prompts", "episodes", "repertoire"):
        shutil.rmtree(empty / folder)
    evil = copy_run(root, "at", "at-evil")
    rep = pl.read_parquet(evil / "repertoire.parquet")
    first = rep.filter(pl.col("step") == 6)["goal"][0]
    rep.with_columns(pl.when(pl.col("goal") == first).then(pl.lit(EVIL)).otherwise(pl.col("goal")).alias(
        "goal")).write_parquet(evil / "repertoire.parquet")
    return root





@pytest.fixture(scope="module")
def res(root) -> Results:
    from app.kinds import load_kind_views

    load_kind_views()
    return Results(root)


@pytest.fixture(scope="module")
def tables(root) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(episodes, repertoire) of the finished run, read straight from its files."""
    return pl.read_parquet(root / "at" / "episodes.parquet"), pl.read_parquet(root / "at" / "repertoire.parquet")


# ------------------------------------------------------------------------------ helpers


def render(res, title_start: str, rel: str = "at"):
    from app.kinds import sections_for

    section = next(s for s in sections_for("autotelic") if s.title.startswith(title_start))
    return section.render(res, rel)


def lines(fig, subplot: int = 1) -> dict[str, tuple[list, list]]:
    """name -> (x, y) of the traces on subplot ``subplot`` (by x axis)."""
    axis = "x" if subplot == 1 else f"x{subplot}"
    return {t.name: (list(t.x), list(t.y)) for t in fig.data if (t.xaxis or "x") == axis}


def who(agent) -> str:
    return "population" if agent is None else f"agent {agent}"


def as_lines(frame: pl.DataFrame, column: str) -> dict[str, tuple[list, list]]:
    out = {}
    for agent in sorted(frame["agent_id"].unique().to_list(), key=lambda a: (a is None, a)):
        part = frame.filter(pl.col("agent_id").is_null() if agent is None else pl.col("agent_id") == agent).sort("step")
        out[who(agent)] = (part["step"].to_list(), [None if v is None else float(v) for v in part[column].to_list()])
    return out


def same(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for name in a:
        assert a[name][0] == b[name][0], name
        np.testing.assert_allclose(np.array(a[name][1], dtype=float), np.array(b[name][1], dtype=float),
                                   rtol=1e-9, err_msg=name)


def frames_equal(drawn: pl.DataFrame, expected: pl.DataFrame, keys: list[str]) -> None:
    from polars.testing import assert_frame_equal

    assert_frame_equal(drawn.select(expected.columns).sort(keys, nulls_last=True),
                       expected.sort(keys, nulls_last=True), check_dtypes=False)


# ------------------------------------------------------------------------------ sections


def test_goals_known_and_mastered_are_analysis_counts(res, tables):
    from culturesim.kinds.autotelic.measures import mastered_goals

    _, rep = tables
    expected = mastered_goals(rep)
    body = render(res, "Goals known")
    fig = section_graph(body, "at-goals").figure
    same(lines(fig, 1), as_lines(expected, "known"))
    same(lines(fig, 2), as_lines(expected, "mastered"))
    frames_equal(section_csv(body, "at-goals").drop("who"), expected, ["step", "agent_id"])
    # by hand, from the rows: an agent knows its rows; the population its distinct goal texts
    for step in (1, 6):
        rows = rep.filter(pl.col("step") == step).select("agent_id", "goal", "mastered").rows()
        known = {who(a): sum(1 for r in rows if r[0] == a) for a in range(4)}
        known["population"] = len({r[1] for r in rows})
        mastered = {who(a): sum(1 for r in rows if r[0] == a and r[2]) for a in range(4)}
        mastered["population"] = len({r[1] for r in rows if r[2]})
        at = {name: y[x.index(step)] for name, (x, y) in lines(fig, 1).items()}
        assert at == known
        at = {name: y[x.index(step)] for name, (x, y) in lines(fig, 2).items()}
        assert at == mastered
    assert known["population"] < sum(known[who(a)] for a in range(4))  # goals shared: not the agents' sum


def test_goal_diversity_is_analysis_with_tfidf(res, tables):
    from analysis.embeddings import TfidfEmbedder
    from culturesim.kinds.autotelic.measures import goal_diversity

    _, rep = tables
    body = render(res, "Goal diversity")
    fig = section_graph(body, "at-diversity").figure
    drawn = section_csv(body, "at-diversity")
    for row, kind in ((0, "mastered"), (1, "known")):
        expected = goal_diversity(rep, TfidfEmbedder(), mastered_only=kind == "mastered")
        assert not expected.is_empty()
        same(lines(fig, 2 * row + 1), as_lines(expected, "vendi"))
        same(lines(fig, 2 * row + 2), as_lines(expected, "mean_pairwise"))
        frames_equal(drawn.filter(pl.col("goal_set") == kind).drop("who", "goal_set"), expected,
                     ["step", "agent_id"])
    # the last step's population of mastered goals, by the closed forms: exp(entropy of the
    # eigenvalues of K/n) and the mean of 1 - cos over pairs
    chosen = rep.filter(pl.col("mastered"))
    texts = sorted(set(chosen["goal"].to_list()))
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(max_features=4096).fit(texts)  # fitted on every mastered goal, as analysis does
    last = sorted(set(chosen.filter(pl.col("step") == 6)["goal"].to_list()))
    X = vectorizer.transform(last).toarray()
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    eig = np.clip(np.linalg.eigvalsh(X @ X.T / len(last)), 0, None)
    eig = eig[eig > 1e-12]
    x, y = lines(fig, 1)["population"]
    assert y[x.index(6)] == pytest.approx(float(np.exp(-np.sum(eig * np.log(eig)))), rel=1e-6)
    x, y = lines(fig, 2)["population"]
    K = X @ X.T
    assert y[x.index(6)] == pytest.approx(np.mean([1 - K[i, j] for i in range(len(last))
                                                   for j in range(i + 1, len(last))]), rel=1e-6)
    assert len(last) >= 3


def sets_at(rep: pl.DataFrame, step: int, mastered: bool) -> dict[int, set]:
    rows = rep.filter(pl.col("step") == step)
    if mastered:
        rows = rows.filter(pl.col("mastered"))
    return {a: set(rows.filter(pl.col("agent_id") == a)["goal"].to_list()) for a in range(4)}


def test_overlap_heatmaps_are_jaccard_of_the_goal_sets(res, root, tables):
    from culturesim.kinds.autotelic.measures import repertoire_overlap

    _, rep = tables
    edges = pl.read_parquet(root / "at" / "edges.parquet")
    body = render(res, "Repertoire overlap")
    tabs = next(c for c in walk(body) if isinstance(c, dcc.Tabs))
    assert [t.value for t in tabs.children] == [str(s) for s in range(1, 7)]
    assert tabs.value == "6" and tabs.persistence == "at"  # the last step first; the user's choice kept
    neighbours = {tuple(sorted(e)) for e in edges.rows()}
    assert neighbours == {(0, 1), (1, 2), (2, 3), (0, 3)}  # the ring
    cells = section_csv(body, "at-overlap-cells")
    for tab in tabs.children:
        step = int(tab.value)
        fig = section_graph(tab, f"at-overlap-step{step}").figure
        for trace, kind in zip(fig.data, ("mastered", "known"), strict=True):
            sets = sets_at(rep, step, kind == "mastered")
            z = [[None if not (sets[a] | sets[b]) else len(sets[a] & sets[b]) / len(sets[a] | sets[b])
                  for b in range(4)] for a in range(4)]
            assert [[None if v is None else pytest.approx(v) for v in r] for r in z] == [list(r) for r in trace.z]
            part = cells.filter((pl.col("step") == step) & (pl.col("goal_set") == kind)).sort("agent_a", "agent_b")
            assert part["jaccard"].to_list() == pytest.approx([v for r in z for v in r], nan_ok=True)
            # the mean over pairs is analysis' homogenisation measure, on all pairs and neighbouring ones
            expected = repertoire_overlap(rep, [0, 1, 2, 3], edges=edges, mastered_only=kind == "mastered")
            row = expected.filter(pl.col("step") == step).row(0, named=True)
            pairs = [z[a][b] for a in range(4) for b in range(a + 1, 4) if z[a][b] is not None]
            near = [z[a][b] for a, b in neighbours if z[a][b] is not None]
            assert row["mean_jaccard"] == (pytest.approx(np.mean(pairs)) if pairs else None)
            assert row["neighbour_jaccard"] == (pytest.approx(np.mean(near)) if near else None)
    last = section_graph(tabs.children[-1], "at-overlap-step6").figure.data[0].z
    assert any(v is not None and 0 < v < 1 for r in last for v in r)
    # the line over steps: analysis' frame, drawn and exported
    fig = section_graph(body, "at-overlap").figure
    drawn = section_csv(body, "at-overlap")
    for kind, label in (("mastered", "mastered goals"), ("known", "all known goals")):
        expected = repertoire_overlap(rep, [0, 1, 2, 3], edges=edges, mastered_only=kind == "mastered")
        traces = {t.name: t for t in fig.data}
        assert list(traces[f"all pairs, {label}"].y) == expected["mean_jaccard"].to_list()
        assert list(traces[f"neighbouring pairs, {label}"].y) == expected["neighbour_jaccard"].to_list()
        frames_equal(drawn.filter(pl.col("goal_set") == kind).drop("goal_set"), expected, ["step"])


def test_overlap_offers_evenly_spaced_steps_when_there_are_many(res, monkeypatch):
    from culturesim.kinds.autotelic import view as kind_autotelic

    monkeypatch.setattr(kind_autotelic, "MAX_TABS", 3)
    res.cache.clear()
    try:
        body = render(res, "Repertoire overlap")
    finally:
        res.cache.clear()
    tabs = next(c for c in walk(body) if isinstance(c, dcc.Tabs))
    offered = [int(t.value) for t in tabs.children]
    assert len(offered) == 3 and offered[0] == 1 and offered[-1] == 6 and abs(offered[1] - 3.5) <= 0.5
    assert tabs.value == "6"
    assert any(isinstance(t, str) and "3 of 6 steps" in t for t in walk(body))
    assert sorted(section_csv(body, "at-overlap-cells")["step"].unique().to_list()) == offered


def test_coverage_and_reward_agreement(res, tables):
    from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix

    from culturesim.kinds.autotelic.measures import coverage, reward_agreement

    eps, _ = tables
    body = render(res, "Evaluation coverage")
    fig = section_graph(body, "at-coverage").figure
    expected = coverage(eps)
    same(lines(fig), as_lines(expected, "coverage"))
    frames_equal(section_csv(body, "at-coverage").drop("who"), expected, ["step", "agent_id"])
    # by hand: distinct evaluation goals reached by anyone by the last step, over the game's total
    reached = {(g, goal) for g, goals in eps.select("game", "eval_achieved").rows() for goal in goals}
    total = eps.group_by("game").agg(pl.col("eval_total").first())["eval_total"].sum()
    x, y = lines(fig)["population"]
    assert y[x.index(6)] == pytest.approx(len(reached) / total) and 0 < len(reached) < total
    # agreement per step: analysis' frame
    fig = section_graph(body, "at-agreement").figure
    expected = reward_agreement(eps, by="step")
    traces = {t.name: t for t in fig.data}
    assert list(traces["agreement"].y) == expected["agreement"].to_list()
    assert list(traces["Cohen's kappa"].y) == expected["kappa"].to_list()
    frames_equal(section_csv(body, "at-agreement"), expected, ["step"])
    # the summary table against scikit-learn, over every episode with both verdicts
    judged = eps.filter(pl.col("llm_reward").is_not_null() & pl.col("oracle_success").is_not_null())
    llm, oracle = judged["llm_reward"].to_list(), judged["oracle_success"].to_list()
    table = next(c for c in walk(body) if isinstance(c, html.Table))
    head = [th.children for th in table.children[0].children.children]
    rows = [[td.children for td in tr.children] for tr in table.children[1].children]
    overall = dict(zip(head, rows[0], strict=True))
    assert overall["goals"] == "all episodes" and overall["n"] == str(len(llm))
    assert float(overall["agreement"]) == pytest.approx(accuracy_score(oracle, llm), abs=1e-4)
    assert float(overall["kappa"]) == pytest.approx(cohen_kappa_score(oracle, llm), abs=1e-4)
    assert float(overall["agreement"]) < 1  # the judge lies about peppers
    (tn, fp), (fn, tp) = confusion_matrix(oracle, llm, labels=[False, True])
    assert [overall[k] for k in ("both_yes", "llm_yes_oracle_no", "llm_no_oracle_yes", "both_no")] == [
        str(tp), str(fp), str(fn), str(tn)]
    by_source = {r[0]: dict(zip(head, r, strict=True)) for r in rows[1:]}
    names = {"own": "own", "social": "neighbour", "imagine": "imagined"}
    for source, part in judged.group_by("source"):
        row = by_source[names[source[0]]]
        assert row["n"] == str(part.height)
        assert float(row["agreement"]) == pytest.approx(
            accuracy_score(part["oracle_success"].to_list(), part["llm_reward"].to_list()), abs=1e-4)


def test_goals_table_lists_the_last_repertoire_as_text(res, tables):
    _, rep = tables
    body = render(res, "Goals per agent")
    grid = next(c for c in walk(body) if isinstance(c, dag.AgGrid))
    last = rep.filter(pl.col("step") == 6)
    assert len(grid.rowData) == last.height
    assert grid.defaultColDef["filter"] and grid.defaultColDef["sortable"] and grid.persistence == "at"
    assert "filterModel" in grid.persisted_props and grid.dashGridOptions["pagination"]
    # its CSV export: a button wired (app.grid.register) to the grid's exportDataAsCsv
    button = next(c for c in walk(body) if isinstance(c, html.Button) and isinstance(c.id, dict))
    assert button.id == {"role": "cs-grid-export", "index": grid.id["index"]} and grid.id["role"] == "cs-grid"
    assert grid.csvExportParams["fileName"] == "goals-at.csv"
    assert not any("cellRenderer" in c for c in grid.columnDefs)  # plain text cells: no Markdown, no HTML
    names = {"relabel": "own", "social": "neighbour", "imagine": "imagined"}
    expected = {(r["agent_id"], r["goal"]): r for r in last.iter_rows(named=True)}
    for row in grid.rowData:
        source = expected[(row["agent"], row["goal"])]
        assert row["source"] == names[source["source"]]
        assert row["from agent"] == source["from_agent"] and row["attempts"] == source["attempts"]
        assert row["competence"] == source["competence"]
        assert row["mastered"] == ("yes" if source["mastered"] else "no")
        assert row["subgoals"] == "; ".join(source["subgoals"])
    assert {r["source"] for r in grid.rowData} == {"own", "neighbour", "imagined"}
    # the per-agent counts above the table
    table = next(c for c in walk(body) if isinstance(c, html.Table))
    head = [th.children for th in table.children[0].children.children]
    for tr in table.children[1].children:
        row = dict(zip(head, [td.children for td in tr.children], strict=True))
        mine = last.filter(pl.col("agent_id") == int(row["agent"]))
        assert row["known"] == str(mine.height) and row["mastered"] == str(int(mine["mastered"].sum()))
        assert row["neighbour"] == str(mine.filter(pl.col("source") == "social").height)


def test_a_goal_with_markup_stays_text(res):
    body = render(res, "Goals per agent", "at-evil")
    grid = next(c for c in walk(body) if isinstance(c, dag.AgGrid))
    assert EVIL in [r["goal"] for r in grid.rowData]  # a plain string in the table's data, as written
    assert not any("cellRenderer" in c or "tooltipField" in c for c in grid.columnDefs)
    assert not getattr(grid, "dangerously_allow_code", False)
    assert not [c for c in walk(body) if isinstance(c, dcc.Markdown) or getattr(c, "dangerously_allow_html", False)]


def test_a_running_run_is_drawn_from_its_step_parts(res, root):
    from culturesim.kinds.autotelic.measures import coverage, mastered_goals

    rep = pl.concat([pl.read_parquet(p) for p in sorted((root / "at-live" / "repertoire").glob("*.parquet"))])
    eps = pl.concat([pl.read_parquet(p) for p in sorted((root / "at-live" / "episodes").glob("*.parquet"))])
    assert sorted(rep["step"].unique().to_list()) == [1, 2, 3]
    body = render(res, "Goals known", "at-live")
    same(lines(section_graph(body, "at-goals").figure, 1), as_lines(mastered_goals(rep), "known"))
    body = render(res, "Evaluation coverage", "at-live")
    same(lines(section_graph(body, "at-coverage").figure), as_lines(coverage(eps), "coverage"))
    tabs = next(c for c in walk(render(res, "Repertoire overlap", "at-live")) if isinstance(c, dcc.Tabs))
    assert tabs.value == "3"
    grid = next(c for c in walk(render(res, "Goals per agent", "at-live")) if isinstance(c, dag.AgGrid))
    assert {r["step"] for r in grid.rowData} == {3}


def test_run_page_shows_every_section(res, root):
    from app import create_app
    from app.kinds import sections_for
    from app.pages import run as run_page

    app = create_app(root)
    titles = [s.title for s in sections_for("autotelic")]
    assert len(titles) == 5
    with app.server.test_request_context():
        page = run_page.render("at")
        text = " ".join(t for t in walk(page) if isinstance(t, str))
        assert all(t in text for t in titles)
        assert not [c for c in walk(page) if getattr(c, "className", None) == "cs-error"]
        # no step yet: every section says so in a note, none fails
        page = run_page.render("at-empty")
        notes = [c for c in walk(page) if getattr(c, "className", None) == "cs-note"]
        assert len(notes) == 5 and all(re.search(r"No (repertoire|episode) recorded yet", n.children) for n in notes)
        assert not [c for c in walk(page) if getattr(c, "className", None) == "cs-error"]


@pytest.mark.timeout(240)
def test_goals_grid_in_the_browser_filters_and_exports_csv(root, tmp_path):
    """The goals table as a user sees it: AG Grid rows in headless Chromium, the language model's
    markup shown as text (never run), a filter, and the export button writing the filtered rows."""
    from conftest_app import chrome_options, need_browser

    need_browser()
    from dash.testing.application_runners import ThreadedRunner
    from dash.testing.composite import DashComposite
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    from app import create_app

    rep = pl.read_parquet(root / "at-evil" / "repertoire.parquet")
    last = rep.filter(pl.col("step") == 6)
    app = create_app(root)
    with ThreadedRunner() as server, DashComposite(server=server, browser="Chrome", headless=True,
                                                   options=[chrome_options()], download_path=str(tmp_path),
                                                   percy_run=False, wait_timeout=30) as duo:
        duo.start_server(app)
        duo.driver.get(duo.server_url + "/run?run=at-evil")
        grid = '[id=\'{"index":"at-goals","role":"cs-grid"}\']'
        goals = f"return [...document.querySelectorAll(`{grid} .ag-center-cols-container [col-id=goal]`)]" \
                ".map(c => c.innerText)"
        duo.wait_for_element(f"{grid} .ag-row", timeout=60)
        shown = duo.driver.execute_script(goals)
        assert EVIL in shown and len(shown) == min(20, last.height)  # first page of 20
        assert duo.driver.execute_script("return window.__pwned") is None
        # the floating filter of the source column narrows the rows in the browser (and stays through
        # the Run page's re-renders: the grid keeps its filter model by persistence)
        imagined = last.filter(pl.col("source") == "imagine").height
        box = f"{grid} .ag-floating-filter[col-id=source] input"
        deadline = time.monotonic() + 30
        while len(duo.driver.execute_script(goals)) != min(20, imagined) and time.monotonic() < deadline:
            try:  # the Run page re-renders every 3 s: a box replaced under the typing is typed into again
                field = duo.driver.find_element(By.CSS_SELECTOR, box)
                if field.get_attribute("value") != "imagined":
                    field.clear()
                    field.send_keys("imagined")
            except (StaleElementReferenceException, NoSuchElementException):
                pass
            time.sleep(0.5)
        assert len(duo.driver.execute_script(goals)) == min(20, imagined)
        time.sleep(4)  # past the next re-render: the grid keeps its filter (persistence of filterModel)
        assert len(duo.driver.execute_script(goals)) == min(20, imagined)
        button = duo.driver.find_element(By.CSS_SELECTOR, '[id=\'{"index":"at-goals","role":"cs-grid-export"}\']')
        duo.driver.execute_script("arguments[0].click()", button)
        target = tmp_path / "goals-at-evil.csv"
        deadline = time.monotonic() + 15
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        exported = pl.read_csv(target)
        assert exported.height == imagined and set(exported["source"]) == {"imagined"}  # all pages, filtered
        assert set(exported["goal"]) == set(last.filter(pl.col("source") == "imagine")["goal"])
