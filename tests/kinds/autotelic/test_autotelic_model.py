"""The autotelic kind on a real generated CookingWorld game: the oracle, the agent loop (goal
picking, acting, relabel and reward, sharing), one model call per phase, malformed replies,
restore, and a run through the runner with a resume equal to an uninterrupted run.

The language model is replaced by ScriptedJudge, which stands in only for the model's judgement."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import polars as pl
import pytest

from culturesim import runner
from culturesim import scenario as sc
from culturesim.kinds.autotelic.cookingworld import CookingGame
from culturesim.kinds.autotelic.model import (
    AutotelicModel,
    Goal,
    parse_goals,
    parse_imagined,
    parse_reward,
)
from culturesim.kinds.contract import Door
from culturesim.llm.types import Reply
from culturesim.store import IDEAS_SCHEMA, RunDir

_ARTICLE_FREE = re.compile(r"^(take|open|close|slice|dice|chop|cook|eat|drop)\s+(.+?)(?:\s+(?:from|with|on|in)\s+.+)?$")


def goal_of(command: str) -> str:
    """The goal a careful reader would name for one game command ("take knife from table" -> "take the knife")."""
    found = _ARTICLE_FREE.match(command)
    return f"{found.group(1)} the {found.group(2)}" if found else command


class ScriptedJudge:
    """Stands in ONLY for the language model's judgement, deterministically: it names the goals of a
    trajectory from its commands, rewards a goal when the trajectory holds its command, and imagines
    the conjunction of two reached goals. ``broken`` maps an operation to "garbage" (a reply nothing
    can parse) or "error" (a failed call)."""

    def __init__(self, broken: dict[str, str] | None = None):
        self.broken = broken or {}
        self.calls: list[list] = []

    @staticmethod
    def operation(prompt: str) -> str:
        if "Invent one new goal" in prompt:
            return "imagine"
        return "relabel" if "Which goals did the player reach" in prompt else "reward"

    def answer(self, prompt: str) -> str:
        op = self.operation(prompt)
        commands = re.findall(r"^> (.+)$", prompt, re.MULTILINE)
        if op == "relabel":
            goals = list(dict.fromkeys(goal_of(c) for c in commands))[:3]
            return json.dumps({"analysis": "things changed.", "goals": goals})
        if op == "reward":
            goal = re.search(r"The player's goal was: (.+)", prompt).group(1)
            done = {goal_of(c) for c in commands}
            parts = [p.strip() for p in goal.split(" and ")]
            return json.dumps({"analysis": "let me see.", "reached": all(p in done for p in parts)})
        reached = re.findall(r"^- (.+)$", prompt.split("Goals other players")[0], re.MULTILINE)
        if len(reached) >= 2:
            return json.dumps({"analysis": "combine.", "goal": f"{reached[0]} and {reached[1]}",
                               "subgoals": [reached[0], reached[1]]})
        return json.dumps({"goal": "open the fridge", "subgoals": ["go to the kitchen"]})

    def generate(self, requests) -> list[Reply]:
        self.calls.append(list(requests))
        replies = []
        for request in requests:
            prompt = request.messages[-1]["content"]
            broken = self.broken.get(self.operation(prompt))
            if broken == "error":
                replies.append(Reply(text=None, model="scripted", error="RuntimeError: scripted failure"))
            else:
                text = "??? !!!" if broken == "garbage" else self.answer(prompt)
                replies.append(Reply(text=text, model="scripted", completion_tokens=len(text.split())))
        return replies


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("games")


def scenario(cache, **autotelic):
    steps = autotelic.pop("steps", 4)
    size = autotelic.pop("size", 4)
    llm = autotelic.pop("llm", {"model": "scripted/judge", "cache": False})
    return sc.validate_data({
        "kind": "autotelic", "name": "t", "seed": 5, "steps": steps, "population": {"size": size},
        "network": {"topology": "ring", "params": {"k": 1}}, "llm": llm,
        "game": {"cache_dir": str(cache), "recipe": 2, "take": 1, "go": 6},
        "autotelic": {"max_actions": 10, "episodes_per_step": 2, "share_every": 2, **autotelic},
    }, "test")


def build(cache, judge=None, **autotelic) -> AutotelicModel:
    s = scenario(cache, **autotelic)
    judge = judge or ScriptedJudge()
    return AutotelicModel(s, AutotelicModel.build_graph(s), Door.of(judge.generate), "run")


@pytest.fixture(scope="module")
def game(cache) -> CookingGame:
    return build(cache).games[0]  # generates the game once for the module


@pytest.fixture(scope="module")
def walkthrough(game) -> list[str]:
    import textworld

    env = textworld.start(str(game.path), request_infos=textworld.EnvInfos(policy_commands=True))
    return list(env.reset().policy_commands)


def test_oracle_judges_the_walkthrough(game, walkthrough):
    played = game.play(walkthrough, np.random.default_rng(0), max_actions=len(walkthrough))
    assert played.actions == tuple(walkthrough) and played.replayed == len(walkthrough) and played.won
    oracle = game.oracle
    taken = [m.group(1) for c in walkthrough if (m := re.match(r"take (.+) from ", c))]
    assert taken
    for thing in taken:
        assert oracle.judge(f"take the {thing}", played.gained) is True
    assert oracle.judge("prepare the meal", played.gained) is True
    assert oracle.judge("eat the meal", played.gained) is True
    assert oracle.judge(f"take the {taken[0]} and eat the meal", played.gained) is True
    assert oracle.judge("dance with the fridge", played.gained) is None  # unreadable: no verdict
    assert oracle.judge("take the unicorn", played.gained) is None
    # the scores' text never reaches the player's transcript
    assert not any("score" in f.lower() for f in played.feedback)
    # nothing done, nothing achieved: facts true from the start do not count
    idle = game.play([], np.random.default_rng(0), max_actions=0)
    goals = oracle.evaluation_goals()
    assert goals and all(oracle.judge(g, idle.gained) is False for g in goals)
    start_room = next(x[2] for x in game.initial_facts if x[:2] == ("at", "P"))
    assert f"go to the {start_room}" in goals


def test_oracle_agrees_with_the_games_own_state(game, walkthrough):
    """The facts the oracle reads, seen through TextWorld directly after each command."""
    import textworld

    env = textworld.start(str(game.path), request_infos=textworld.EnvInfos(facts=True, inventory=True))
    env.reset()
    for command in walkthrough[:-2]:
        state, _, _ = env.step(command)
    held = {a.name for f in state.facts if f.name == "in" and f.arguments[1].name == "I" for a in f.arguments[:1]}
    played = game.play(walkthrough[:-2], np.random.default_rng(0), max_actions=len(walkthrough) - 2)
    at_start = {f[1] for f in game.initial_facts if f[0] == "in" and f[2] == "I"}
    assert held - at_start
    for name in held:
        assert name in state.inventory
        # taken during the episode: achieved; held from the start: the player did nothing for it
        assert game.oracle.judge(f"take the {name}", played.gained) is (name not in at_start)


@pytest.mark.parametrize(("text", "expected"), [
    ('{"analysis": "x", "goals": ["Open the fridge.", "take the knife", "open the fridge"]}',
     ["open the fridge", "take the knife"]),
    ('{"goals": ["go east", "eat the meal", "drop the apple"]}', ["go east", "eat the meal", "drop the apple"]),
    ('{"goals": ["1. put white tuna on bed", "The player went east.", "Goals:"]}', ["put white tuna on bed"]),
    ('{"goals": ["<goal>", "<goal>"]}', []),
    ('{"goals": []}', []),
    ("", []),
    ("GOALS:\n- open the fridge", []),  # the old free-text format is not read any more
    ('{"goals": ["' + "very " * 20 + 'long"]}', []),
])
def test_relabel_parsing(text, expected):
    assert parse_goals(text, limit=5) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ('{"analysis": "yes it did, no doubt.", "reached": false}', False),
    ('{"reached": true}', True),
    ('{"reached": "yes"}', None),
    ("ANSWER: yes", None),
    ("", None),
])
def test_reward_parsing(text, expected):
    assert parse_reward(text) is expected


def test_imagine_parsing():
    assert parse_imagined('{"analysis": "hm", "goal": "Slice the carrot.", '
                          '"subgoals": ["take the knife", "take the carrot"]}') == (
        "slice the carrot", ("take the knife", "take the carrot"))
    assert parse_imagined('{"goal": "cook the meal", "subgoals": []}') == ("cook the meal", ())
    assert parse_imagined('{"goal": "<a short command>", "subgoals": ["take the knife"]}') == (None, ())
    assert parse_imagined("GOAL: cook the meal") == (None, ())


def test_every_call_asks_for_its_json_shape(cache):
    judge = ScriptedJudge()
    model = build(cache, judge, sources={"own": 0.4, "social": 0.3, "imagine": 0.3}, chain_of_thought=True)
    model.step()
    model.step()
    shapes = {}
    for call in judge.calls:
        for request in call:
            shapes.setdefault(ScriptedJudge.operation(request.messages[-1]["content"]), json.loads(request.schema))
    assert set(shapes) == {"imagine", "relabel", "reward"}
    assert shapes["reward"]["properties"]["reached"] == {"type": "boolean"}
    assert shapes["relabel"]["properties"]["goals"]["maxItems"] == 5
    assert shapes["imagine"]["required"] == ["analysis", "goal", "subgoals"]
    # reasoning first: a schema's fields are decoded in its canonical (sorted) order
    assert all(next(iter(s["properties"])) == "analysis" for s in shapes.values())


def test_one_call_per_phase_and_a_full_record(cache):
    judge = ScriptedJudge()
    model = build(cache, judge, sources={"own": 0.4, "social": 0.3, "imagine": 0.3})
    agents, eps = 4, 2
    for step in range(1, 5):
        before = len(judge.calls)
        record = model.step()
        ideas, prompts = record.ideas, record.prompts
        episodes = record.tables["episodes"]
        calls = judge.calls[before:]
        imagined = [e for e in episodes if e["source"] == "imagine"]
        with_goal = [e for e in episodes if e["goal"] is not None]
        assert len(calls) == (2 if imagined else 1)  # one call per phase for every agent together
        assert len(calls[-1]) == agents * eps + len(with_goal)
        assert len(episodes) == agents * eps and {e["step"] for e in episodes} == {step}
        assert sorted(r["operation"] for r in ideas) == sorted(
            ["relabel"] * agents * eps + ["reward"] * len(with_goal) + ["imagine"] * len(imagined))
        assert [r["idea_id"] for r in prompts] == [r["idea_id"] for r in ideas]
        assert len({r["idea_id"] for r in ideas}) == len(ideas) and set(ideas[0]) == set(IDEAS_SCHEMA)
        assert len({r["seed"] for r in ideas}) == len(ideas)  # a seed of its own per call
        for e in episodes:
            assert 1 <= len(e["actions"]) <= 10
            readable = e["goal"] is not None and model.games[0].oracle.clauses(e["goal"]) is not None
            assert (e["oracle_success"] is not None) == readable
            assert set(e["eval_achieved"]) <= set(model.eval_goals[0])
            assert e["relabel_status"] == "ok" and e["reward_status"] == ("ok" if e["goal"] else "none")
    sources = {e["source"] for e in record.tables["episodes"]}
    assert sources <= {"own", "social", "imagine"}
    # the scripted judge rewards exactly what it can read off the commands, as the oracle does
    for agent in model.agent_by_id.values():
        assert agent.repertoire and all(g.trajectory for g in agent.reached())


def test_goal_sources(cache):
    model = build(cache, sources={"own": 1.0, "social": 0.0, "imagine": 0.0}, goal_generator=False)
    agent = model.agent_by_id[0]
    assert model.agent_by_id[0].choose(1, 1, 0).source == "explore"  # nothing known, nothing to imagine
    agent.repertoire["open the fridge"] = Goal("open the fridge", (), "relabel", "x", 1, trajectory=("open fridge",))
    agent.repertoire["go east"] = Goal("go east", (), "relabel", "y", 1, outcomes=[True, True])
    plans = [agent.choose(1, e, 0) for e in range(1, 401)]
    assert {p.source for p in plans} == {"own"}
    # competence weighting: untried weighs 1, mastered (competence 1) weighs 0.05
    share = np.mean([p.goal.text == "open the fridge" for p in plans])
    expected = 1 / 1.05
    assert abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / 400)
    uniform = build(cache, sources={"own": 1.0, "social": 0.0, "imagine": 0.0}, random_goals=True)
    other = uniform.agent_by_id[0]
    other.repertoire = dict(agent.repertoire)
    share = np.mean([other.choose(1, e, 0).goal.text == "open the fridge" for e in range(1, 401)])
    assert abs(share - 0.5) < 4 * np.sqrt(0.25 / 400)
    assert agent.plan_actions(agent.repertoire["open the fridge"]) == ["open fridge"]
    composite = Goal("open the fridge and go east", ("open the fridge", "go east"), "imagine", "z", 1)
    assert agent.plan_actions(composite) == ["open fridge"]  # only subgoals with a known trajectory


@pytest.mark.parametrize("transmission", ["text", "text+subgoals", "text+trajectory"])
def test_sharing_reaches_neighbours_with_the_chosen_payload(cache, transmission):
    model = build(cache, transmission=transmission, share_max=1)
    sender = model.agent_by_id[0]
    sender.repertoire["slice the carrot"] = Goal("slice the carrot", ("take the knife",), "imagine", "s1-a0-e1-imagine",
                                                 1, trajectory=("take knife from table", "slice carrot with knife"),
                                                 outcomes=[True])
    sender.repertoire["go east"] = Goal("go east", (), "relabel", "o", 1, trajectory=("go east",), outcomes=[False])
    model.share()
    assert model.audience[0] == [1, 3]
    for receiver in (1, 3):
        inbox = model.agent_by_id[receiver].inbox
        assert list(inbox) == ["slice the carrot"]  # only the mastered goal
        message = inbox["slice the carrot"]
        assert message.sender == 0 and message.origin == "s1-a0-e1-imagine"
        assert message.subgoals == (("take the knife",) if transmission == "text+subgoals" else ())
        assert message.trajectory == (sender.repertoire["slice the carrot"].trajectory
                                      if transmission == "text+trajectory" else None)
    assert not model.agent_by_id[2].inbox
    # a received goal pursued joins the repertoire with its payload and its sender
    receiver = model.agent_by_id[1]
    model.scenario.autotelic.sources.own = 0.0
    model.scenario.autotelic.sources.imagine = 0.0
    plan = receiver.choose(2, 3, 0)
    assert plan.source == "social" and plan.goal.from_agent == 0 and not receiver.inbox
    assert receiver.repertoire["slice the carrot"].source == "social"


def test_malformed_and_failed_replies_are_recorded_not_fatal(cache):
    judge = ScriptedJudge({"reward": "garbage", "relabel": "error", "imagine": "garbage"})
    model = build(cache, judge, sources={"own": 0.0, "social": 0.0, "imagine": 1.0})
    record = model.step()
    ideas, episodes = record.ideas, record.tables["episodes"]
    assert {e["source"] for e in episodes} == {"imagine"}
    assert all(e["goal"] is None and e["reward_status"] == "none" for e in episodes)  # nothing imagined
    assert all(e["relabel_status"] == "failed" for e in episodes)
    failed = [r for r in ideas if r["operation"] == "relabel"]
    assert all(r["error"] and r["text"] is None for r in failed)
    assert all(r["text"] and r["error"] is None for r in ideas if r["operation"] == "imagine")
    # now goals exist but rewards come back unparsable: recorded, competence untouched
    for agent in model.agent_by_id.values():
        agent.repertoire["go east"] = Goal("go east", (), "relabel", "o", 1, trajectory=("go east",))
    model.scenario.autotelic.sources.own = 1.0
    model.scenario.autotelic.goal_generator = False
    episodes = model.step().tables["episodes"]
    assert all(e["reward_status"] == "unparsable" and e["llm_reward"] is None for e in episodes)
    assert all(not g.outcomes for a in model.agent_by_id.values() for g in a.repertoire.values())


def run_steps(model: AutotelicModel, steps: int) -> list[tuple]:
    out = []
    for _ in range(steps):
        record = model.step()
        out.append(((record.ideas, record.prompts), record.tables))
    return out


def test_restore_continues_exactly(cache):
    reference = run_steps(build(cache, sources={"own": 0.4, "social": 0.3, "imagine": 0.3}), 4)
    rows = [r for (ideas, _), _ in reference[:2] for r in ideas]
    resumed = build(cache, sources={"own": 0.4, "social": 0.3, "imagine": 0.3})
    resumed.restore(rows)
    assert resumed.next_step == 3
    assert run_steps(resumed, 2) == reference[2:]


def test_runner_run_and_resume_equal_an_uninterrupted_run(cache, tmp_path):
    from culturesim.llm import client

    judge = ScriptedJudge()
    import litellm
    from litellm.llms.custom_llm import CustomLLM

    class Scripted(CustomLLM):
        def completion(self, model, messages, *args, **kwargs):
            text = judge.answer(messages[-1]["content"])
            return litellm.ModelResponse(model="scripted/judge", choices=[
                {"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}])

        async def acompletion(self, *args, **kwargs):
            return self.completion(*args, **kwargs)

    client.register_provider("scripted", Scripted())
    s = scenario(cache, steps=4, size=3)
    whole = runner.start(s, out=tmp_path / "whole", show_progress=False)
    assert whole.read_manifest()["status"] == "done"
    cut = tmp_path / "cut" / whole.run_id
    shutil.copytree(whole.path, cut)
    for folder in ("steps", "prompts", "episodes", "repertoire"):
        for part in (cut / folder).glob("0000[34].parquet"):
            part.unlink()
    for table in ("ideas", "prompts", "episodes", "repertoire"):
        (cut / f"{table}.parquet").unlink()
    RunDir(cut).update_manifest(status="interrupted", steps_completed=2)
    resumed = runner.resume(cut, show_progress=False)
    assert resumed.read_manifest()["status"] == "done"
    for table in ("ideas", "episodes", "repertoire"):
        a = pl.read_parquet(whole.path / f"{table}.parquet").drop("latency_s", "cached", strict=False)
        b = pl.read_parquet(cut / f"{table}.parquet").drop("latency_s", "cached", strict=False)
        assert a.equals(b), table
    episodes = pl.read_parquet(whole.path / "episodes.parquet")
    assert episodes.height == 4 * 3 * 2 and episodes["relabel_status"].eq("ok").all()
    # the run's measures read back from its folder
    from analysis.embeddings import TfidfEmbedder
    from culturesim.kinds.autotelic.measures import summary

    metrics = summary(whole.path, TfidfEmbedder())
    assert {"known", "mastered", "vendi", "mean_jaccard", "coverage", "agreement"} <= set(metrics["metric"])
    reached = {g for goals in episodes["eval_achieved"].to_list() for g in goals}
    final = metrics.filter((pl.col("metric") == "coverage") & (pl.col("step") == 4))["value"].item()
    assert final == pytest.approx(len(reached) / episodes["eval_total"][0])


def test_scenario_errors_are_one_line_and_name_the_key(cache):
    with pytest.raises(sc.ScenarioError) as err:
        sc.validate_data({"kind": "autotelic", "name": "t", "steps": 1, "population": {"size": 2},
                          "game": {"recipe": 1, "take": 2}, "autotelic": {"transmission": "gossip"}}, "f.yaml")
    problems = err.value.problems
    assert any(p.startswith("f.yaml: autotelic.transmission:") for p in problems)
    with pytest.raises(sc.ScenarioError) as err:
        sc.validate_data({"kind": "autotelic", "name": "t", "steps": 1, "population": {"size": 2},
                          "game": {"recipe": 1, "take": 2}}, "f.yaml")
    assert err.value.problems == ["f.yaml: game.take: 2 ingredients to find but the recipe has only 1 (game.recipe)"]
