"""Tests for the scenario loader (culturesim.scenario / yamlsource) and the errors users see.

Every expected line number is computed from the YAML text written by the test, so the
tests keep working when the base scenario below is edited.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from culturesim import scenario as sc
from culturesim.runner import build_graph, check
from culturesim.scenario import ScenarioError

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "scenarios"
QUICKSTART = SCENARIOS / "quickstart.yaml"

BASE = textwrap.dedent(
    """\
    # a scenario used by the tests
    kind: culture
    name: test-scenario
    seed: 3
    steps: 4

    population:
      size: 10
      mix: {creative: 0.5, not_creative: 0.5}

    network:
      topology: ring
      params: {k: 1}

    llm:
      model: local/smollm2
      temperature: 0.8
      max_tokens: 48

    culture:
      update: synchronous
      operation: combine
      prompts:
        combine: "Combine these: {ideas}"
      social:
        include_own: true
        max_chars: 1200

    output:
      dir: results
    """
)


# ---------------------------------------------------------------- helpers


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def edit(old: str, new: str, text: str = BASE) -> str:
    """Replace exactly one occurrence of ``old`` so an edit can never silently miss."""
    assert text.count(old) == 1, f"{old!r} must occur exactly once in the base scenario"
    return text.replace(old, new)


def line_no(text: str, line_start: str) -> int:
    """1-based number of the only line that starts with ``line_start`` (indentation included)."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if line.startswith(line_start)]
    assert len(hits) == 1, f"{line_start!r} starts {len(hits)} lines"
    return hits[0]


def problems(path: Path, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        sc.load(path, overrides)
    found = info.value.problems
    assert found, "a ScenarioError must carry at least one problem"
    for problem in found:
        assert isinstance(problem, str) and problem.strip()
        assert "\n" not in problem, f"problems are one line each: {problem!r}"
        assert "Traceback" not in problem
    assert str(info.value) == "\n".join(found)
    return found


def only_problem(path: Path, overrides: list[str] | None = None) -> str:
    found = problems(path, overrides)
    assert len(found) == 1, found
    return found[0]


def the_problem_about(found: list[str], key: str) -> str:
    hits = [p for p in found if f" {key}:" in p or f" {key} (from --set):" in p]
    assert len(hits) == 1, f"expected one problem about {key!r} in {found}"
    return hits[0]


# ---------------------------------------------------------------- files that load


def test_base_scenario_of_these_tests_is_valid(tmp_path):
    loaded = sc.load(write(tmp_path, BASE))
    assert loaded.name == "test-scenario"
    assert loaded.steps == 4
    assert loaded.population.mix == {"creative": 0.5, "not_creative": 0.5}
    assert loaded.network.params == {"k": 1}
    assert loaded.culture.prompts.combine == "Combine these: {ideas}"


def test_quickstart_loads_with_the_values_in_the_file():
    raw = yaml.safe_load(QUICKSTART.read_text(encoding="utf-8"))
    loaded = sc.load(QUICKSTART)
    assert loaded.kind == raw["kind"] == "culture"
    assert loaded.name == raw["name"]
    assert loaded.steps == raw["steps"]
    assert loaded.seed == raw.get("seed", 0)
    assert loaded.population.size == raw["population"]["size"]
    assert loaded.network.topology == raw["network"]["topology"]
    assert loaded.llm.model == raw["llm"]["model"]


SCENARIO_FILES = sorted(SCENARIOS.glob("*.yaml"))


def test_scenarios_folder_has_files():
    assert QUICKSTART in SCENARIO_FILES


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[p.name for p in SCENARIO_FILES])
def test_every_shipped_scenario_loads_and_its_network_builds(path):
    loaded = sc.load(path)
    # what `culturesim validate` checks beyond the schema
    graph, _ = check(loaded, path.resolve().parent)
    size = {
        "culture": lambda: loaded.population.size,
        "autotelic": lambda: loaded.population.size,
        "exposure": lambda: loaded.population_size,
        "matechoice": lambda: loaded.matechoice.population,
        "gard": lambda: loaded.gard.assemblies,
    }[loaded.kind]()
    assert graph.number_of_nodes() == size


