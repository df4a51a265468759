"""One short episode of one autotelic agent on the real embedded model (local/smollm2), through the
runner: the model's replies are recorded, parsed into the episode and the repertoire, and nothing
the oracle reads reaches the prompts."""

from __future__ import annotations

import json

import polars as pl

from culturesim import runner
from culturesim import scenario as sc
from culturesim.kinds.autotelic.model import parse_goals, parse_imagined, parse_reward


def test_one_episode_on_the_embedded_model(tmp_path):
    scenario = sc.validate_data({
        "kind": "autotelic", "name": "embedded", "seed": 3, "steps": 1, "population": {"size": 1},
        "llm": {"model": "local/smollm2", "max_tokens": 48, "cache": False, "n_threads": 2},  # room for JSON
        "game": {"cache_dir": str(tmp_path / "games"), "recipe": 1, "take": 1, "go": 1, "cook": False},
        "autotelic": {"max_actions": 4, "sources": {"own": 0, "social": 0, "imagine": 1}, "chain_of_thought": False,
                      "observation_chars": 60, "max_tokens": {"reward": 16}},
    }, "test")
    run = runner.start(scenario, out=tmp_path / "runs", show_progress=False)
    assert run.read_manifest()["status"] == "done"
    ideas = pl.read_parquet(run.path / "ideas.parquet").sort("idea_id")
    episode = pl.read_parquet(run.path / "episodes.parquet").row(0, named=True)
    prompts = {r["idea_id"]: json.loads(r["messages"])
               for r in pl.read_parquet(run.path / "prompts.parquet").to_dicts()}
    by_op = {r["operation"]: r for r in ideas.to_dicts()}
    assert ideas["error"].null_count() == ideas.height and ideas["text"].null_count() == 0
    assert (ideas["completion_tokens"] > 0).all() and (ideas["model"] == "local/smollm2").all()
    # the episode holds what the replies say, parsed the documented way
    assert episode["goal"] == parse_imagined(by_op["imagine"]["text"])[0]
    assert episode["relabeled"] == parse_goals(by_op["relabel"]["text"], 5)
    assert set(by_op) == ({"imagine", "relabel", "reward"} if episode["goal"] else {"imagine", "relabel"})
    if episode["goal"]:
        assert episode["llm_reward"] == parse_reward(by_op["reward"]["text"])
    assert 1 <= len(episode["actions"]) <= 4
    relabel_prompt = prompts[by_op["relabel"]["idea_id"]][1]["content"]
    assert all(f"> {a}" in relabel_prompt for a in episode["actions"])
    assert prompts[by_op["relabel"]["idea_id"]][-1] == {"role": "assistant", "content": by_op["relabel"]["text"]}
    for messages in prompts.values():  # the oracle's facts never reach the model
        assert not any(f"({word}" in m["content"] for m in messages for word in ("in", "at", "on", "closed"))
    repertoire = pl.read_parquet(run.path / "repertoire.parquet")
    assert set(episode["relabeled"]) | ({episode["goal"]} if episode["goal"] else set()) == set(repertoire["goal"])
