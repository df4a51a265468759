"""The scenario builder (app/builder.py, app/builder_view.py, app/pages/launch.py's sync): a form
generated from a kind's schema, its defaults making a valid scenario, and YAML <-> form.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app import builder
from culturesim.kinds import Kind, get_kind, kind_names, register, unregister

REPO = Path(__file__).resolve().parents[1]
BUILT_IN = ["autotelic", "culture", "exposure", "gard", "matechoice"]


def validate(path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "culturesim.cli", "validate", str(path), "--json"],
                          capture_output=True, text=True, env=env, cwd=str(path.parent), timeout=300)


@pytest.mark.parametrize("kind", BUILT_IN)
def test_the_form_defaults_of_every_built_in_kind_make_a_scenario_that_validates(kind, tmp_path):
    assert kind in kind_names()
    text = builder.default_yaml(kind, get_kind(kind).load_schema())
    path = tmp_path / "built.yaml"
    path.write_text(text)
    done = validate(path)
    assert done.returncode == 0, f"{kind}:\n{text}\n{done.stderr[-2000:]}"
    info = json.loads(done.stdout.strip().splitlines()[-1])
    assert info["kind"] == kind and info["name"] == f"my-{kind}"


def test_inputs_follow_types_bounds_choices_and_descriptions():
    schema = get_kind("culture").load_schema()
    by_key = {i.key: i for i in builder.inputs(builder.form_of(schema))}
    assert "kind" not in by_key  # fixed by the kind picked
    temp = by_key["llm.temperature"]
    assert (temp.widget, temp.lo, temp.hi, temp.default) == ("number", 0, 2, 0.8)
    assert by_key["population.size"].widget == "integer" and by_key["population.size"].required
    assert by_key["culture.social.bias"].choices == ["none", "content", "prestige", "conformity"]
    assert by_key["llm.cache"].widget == "bool" and by_key["llm.cache"].default is True
    assert by_key["population.mix"].widget == "yaml" and by_key["population.mix"].default == {"neutral": 1.0}
    assert "key" in by_key["llm.api_key_env"].description
    assert by_key["llm.n_threads"].optional and by_key["llm.n_threads"].widget == "integer"
    sections = [s.path for s in builder.form_of(schema) if isinstance(s, builder.Section)]
    assert ("culture",) in sections and ("llm",) in sections and ("output",) in sections


@pytest.fixture
def voter_kind():
    """The plug-in voter kind of tests/plugin_kind, registered in this process (not installed)."""
    sys.path.insert(0, str(REPO / "tests" / "plugin_kind"))
    register(Kind(name="voter", schema="voter_kind.schema:VoterScenario", model="voter_kind.model:VoterModel",
                  tables="voter_kind.tables"))
    try:
        yield "voter"
    finally:
        unregister("voter")
        sys.path.remove(str(REPO / "tests" / "plugin_kind"))
        # forget the source-tree import: tests/test_plugin_kind.py checks that the voter kind
        # it finds is the one pip installed, which a module cached here would shadow
        for name in [n for n in sys.modules if n == "voter_kind" or n.startswith("voter_kind.")]:
            del sys.modules[name]


def test_a_plug_in_kind_gets_a_form_with_no_change_to_the_app(voter_kind, tmp_path):
    from culturesim import scenario as sc

    schema = get_kind(voter_kind).load_schema()
    by_key = {i.key: i for i in builder.inputs(builder.form_of(schema))}
    assert by_key["voter.rule"].widget == "choice" and by_key["voter.rule"].choices == ["voter", "moran"]
    assert (by_key["voter.opinions"].lo, by_key["voter.opinions"].hi, by_key["voter.opinions"].default) == (2, 1000, 2)
    assert "random neighbour" in by_key["voter.rule"].description
    assert by_key["network.topology"].default == "complete"
    text = builder.default_yaml(voter_kind, schema)
    path = tmp_path / "voter.yaml"
    path.write_text(text)
    loaded = sc.load(path)
    assert loaded.kind == "voter" and loaded.population.size == 10


ROUND = """\
kind: culture
name: round-trip
steps: 7
seed: 11
population:
  size: 12
  mix: {creative: 0.5, neutral: 0.5}
network:
  topology: small_world
  params: {k: 4, p: 0.1}
llm:
  model: echo/x
  temperature: 0.3
  n_threads: 2
culture:
  operation: transform
  social: {bias: conformity, strength: 2.5, include_own: false}
  prompts:
    create: "Tell one proverb."
sweep:
  grid: {culture.operation: [combine, transform]}
  replicates: 2