def test_defaults_are_filled_in(tmp_path):
    minimal = "kind: culture\nname: minimal\nsteps: 2\npopulation:\n  size: 3\n"
    out = sc.resolved(sc.load(write(tmp_path, minimal)))
    assert out["llm"]["model"] == "local/smollm2"
    assert out["culture"]["update"] == "synchronous"
    assert out["culture"]["operation"] == "combine"
    assert out["network"]["topology"] == "complete"
    assert out["population"]["mix"] == {"neutral": 1.0}
    assert out["culture"]["social"]["bias"] == "none"
    assert out["seed"] == 0
    assert out["output"]["dir"] == "results"


def test_resolved_is_json_and_validates_back_to_the_same_scenario(tmp_path):
    loaded = sc.load(write(tmp_path, BASE))
    out = sc.resolved(loaded)
    again = sc.validate_data(json.loads(json.dumps(out)), "manifest")
    assert again == loaded
    assert sc.resolved(again) == out


# ---------------------------------------------------------------- unknown keys


def test_nested_typo_names_file_line_key_path_and_suggestion(tmp_path):
    text = edit("  topology: ring", "  topolgy: ring")
    path = write(tmp_path, text)
    msg = only_problem(path)
    line = line_no(text, "  topolgy:")
    assert msg.startswith(f"{path}:{line}: network.topolgy:"), msg
    assert "did you mean 'topology'" in msg
    assert "allowed here:" in msg and "topology" in msg.split("allowed here:")[1]


def test_top_level_typo_names_file_line_key_and_suggestion(tmp_path):
    text = edit("steps: 4", "stpes: 4")
    path = write(tmp_path, text)
    found = problems(path)
    msg = the_problem_about(found, "stpes")
    line = line_no(text, "stpes:")
    assert msg.startswith(f"{path}:{line}: stpes:"), msg
    assert "did you mean 'steps'" in msg
    # the misspelt key leaves the real one missing, which is reported as well
    assert "required key is missing" in the_problem_about(found, "steps")


def test_typo_in_a_flow_mapping_points_at_its_line(tmp_path):
    text = edit("  max_tokens: 48", "  max_tokens: 48\n  stop: ['.']\n  cahce: true")
    path = write(tmp_path, text)
    msg = only_problem(path)
    assert msg.startswith(f"{path}:{line_no(text, '  cahce:')}: llm.cahce:"), msg
    assert "did you mean 'cache'" in msg


# ---------------------------------------------------------------- bad values

BAD_VALUES = [
    # (edit old, edit new, line start of the offending key, key path, words the message must have)
    ("steps: 4", "steps: many", "steps:", "steps", ["integer", "'many'"]),
    ("  temperature: 0.8", "  temperature: 5", "  temperature:", "llm.temperature", ["2", "5"]),
    ("  size: 10", "  size: 0", "  size:", "population.size", ["1", "0"]),
    ("  update: synchronous", "  update: sideways", "  update:", "culture.update",
     ["'synchronous'", "'asynchronous'", "'chain'", "sideways"]),
    ("  max_chars: 1200", "  max_chars: 10", "    max_chars:", "culture.social.max_chars", ["50"]),
    ("seed: 3", "seed: -1", "seed:", "seed", ["0", "-1"]),
]


@pytest.mark.parametrize("old,new,line_start,key,words", BAD_VALUES, ids=[b[3] for b in BAD_VALUES])
def test_bad_value_names_file_line_and_key(tmp_path, old, new, line_start, key, words):
    text = edit(old, new)
    path = write(tmp_path, text)
    msg = only_problem(path)
    assert msg.startswith(f"{path}:{line_no(text, line_start)}: {key}:"), msg
    for word in words:
        assert word in msg, (word, msg)


def test_unknown_personality_in_mix_suggests_the_close_one(tmp_path):
    text = edit("{creative: 0.5,", "{creativ: 0.5,")
    path = write(tmp_path, text)
    msg = only_problem(path)
    assert msg.startswith(f"{path}:")
    assert f"{path}:{line_no(text, '  mix:')}: population.mix.creativ: " in msg
    assert "unknown personality 'creativ'" in msg
    assert "did you mean 'creative'" in msg
    assert "(got" not in msg  # no dump of the whole block


@pytest.mark.parametrize("old,new", [("steps: 4", "steps: true"), ("steps: 4", "steps: 2.5")])
def test_integers_are_not_guessed_from_booleans_or_fractions(tmp_path, old, new):
    assert old in BASE
    msg = only_problem(write(tmp_path, edit(old, new)))
    assert ": steps: " in msg and "integer" in msg


