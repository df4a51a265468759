"""Hostile scenario input (issue 18): every refusal is one line naming file, line and key where it
can, exit 2 from the CLI, and nothing on the way reads, builds or holds more than a scenario needs."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from culturesim import scenario as sc
from culturesim.scenario import ScenarioError
from culturesim.yamlsource import MAX_BYTES, YamlLimitError, load_yaml, parse_yaml

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "scenarios" / "quickstart.yaml"

SMALL = textwrap.dedent(
    """\
    kind: culture
    name: hostile
    seed: 3
    steps: 2
    population:
      size: 6
      mix: {creative: 0.5, not_creative: 0.5}
    network:
      topology: ring
      params: {k: 1}
    llm:
      model: echo/x
    """
)


def bomb(levels: int = 9) -> str:
    """Billion laughs: 9 levels of 9 aliases each, about 300 bytes that expand to 9**9 items."""
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    names = "abcdefghijklmnop"
    for i in range(1, levels):
        lines.append(f"{names[i]}: &{names[i]} [{', '.join(['*' + names[i - 1]] * 9)}]")
    return "\n".join(lines) + "\n"


def one_problem(path: Path, overrides: list[str] | None = None) -> str:
    with pytest.raises(ScenarioError) as info:
        sc.load(path, overrides)
    assert len(info.value.problems) == 1, info.value.problems
    problem = info.value.problems[0]
    assert "\n" not in problem and "Traceback" not in problem
    return problem


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def limited_memory(limit: int = 2 << 30):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


# ---------------------------------------------------------------- the alias bomb


def validate_in_2_gb(tmp_path: Path, *args: str) -> tuple[list[str], float]:
    """``culturesim validate`` in a process of at most 2 GB of address space: (stderr lines, seconds)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "culturesim.cli", "validate", *args], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path, preexec_fn=limited_memory(), env=env)
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stdout == ""
    assert not (tmp_path / "results").exists()
    return done.stderr.splitlines(), elapsed


def test_alias_bomb_is_refused_by_validate_in_bounded_memory_and_time(tmp_path):
    """Today's line map expands every alias (past 8 GB): under a 2 GB address-space limit the
    CLI must still end with exit 2 and one line, in seconds."""
    path = write(tmp_path, SMALL + bomb(), "bomb.yaml")
    assert path.stat().st_size < 2000
    lines, elapsed = validate_in_2_gb(tmp_path, str(path))
    assert lines == [f"error: {path}: aliases expand to more than 100,000 extra nodes (490,329,094 in all); "
                     f"write the values out or use fewer aliases"]
    assert elapsed < 60


def test_alias_bomb_in_a_set_value_is_refused_by_validate_in_bounded_memory(tmp_path):
    path = write(tmp_path, SMALL)
    flow = "{" + bomb().strip().replace("\n", ", ") + "}"
    lines, _ = validate_in_2_gb(tmp_path, str(path), "--set", "description=" + flow)
    assert len(lines) == 1 and "aliases expand to more than 100,000 extra nodes" in lines[0]


def test_the_loader_refuses_the_bomb_quickly_without_growing_memory():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.monotonic()
    with pytest.raises(YamlLimitError, match="aliases expand to more than"):
        parse_yaml(bomb(), "bomb.yaml")
    assert time.monotonic() - started < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024


def test_a_few_aliases_still_load(tmp_path):
    text = SMALL.replace("llm:\n  model: echo/x\n", "llm: &m\n  model: echo/x\n") + "description: &d hello\n"
    loaded = sc.load(write(tmp_path, text))
    assert loaded.description == "hello"


def test_recursive_alias_is_refused_with_its_line(tmp_path):
    path = write(tmp_path, SMALL + "description: &r [1, *r]\n")
    problem = one_problem(path)
    assert problem.startswith(f"{path}:{len(SMALL.splitlines()) + 1}: description.1: a recursive alias")


def test_nesting_built_from_aliases_is_refused(tmp_path):
    deep = "[" * 60 + "]" * 60
    text = SMALL + f"x: &x {deep}\ndescription: [{'[' * 60}*x{']' * 60}]\n"
    assert "nesting is too deep" in one_problem(write(tmp_path, text))


# ---------------------------------------------------------------- size and duplicates


def test_a_file_over_one_mib_is_refused_before_it_is_parsed(tmp_path):
    path = write(tmp_path, SMALL + "#" * MAX_BYTES + "\n")
    assert one_problem(path) == f"{path}: the file is larger than 1 MiB; a scenario is far smaller"


def test_duplicate_top_level_key_is_refused_with_its_line(tmp_path):
    path = write(tmp_path, SMALL + "steps: 7\n")
    problem = one_problem(path)
    assert problem == f"{path}:{len(SMALL.splitlines()) + 1}: steps: duplicate key 'steps' (first on line 4)"


def test_duplicate_nested_key_is_refused_with_its_key_path(tmp_path):
    path = write(tmp_path, SMALL.replace("{creative: 0.5, not_creative: 0.5}", "{creative: 0.5, creative: 0.9}"))
    assert one_problem(path) == f"{path}:7: population.mix.creative: duplicate key 'creative' (first on line 7)"


