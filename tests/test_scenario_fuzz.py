"""Property tests: whatever a scenario file holds, loading it ends in a Scenario or a
ScenarioError with one-line messages, never another exception."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from culturesim import scenario as sc

BASE = {
    "kind": "culture", "name": "fuzz", "seed": 1, "steps": 2,
    "population": {"size": 3, "mix": {"neutral": 1.0}},
    "network": {"topology": "ring", "params": {"k": 1}},
    "llm": {"model": "echo/x", "temperature": 0.5},
    "culture": {"update": "synchronous", "social": {"k": 2}},
}
KEYS = ["kind", "name", "seed", "steps", "population.size", "population.mix", "network.topology",
        "network.params", "llm.temperature", "llm.max_tokens", "llm.stop", "culture.update",
        "culture.social.k", "culture.prompts.combine", "culture.groups", "sweep", "sweep.grid", "output.run_id",
        "nonsense", "population.mix.creativ", "exposure"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)


def loads_cleanly(tmp_path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(text.encode("utf-8", errors="replace"))  # lone surrogates become "?"
    try:
        sc.load(path)
    except sc.ScenarioError as exc:
        assert exc.problems and all(p and "\n" not in p and "Traceback" not in p for p in exc.problems)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(KEYS), value=values)
def test_any_value_at_any_key_is_a_scenario_or_a_clear_error(tmp_path, key, value):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
    node[parts[-1]] = value
    loads_cleanly(tmp_path, yaml.safe_dump(data, allow_unicode=True))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_arbitrary_text_is_a_scenario_or_a_clear_error(tmp_path, text):
    loads_cleanly(tmp_path, text)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depth=st.integers(min_value=50, max_value=3000))
def test_deep_nesting_is_a_clear_error(tmp_path, depth):
    loads_cleanly(tmp_path, "kind: culture\nname: deep\nsteps: 1\npopulation: " + "[" * depth + "]" * depth + "\n")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overrides=st.lists(st.text(max_size=25), max_size=3))
def test_any_set_override_is_a_scenario_or_a_clear_error(tmp_path, overrides):
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(BASE))
    try:
        sc.load(path, overrides)
    except sc.ScenarioError as exc:
        assert exc.problems and all("\n" not in p for p in exc.problems)


# ---------------------------------------------------------------- generated YAML texts (issue 18)

QUICKSTART_TEXT = (Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml").read_text(encoding="utf-8")
ODD_SCALARS = ["x", "1", "-0", "0x1F", "0o17", "1e400", "-.inf", ".inf", ".nan", "~", "null", "yes", "true", "''",
               '"\\u0000"', "2001-12-14", "2001-12-14t21:59:43.10-05:00", "!!binary aGk=", "!!str 3", "!!float 1",
               "!!int x", "!!python/object:os.system x", "!!set {a, b}", "!!omap [a: 1]", "<<: *a", "*a", "*b",
               "*zz", "'" + "9" * 5000 + "'", "9" * 5000, "{", "]", "? [1]", ": x", "&a", "!x"]
KEYS_OF = st.sampled_from(["a", "b", "kind", "name", "steps", "population", "mix", "size", "<<", "1", "[1]", "~"])
ANCHORS = st.sampled_from(["", "", "&a ", "&b "])


def flow(children, mapping):
    return (st.tuples(ANCHORS, st.lists(st.tuples(KEYS_OF, children), max_size=4)).map(
        lambda t: t[0] + "{" + ", ".join(f"{k}: {v}" for k, v in t[1]) + "}")
            if mapping else st.tuples(ANCHORS, st.lists(children, max_size=5)).map(
        lambda t: t[0] + "[" + ", ".join(t[1]) + "]"))


yaml_values = st.recursive(st.sampled_from(ODD_SCALARS),
                           lambda inner: st.one_of(flow(inner, True), flow(inner, False)), max_leaves=20)
documents = st.lists(st.tuples(KEYS_OF, yaml_values), min_size=1, max_size=6).map(
    lambda items: "".join(f"{k}: {v}\n" for k, v in items))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=documents)
@example(text="kind: culture\nsteps: " + "9" * 5000 + "\n")  # an int too long for Python to convert
@example(text="a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b, *b]\n")
def test_generated_yaml_with_aliases_and_odd_scalars_is_a_scenario_or_a_clear_error(tmp_path, text):
    loads_cleanly(tmp_path, text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_quickstart_is_a_scenario_or_a_clear_error(tmp_path, data):
    lines = QUICKSTART_TEXT.splitlines()
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["drop", "repeat", "value", "indent", "anchor", "alias"]))
        line = lines[i]
        if action == "drop":
            del lines[i]
        elif action == "repeat":  # a duplicate key, most often
            lines.insert(i, line)
        elif action == "value" and ":" in line:
            lines[i] = line.split(":", 1)[0] + ": " + data.draw(yaml_values)
        elif action == "indent":
            lines[i] = " " * data.draw(st.integers(0, 6)) + line.lstrip()
        elif action == "anchor" and ":" in line:
            key, rest = line.split(":", 1)
            lines[i] = f"{key}: &a{rest}"
        elif action == "alias" and ":" in line:
            lines[i] = line.split(":", 1)[0] + ": *a"
        if not lines:
            lines = ["x: 1"]
    loads_cleanly(tmp_path, "\n".join(lines) + "\n")