"""


def test_round_trip_yaml_to_form_to_yaml_keeps_every_value():
    schema = get_kind("culture").load_schema()
    items = builder.form_of(schema)
    data, why = builder.read_yaml(ROUND, schema)
    assert why is None
    by_key = {i.key: i for i in builder.inputs(items)}
    widgets = {k: builder.to_widget(by_key[k], v) for k, v in builder.form_values(items, data).items()}
    assert widgets["culture.social.include_own"] == [] and widgets["llm.temperature"] == 0.3
    rebuilt, problems = builder.scenario_data("culture", items, widgets, {})  # from the form alone
    assert problems == []
    assert schema.model_validate(rebuilt) == schema.model_validate(data)
    again, _ = builder.scenario_data("culture", items, widgets, data)  # into the YAML it came from
    assert again == yaml.safe_load(ROUND)


def test_yaml_that_does_not_fit_leaves_the_form_and_says_why():
    schema = get_kind("culture").load_schema()
    data, why = builder.read_yaml(ROUND.replace("temperature: 0.3", "temperature: 7"), schema)
    assert data is None and why.startswith("llm.temperature:")
    data, why = builder.read_yaml("kind: [", schema)
    assert data is None and "not valid YAML" in why


def test_a_form_edit_rewrites_its_key_and_keeps_the_others():
    from app.pages.launch import sync

    schema = get_kind("culture").load_schema()
    items = builder.form_of(schema)
    keys = [i.key for i in builder.inputs(items)]
    data, _ = builder.read_yaml(ROUND, schema)
    by_key = {i.key: i for i in builder.inputs(items)}
    values = [builder.to_widget(by_key[k], v) for k, v in builder.form_values(items, data).items()]
    values[keys.index("llm.temperature")] = 1.1
    text, form, message = sync({"type": "cs-build", "key": "llm.temperature"}, ROUND, keys, values, [], [], "culture")
    expected = yaml.safe_load(ROUND)
    expected["llm"]["temperature"] = 1.1
    assert yaml.safe_load(text) == expected and message is None
    # an empty optional text input (output.run_id shows as "") is "not given", never ''
    assert values[keys.index("output.run_id")] is None
    values[keys.index("output.run_id")] = ""
    text, _, _ = sync({"type": "cs-build", "key": "steps"}, ROUND, keys, values, [], [], "culture")
    assert "run_id" not in yaml.safe_load(text).get("output", {})
    # and the other way: a YAML edit refills the form
    _, form, _ = sync("launch-text", ROUND.replace("steps: 7", "steps: 9"), keys, values, [], [], "culture")
    assert form[keys.index("steps")] == 9 and form[keys.index("population.size")] == 12


def test_personality_presets_set_the_mix():
    from app.pages.launch import sync

    _, _, keys, values = culture_form()
    text, form, _ = sync({"type": "cs-build-preset", "key": "population.mix"}, "", keys, values,
                         ["population.mix"], [["creative", "traditional"]], "culture")
    assert yaml.safe_load(text)["population"]["mix"] == {"creative": 0.5, "traditional": 0.5}
    assert yaml.safe_load(form[keys.index("population.mix")]) == {"creative": 0.5, "traditional": 0.5}


def test_the_network_is_drawn_from_topology_params_never_from_a_file():
    from app.builder_view import network_preview

    fig, line = network_preview({"seed": 3, "population": {"size": 12},
                                 "network": {"topology": "ring", "params": {"k": 2}}})
    assert fig is not None and line == "ring: 12 agents, 24 edges"
    assert len(fig.data[1].x) == 12
    fig, line = network_preview({"population": {"size": 12}, "network": {"topology": "edgelist",
                                                                        "params": {"path": "/etc/passwd"}}})
    assert fig is None and "after Validate" in line
    fig, line = network_preview({"population": {"size": 5000}, "network": {"topology": "complete"}})
    assert fig is None and "too large" in line
    fig, line = network_preview({"population": {"size": 12}, "network": {"topology": "grid", "params": {"rows": 5}}})
    assert fig is None and line.startswith("network:")
    # a kind's default network where the YAML has none; no drawing for a kind without one
    fig, line = network_preview({"population": {"size": 6}}, {"topology": "complete", "params": {}})
    assert line == "complete: 6 agents, 15 edges"
    fig, line = network_preview({"population": {"size": 6}}, None)
    assert fig is None and "no network" in line


def test_a_kinds_default_network_comes_from_its_schema():
    from app.builder_view import kind_network

    assert kind_network("culture") == {"topology": "complete", "params": {}, "directed": False, "self_loops": False}
    assert kind_network("gard") is None and kind_network("no-such-kind") is None


def test_callback_inputs_of_the_wrong_type_change_nothing():
    from dash import no_update

    from app.pages.launch import _kind_of, sync

    assert _kind_of({"kind": "culture"}) is None and _kind_of("kind: no-such-kind") is None
    text, form, _ = sync("launch-text", {"kind": "culture"}, ["steps"], [3], [], [], "culture")
    assert text is no_update and form == [no_update]
    text, form, _ = sync("launch-text", "kind: culture", ["steps"], [3], [], [], ["culture"])
    assert text is no_update and form == [no_update]


def test_a_form_just_drawn_for_a_yaml_takes_its_values_or_says_why_not():
    from app.pages.launch import sync

    schema = get_kind("culture").load_schema()
    keys = [i.key for i in builder.inputs(builder.form_of(schema))]
    values = [None] * len(keys)
    text, form, message = sync(None, ROUND, keys, values, [], [], "culture")  # Dash's call for new inputs
    assert form[keys.index("steps")] == 7 and message is None
    text, form, message = sync(None, ROUND.replace("temperature: 0.3", "temperature: 7"), keys, values, [], [],
                               "culture")
    assert set(form) == {no_update_value()} and message.startswith("llm.temperature:")


def no_update_value():
    from dash import no_update

    return no_update


# ----------------------------------------------------------------------- prompt presets


def culture_form():
    schema = get_kind("culture").load_schema()
    items = builder.form_of(schema)
    keys = [i.key for i in builder.inputs(items)]
    values = [builder.to_widget(i, v) for i, v in zip(builder.inputs(items),
                                                       builder.starting_values(schema, "culture").values(),
                                                       strict=True)]
    return schema, items, keys, values


@pytest.mark.parametrize("kind", BUILT_IN)
def test_every_prompt_preset_of_a_built_in_kind_makes_a_scenario_that_loads(kind, tmp_path):
    """Each preset, picked on the form's defaults, gives YAML the loader accepts (schema,
    placeholder and cross checks) holding the preset's texts at its keys."""
    from app.pages.launch import sync
    from culturesim import scenario as sc

    presets = builder.prompt_presets(kind)
    if kind == "culture":
        assert {"short stories (default)", "LLM-Culture stories (verbatim)", "proverbs"} <= set(presets)
    schema = get_kind(kind).load_schema()
    items = builder.form_of(schema)
    keys = [i.key for i in builder.inputs(items)]
    values = [builder.to_widget(i, v) for i, v in zip(builder.inputs(items),
                                                       builder.starting_values(schema, kind).values(), strict=True)]
    for name, texts in presets.items():
        text, form, message = sync({"type": "cs-build-prompt-preset", "key": "prompts"}, "", keys, values, [], [],
                                   kind, name)
        assert message is None
        data = yaml.safe_load(text)
        for key, want in texts.items():
            node = data
            for part in key.split("."):
                node = (node or {}).get(part)
            if want != builder.form_values(items, {}).get(key):  # a default is not written out
                assert node == want, (name, key)
            if key in keys:
                assert form[keys.index(key)] == want
        path = tmp_path / f"{kind}.yaml"
        path.write_text(text)
        assert sc.load(path).kind == kind