def _old_line_map(text: str) -> dict:
    """The line map as the loader recorded it before the bounds: the reference for valid files."""
    lines: dict = {}

    def walk(node, prefix):
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                path = prefix + (str(key_node.value),)
                lines[path] = key_node.start_mark.line + 1
                walk(value_node, path)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[prefix + (i,)] = item.start_mark.line + 1
                walk(item, prefix + (i,))

    walk(yaml.compose(text, Loader=yaml.SafeLoader), ())
    return lines


@pytest.mark.parametrize("path", sorted((REPO / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_scenarios_load_with_the_same_data_and_line_map(path):
    text = path.read_text(encoding="utf-8")
    data, lines = load_yaml(path)
    assert data == yaml.safe_load(text)
    assert lines == _old_line_map(text)


# ---------------------------------------------------------------- --set


def test_set_value_nested_ten_thousand_deep_is_one_line(tmp_path):
    path = write(tmp_path, SMALL)
    problem = one_problem(path, ["description=" + "[" * 10_000 + "]" * 10_000])
    assert problem.startswith("--set 'description':1: nesting is too deep (more than 100 levels)")


def test_set_key_path_of_ten_thousand_parts_is_one_line(tmp_path):
    path = write(tmp_path, SMALL)
    problem = one_problem(path, [".".join(["a"] * 10_000) + "=1"])
    assert "the key path has 10000 parts; at most 100 are allowed" in problem


def test_set_value_goes_through_the_same_loader(tmp_path):
    path = write(tmp_path, SMALL)
    assert "duplicate key 'a'" in one_problem(path, ["network.params={a: 1, a: 2}"])
    assert "larger than 1 MiB" in one_problem(path, ["description=" + "x" * (MAX_BYTES + 1)])
    assert sc.load(path, ["steps=3", "description=not: [valid"]).description == "not: [valid"  # as before


def test_the_cli_refuses_deep_set_with_exit_2(tmp_path, capsys):
    from culturesim.cli import main

    path = write(tmp_path, SMALL)
    code = main(["validate", str(path), "--set", "description=" + "[" * 10_000 + "]" * 10_000])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: ")


# ---------------------------------------------------------------- non-finite weights


@pytest.mark.parametrize("weight", [".inf", "-.inf", ".nan"])
def test_non_finite_mix_weight_is_refused_with_its_line(tmp_path, weight):
    path = write(tmp_path, SMALL.replace("creative: 0.5,", f"creative: {weight},"))
    problem = one_problem(path)
    assert problem.startswith(f"{path}:7: population.mix.creative:"), problem
    assert "finite" in problem or "greater than or equal" in problem


def test_mix_weights_that_overflow_their_sum_are_refused(tmp_path):
    huge = "{creative: 1e308, not_creative: 1e308}"
    path = write(tmp_path, SMALL.replace("{creative: 0.5, not_creative: 0.5}", huge))
    assert "too large to add up" in one_problem(path)


# ---------------------------------------------------------------- validate checks sweep cells


def test_validate_refuses_a_sweep_cell_as_sweep_dry_run_does(tmp_path, capsys):
    from culturesim.cli import main

    path = write(tmp_path, SMALL + "sweep:\n  grid: {network.params.k: [1, 9]}\n")
    code_dry = main(["sweep", str(path), "--dry-run", "--out", str(tmp_path / "out")])
    dry = capsys.readouterr().err
    code = main(["validate", str(path)])
    err = capsys.readouterr()
    assert code_dry == 2 and code == 2
    assert err.err == dry and "cell 1" in err.err and err.out == ""
    assert not (tmp_path / "out").exists()


def test_validate_of_a_good_sweep_is_ok(tmp_path, capsys):
    from culturesim.cli import main

    path = write(tmp_path, SMALL + "sweep:\n  grid: {network.params.k: [1, 2]}\n")
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: ok (culture, 6 agents")


# ---------------------------------------------------------------- network size before building


def test_complete_network_of_20000_agents_is_refused_fast_by_validate(tmp_path):
    """Today validate builds all 2*10**8 edges (tens of GB); the estimate refuses it before building."""
    path = write(tmp_path, SMALL.replace("size: 6", "size: 20000").replace("topology: ring", "topology: complete")
                 .replace("  params: {k: 1}\n", ""))
    lines, elapsed = validate_in_2_gb(tmp_path, str(path))
    assert lines == [f"error: {path}: network: complete on 20,000 agents would have about 199,990,000 edges; "
                     f"at most 50,000,000 are built (use fewer agents or a sparser topology)"]
    assert elapsed < 60


# ---------------------------------------------------------------- the app's launch page


def test_launch_page_refuses_pasted_text_over_one_mib_before_saving_it():
    pytest.importorskip("dash")
    from app.pages import launch

    path, loaded, found = launch.check(None, SMALL + "#" * MAX_BYTES)
    assert (path, loaded) == (None, None)  # nothing saved
    assert found == ["the scenario: the text is larger than 1 MiB; a scenario is far smaller"]
