"""LLM-Culture's designs as their code ran them: verbatim presets, the personality in the
user message, transform choosing among every story, and the shipped scenarios.

The presets are checked against byte-for-byte copies of the cited source files
(tests/data/llm_culture/, see ORIGIN.md there), not against themselves; the prompts an
agent is sent are rebuilt with the formula of their agent.py and compared with the
prompts table of a real run (on the instant ``echo/`` model: what is tested is what
culturesim sends, not what a model answers).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import polars as pl
import pytest
import yaml

from culturesim import runner
from culturesim.kinds.culture import llm_culture_presets as presets
from culturesim.scenario import ScenarioError, apply_overrides, resolved, validate_data
from culturesim.sweep import expand

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "tests" / "data" / "llm_culture"
SCENARIOS = REPO / "scenarios"
LC_SCENARIOS = sorted(SCENARIOS.glob("llm_culture_*.yaml"))


def source(name: str) -> dict[str, str]:
    """name -> prompt of one of their parameter files, in file order."""
    entries = json.loads((DATA / name).read_text(encoding="utf-8"))
    return {e["name"]: e["prompt"] for e in entries}


# ------------------------------------------------------------------ the texts


@pytest.mark.parametrize(("table", "file"), [(presets.PROMPT_INIT, "prompt_init.json"),
                                             (presets.PROMPT_UPDATE, "prompt_update.json")])
def test_prompt_presets_are_the_source_files_word_for_word(table, file):
    expected = source(file)
    assert list(table) == list(expected)  # every prompt, in their order, none added
    for name, text in expected.items():
        assert table[name].text == text, name
        assert table[name].source.endswith(f"/blob/{presets.COMMIT}/llm_culture/data/parameters/{file}")


def test_personality_presets_are_the_source_files_word_for_word():
    new, old = source("personalities.json"), source("personnalities.json")
    for name, text in new.items():
        assert presets.PERSONALITIES[name].text == text, name
        assert presets.PERSONALITIES[name].source.endswith(f"{presets.COMMIT}/llm_culture/data/parameters/"
                                                           "personalities.json")
    for name, text in old.items():  # the older file: same texts where both have a name
        assert presets.PERSONALITIES[name].text == text, name
    assert set(presets.PERSONALITIES) == set(new) | set(old)
    # the two gaps the paraphrased registry had
    assert presets.PERSONALITIES["Secular society"].text == "Pretend that you come from a very secular society."
    assert presets.PERSONALITIES["Empty"].text == " "


def test_the_module_cites_repository_commits_and_license():
    doc = presets.__doc__
    assert "github.com/flowersteam/LLM-Culture" in doc and "MIT License" in doc
    assert presets.COMMIT in doc and presets.OLD_COMMIT in doc
    assert (DATA / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


# ------------------------------------------------------------------ scenario keys


def scenario(**culture) -> dict:
    return {
        "kind": "culture", "name": "lc", "seed": 5, "steps": 2,
        "population": {"size": 4, "mix": {"Empty": 1.0}},
        "network": {"topology": "complete"},
        "llm": {"model": "echo/lc", "max_tokens": 16},
        "culture": {"operation": "combine", "social": {"include_own": False, "max_chars": 100_000},
                    "presets": {"prompts": {"create": "story teller", "combine": "CombineTwo"},
                                "personalities": ["Empty"]},
                    **culture},
        "output": {"run_id": "lc"},
    }


def test_presets_fill_the_prompts_and_personalities_and_survive_the_manifest():
    loaded = validate_data(scenario(), "test")
    assert loaded.culture.prompts.create == source("prompt_init.json")["story teller"]
    assert loaded.culture.prompts.combine == source("prompt_update.json")["CombineTwo"] + "{ideas}"
    assert loaded.population.personalities["Empty"] == " "
    again = validate_data(json.loads(json.dumps(resolved(loaded))), "manifest")
    assert again == loaded


def test_a_preset_replaces_text_given_for_the_same_operation():
    data = scenario()
    data["culture"]["prompts"] = {"combine": "Mine: {ideas}"}
    loaded = validate_data(data, "test")
    assert loaded.culture.prompts.combine.startswith("You will receive stories.")


@pytest.mark.parametrize(("where", "value", "expected"), [
    (("prompts", "combine"), "CombineTow", "culture.presets.prompts.combine: no llm_culture prompt 'CombineTow' "
                                           "for combine (did you mean 'CombineTwo'?)"),
    (("prompts", "create"), "CombineTwo", "culture.presets.prompts.create: no llm_culture prompt 'CombineTwo' "
                                          "for create"),
    (("personalities",), ["Secular societ"], "culture.presets.personalities.0: no llm_culture personality "
                                             "'Secular societ' (did you mean 'Secular society'?)"),
])
def test_an_unknown_preset_is_one_line_naming_its_key(where, value, expected):
    data = scenario()
    node = data["culture"]["presets"]
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    with pytest.raises(ScenarioError) as err:
        validate_data(data, "test")
    assert any(expected in p for p in err.value.problems), err.value.problems


def run(tmp_path, data) -> tuple[pl.DataFrame, pl.DataFrame]:
    folder = runner.start(validate_data(data, "test"), out=tmp_path, show_progress=False)
    ideas = pl.read_parquet(folder.path / "ideas.parquet")
    prompts = pl.read_parquet(folder.path / "prompts.parquet")
    return ideas, prompts


def their_prompt(personality: str, update: str, stories: list[str]) -> str:
    """What LLM-Culture's Agent.update_prompt builds, written as their agent.py does."""
    return personality + "\n" + update + str([str(i) + ": " + stories[i] for i in range(len(stories))])