def test_a_prompt_preset_fills_the_prompt_inputs_and_keeps_the_other_edits():
    from dash import no_update

    from app.pages.launch import sync

    _, _, keys, values = culture_form()
    values[keys.index("steps")] = 5
    text, form, _ = sync({"type": "cs-build-prompt-preset", "key": "prompts"}, "", keys, values, [], [], "culture",
                         "proverbs")
    data = yaml.safe_load(text)
    want = builder.prompt_presets("culture")["proverbs"]
    assert data["culture"]["prompts"] == {k.rsplit(".", 1)[1]: v for k, v in want.items()}
    assert data["steps"] == 5
    assert form[keys.index("culture.prompts.combine")] == want["culture.prompts.combine"]
    assert form[keys.index("steps")] is no_update  # only the preset's inputs are rewritten
    # no preset name (the picker cleared, or just drawn), or a name the kind does not have: the
    # YAML is the form's, no input is rewritten
    for name in (None, "no-such-preset"):
        text, form, _ = sync({"type": "cs-build-prompt-preset", "key": "prompts"}, "", keys, values, [], [],
                             "culture", name)
        assert set(form) == {no_update}
        assert yaml.safe_load(text)["steps"] == 5 and "prompts" not in yaml.safe_load(text).get("culture", {})


def test_the_picker_is_shown_only_for_a_kind_with_presets():
    from app.builder_view import PROMPT_PRESET, render_form

    def pickers(kind):
        schema = get_kind(kind).load_schema()
        items = builder.form_of(schema)
        form = render_form(kind, items, builder.starting_values(schema, kind))
        return [c for top in form for c in walk(top)
                if isinstance(getattr(c, "id", None), dict) and c.id.get("type") == PROMPT_PRESET]

    found = pickers("culture")
    assert len(found) == 1 and [o["value"] for o in found[0].options] == list(builder.prompt_presets("culture"))
    assert "{ideas}" in found[0].options[1]["title"]  # the texts as the option's tooltip
    assert builder.prompt_presets("gard") == {} and pickers("gard") == []


