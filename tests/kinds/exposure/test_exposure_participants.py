"""Participants as the paper ran them: several trials each (one per item, in a random
order), a self-rated creativity asked of the participant, the AI pool read from the
paper's column names, elaboration, and per-idea mixed models with a random intercept per
participant, checked against statsmodels called directly.

Runs use ``echo/`` (instant, deterministic, answers in the declared shape): what is under
test is bookkeeping and arithmetic, not what a model writes.
"""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import statsmodels.formula.api as smf
import yaml
from rich.console import Console

from analysis.embeddings import make_embedder
from culturesim import runner
from culturesim.kinds.exposure.elaboration import elaboration, words
from culturesim.kinds.exposure.measures import load_exposure, print_report, report_table
from culturesim.kinds.exposure.mixed import condition_slopes
from culturesim.kinds.contract import Door
from culturesim.kinds.exposure.model import RATING_VALUES, ExposureModel, parse_rating, read_pool_file, trial_plan
from culturesim.llm.client import LLM
from culturesim.scenario import LLMSpec, ScenarioError, validate_data

ROOT = Path(__file__).resolve().parents[3]
ITEMS = ["tire", "bottle", "shoe"]


def scenario(seed=5, steps=6, **exposure):
    return validate_data({
        "kind": "exposure", "name": "multi", "seed": seed, "steps": steps,
        "llm": {"model": "echo/participant", "cache": False},
        "population": {"mix": {"creative": 0.5, "neutral": 0.5}},
        "exposure": {"items": ITEMS, "chains": 2, "trials_per_participant": 3,
                     "ai_pool": {"size": 6, "llm": {"model": "echo/ai", "cache": False}}, **exposure},
    }, "test")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    sc = scenario()
    run = runner.start(sc, out=tmp_path_factory.mktemp("multi"), show_progress=False)
    return sc, run, pl.read_parquet(run.path / "agents.parquet"), run.ideas(), run.prompts()


# ------------------------------------------------------------------ trials per participant


def test_each_participant_answers_every_item_once_in_consecutive_steps(finished):
    sc, _, agents, ideas, _ = finished
    assert agents.height == 3 * 5 * 2 * 6 and agents["participant"].n_unique() == agents.height // 3
    for (participant,), rows in agents.sort("trial_index").group_by("participant"):
        assert rows["trial_index"].to_list() == [1, 2, 3]
        assert sorted(rows["item"].to_list()) == sorted(ITEMS)  # a permutation of the items
        steps = rows["trial"].to_list()
        assert steps == list(range(steps[0], steps[0] + 3)) and (steps[0] - 1) % 3 == 0
        assert rows["condition"].n_unique() == 1 and rows["persona"].n_unique() == 1
    # every chain still has exactly one writer per step, and each wrote once
    written = ideas.filter(pl.col("operation") == "create").join(agents, on="agent_id")
    assert written.group_by("chain", "step").len()["len"].max() == 1
    assert written.height == agents.height


def test_a_restored_multi_trial_model_continues_exactly(finished):
    sc, _, _, ideas, _ = finished
    model = ExposureModel(sc, ExposureModel.build_graph(sc), Door(LLM(LLMSpec(model="echo/participant", cache=False)),
                                                                  LLM), "r")
    model.restore(ideas.filter(pl.col("step") <= 3).to_dicts())  # mid-way: after the first cohort
    assert model.next_step == 4
    rest = [row for _ in range(4, 7) for row in model.step().ideas]
    want = ideas.filter(pl.col("step") >= 4).sort("step", "agent_id")
    got = pl.DataFrame(rest).sort("step", "agent_id")
    assert got["text"].to_list() == want["text"].to_list()
    assert got["parent_ids"].to_list() == want["parent_ids"].to_list()