def test_personality_defined_in_the_scenario_may_be_mixed(tmp_path):
    text = edit("  mix: {creative: 0.5, not_creative: 0.5}",
                "  mix: {creative: 0.5, pirate: 0.5}\n  personalities:\n    pirate: You talk like a pirate.")
    loaded = sc.load(write(tmp_path, text))
    assert loaded.population.mix["pirate"] == 0.5


def test_unknown_placeholder_in_combine_prompt(tmp_path):
    text = edit('combine: "Combine these: {ideas}"', 'combine: "Combine these: {neighbours}"')
    path = write(tmp_path, text)
    msg = only_problem(path)
    assert msg.startswith(f"{path}:{line_no(text, '    combine:')}: culture.prompts.combine:"), msg
    assert "neighbours" in msg
    assert "{ideas}" in msg  # lists what is allowed


def test_unbalanced_brace_in_prompt_says_how_to_write_literal_braces(tmp_path):
    text = edit('combine: "Combine these: {ideas}"', 'combine: "Combine these: {ideas} {"')
    path = write(tmp_path, text)
    msg = only_problem(path)
    assert msg.startswith(f"{path}:{line_no(text, '    combine:')}: culture.prompts.combine:"), msg
    assert "{{" in msg


def test_missing_required_key(tmp_path):
    text = edit("steps: 4\n", "")
    path = write(tmp_path, text)
    msg = only_problem(path)
    assert msg.startswith(f"{path}")
    assert "steps: required key is missing" in msg


def test_missing_kind(tmp_path):
    path = write(tmp_path, edit("kind: culture\n", ""))
    msg = only_problem(path)
    assert msg.startswith(f"{path}")
    assert "kind: missing" in msg and "allowed: autotelic, culture, exposure, gard, matechoice" in msg


def test_unknown_kind_points_at_its_line_and_suggests(tmp_path):
    text = edit("kind: culture", "kind: cultur")
    path = write(tmp_path, text)
    msg = only_problem(path)
    assert msg.startswith(f"{path}:{line_no(text, 'kind:')}: kind: 'cultur'"), msg
    assert "did you mean 'culture'" in msg
    assert "allowed: autotelic, culture, exposure, gard, matechoice" in msg


def test_kind_that_is_a_list_is_a_scenario_error(tmp_path):
    text = edit("kind: culture", "kind: [culture]")
    path = write(tmp_path, text)
    msg = only_problem(path)
    assert msg.startswith(f"{path}:{line_no(text, 'kind:')}: kind:"), msg


def test_yaml_syntax_error_names_the_line(tmp_path):
    text = edit("steps: 4", "steps: 4: 5")
    path = write(tmp_path, text)
    msg = only_problem(path)
    assert msg.startswith(f"{path}:{line_no(text, 'steps:')}: not valid YAML:"), msg


def test_yaml_tab_indentation_names_the_line(tmp_path):
    text = edit("  size: 10", "\tsize: 10")
    path = write(tmp_path, text)
    msg = only_problem(path)
    assert msg.startswith(f"{path}:{line_no(text, chr(9) + 'size:')}: not valid YAML:"), msg


def test_file_that_is_a_list_is_rejected(tmp_path):
    path = write(tmp_path, "- kind: culture\n- name: x\n")
    msg = only_problem(path)
    assert msg.startswith(f"{path}:")
    assert "mapping" in msg and "list" in msg


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"], ids=["empty", "blank", "comment"])
def test_empty_file_is_rejected(tmp_path, text):
    path = write(tmp_path, text)
    msg = only_problem(path)
    assert msg.startswith(f"{path}:")
    assert "the file is empty" in msg


