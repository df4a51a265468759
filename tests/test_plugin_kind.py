"""A kind from outside culturesim: tests/plugin_kind, installed by this module, used unchanged.

``tests/plugin_kind`` is a distribution of its own (``culturesim-voter-kind``, package
``voter_kind``): a voter / Moran opinion model on a network, registered in the
``culturesim.kinds`` entry-point group of its own pyproject.toml. The module fixture builds and
installs it with pip into a temporary folder (never into the venv), puts that folder first on
``sys.path`` and on ``PYTHONPATH`` for the ``culturesim`` processes the tests start, and asks the
registry to read the entry points again. Then, with no change to culturesim, the kind

* is listed by the registry and loads;
* validates (``culturesim validate``: ok; a misspelt key is one error line naming it);
* runs (``culturesim run``): one ``opinions`` row per agent per step, and every step equal to a
  plain-Python recomputation of the documented dynamics from the same seeded generators;
* stops on Ctrl-C and survives SIGKILL in the middle of a write, and ``culturesim run --resume``
  then gives tables identical to an uninterrupted run;
* sweeps (``culturesim sweep``), every run done and each one its cell's dynamics;
* shows in ``culturesim runs`` with its kind;
* has its section on the app's Run page (rendered here, and in headless Chromium where installed).

Each command is a real ``python -m culturesim.cli`` process; nothing calls a language model.
"""
# ruff: noqa: F811 - fixtures imported from conftest_app are used as test arguments

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest_app import browser_app, section_csv, section_graph, walk  # noqa: F401 - fixture

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "tests" / "plugin_kind"
SCENARIO = PLUGIN / "scenario.yaml"
AGENTS, STEPS, SEED = 20, 10, 7  # as in tests/plugin_kind/scenario.yaml
WRITE_PAUSE_ENV = "CULTURESIM_TEST_WRITE_PAUSE_S"  # culturesim.store's hook: a pause inside every file write

pytestmark = pytest.mark.timeout(180)


# ------------------------------------------------------------------------------ the plug-in, installed


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> dict:
    """Install tests/plugin_kind into a temporary folder, and make it visible to this process and
    to the ones it starts; undone at the end of the module.

    pip builds from a copy: building in place would leave build/ and *.egg-info in the source
    tree. ``--no-build-isolation --no-index``: the build uses the venv's setuptools and never
    needs the network; ``--no-deps``: the plug-in declares no dependency anyway.
    """
    from culturesim.kinds import refresh

    source = tmp_path_factory.mktemp("voter-src") / "plugin_kind"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("voter-site")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir",
         "--disable-pip-version-check", "--quiet", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, f"pip could not build and install tests/plugin_kind offline:\n{built.stderr[-3000:]}"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(target), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.pop(WRITE_PAUSE_ENV, None)
    sys.path.insert(0, str(target))
    refresh()
    try:
        yield {"target": target, "env": env}
    finally:
        sys.path.remove(str(target))
        for name in [m for m in sys.modules if m == "voter_kind" or m.startswith("voter_kind.")]:
            del sys.modules[name]
        if "app.kinds" in sys.modules:  # the view registered its section when the app imported it
            sys.modules["app.kinds"].SECTIONS.pop("voter", None)
        refresh()


