"""The agent layer's who-is-who (culturesim/agents/): assignment by ids, community and
proportion; groups and per-agent llm keys; the door sending each model its share of a batch,
all models at once; and the refusals of what cannot be assigned. Expected values are worked
out by hand in the comments."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from culturesim import runner
from culturesim import scenario as sc
from culturesim.agents.assignment import personalities, select, share
from culturesim.agents.groups import kind_roster, roster, static_communities
from culturesim.kinds.contract import Door
from culturesim.llm.client import LLM
from culturesim.llm.types import Reply, Request
from culturesim.networks import build_network, community_labels
from culturesim.scenario import LLMSpec, Selector

ROOT = Path(__file__).resolve().parents[1]


def scenario(tmp_path: Path, **extra) -> Path:
    data = {"kind": "culture", "name": "groups", "seed": 4, "steps": 1,
            "population": {"size": 6, "mix": {"neutral": 1.0}},
            "network": {"topology": "caveman", "params": {"cliques": 2, "clique_size": 3}},
            "llm": {"model": "echo/base", "max_tokens": 8, "temperature": 0.5}}
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path = tmp_path / "groups.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --- assignment -------------------------------------------------------------------------

def test_ids_then_community_then_proportion_by_hand():
    # 10 agents, communities 0 (agents 0-4) and 1 (5-9)
    communities = [0] * 5 + [1] * 5
    labels = select({"a": Selector(ids=[0, 1]), "b": Selector(community=1), "c": Selector(proportion=0.2)}, 10,
                    where=("groups",), rng=np.random.default_rng(0), communities=communities)
    assert labels[:2] == ["a", "a"] and labels[5:] == ["b"] * 5
    # 0.2 of 10 = 2 agents, drawn among the 3 that neither ids nor a community claimed (2, 3, 4)
    assert sorted(i for i, g in enumerate(labels) if g == "c") in ([2, 3], [2, 4], [3, 4])
    assert labels.count(None) == 1
    again = select({"a": Selector(ids=[0, 1]), "b": Selector(community=1), "c": Selector(proportion=0.2)}, 10,
                   where=("groups",), rng=np.random.default_rng(0), communities=communities)
    assert again == labels  # the seed decides


def test_proportions_round_to_the_nearest_agent_and_never_overlap():
    assert [share(p, 6) for p in (0.25, 0.5, 0.1, 0.08)] == [2, 3, 1, 0]  # 1.5 -> 2, 3, 0.6 -> 1, 0.48 -> 0
    for seed in range(5):
        labels = select({"x": Selector(proportion=0.5), "y": Selector(proportion=0.25)}, 8, where=("g",),
                        rng=np.random.default_rng(seed))
        assert labels.count("x") == 4 and labels.count("y") == 2 and labels.count(None) == 2
    draws = {tuple(select({"x": Selector(proportion=0.5)}, 8, where=("g",), rng=np.random.default_rng(s)))
             for s in range(5)}
    assert len(draws) > 1  # shuffled with the seed, not the first half


def test_communities_known_without_building_the_network():
    # caveman 2x3: agents 0-2 in community 0, 3-5 in 1; sbm [2, 3, 1]: 0-1, 2-4, 5; chain 2 of 3
    assert community_labels("caveman", 6, {"cliques": 2, "clique_size": 3}) == [0, 0, 0, 1, 1, 1]
    assert community_labels("sbm", 6, {"sizes": [2, 3, 1], "p": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}) == \
        [0, 0, 1, 1, 1, 2]
    assert community_labels("chain", 6, {"chains": 2}) == [0, 0, 0, 1, 1, 1]
    assert community_labels("ring", 6, {}) is None
    for topology, params in (("caveman", {"cliques": 3, "clique_size": 4}),
                             ("connected_caveman", {"cliques": 3, "clique_size": 4}),
                             ("sbm", {"sizes": [5, 7], "p": [[0.5, 0.1], [0.1, 0.5]]}), ("chain", {"chains": 3})):
        graph = build_network(topology, 12, params, rng=np.random.default_rng(0))
        assert community_labels(topology, 12, params) == [graph.nodes[i]["community"] for i in range(12)], topology


def test_personalities_by_ids_and_community_then_the_mix(tmp_path):
    path = scenario(tmp_path, population={"size": 6, "mix": {"neutral": 1.0},
                                          "assign": {"creative": {"ids": [0]}, "traditional": {"community": 1}}})
    scen = sc.load(path)
    # agent 0 creative, agents 3-5 (community 1) traditional, the rest (1, 2) from the mix: neutral
    assert personalities(scen.population, 6, scen.seed, communities=[0, 0, 0, 1, 1, 1]) == \
        ["creative", "neutral", "neutral", "traditional", "traditional", "traditional"]
    graph, model = runner.check(scen, None)
    assert [a.personality for a in model.agent_by_id.values()] == \
        ["creative", "neutral", "neutral", "traditional", "traditional", "traditional"]


def test_no_assign_keeps_the_old_shuffled_mix(tmp_path):
    from culturesim.population import assign_personalities

    scen = sc.load(scenario(tmp_path, population={"size": 6, "mix": {"creative": 0.5, "neutral": 0.5}}))
    assert personalities(scen.population, 6, 4) == \
        assign_personalities({"creative": 0.5, "neutral": 0.5}, 6, np.random.default_rng([4, 0, 7]))


# --- groups and models ------------------------------------------------------------------

def test_each_agent_gets_scenario_then_group_then_own_llm_keys(tmp_path):
    scen = sc.load(scenario(
        tmp_path,
        population={"size": 6, "mix": {"neutral": 1.0}, "assign": {"creative": {"ids": [1]}}},
        groups={"served": {"community": 1, "llm": {"model": "echo/served", "max_tokens": 4}},
                "creative": {"llm": {"temperature": 1.5}}},  # named after a personality: its agents
        agents={5: {"llm": {"model": "echo/five"}}},
    ))
    r = kind_roster(scen, runner.build_graph(scen, None))
    assert r.groups == [None, "creative", None, "served", "served", "served"]
    assert r.models() == ["echo/base", "echo/base", "echo/base", "echo/served", "echo/served", "echo/five"]
    assert [s.max_tokens for s in r.llms] == [8, 8, 8, 4, 4, 4]  # agent 5 keeps its group's max_tokens
    assert [s.temperature for s in r.llms] == [0.5, 1.5, 0.5, 0.5, 0.5, 0.5]

    # one model per distinct block: base (""), creative's (same model string: #2), served, five
    seen = []
    door = Door(LLM(scen.llm), lambda spec: seen.append(spec) or LLM(spec))
    routes = r.routes(door)
    assert routes == ["", "echo/base#2", "", "echo/served", "echo/served", "echo/five"]
    assert len(seen) == 3


def test_a_run_records_each_agents_group_and_model(tmp_path):
    import polars as pl

    scen = sc.load(scenario(tmp_path, groups={"b": {"ids": [0, 2, 4], "llm": {"model": "echo/b"}}},
                            output={"run_id": "r"}))
    run = runner.start(scen, out=tmp_path / "out", show_progress=False)
    agents = pl.read_parquet(run.path / "agents.parquet").sort("agent_id")
    assert agents["group"].to_list() == ["b", None, "b", None, "b", None]
    assert agents["model"].to_list() == ["echo/b", "echo/base"] * 3
    ideas = run.ideas().sort("agent_id")
    assert ideas["model"].to_list() == ["echo/b", "echo/base"] * 3


# --- the door ---------------------------------------------------------------------------

class SlowModel:
    """A stand-in model: answers after ``delay`` seconds, noting its thread and batch."""

    def __init__(self, spec: LLMSpec, delay: float = 0.4):
        self.spec, self.delay = spec, delay
        self.calls: list[tuple[str, list[str], float]] = []

    def generate(self, requests, on_reply=None):
        self.calls.append((threading.current_thread().name, [r.tag for r in requests], time.monotonic()))
        time.sleep(self.delay)
        replies = [Reply(text=f"{self.spec.model}:{r.tag}", model=self.spec.model) for r in requests]
        for reply in replies:
            if on_reply:
                on_reply(reply)
        return replies


def test_a_batch_is_split_by_route_sent_at_once_and_returned_in_order():
    opened: dict[str, SlowModel] = {}
    base = SlowModel(LLMSpec(model="echo/a"))
    door = Door(base, lambda spec: opened.setdefault(spec.model, SlowModel(spec)))
    heard = []
    door.on_reply = heard.append
    rb, rc = door.route(LLMSpec(model="echo/b")), door.route(LLMSpec(model="echo/c"))
    assert door.route(LLMSpec(model="echo/a")) == "" and door.route(LLMSpec(model="echo/b")) == rb
    plan = ["", rb, rc, rb, "", rc, rb]
    requests = [Request(messages=({"role": "user", "content": "x"},), seed=i, tag=str(i), route=k)
                for i, k in enumerate(plan)]
    start = time.monotonic()
    replies = door.generate(requests)
    took = time.monotonic() - start
    assert [r.text for r in replies] == [f"echo/{'abc'[['', rb, rc].index(k)]}:{i}" for i, k in enumerate(plan)]
    assert took < 0.4 * 2, took  # three models of 0.4 s each, all at once
    assert base.calls[0][1] == ["0", "4"] and base.calls[0][0] == threading.current_thread().name
    assert opened["echo/b"].calls[0][1] == ["1", "3", "6"] and opened["echo/c"].calls[0][1] == ["2", "5"]
    starts = [m.calls[0][2] for m in (base, opened["echo/b"], opened["echo/c"])]
    assert max(starts) - min(starts) < 0.2
    assert len(heard) == 7
    door.generate(requests)  # each model is always driven from the same thread
    for model in opened.values():
        assert model.calls[0][0] == model.calls[1][0] != threading.current_thread().name
    door.close()


def test_cache_keys_differ_across_models(tmp_path):
    req = Request(messages=({"role": "user", "content": "hi"},), seed=1)
    assert req.cache_key("echo/a", None) != req.cache_key("echo/b", None)
    assert req.cache_key("echo/a", None) == Request(messages=req.messages, seed=1, route="x").cache_key("echo/a", None)
    cache = tmp_path / "llm.sqlite"
    a, b = LLM(LLMSpec(model="echo/a"), cache_path=cache), LLM(LLMSpec(model="echo/b"), cache_path=cache)
    first = a.generate([req])[0]
    other = b.generate([req])[0]
    assert not other.cached and other.model == "echo/b" and first.model == "echo/a"
    assert a.generate([req])[0].cached and b.generate([req])[0].cached
    a.close(), b.close()


# --- bad input --------------------------------------------------------------------------

@pytest.mark.parametrize("extra, message", [
    ({"groups": {"nope": {"llm": {"model": "echo/x"}}}}, "groups.nope: group 'nope' does not exist"),
    ({"agents": {6: {"llm": {"model": "echo/x"}}}}, "agents.6: no agent 6; agent ids run from 0 to 5"),
    ({"groups": {"g": {"ids": [1, 9]}}}, "groups.g.ids: no agent 9"),
    ({"network": {"topology": "ring", "params": {}}, "groups": {"g": {"community": 0}}},
     "groups.g.community: asks for a community but network.topology 'ring' has no communities"),
    ({"groups": {"g": {"community": 2}}}, "groups.g.community: no community 2; the network's communities are 0..1"),
    ({"groups": {"g": {"ids": [1, 2]}, "h": {"community": 0}}}, "groups.h.community: agent 1 is also in 'g'"),
    ({"groups": {"g": {"proportion": 0.5}, "h": {"proportion": 0.7}}},
     "groups.h.proportion: asks for 4 agents but only 3 of 6 are left"),
    ({"groups": {"g": {"ids": [1], "community": 0}}}, "groups.g: give one of ids, community, proportion"),
    ({"groups": {"g": {"personality": "creative"}}}, "groups.g.personality: no agent has personality 'creative'"),
    ({"population": {"size": 6, "assign": {"creative": {"proportion": 0.05}}}},
     "population.assign.creative.proportion: 0.05 of 6 agents is no agent"),
    ({"population": {"size": 6, "assign": {"wizard": {"ids": [0]}}}}, "population.assign.wizard: unknown personality"),
])
def test_bad_assignments_are_one_line_naming_file_line_and_key(tmp_path, extra, message):
    path = scenario(tmp_path, **extra)
    with pytest.raises(sc.ScenarioError) as caught:
        sc.load(path)
    assert len(caught.value.problems) == 1
    line = caught.value.problems[0]
    assert line.startswith(f"{path}:") and line.split(":")[1].isdigit(), line
    assert message in line, line


def test_cli_refuses_with_exit_2_and_writes_nothing(tmp_path):
    path = scenario(tmp_path, groups={"ai": {"community": 5, "llm": {"model": "echo/x"}}})
    out = tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "culturesim.cli", "run", str(path), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "groups.ai.community: no community 5" in done.stderr
    assert not out.exists()


def test_groups_on_a_kind_without_language_models_are_refused(tmp_path):
    from culturesim.agents.groups import check

    class Plain:
        kind, groups, agents, population = "gp", {"g": Selector(ids=[0])}, {}, None

    assert check(Plain())[0][0] == ("groups",)


def test_static_and_built_communities_agree_for_the_roster(tmp_path):
    scen = sc.load(scenario(tmp_path, groups={"g": {"community": 1}}))
    labels, _ = static_communities(scen)
    assert roster(scen, communities=labels).groups == kind_roster(scen, runner.build_graph(scen, None)).groups


def test_the_resolved_scenario_gives_the_same_roster(tmp_path):
    # the manifest stores every key of an override (unset ones as null): a resume reads it back
    scen = sc.load(scenario(tmp_path, groups={"g": {"ids": [1], "llm": {"model": "echo/g"}}}))
    again = sc.validate_data(sc.resolved(scen), "manifest")
    graph = runner.build_graph(scen, None)
    assert kind_roster(again, graph) == kind_roster(scen, graph)
    assert kind_roster(again, graph).llms[1] == LLMSpec(**{**scen.llm.model_dump(), "model": "echo/g"})


def test_an_override_given_as_null_clears_the_key_and_survives_the_manifest(tmp_path):
    scen = sc.load(scenario(tmp_path, llm={"model": "openai/x", "api_base": "http://127.0.0.1:9/v1"},
                            agents={2: {"llm": {"model": "echo/local", "api_base": None}}}))
    again = sc.validate_data(sc.resolved(scen), "manifest")
    assert sc.resolved(scen)["agents"] == {"2": {"llm": {"model": "echo/local", "api_base": None}}}
    graph = runner.build_graph(scen, None)
    for s in (scen, again):
        llms = kind_roster(s, graph).llms
        assert (llms[2].model, llms[2].api_base) == ("echo/local", None)
        assert llms[1].api_base == "http://127.0.0.1:9/v1"


def test_validate_counts_the_agents_of_each_model(tmp_path):
    path = scenario(tmp_path, groups={"g": {"proportion": 0.5, "llm": {"model": "echo/g"}}})
    done = subprocess.run([sys.executable, "-m", "culturesim.cli", "validate", str(path)], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "models echo/base (3 agents), echo/g (3 agents)" in done.stdout


def test_loading_groups_by_ids_imports_no_networkx(tmp_path):
    # the loader stays light (the app loads pasted scenarios); only a community selector needs the network module
    path = scenario(tmp_path, network={"topology": "ring", "params": {}},
                    groups={"g": {"ids": [1], "llm": {"model": "echo/g"}}}, agents={2: {"llm": {"max_tokens": 3}}})
    code = ("import sys; from culturesim import scenario as sc; "
            f"sc.load({str(path)!r}); print('networkx' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.strip() == "False", done.stderr