def test_non_utf8_file_is_rejected(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    msg = only_problem(path)
    assert msg.startswith(f"{path}:") and "UTF-8" in msg


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    msg = only_problem(path)
    assert msg == f"{path}: no such scenario file"


def test_directory_is_not_a_scenario_file(tmp_path):
    msg = only_problem(tmp_path)
    assert msg.startswith(f"{tmp_path}:")


def test_all_problems_are_reported_together(tmp_path):
    text = edit("  temperature: 0.8", "  temperature: 5", edit("steps: 4", "steps: many"))
    path = write(tmp_path, text)
    found = problems(path)
    assert len(found) == 2, found
    assert the_problem_about(found, "steps").startswith(f"{path}:{line_no(text, 'steps:')}: steps:")
    temp = the_problem_about(found, "llm.temperature")
    assert temp.startswith(f"{path}:{line_no(text, '  temperature:')}: llm.temperature:")


def test_problems_from_different_sections_are_all_reported(tmp_path):
    text = edit("  topology: ring", "  topolgy: ring", edit("  size: 10", "  size: 0"))
    text = edit("  update: synchronous", "  update: sideways", text)
    found = problems(write(tmp_path, text))
    assert len(found) == 3, found
    for key in ("network.topolgy", "population.size", "culture.update"):
        the_problem_about(found, key)


def test_list_items_are_named_by_index(tmp_path):
    text = edit("  operation: combine", "  operation: combine\n  seed_ideas:\n    - a story\n    - ''")
    path = write(tmp_path, text)
    msg = only_problem(path)
    assert msg.startswith(f"{path}:{line_no(text, '    - ' + chr(39) * 2)}: culture.seed_ideas.1:"), msg


def test_group_overrides_load(tmp_path):
    text = edit("  social:", "  groups:\n    creative:\n      operation: transform\n  social:")
    loaded = sc.load(write(tmp_path, text))
    assert loaded.culture.groups["creative"].operation == "transform"


def test_typo_inside_a_group_lists_allowed_keys(tmp_path):
    text = edit("  social:", "  groups:\n    creative:\n      operatoin: transform\n  social:")
    path = write(tmp_path, text)
    msg = only_problem(path)
    assert msg.startswith(f"{path}:{line_no(text, '      operatoin:')}: culture.groups.creative.operatoin:")
    assert "did you mean 'operation'" in msg
    assert "allowed here: operation, prompts" in msg


def test_group_that_is_not_a_personality_names_key_and_line(tmp_path):
    text = edit("  social:", "  groups:\n    creativ:\n      operation: transform\n  social:")
    path = write(tmp_path, text)
    msg = only_problem(path)
    assert "did you mean 'creative'" in msg  # this part works
    assert msg.startswith(f"{path}:{line_no(text, '    creativ:')}: culture.groups"), msg
    assert "(top level)" not in msg


# ---------------------------------------------------------------- --set overrides


def test_overrides_change_values(tmp_path):
    path = write(tmp_path, BASE)
    loaded = sc.load(path, ["steps=7", "llm.temperature=0.1", "network.params.k=2"])
    assert loaded.steps == 7
    assert loaded.llm.temperature == 0.1
    assert loaded.network.params == {"k": 2}
    # the file itself is untouched, and other values stay
    assert path.read_text(encoding="utf-8") == BASE
    assert loaded.llm.max_tokens == 48
    assert sc.load(path).steps == 4


def test_later_override_wins_and_sections_are_created(tmp_path):
    minimal = "kind: culture\nname: minimal\nsteps: 2\npopulation:\n  size: 3\n"
    loaded = sc.load(write(tmp_path, minimal), ["steps=3", "steps=5", "output.run_id=abc",
                                                "llm.stop=[END, '###']", "culture.social.bias=prestige"])
    assert loaded.steps == 5
    assert loaded.output.run_id == "abc"
    assert loaded.llm.stop == ["END", "###"]
    assert loaded.culture.social.bias == "prestige"


def test_apply_overrides_does_not_mutate_its_input():
    data = {"llm": {"temperature": 0.8}}
    out, touched = sc.apply_overrides(data, ["llm.temperature=0.2"])
    assert data == {"llm": {"temperature": 0.8}}
    assert out == {"llm": {"temperature": 0.2}}
    assert touched == {("llm", "temperature")}


def test_bad_override_value_is_reported_as_from_set(tmp_path):
    path = write(tmp_path, BASE)
    msg = only_problem(path, ["llm.temperature=9"])
    assert msg.startswith(f"{path}: llm.temperature (from --set):"), msg
    assert "9" in msg


def test_override_with_a_typo_key_is_reported_as_from_set(tmp_path):
    path = write(tmp_path, BASE)
    msg = only_problem(path, ["llm.temprature=0.5"])
    assert "llm.temprature (from --set)" in msg
    assert "did you mean 'temperature'" in msg


@pytest.mark.parametrize("bad", ["steps", "=3", " =3", "population.size.x=3"])
def test_malformed_override_is_a_scenario_error(tmp_path, bad):
    path = write(tmp_path, BASE)
    msg = only_problem(path, [bad])
    assert msg.startswith("--set ")
    assert repr(bad) in msg


# ---------------------------------------------------------------- the CLI, as a user runs it

RING_TOO_DENSE = edit("  params: {k: 1}", "  params: {k: 50}")


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Run ``python -m culturesim.cli`` as a user does.

    Each start-up costs over a second of CPU, so only these two cases get a fresh
    interpreter; the others call the same ``main`` in process below.
    """
    root = tmp_path_factory.mktemp("cli")
    broken = write(root, edit("steps: 4", "steps: many"), "broken.yaml")
    cases = {
        "validate_broken": ["validate", str(broken)],
        "validate_good": ["validate", str(QUICKSTART)],
    }
    procs = {
        name: subprocess.Popen([sys.executable, "-m", "culturesim.cli", *args], cwd=root,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, args in cases.items()
    }
    results = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return {"results": results, "root": root, "broken": broken}


def assert_bad_input(code, stderr):
    assert code == 2, (code, stderr)
    assert stderr.startswith("error:"), stderr
    assert "Traceback" not in stderr
    assert all(line.startswith("error: ") for line in stderr.splitlines()), stderr


def test_cli_validate_broken_file(cli):
    result = cli["results"]["validate_broken"]
    assert_bad_input(result.returncode, result.stderr)
    text = cli["broken"].read_text()
    assert f"{cli['broken']}:{line_no(text, 'steps:')}: steps:" in result.stderr
    assert result.stdout == ""


def test_cli_validate_good_file(cli):
    result = cli["results"]["validate_good"]
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{QUICKSTART}: ok (culture,")
    assert "Traceback" not in result.stderr
    assert not (cli["root"] / "results").exists()  # validate writes nothing


def main(argv, capsys):
    """The console script's entry point, in process; returns (exit code, stdout, stderr)."""
    from culturesim.cli import main as cli_main

    code = cli_main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_run_broken_file_leaves_no_run_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    broken = write(tmp_path, edit("steps: 4", "steps: many"), "broken.yaml")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, out, err = main(["run", str(broken), "--out", str(out_dir)], capsys)
    assert_bad_input(code, err)
    assert f"{broken}:{line_no(broken.read_text(), 'steps:')}: steps:" in err
    assert out == ""
    assert list(out_dir.iterdir()) == []
    assert not (tmp_path / "results").exists()


def test_cli_validate_impossible_network_params(tmp_path, capsys):
    code, out, err = main(["validate", str(write(tmp_path, RING_TOO_DENSE))], capsys)
    assert_bad_input(code, err)
    assert "network" in err
    assert "'k'" in err and "50" in err


def test_cli_run_impossible_network_leaves_no_run_folder(tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, err = main(["run", str(write(tmp_path, RING_TOO_DENSE)), "--out", str(out_dir), "-q"], capsys)
    assert_bad_input(code, err)
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_impossible_network_params_pass_the_schema_but_not_build_graph(tmp_path):
    # the schema cannot know n; validate catches it by building the graph
    loaded = sc.load(write(tmp_path, RING_TOO_DENSE))
    with pytest.raises(ScenarioError) as info:
        build_graph(loaded, tmp_path)
    assert info.value.problems[0].startswith("network:")
    assert "'k'" in info.value.problems[0]


def test_cli_validate_missing_file(tmp_path, capsys):
    code, out, err = main(["validate", str(tmp_path / "missing.yaml")], capsys)
    assert_bad_input(code, err)
    assert "no such scenario file" in err


def test_cli_validate_bad_override(tmp_path, capsys):
    code, out, err = main(["validate", str(write(tmp_path, BASE)), "--set", "llm.temperature=9"], capsys)
    assert_bad_input(code, err)
    assert "llm.temperature (from --set)" in err


def test_cli_validate_applies_overrides(tmp_path, capsys):
    code, out, err = main(["validate", str(write(tmp_path, BASE)), "--set", "steps=9"], capsys)
    assert code == 0, err
    assert "9 steps" in out


def test_cli_reports_every_problem_on_its_own_line(tmp_path, capsys):
    text = edit("  temperature: 0.8", "  temperature: 5", edit("steps: 4", "steps: many"))
    code, out, err = main(["validate", str(write(tmp_path, text))], capsys)
    assert_bad_input(code, err)
    assert len(err.splitlines()) == 2