def test_orders_are_reproducible_with_the_seed_and_vary_with_it():
    plan = trial_plan(scenario())
    assert plan == trial_plan(scenario())
    assert plan != trial_plan(scenario(seed=6))
    orders = {}
    sc = scenario()
    for slot, (participant, index) in enumerate(plan):
        item = sc.exposure.items[slot // (len(sc.exposure.conditions) * sc.exposure.chains * sc.steps)]
        orders.setdefault(participant, {})[index] = item
    seen = {tuple(o[k] for k in (1, 2, 3)) for o in orders.values()}
    assert len(seen) > 1  # not one order for everybody


def test_single_trial_default_keeps_one_participant_per_slot(tmp_path):
    sc = scenario(steps=2, trials_per_participant=1, self_rating={"source": "none"})
    run = runner.start(sc, out=tmp_path, show_progress=False)
    agents = pl.read_parquet(run.path / "agents.parquet")
    assert agents["participant"].to_list() == agents["agent_id"].to_list()
    assert set(agents["trial_index"]) == {1}
    assert run.ideas().filter(pl.col("operation") == "rate_self").is_empty()


def test_trials_must_fit_items_and_steps():
    with pytest.raises(ScenarioError, match="only 3 item"):
        scenario(trials_per_participant=4)
    with pytest.raises(ScenarioError, match="multiple of trials_per_participant"):
        scenario(steps=4)


# ------------------------------------------------------------------ the self-rating


def test_each_participant_is_asked_its_self_rating_once_and_it_reaches_the_measures(finished):
    sc, run, agents, ideas, prompts = finished
    asked = ideas.filter(pl.col("operation") == "rate_self")
    assert asked.height == agents["participant"].n_unique() and set(asked["step"]) == {0}
    part_of = dict(zip(agents["agent_id"], agents["participant"], strict=True))
    values = {part_of[a]: parse_rating(t) for a, t in zip(asked["agent_id"], asked["text"], strict=True)}
    assert set(values.values()) <= set(RATING_VALUES) and len(set(values.values())) > 1
    # the question went out with the participant's own persona, and the trials do not repeat it
    first = prompts.filter(pl.col("idea_id") == asked["idea_id"][0])["messages"][0]
    assert "more creative than __% of humans" in first
    trial = prompts.filter(pl.col("step") == 1)["messages"][0]
    assert "% of humans" not in trial and "rate your own creativity" not in trial
    data = load_exposure(run.path)
    got = dict(zip(data.participants["participant"], data.participants["self_rating"], strict=True))
    assert got == {p: float(v) for p, v in values.items() if p in got}


def test_self_rating_from_the_scenario_is_stated_in_the_persona(tmp_path):
    sc = scenario(steps=3, self_rating={"source": "personality", "by_personality": {"creative": 80, "neutral": 30}})
    run = runner.start(sc, out=tmp_path, show_progress=False)
    agents = pl.read_parquet(run.path / "agents.parquet")
    assert dict(agents.select("persona", "self_rating").unique().iter_rows()) == {"creative": 80, "neutral": 30}
    assert run.ideas().filter(pl.col("operation") == "rate_self").is_empty()
    prompts = run.prompts().join(run.ideas().select("idea_id", "agent_id"), on="idea_id")
    rating_of = dict(zip(agents["agent_id"], agents["self_rating"], strict=True))
    for agent_id, messages in prompts.filter(pl.col("agent_id").is_not_null()).select("agent_id", "messages").rows():
        assert f"more creative than {rating_of[agent_id]}% of humans" in messages
    with pytest.raises(ScenarioError, match="no self-rating for personality"):
        scenario(self_rating={"source": "personality", "by_personality": {"creative": 80}})


# ------------------------------------------------------------------ the AI pool file


def test_pool_read_from_the_papers_columns_and_from_a_mapping(tmp_path):
    paper = tmp_path / "ai_responses.csv"
    # the shape of the paper's file: more columns, some quoted over several lines
    paper.write_text('aut_item,output_responses,response,response_id\ntire,"1. Swing.\n2. Planter.",tire swing,a1\n'
                     'bottle,"1. Lamp, bright.",bottle lamp,a2\ntire,x,tire planter,a3\nshoe,"a ""vase""",shoe vase,a4\n')
    assert read_pool_file(paper, ["tire", "bottle", "shoe"]) == {
        "tire": ["tire swing", "tire planter"], "bottle": ["bottle lamp"], "shoe": ["shoe vase"]}
    own = tmp_path / "own.csv"
    own.write_text("object,use,idea\nTire ,roll it,WRONG\nbottle,float it,WRONG\n")
    assert read_pool_file(own, ["tire", "bottle"], ("object", "use")) == {"tire": ["roll it"],
                                                                          "bottle": ["float it"]}
    # and through a scenario: path + columns
    pool = "".join(f"{i},{i} idea {k}\n" for i in ITEMS for k in range(4))
    (tmp_path / "mapped.csv").write_text("thing,text\n" + pool)
    sc = scenario(steps=3, self_rating={"source": "none"},
                  ai_pool={"path": str(tmp_path / "mapped.csv"), "columns": {"item": "thing", "text": "text"}})
    run = runner.start(sc, out=tmp_path / "out", show_progress=False)
    texts = sorted(run.ideas().filter(pl.col("source") == "ai")["text"])
    assert texts == sorted(f"{i} idea {k}" for i in ITEMS for k in range(4))


@pytest.mark.parametrize("content,columns,words_", [
    ("thing,text\ntire,x\n", None, "lacks columns item, idea (or aut_item, response)"),
    ("aut_item,response\ntire,x\n", {"item": "aut_item", "text": "idea"}, "lacks column(s) ['idea']"),
])
def test_a_bad_pool_file_is_one_line_naming_it_and_exit_2(tmp_path, content, columns, words_):
    pool = tmp_path / "pool.csv"
    pool.write_text(content)
    data = {"kind": "exposure", "name": "bad", "seed": 1, "steps": 1, "llm": {"model": "echo/x"},
            "exposure": {"items": ["tire"],
                         "ai_pool": {"file": str(pool), **({"columns": columns} if columns else {})}}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    done = subprocess.run([sys.executable, "-m", "culturesim.cli", "run", str(path), "--out", str(tmp_path / "o"),
                           "-q"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(pool) in lines[0] and words_ in lines[0], done.stderr


def test_the_mapping_needs_a_file():
    with pytest.raises(ScenarioError, match="ai_pool.columns names the columns"):
        scenario(ai_pool={"columns": {"item": "a", "text": "b"}})


# ------------------------------------------------------------------ elaboration


def test_elaboration_by_hand():
    # in sklearn's English stop list: it, as, a, the, into, then, them, do (not: use, cut, throw)
    texts = ["Use it as a boat.", "Cut the tire into sandal soles, then sell them!", "", None,
             "Don't throw it; it's a hat."]
    assert words("Don't throw it; it's a hat.") == ["do", "throw", "it", "it", "a", "hat"]
    assert elaboration(texts) == [2.0, 5.0, 0.0, None, 2.0]  # use boat | cut tire sandal soles sell | throw hat
    assert elaboration(["a big red boat"], stopwords={"a", "big"}) == [2.0]
    # the IBF-weighted variant: distinct words, stopwords included, words without a weight add 0
    weights = {"boat": 2.5, "a": 0.1, "use": 1.0}
    assert elaboration(["Use a boat, a boat."], weights=weights) == [pytest.approx(3.6)]


# ------------------------------------------------------------------ mixed models


def synthetic(rng, n_participants=30, trials=3):
    rows = []
    conditions = ["control", "high", "low"]
    slope = {"control": 0.0, "high": 0.8, "low": -0.4}
    for p in range(n_participants):
        rating = float(rng.integers(0, 21) * 5)
        offset = rng.normal(0, 1.0)
        cond = conditions[p % 3]
        for t in range(1, trials + 1):
            y = 2 + offset + slope[cond] * t + 0.02 * rating * (cond == "high") + rng.normal(0, 0.5)
            rows.append({"participant": p, "condition": cond, "trial": t, "self_rating": rating, "y": y})
    return pl.DataFrame(rows)


def test_condition_slopes_match_statsmodels_called_directly():
    frame = synthetic(np.random.default_rng(3))
    got = condition_slopes(frame, value="y", x="trial", group="participant")
    fit = smf.mixedlm("y ~ trial * C(condition)", frame.to_pandas(), groups=frame["participant"].to_pandas()
                      ).fit(reml=True)
    b, cov = fit.fe_params, fit.cov_params()
    want = {"control": (b["trial"], cov.loc["trial", "trial"])}
    for level in ("high", "low"):
        name = f"trial:C(condition)[T.{level}]"
        var = cov.loc["trial", "trial"] + cov.loc[name, name] + 2 * cov.loc["trial", name]
        want[level] = (b["trial"] + b[name], var)
    for row in got.iter_rows(named=True):
        slope, var = want[row["condition"]]
        assert row["slope"] == pytest.approx(slope, rel=1e-4, abs=1e-6)
        assert row["se"] == pytest.approx(np.sqrt(var), rel=1e-3)
        assert row["n_groups"] == 10 and row["n_obs"] == 30
    # the generating slopes are recovered
    by = dict(zip(got["condition"], got["slope"], strict=True))
    assert by["high"] == pytest.approx(0.8, abs=0.25) and by["low"] == pytest.approx(-0.4, abs=0.25)


def test_moderator_with_a_covariate_matches_statsmodels():
    frame = synthetic(np.random.default_rng(4), n_participants=45)
    got = condition_slopes(frame, value="y", x="self_rating", group="participant", covariates=("trial",))
    fit = smf.mixedlm("y ~ self_rating * C(condition) + trial * C(condition)", frame.to_pandas(),
                      groups=frame["participant"].to_pandas()).fit(reml=True)
    b = fit.fe_params
    by = dict(zip(got["condition"], got["slope"], strict=True))
    assert by["control"] == pytest.approx(b["self_rating"], rel=1e-3, abs=1e-5)
    assert by["high"] == pytest.approx(b["self_rating"] + b["self_rating:C(condition)[T.high]"], rel=1e-3, abs=1e-5)


def test_condition_slopes_refuse_what_cannot_be_fitted():
    frame = synthetic(np.random.default_rng(5))
    with pytest.raises(ValueError, match="at least 2 groups"):
        condition_slopes(frame.with_columns(pl.lit(1).alias("participant")), value="y", x="trial")
    with pytest.raises(ValueError, match="one value only"):
        condition_slopes(frame.with_columns(pl.lit(3).alias("trial")), value="y", x="trial")


# ------------------------------------------------------------------ the report


def test_report_has_elaboration_moderator_and_participant_model(finished):
    _, run, agents, ideas, _ = finished
    table = report_table(run.path, embedder=make_embedder("tfidf"), seed=0, n_boot=200)
    assert set(table["random_effect"]) == {"participant"}
    data = load_exposure(run.path)
    parts = data.participants.with_columns(pl.Series("elaboration", elaboration(data.participants["text"].to_list())))
    for row in table.iter_rows(named=True):
        mine = parts.filter(pl.col("condition") == row["condition"])
        assert row["elaboration_mean"] == pytest.approx(mine["elaboration"].mean())
        assert row["n_rated"] == mine["participant"].n_unique()
        assert row["self_rating_mean"] == pytest.approx(mine["self_rating"].mean())
        assert row["centroid_distance_mean"] is not None
    # the elaboration slope is statsmodels' on the same per-idea frame
    frame = parts.select("elaboration", "trial", "condition", "participant").to_pandas()
    # echo's words vary little by participant: the variance sits near zero, where the default
    # optimiser may stall; the report then refits derivative-free (Powell), and so does this check
    model = smf.mixedlm("elaboration ~ trial * C(condition)", frame, groups=frame["participant"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = model.fit(reml=True)
    if not fit.converged or any("not positive definite" in str(w.message) for w in caught):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = model.fit(reml=True, method=["powell"])
    control = table.filter(pl.col("condition") == "control").row(0, named=True)
    assert control["elaboration_slope"] == pytest.approx(fit.fe_params["trial"], rel=1e-3, abs=1e-6)
    high = table.filter(pl.col("condition") == "high_disclosed").row(0, named=True)
    want = fit.fe_params["trial"] + fit.fe_params["trial:C(condition)[T.high_disclosed]"]
    assert high["elaboration_slope"] == pytest.approx(want, rel=1e-3, abs=1e-6)
    assert high["rating_x_adoption"] is not None and control["rating_x_adoption"] is None
    assert all(row["rating_x_elaboration"] is not None for row in table.iter_rows(named=True))
    out = io.StringIO()
    print_report(table, console=Console(file=out, width=240))
    text = out.getvalue()
    assert "random intercept per participant" in text and "rating x elaboration" in text
    assert "elaboration" in text and "centroid dist." in text


def test_a_condition_with_ideas_and_failures_is_one_row():
    from culturesim.kinds.exposure.measures import _condition_order

    assert _condition_order(["low", "high", "control", "low", "control"]) == ["control", "high", "low"]


def test_culturesim_report_prints_the_per_idea_models(finished):
    _, run, _, _, _ = finished
    done = subprocess.run([sys.executable, "-m", "culturesim.cli", "report", str(run.path), "--judge", "none",
                           "--embedder", "tfidf"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "Per idea: mixed models, random intercept per participant" in done.stdout
    assert "rating x adoption" in done.stdout