def test_prompts_are_text_areas_that_keep_line_breaks_short_texts_are_inputs():
    from dash import dcc

    from app.builder_view import FORM, render_form

    schema = get_kind("culture").load_schema()
    items = builder.form_of(schema)
    form = render_form("culture", items, builder.starting_values(schema, "culture"))
    controls = {c.id["key"]: c for top in form for c in walk(top)
                if isinstance(getattr(c, "id", None), dict) and c.id.get("type") == FORM}
    for op in ("create", "transform", "combine"):  # "create"'s default has no line break: a preset fills it
        assert isinstance(controls[f"culture.prompts.{op}"], dcc.Textarea)
    assert "\n" in controls["culture.prompts.transform"].value
    assert isinstance(controls["name"], dcc.Input) and isinstance(controls["llm.model"], dcc.Input)


def walk(component):
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and not isinstance(child, (str, int, float)):
            yield from walk(child)


TOY = '''
from typing import Literal

from culturesim.scenario import ScenarioBase


class ToyScenario(ScenarioBase):
    kind: Literal["toy"]
    steps: int = 1
    greeting: str = "Say hello."
    farewell: str = "Say goodbye."


PRESETS = {"formal": {"greeting": "Greet the assembly.", "farewell": "Take your leave."},
           "pirate": {"greeting": "Ahoy.", "notes.motto": "Arr."}}
BROKEN = {"bad": {"greeting": 3}}
'''


@pytest.fixture
def toy_kind(tmp_path):
    """A plug-in kind defined outside culturesim (a module on sys.path), with prompt presets."""
    (tmp_path / "toy_kind_presets.py").write_text(TOY)
    sys.path.insert(0, str(tmp_path))
    register(Kind(name="toy", schema="toy_kind_presets:ToyScenario", model="toy_kind_presets:ToyScenario",
                  tables="toy_kind_presets", prompt_presets="toy_kind_presets:PRESETS"))
    try:
        yield "toy"
    finally:
        unregister("toy")
        sys.path.remove(str(tmp_path))
        sys.modules.pop("toy_kind_presets", None)


def test_a_plug_in_kinds_prompt_presets_need_no_change_to_the_app(toy_kind):
    from app.pages.launch import sync

    schema = get_kind(toy_kind).load_schema()
    items = builder.form_of(schema)
    keys = [i.key for i in builder.inputs(items)]
    values = [builder.to_widget(i, v) for i, v in zip(builder.inputs(items),
                                                       builder.starting_values(schema, toy_kind).values(),
                                                       strict=True)]
    assert list(builder.prompt_presets(toy_kind)) == ["formal", "pirate"]
    text, form, _ = sync({"type": "cs-build-prompt-preset", "key": "prompts"}, "", keys, values, [], [], toy_kind,
                         "formal")
    assert yaml.safe_load(text)["greeting"] == "Greet the assembly." and form[keys.index("farewell")] == \
        "Take your leave."
    # a key the form has no input for goes into the YAML as it is (the loader judges it)
    text, _, _ = sync({"type": "cs-build-prompt-preset", "key": "prompts"}, "", keys, values, [], [], toy_kind,
                      "pirate")
    assert yaml.safe_load(text)["notes"] == {"motto": "Arr."}


def test_presets_of_the_wrong_shape_are_refused_with_the_kinds_name(toy_kind):
    broken = Kind(name="toy", schema="toy_kind_presets:ToyScenario", model="toy_kind_presets:ToyScenario",
                  tables="toy_kind_presets", prompt_presets="toy_kind_presets:BROKEN")
    with pytest.raises(TypeError, match="kind 'toy': toy_kind_presets:BROKEN must map preset names"):
        broken.load_prompt_presets()


def test_broken_presets_of_a_plug_in_are_said_and_the_form_still_works(toy_kind):
    from dash import no_update

    from app.builder_view import render_form
    from app.pages.launch import sync

    broken = Kind(name="toy", schema="toy_kind_presets:ToyScenario", model="toy_kind_presets:ToyScenario",
                  tables="toy_kind_presets", prompt_presets="toy_kind_presets:BROKEN")
    register(broken)
    schema = get_kind("toy").load_schema()
    items = builder.form_of(schema)
    form = render_form("toy", items, builder.starting_values(schema, "toy"))
    assert "prompt presets unavailable" in form[0].children and len(form) > 1
    keys = [i.key for i in builder.inputs(items)]
    text, out, message = sync({"type": "cs-build-prompt-preset", "key": "prompts"}, "", keys, [None] * len(keys),
                              [], [], "toy", "bad")
    assert set(out) == {no_update} and "must map preset names" in message
    assert yaml.safe_load(text)["kind"] == "toy"  # the form's YAML all the same