def test_personality_in_user_sends_their_exact_prompt_and_no_system_message(tmp_path):
    data = scenario(personality_in="user", ideas_format="python_list")
    data["culture"]["social"]["order"] = "ids"
    ideas, prompts = run(tmp_path, data)
    story = {(r["step"], r["agent_id"]): r["text"] for r in ideas.iter_rows(named=True)}
    init, update = source("prompt_init.json")["story teller"], source("prompt_update.json")["CombineTwo"]
    assert prompts.height == 8
    for row in prompts.iter_rows(named=True):
        messages = json.loads(row["messages"])
        assert [m["role"] for m in messages] == ["user"]
        if row["step"] == 1:
            assert messages[0]["content"] == " \n" + init
        else:  # complete graph: every other agent's last story, by id, as networkx lists neighbours
            shown = [story[(1, j)] for j in range(4) if j != row["agent_id"]]
            assert messages[0]["content"] == their_prompt(" ", update, shown)


def test_personality_in_system_is_still_the_default(tmp_path):
    _, prompts = run(tmp_path, scenario())
    for row in prompts.iter_rows(named=True):
        messages = json.loads(row["messages"])
        assert [m["role"] for m in messages] == ["system", "user"] and messages[0]["content"] == " "


@pytest.mark.parametrize(("shows", "parents"), [("all", 3), ("one", 1)])
def test_transform_shows_every_story_received_or_one(tmp_path, shows, parents):
    data = scenario(operation="transform", transform_shows=shows, ideas_format="python_list",
                    personality_in="user")
    data["culture"]["presets"]["prompts"] = {"create": "story teller", "transform": "MinorChanges"}
    ideas, prompts = run(tmp_path, data)
    text = dict(zip(ideas["idea_id"], ideas["text"], strict=True))
    later = ideas.filter(pl.col("step") == 2)
    assert later["operation"].to_list() == ["transform"] * 4
    messages = dict(zip(prompts["idea_id"], prompts["messages"], strict=True))
    for row in later.iter_rows(named=True):
        assert len(row["parent_ids"]) == parents
        assert {int(p.rsplit("-a", 1)[1]) for p in row["parent_ids"]} <= {0, 1, 2, 3} - {row["agent_id"]}
        sent = json.loads(messages[row["idea_id"]])[0]["content"]
        shown = [text[p] for p in row["parent_ids"]]
        assert sent == their_prompt(" ", source("prompt_update.json")["MinorChanges"], shown)


# ------------------------------------------------------------------ shipped scenarios


def quick_overrides(path: Path) -> list[str]:
    """The --set values of the file's documented quick command ("# quick: culturesim run ...")."""
    line = next(raw for raw in path.read_text().splitlines() if raw.startswith("# quick:"))
    words = shlex.split(line.removeprefix("# quick:"))
    return [words[i + 1] for i, w in enumerate(words) if w == "--set"]


def test_every_llm_culture_scenario_uses_their_texts_and_behaviour():
    assert {p.stem for p in LC_SCENARIOS} >= {f"llm_culture_{n}" for n in
                                              ("chain", "complete", "ring", "caveman", "creative", "transform")}
    for path in LC_SCENARIOS:
        raw = yaml.safe_load(path.read_text())
        culture = raw["culture"]
        assert culture["personality_in"] == "user" and culture["ideas_format"] == "python_list", path.name
        assert culture["presets"]["library"] == "llm_culture" and "prompts" not in culture, path.name


@pytest.mark.parametrize("path", LC_SCENARIOS, ids=lambda p: p.name)
def test_their_sizes_and_seeds(path):
    data, _ = apply_overrides(yaml.safe_load(path.read_text()), [])
    loaded = validate_data(data, str(path))
    if path.stem == "llm_culture_chain":
        assert (loaded.population.size, loaded.steps, loaded.sweep) == (50, 50, None)
        return
    assert (loaded.population.size, loaded.steps, loaded.sweep.replicates) == (10, 10, 5)
    runs = expand(loaded, str(path), SCENARIOS)
    cells = max(1, *(len(v) for v in loaded.sweep.grid.values())) if loaded.sweep.grid else 1
    assert len(runs) == 5 * cells and len({r.scenario["seed"] for r in runs}) == 5
    for r in runs:  # a swept preset name reaches the text each run sends
        name = r.params.get("culture.presets.prompts.transform")
        if name is not None:
            assert r.scenario["culture"]["prompts"]["transform"] == source("prompt_update.json")[name] + "{ideas}"


@pytest.mark.parametrize("path", LC_SCENARIOS, ids=lambda p: p.name)
def test_the_quick_variant_runs(path, tmp_path):
    data, _ = apply_overrides(yaml.safe_load(path.read_text()), quick_overrides(path))
    assert data["llm"]["model"] == "local/smollm2" and data["steps"] == 2
    data["llm"]["model"] = "echo/quick"  # the documented command runs the embedded model; here the stand-in
    data["output"] = {"run_id": "quick"}
    ideas, prompts = run(tmp_path, data)
    assert ideas["error"].null_count() == ideas.height
    agents = pl.read_parquet(tmp_path / "quick" / "agents.parquet").sort("agent_id")
    if path.stem == "llm_culture_creative":  # Creative at their fixed ids 0-4
        assert agents["personality"].to_list() == ["Creative"] * 5 + ["NotCreative"] * 5
