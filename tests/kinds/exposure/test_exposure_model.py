"""The exposure kind's condition mechanics, checked exactly.

These runs use ``echo/`` (culturesim's instant deterministic stand-in: its replies are
words from the prompt, not ideas) because the mechanics under test are what each
participant is shown, not what a model writes; the quick scenario on the real embedded
model is exercised by test_exposure_run.py.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from culturesim import runner
from culturesim.kinds.contract import Door
from culturesim.kinds.exposure.model import ExposureModel, parse_reply, reply_schema
from culturesim.llm.client import LLM
from culturesim.scenario import LLMSpec, ScenarioError, validate_data


def scenario(**exposure):
    return validate_data({
        "kind": "exposure", "name": "exp", "seed": 5, "steps": 5,
        "llm": {"model": "echo/participant", "cache": False},
        "exposure": {"items": ["tire", "bottle"], "chains": 3,
                     "ai_pool": {"size": 9, "llm": {"model": "echo/ai", "cache": False}}, **exposure},
    }, "test")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    sc = scenario()
    run = runner.start(sc, out=tmp_path_factory.mktemp("exp"), show_progress=False)
    ideas = run.ideas()
    agents = pl.read_parquet(run.path / "agents.parquet")
    examples = pl.read_parquet(run.path / "examples.parquet")
    prompts = run.prompts()
    return sc, run, ideas, agents, examples, prompts


def test_population_is_items_conditions_chains_trials(finished):
    sc, _, ideas, agents, _, _ = finished
    assert agents.height == 2 * 5 * 3 * 5
    participant = ideas.filter(pl.col("source") == "llm")
    assert participant.height == agents.height
    assert sorted(participant["step"].unique()) == [1, 2, 3, 4, 5]
    assert participant.filter(pl.col("step") == 1).height == 2 * 5 * 3  # one per chain per trial


def test_each_participant_sees_the_conditions_mix_of_ai_and_human_examples(finished):
    _, _, ideas, agents, examples, _ = finished
    shown = examples.join(ideas.select("idea_id", "agent_id"), on="idea_id").join(agents, on="agent_id")
    per = shown.group_by("idea_id", "n_ai").agg(
        (pl.col("example_source") == "ai").sum().alias("ai"), pl.len().alias("total"))
    assert (per["total"] == 6).all()
    assert (per["ai"] == per["n_ai"]).all()
    expected = {"control": 0, "low_disclosed": 2, "low_undisclosed": 2, "high_disclosed": 4, "high_undisclosed": 4}
    assert dict(agents.select("condition", "n_ai").unique().iter_rows()) == expected


def test_labels_and_header_appear_only_when_disclosed(finished):
    _, _, _, agents, _, prompts = finished
    disclosed = dict(agents.select("agent_id", "disclosed").iter_rows())
    for row in prompts.filter(pl.col("step") > 0).iter_rows(named=True):
        user = json.loads(row["messages"])[1]["content"]
        labelled = "(Source: Human)" in user or "(Source: A.I)" in user
        assert labelled == disclosed[row["agent_id"]]
        assert ("written by other people and some by an A.I." in user) == disclosed[row["agent_id"]]


def test_ai_examples_come_from_the_fixed_pool_of_their_item(finished):
    _, _, ideas, agents, examples, _ = finished
    pool = ideas.filter(pl.col("source") == "ai")
    assert pool["step"].unique().to_list() == [0] and pool.height == 2 * 9
    item_of = dict(ideas.join(agents, on="agent_id").select("idea_id", "item").iter_rows())
    ai = examples.filter(pl.col("example_source") == "ai")
    assert set(ai["example_id"]) <= set(pool["idea_id"])
    for idea_id, example_id in ai.select("idea_id", "example_id").iter_rows():
        assert example_id.startswith(f"ai-{item_of[idea_id]}-")


def test_chains_are_isolated_and_show_their_most_recent_human_ideas(finished):
    _, _, ideas, agents, examples, _ = finished
    meta = {r["agent_id"]: r for r in agents.iter_rows(named=True)}
    chain_of = {r["idea_id"]: meta[r["agent_id"]]["chain"] for r in ideas.iter_rows(named=True)
                if r["agent_id"] is not None}
    for row in ideas.filter(pl.col("source") == "llm").sort("step").iter_rows(named=True):
        me = meta[row["agent_id"]]
        seeds = [f"seed-{me['item']}-{k}" for k in range(6)]
        earlier = ideas.filter((pl.col("step") < row["step"]) & (pl.col("source") == "llm")
                               & pl.col("text").is_not_null())
        own_chain = [i for i in earlier.sort("step")["idea_id"] if chain_of[i] == me["chain"]]
        history = seeds + own_chain
        human = examples.filter((pl.col("idea_id") == row["idea_id"]) & (pl.col("example_source") == "human"))
        assert set(human["example_id"]) == set(history[-(6 - me["n_ai"]):])
        assert set(row["parent_ids"]) == set(examples.filter(pl.col("idea_id") == row["idea_id"])["example_id"])


def test_restored_model_continues_exactly(finished, tmp_path):
    sc, _, ideas, _, _, _ = finished
    graph = ExposureModel.build_graph(sc)
    participants = LLM(LLMSpec(model="echo/participant", cache=False))

    model = ExposureModel(sc, graph, Door(participants, LLM), "r")
    model.restore(ideas.filter(pl.col("step") <= 2).to_dicts())
    assert model.next_step == 3
    rest = []
    for _ in range(3, 6):
        rest.extend(model.step().ideas)
    expected = ideas.filter(pl.col("step") >= 3).sort("step", "agent_id")
    got = pl.DataFrame(rest).sort("step", "agent_id")
    assert got["text"].to_list() == expected["text"].to_list()
    assert got["parent_ids"].to_list() == expected["parent_ids"].to_list()


@pytest.mark.parametrize("text,idea,ranking", [
    ('{"idea": "Use it as a  boat.", "ranking": [3, 1, 2]}', "Use it as a boat.", [3, 1, 2]),
    ('```json\n{"ranking": [1,2,3], "idea": "a hat"}\n```', "a hat", [1, 2, 3]),
    # not a permutation: no ranking, but the participant's idea is kept
    ('{"idea": "x", "ranking": [1, 1, 2]}', "x", None),
    ('{"idea": "x", "ranking": [1, 2]}', "x", None),
    ('{"idea": "x", "ranking": "1,2,3"}', "x", None),
    ('{"ranking": [1, 2, 3]}', "", None),  # no idea: nothing
    ("RANKING: 3, 1, 2\nIDEA: Use it as a boat.", "", None),  # the old free-text format is not read
    ("Make it a lamp.", "", None),
])
def test_replies_are_parsed_from_json_into_idea_and_ranking(text, idea, ranking):
    assert parse_reply(text, 3) == (idea, ranking)


def test_participants_ask_for_their_shape_and_every_ranking_is_recorded(finished):
    _, _, ideas, _, examples, prompts = finished
    participant = prompts.filter(pl.col("step") > 0)
    replies = [json.loads(m)[-1]["content"] for m in participant["messages"]]
    assert all(sorted(json.loads(r)["ranking"]) == list(range(1, 7)) for r in replies)
    shown = examples.join(ideas.select("idea_id"), on="idea_id")
    assert shown["rank"].null_count() == 0  # echo answers in the shape: every ranking parsed
    by_idea = shown.group_by("idea_id").agg(pl.col("rank").sort())
    assert all(r.to_list() == list(range(1, 7)) for r in by_idea["rank"])


def test_the_participant_schema_is_a_permutation_of_the_positions():
    import itertools
    import math

    import jsonschema

    schema = reply_schema(4)
    ranking = schema["properties"]["ranking"]
    assert len(ranking["enum"]) == math.factorial(4) and schema["required"] == ["idea", "ranking"]
    assert sorted(map(tuple, ranking["enum"])) == sorted(itertools.permutations(range(1, 5)))
    ok = jsonschema.Draft202012Validator(schema).is_valid
    assert ok({"idea": "x", "ranking": [2, 4, 1, 3]}) and not ok({"idea": "x", "ranking": [2, 2, 1, 3]})
    assert not ok({"idea": "", "ranking": [2, 4, 1, 3]})  # an empty idea is out of shape
    big = reply_schema(7)["properties"]["ranking"]  # 5040 permutations: numbers in 1..7, unique, no enum
    assert big["items"]["enum"] == list(range(1, 8)) and big["minItems"] == big["maxItems"] == 7
    assert big["uniqueItems"] is True


def test_pool_from_a_csv_file(tmp_path):
    pool = tmp_path / "pool.csv"
    pool.write_text("item,idea\ntire,AI tire one\ntire,AI tire two\nbottle,AI bottle one\nbottle,AI bottle two\n"
                    "tire,AI tire three\ntire,AI tire four\nbottle,AI bottle three\nbottle,AI bottle four\n")
    sc = scenario(ai_pool={"file": str(pool)})
    run = runner.start(sc, out=tmp_path / "out", show_progress=False)
    ideas = run.ideas().filter(pl.col("source") == "ai")
    assert sorted(ideas["text"]) == sorted(f"AI {i} {n}" for i in ("tire", "bottle")
                                           for n in ("one", "two", "three", "four"))


@pytest.mark.parametrize("content,words", [
    ("thing,idea\ntire,x\n", "lacks column"),
    ("item,idea\ntire,x\ntire,y\ntire,z\ntire,w\n", "no ideas for item"),
])
def test_bad_pool_files_fail_clearly(tmp_path, content, words):
    pool = tmp_path / "pool.csv"
    pool.write_text(content)
    with pytest.raises(ScenarioError, match=words):
        runner.start(scenario(ai_pool={"file": str(pool)}), out=tmp_path / "out", show_progress=False)
    assert not (tmp_path / "out").exists()  # refused before any run folder was made


def test_scenario_checks_name_their_keys():
    with pytest.raises(ScenarioError, match="exposure.conditions.lots.ai"):
        scenario(conditions={"lots": {"ai": 7}})
    with pytest.raises(ScenarioError, match="no seed ideas for item 'lamp'"):
        scenario(items=["lamp"])
    with pytest.raises(ScenarioError, match="unknown placeholder"):
        scenario(prompt="Use for a {thing}?")