def cli(plugin: dict, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """``culturesim ARGS`` in a process of its own, with the plug-in's folder on PYTHONPATH."""
    return subprocess.run([sys.executable, "-m", "culturesim.cli", *args], cwd=REPO, env={**plugin["env"], **env},
                          capture_output=True, text=True, timeout=timeout)


def start_cli(plugin: dict, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "culturesim.cli", *args], cwd=REPO, env={**plugin["env"], **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_scenario(plugin: dict, out: Path, run_id: str, *sets: str) -> Path:
    done = cli(plugin, "run", str(SCENARIO), "--out", str(out), "-q", "--set", f"output.run_id={run_id}",
               *(a for s in sets for a in ("--set", s)))
    assert done.returncode == 0, done.stderr
    path = out / run_id
    assert done.stdout.strip().splitlines()[-1] == str(path)  # the CLI prints the run folder
    return path


@pytest.fixture(scope="module")
def root(plugin, tmp_path_factory) -> Path:
    """A results folder with the quick scenario run under both rules by ``culturesim run``."""
    folder = tmp_path_factory.mktemp("voter") / "results"
    run_scenario(plugin, folder, "voter-a")
    run_scenario(plugin, folder, "moran-a", "voter.rule=moran")
    return folder


@pytest.fixture(scope="module")
def results_dir(root) -> dict:
    """What conftest_app's ``browser_app`` serves: this module's runs (it replaces conftest_app's)."""
    return {"root": root}


# ------------------------------------------------------------------------------ the dynamics, recomputed


def recompute(seed: int, rule: str, initial: list[int], edges: list[tuple[int, int]], steps: int) -> list[tuple]:
    """The voter kind's dynamics as its documentation states them, in plain Python, from the
    network as recorded (``edges.parquet``) and the initial opinions (``agents.parquet``): rows
    ``(step, agent_id, opinion, copied_from)``. Step t draws from ``default_rng([seed, 2, t])``:
    voter, one uniform per agent in id order, the agent takes the previous opinion of its
    ``floor(u * degree)``-th neighbour (ids ascending); moran, a pair per event, ``size`` events one
    after the other: ``floor(u0 * size)`` reproduces into its ``floor(u1 * degree)``-th neighbour."""
    n = len(initial)
    neighbours: dict[int, set[int]] = {i: set() for i in range(n)}
    for s, t in edges:
        neighbours[s].add(t)
        neighbours[t].add(s)
    ordered = {i: sorted(js) for i, js in neighbours.items()}
    opinion = list(initial)
    rows = []
    for step in range(1, steps + 1):
        rng = np.random.default_rng([seed, 2, step])
        copied: list[int | None] = [None] * n
        if rule == "voter":
            before = list(opinion)
            for i, u in enumerate(rng.random(n)):
                if ordered[i]:
                    j = ordered[i][int(u * len(ordered[i]))]
                    opinion[i], copied[i] = before[j], j
        else:
            for u0, u1 in rng.random((n, 2)):
                r = int(u0 * n)
                if ordered[r]:
                    t = ordered[r][int(u1 * len(ordered[r]))]
                    opinion[t], copied[t] = opinion[r], r
        rows += [(step, i, opinion[i], copied[i]) for i in range(n)]
    return rows


def check_dynamics(path: Path) -> None:
    """A finished run's opinions table is, row for row, :func:`recompute` of its own scenario."""
    manifest = json.loads((path / "manifest.json").read_text())
    spec = manifest["scenario"]
    n, steps = spec["population"]["size"], spec["steps"]
    agents = pl.read_parquet(path / "agents.parquet").sort("agent_id")
    initial = agents["initial_opinion"].to_list()
    # exact counts from the shares (10 and 10), placed by the documented permutation
    counts = [n // 2, n - n // 2]
    placed = np.random.default_rng([manifest["seeds"]["run"], 2, 0]).permutation(np.repeat([0, 1], counts))
    assert np.bincount(initial, minlength=2).tolist() == counts
    assert initial == placed.tolist()
    edges = list(pl.read_parquet(path / "edges.parquet").select("source", "target").iter_rows())
    assert len(edges) == n * spec["network"]["params"]["k"] // 2  # Watts-Strogatz keeps n*k/2 edges
    expected = recompute(manifest["seeds"]["run"], spec["voter"]["rule"], initial, edges, steps)
    got = pl.read_parquet(path / "opinions.parquet").sort("step", "agent_id")
    assert list(got.iter_rows()) == expected


# ------------------------------------------------------------------------------ registry


def test_the_registry_finds_the_installed_kind_and_nothing_is_left_in_the_venv(plugin):
    from culturesim.kinds import Kind, get_kind, kind_names

    assert "voter" in kind_names()
    kind = get_kind("voter")
    assert isinstance(kind, Kind) and kind.name == "voter"
    assert kind.load_schema().__name__ == "VoterScenario"
    model = kind.load_model()
    assert (model.uses_llm, model.resume, model.progress) == (False, "replay", "steps")
    assert set(kind.load_tables()) == {"opinions"}
    # it is the distribution pip put in the temporary folder, not a copy from the source tree
    dist = importlib.metadata.distribution("culturesim-voter-kind")
    assert Path(dist.locate_file("voter_kind")).parent == plugin["target"]
    assert Path(sys.modules["voter_kind"].__file__).is_relative_to(plugin["target"])
    assert not list(PLUGIN.glob("*.egg-info")) and not (PLUGIN / "build").exists()
    # without that folder on the path, a culturesim process knows no voter kind
    bare = {k: v for k, v in plugin["env"].items() if k != "PYTHONPATH"}
    listed = subprocess.run([sys.executable, "-c", "from culturesim.kinds import kind_names; print(kind_names())"],
                            cwd=REPO, env=bare, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "voter" not in listed.stdout and "gard" in listed.stdout
    with_plugin = subprocess.run([sys.executable, "-c", "from culturesim.kinds import kind_names; print(kind_names())"],
                                 cwd=REPO, env=plugin["env"], capture_output=True, text=True, timeout=60)
    assert "'voter'" in with_plugin.stdout


# ------------------------------------------------------------------------------ validate


def test_validate_says_ok(plugin):
    done = cli(plugin, "validate", str(SCENARIO))
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(rf"{re.escape(str(SCENARIO))}: ok \(voter, {AGENTS} agents, {STEPS} steps, small_world "
                        rf"network with {AGENTS * 4 // 2} edges, no LLM\)", done.stdout.strip()), done.stdout


@pytest.mark.parametrize("old, new, expected", [
    ("  rule: voter", "  rules: voter",
     r"voter\.rules: unknown key \(did you mean 'rule'\?\); allowed here: initial, opinions, rule"),
    ("  initial: [0.5, 0.5]", "  initial: [0.5, 0.3, 0.2]", r"voter\.initial: 3 shares but opinions is 2"),
    ("  rule: voter", "  rule: majority", r"voter\.rule: Input should be 'voter' or 'moran'"),
], ids=["misspelt-key", "cross-check", "bad-value"])
def test_a_bad_key_is_one_error_line_naming_it(plugin, tmp_path, old, new, expected):
    text = SCENARIO.read_text()
    assert old in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(old, new))
    line = 1 + text.splitlines().index(old)
    done = cli(plugin, "validate", str(path))
    assert done.returncode == 2 and done.stdout == ""
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1, done.stderr
    assert re.match(rf"error: {re.escape(str(path))}:{line}: {expected}", errors[0]), errors[0]


# ------------------------------------------------------------------------------ run


def test_run_writes_one_opinion_row_per_agent_per_step(root):
    path = root / "voter-a"
    manifest = json.loads((path / "manifest.json").read_text())
    assert (manifest["kind"], manifest["status"], manifest["steps_completed"], manifest["llm"]) == (
        "voter", "done", STEPS, None)
    table = pl.read_parquet(path / "opinions.parquet")
    assert table.schema == {"step": pl.Int64, "agent_id": pl.Int64, "opinion": pl.Int64, "copied_from": pl.Int64}
    assert table.height == STEPS * AGENTS
    assert table.group_by("step").agg(pl.col("agent_id").sort()).sort("step").rows() == [
        (s, list(range(AGENTS))) for s in range(1, STEPS + 1)]
    assert pl.read_parquet(path / "ideas.parquet").is_empty()  # the core's tables, left empty by this kind
    assert not (root / ".cache" / "llm.sqlite").exists()  # no language model was opened


@pytest.mark.parametrize("run_id", ["voter-a", "moran-a"])
def test_each_step_equals_a_plain_python_recomputation(root, run_id):
    check_dynamics(root / run_id)
    table = pl.read_parquet(root / run_id / "opinions.parquet")
    if run_id == "voter-a":  # every agent of the small-world network listens to someone at every step
        assert table["copied_from"].null_count() == 0


# ------------------------------------------------------------------------------ interrupt and resume


def wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {proc.communicate()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def steps_of(path: Path) -> list[int]:
    return sorted(int(p.stem) for p in (path / "steps").glob("[0-9]*.parquet"))


def assert_same_run(path: Path, reference: Path) -> None:
    for name in ("opinions", "agents", "edges"):
        assert pl.read_parquet(path / f"{name}.parquet").equals(pl.read_parquet(reference / f"{name}.parquet")), name


def test_ctrl_c_then_resume_gives_the_uninterrupted_tables(plugin, root, tmp_path):
    """The first Ctrl-C stops the run after the step in flight; the resume replays the done steps."""
    path = tmp_path / "stopped"
    # every file write paused 0.1 s: a step takes about 0.4 s, time enough to aim the signal
    proc = start_cli(plugin, "run", str(SCENARIO), "--out", str(tmp_path), "-q", "--set", "output.run_id=stopped",
                     **{WRITE_PAUSE_ENV: "0.1"})
    wait_for(lambda: (path / "steps" / "00002.parquet").exists(), proc, "step 2")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    done = steps_of(path)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and 2 <= len(done) < STEPS and done == list(range(1, len(done) + 1))
    assert manifest["steps_completed"] == len(done)
    assert "stopped" in cli(plugin, "runs", str(tmp_path)).stdout  # listed as a run, interrupted
    resumed = cli(plugin, "run", "--resume", str(path), "-q")
    assert resumed.returncode == 0, resumed.stderr
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["steps_completed"] == STEPS
    assert [s["from_step"] for s in manifest["sessions"]] == [1, len(done) + 1]
    assert_same_run(path, root / "voter-a")


def test_sigkill_in_the_middle_of_a_write_then_resume_gives_the_uninterrupted_tables(plugin, root, tmp_path):
    path = tmp_path / "killed"
    proc = start_cli(plugin, "run", str(SCENARIO), "--out", str(tmp_path), "-q", "--set", "output.run_id=killed",
                     "--set", "voter.rule=moran", **{WRITE_PAUSE_ENV: "0.1"})

    def half_written() -> int | None:
        """The step (from 3 on) of a part written to its temporary name and not yet renamed."""
        for folder in ("opinions", "prompts", "steps"):
            for tmp in (path / folder).glob(".*.parquet.*.tmp"):
                step = int(tmp.name.split(".")[1])
                if step >= 3:
                    return step
        return None

    wait_for(lambda: half_written() is not None, proc, "a write from step 3 on")
    proc.kill()
    step = half_written()
    proc.communicate(timeout=30)
    assert step is not None and steps_of(path) == list(range(1, step))  # the step being written is not complete
    assert json.loads((path / "manifest.json").read_text())["status"] == "running"  # it had no time to say more
    resumed = cli(plugin, "run", "--resume", str(path), "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((path / "manifest.json").read_text())["status"] == "done"
    assert not list(path.rglob(".*.tmp"))
    assert_same_run(path, root / "moran-a")


# ------------------------------------------------------------------------------ sweep and listing


def test_sweep_over_the_rule_and_two_replicates(plugin, tmp_path):
    scenario = tmp_path / "voter-sweep.yaml"
    scenario.write_text(SCENARIO.read_text() + "sweep:\n  grid:\n    voter.rule: [voter, moran]\n  replicates: 2\n")
    folder = tmp_path / "results" / "voter-sweep"
    done = cli(plugin, "sweep", str(scenario), "--out", str(folder), "--workers", "2", "-q", timeout=170)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{folder}: 4 done"
    index = pl.read_parquet(folder / "sweep.parquet").sort("cell", "replicate")
    assert index["status"].to_list() == ["done"] * 4
    assert index["voter.rule"].to_list() == ["voter", "voter", "moran", "moran"]
    assert index["seed"].to_list()[:2] == index["seed"].to_list()[2:]  # common random numbers across cells
    for run_id in index["run_id"]:
        check_dynamics(folder / run_id)  # each run is its own cell's dynamics, from its replicate's seed
    listed = cli(plugin, "runs", str(folder))
    assert listed.returncode == 0, listed.stderr
    rows = [cells(line) for line in listed.stdout.splitlines() if line.lstrip("│┃ ").startswith("c00")]
    assert len(rows) == 4 and {r[1] for r in rows} == {"voter"} and {r[3] for r in rows} == {"done"}


def cells(line: str) -> list[str]:
    """The cells of one row of a rich table, as ``culturesim runs`` prints it."""
    return [c.strip() for c in re.split(r"[│┃|]", line)[1:-1]]


def test_culturesim_runs_lists_the_runs_with_their_kind(plugin, root):
    done = cli(plugin, "runs", str(root))
    assert done.returncode == 0, done.stderr
    rows = {c[0]: c for c in map(cells, done.stdout.splitlines()) if c and c[0] in ("voter-a", "moran-a")}
    assert set(rows) == {"voter-a", "moran-a"}
    for row in rows.values():
        assert row[1:5] == ["voter", "voter_quick", "done", f"{STEPS}/{STEPS}"], row


# ------------------------------------------------------------------------------ the app


def expected_shares(path: Path) -> pl.DataFrame:
    """Share of agents holding each opinion after each step (0: the initial placement), with numpy."""
    agents = pl.read_parquet(path / "agents.parquet").sort("agent_id")
    table = pl.read_parquet(path / "opinions.parquet").sort("step", "agent_id")
    held = np.vstack([agents["initial_opinion"].to_numpy(), table["opinion"].to_numpy().reshape(STEPS, AGENTS)])
    return pl.DataFrame({"step": np.arange(STEPS + 1), "opinion_0": (held == 0).mean(axis=1),
                         "opinion_1": (held == 1).mean(axis=1)})


def test_the_run_page_section_draws_the_opinion_shares(plugin, root):
    from dash import html

    from app import create_app
    from app.data import Results
    from app.kinds import load_kind_views, sections_for

    load_kind_views()
    assert [s.title for s in sections_for("voter")] == ["Opinions"]
    res = Results(root)
    for run_id in ("voter-a", "moran-a"):
        body = sections_for("voter")[0].render(res, run_id)
        expected = expected_shares(root / run_id)
        fig = section_graph(body, "voter-shares").figure
        assert [t.name for t in fig.data] == ["opinion 0", "opinion 1"]
        for trace, column in zip(fig.data, ("opinion_0", "opinion_1"), strict=True):
            assert list(trace.x) == list(range(STEPS + 1))
            np.testing.assert_allclose(trace.y, expected[column].to_numpy())
        csv = section_csv(body, "voter-shares")
        assert csv.columns == expected.columns
        np.testing.assert_allclose(csv.drop("step").to_numpy(), expected.drop("step").to_numpy())
        summary = next(c for c in walk(body) if isinstance(c, html.P) and getattr(c, "id", None) == "voter-summary")
        last = expected.row(-1, named=True)
        assert (summary.children.startswith("Consensus") == (last["opinion_0"] in (0.0, 1.0)))
    # the Run page itself (its callback's body) shows the section under its title
    app = create_app(root)
    from app.pages import run as run_page

    with app.server.app_context():
        page = run_page.render("voter-a")
    titles = [c.children for c in walk(page) if isinstance(c, html.H4)]
    assert "Opinions" in titles
    assert not [c for c in walk(page) if "cs-error" in str(getattr(c, "className", "") or "")]


def test_the_run_page_in_a_browser(plugin, browser_app, root):
    from selenium.webdriver.common.by import By
    from test_app_browser import errors_on_page, severe_console, traces, visit, wait_until

    from app.sections import GRAPH, section_id

    duo = browser_app
    visit(duo, "/")
    script = "return [...document.querySelectorAll('#runs-table tbody tr')].map(r => r.innerText)"
    row = wait_until(lambda: next((t for t in duo.driver.execute_script(script) if t.startswith("voter-a")), None),
                     what="voter-a listed")
    assert "voter" in row.split("voter-a", 1)[1]
    visit(duo, "/run?run=voter-a")
    wait_until(lambda: traces(duo, section_id(GRAPH, "voter-shares")) == 2, what="the opinion shares drawn")
    titles = [h.text for h in duo.driver.find_elements(By.CSS_SELECTOR, ".cs-card h4")]
    assert "Opinions" in titles
    summary = duo.find_element("#voter-summary").text
    assert summary.startswith(("Consensus on opinion", "2 opinions held after step 10"))
    assert errors_on_page(duo) == [] and severe_console(duo) == []
