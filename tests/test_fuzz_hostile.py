"""The fuzz of issue 18's "Done when": 1,000 generated scenario files to ``culturesim
validate``, and 1,000 generated results folders to ``culturesim runs``, to the app's run
listing (``app.data.Results.listing``) and to the Runs page's callback.

Each example must end in what the README documents: ``validate`` exits 0 ("ok") or 2 with
one ``error:`` line per problem; ``runs`` exits 0 and lists a bad run as a row with its
error; the listing and the page answer with rows, never an exception. Exit 1 (an
unexpected exception caught by the CLI's last resort) counts as a failure. Nothing may be
written outside the example's own folder: a sentinel tree that scenarios and run files
point at (``../``, absolute paths, symlinks) and the working directory are compared before
and after each example.

The CLI is called in process (``culturesim.cli.main``), so 1,000 examples take seconds
rather than an interpreter start each. Derandomized: CI sees the same 1,000 examples.

Not fuzzed here, and why: the autotelic kind's game generation (``tw-make``, ~5 s a game,
into its game cache by design) is replaced by one game made once; scenarios/autotelic_study.yaml
is left out (~40 s to validate); and the numbers drawn stay small (at most ten times a shipped
value, or 5,000) or beyond the schema's bounds: the schema allows 10^6 agents, and validating a
10^6-agent culture scenario builds its model (~80 s, 2.3 GB).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from culturesim import cli

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted(p for p in (ROOT / "scenarios").glob("*.yaml") if p.name != "autotelic_study.yaml")
FUZZ = settings(max_examples=1000, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


# ------------------------------------------------------------------------------ shared: the sentinel


def snapshot(*folders: Path) -> dict:
    """Every entry under ``folders`` (links not followed) with its type, size and mtime."""
    seen = {}
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                st_ = path.lstat()
                seen[str(path)] = (st_.st_mode, st_.st_size, st_.st_mtime_ns)
    return seen


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory) -> Path:
    """Files outside every example's folder that generated paths and links point at."""
    folder = tmp_path_factory.mktemp("sentinel")
    (folder / "edges.txt").write_text("0 1\n1 2\n2 0\n")
    (folder / "pool.csv").write_text("item,idea\nbrick,a wall\n")
    (folder / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (folder / "binary").write_bytes(bytes(range(256)) * 4)
    (folder / "dir").mkdir()
    (folder / "dir" / "inner.txt").write_text("inner\n")
    return folder


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """An empty working directory: a relative output.dir or cache would land here."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def assert_one_line_errors(err: str) -> None:
    assert "Traceback" not in err, err
    for line in err.strip().splitlines():
        assert line.startswith("error: "), err


# ------------------------------------------------------------------------------ 1. scenario files -> validate

HUGE = [10**6 + 1, 10**9, 2**31, 2**63, 2**64 + 1, 10**30, -(10**30), 1e308, -1e308, 1e-320, math.inf, -math.inf,
        math.nan, "1e400", "9" * 400]
SMALL = st.integers(min_value=-3, max_value=5000)
ODD_TEXT = ["", " ", "\x00", "\ud7ff", "\u202e", "é" * 50, "{item}", "{", "}", "{0}", "%s", "$(rm -rf /)",
            "`id`", "<script>alert(1)</script>", "a" * 2000, "\n\n", "null", "~", "true", "..", "."]


def path_values(sentinel: Path) -> list[str]:
    # the scenario lies in <base>/<test>/scen/, the sentinel in <base>/sentinel<N>/
    up = f"../../{sentinel.name}"
    return [f"{up}/edges.txt", f"{up}/pool.csv", f"{up}/dir", f"{up}/new-folder/x", "../../../../../../etc/passwd",
            "/etc/passwd", str(sentinel / "edges.txt"),
            str(sentinel / "pool.csv"), str(sentinel / "binary"), str(sentinel / "dir"), str(sentinel), "linked.txt",
            "linked-dir/inner.txt", "loop", "~/x", "~", "/", "/dev/zero", "/proc/self/environ", "nonexistent.csv",
            "../", "a\x00b", str(sentinel / "new-folder" / "x")]


def values(sentinel: Path):
    scalar = st.one_of(st.none(), st.booleans(), SMALL, st.sampled_from(HUGE),
                       st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
                       st.sampled_from(ODD_TEXT), st.sampled_from(path_values(sentinel)))
    return st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                        max_leaves=8)


def key_paths(node, prefix=()) -> list[tuple]:
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((*prefix, key))
            out.extend(key_paths(value, (*prefix, key)))
    return out


# keys that name files or folders, set on every scenario whatever its kind
PATH_KEYS = [("exposure", "ai_pool", "file"), ("game", "cache_dir"), ("output", "dir"), ("output", "run_id"),
             ("name",), ("description",)]


def near(value):
    """A number of the same type near a leaf's own (so that many mutations still validate and
    reach the network, the model and the files), or a boundary."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return st.sampled_from([0, 1, -1, 2])
    if isinstance(value, int):
        return st.sampled_from([0, 1, -1, value - 1, value + 1, value * 2, value * 10, 5000, 10**6 + 1])
    return st.sampled_from([0.0, 1.0, -0.0, value / 2, value * 2, 1e-9, 1.0 - 1e-12, 1e308, math.nan])


def mutate(data: dict, draw, sentinel: Path) -> dict:
    for _ in range(draw(st.integers(0, 3))):
        paths = key_paths(data)
        action = draw(st.sampled_from(["near", "near", "near", "set", "delete", "new", "path", "path", "edgelist",
                                       "edgelist", "type"]))
        numeric = [p for p in paths if isinstance(_get(data, p), int | float)]
        if action == "near" and numeric:
            where = draw(st.sampled_from(numeric))
            value = draw(near(_get(data, where)))
        elif action == "path":
            where, value = draw(st.sampled_from(PATH_KEYS)), draw(st.sampled_from(path_values(sentinel)))
        elif action == "edgelist":  # the sentinel's edges.txt holds a triangle: 3 agents
            _set(data, ("population", "size"), 3)
            where = ("network",)
            value = {"topology": "edgelist", "params": {"path": draw(st.sampled_from(path_values(sentinel)))}}
        elif action == "new" or not paths:
            parent = draw(st.sampled_from([(), *[p for p in paths if isinstance(_get(data, p), dict)]]))
            where, value = (*parent, draw(st.text(max_size=10))), draw(values(sentinel))
        else:
            where = draw(st.sampled_from(paths))
            if action == "delete":
                _delete(data, where)
                continue
            old = _get(data, where)
            if action == "type":  # the same content, the wrong shape
                value = [old] if not isinstance(old, list) else {"x": old}
            else:
                value = draw(values(sentinel))
        _set(data, where, value)
    return data


def _get(node, path):
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _set(node, path, value):
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


def _delete(node, path):
    parent = _get(node, path[:-1]) if path[:-1] else node
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


def dump(data: dict, draw) -> bytes:
    """YAML text of ``data``, sometimes cut short or with a byte flipped."""
    try:
        text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode("utf-8", errors="surrogatepass")
    except (ValueError, TypeError, OverflowError, yaml.YAMLError):
        text = b"kind: culture\n"
    cut = draw(st.sampled_from(["whole"] * 8 + ["truncate", "flip"]))
    if cut == "truncate" and text:
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif cut == "flip" and text:
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + bytes([draw(st.integers(0, 255))]) + text[at + 1:]
    return text


@pytest.fixture(scope="module")
def fake_game(tmp_path_factory):
    """One CookingWorld game, made once, standing in for every game an autotelic scenario
    asks for (see the module docstring)."""
    from culturesim.kinds.autotelic import cookingworld

    # the settings of scenarios/autotelic_quick.yaml: a game whose evaluation goals all judge
    settings_ = cookingworld.tw_settings(recipe=2, take=1, go=6, open=True, cook=True, cut=True, drop=False)
    return cookingworld.make_game(settings_, 1, tmp_path_factory.mktemp("games"))


@FUZZ
@given(data=st.data())
def test_generated_scenario_files_validate_or_fail_in_one_line(tmp_path, workdir, sentinel, fake_game, monkeypatch,
                                                              capsys, data):
    from culturesim.kinds.autotelic import model as autotelic_model

    monkeypatch.setattr(autotelic_model, "make_game", lambda settings_, seed, cache: fake_game)
    folder = fresh(tmp_path / "scen")
    (folder / "linked.txt").symlink_to(sentinel / "edges.txt")
    (folder / "linked-dir").symlink_to(sentinel / "dir", target_is_directory=True)
    (folder / "loop").symlink_to(folder / "loop")
    source = data.draw(st.sampled_from(SCENARIOS), label="scenario")
    scenario = mutate(yaml.safe_load(source.read_text(encoding="utf-8")), data.draw, sentinel)
    path = folder / "s.yaml"
    path.write_bytes(dump(scenario, data.draw))
    if data.draw(st.booleans(), label="scenario file is a link"):
        (sentinel.parent / "linked-scenario.yaml").write_bytes(path.read_bytes())
        path.unlink()
        path.symlink_to(sentinel.parent / "linked-scenario.yaml")
    before = snapshot(sentinel, workdir)
    capsys.readouterr()
    code = cli.main(["validate", str(path)])
    out, err = capsys.readouterr()
    event(f"{source.stem}: exit {code}")  # --hypothesis-show-statistics: how many examples got how far
    assert code in (0, 2), (code, err)
    assert_one_line_errors(err)
    assert (code == 0) == (": ok (" in out), (code, out, err)
    assert snapshot(sentinel, workdir) == before


# ------------------------------------------------------------------------------ 2. results folders -> runs, the app


class Files(dict):
    """A run's files as bytes, with a short repr (hypothesis prints fixtures of a failing case)."""

    def __repr__(self) -> str:
        return f"Files({sorted(self)})"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> dict[str, bytes]:
    """The files of one real run (echo model, 3 steps) and of a sweep index, as bytes."""
    from culturesim import runner
    from culturesim import scenario as sc

    out = tmp_path_factory.mktemp("template")
    loaded = sc.validate_data({"kind": "culture", "name": "t", "seed": 1, "steps": 3, "population": {"size": 4},
                               "network": {"topology": "ring"}, "llm": {"model": "echo/x"},
                               "output": {"run_id": "t"}}, "template")
    run = runner.start(loaded, out=out, show_progress=False)
    files = Files({p.relative_to(run.path).as_posix(): p.read_bytes() for p in run.path.rglob("*")
                   if p.is_file() and not p.name.startswith(".")})
    import polars as pl

    index = out / "sweep.parquet"
    pl.DataFrame({"run_id": ["r0", "r1"], "cell": [0, 1], "status": ["done", "failed"],
                  "culture.operation": ["combine", "transform"]}).write_parquet(index)
    files["sweep.parquet"] = index.read_bytes()
    files["sweep.json"] = json.dumps({"scenario": loaded.model_dump(mode="json"), "runs": 2}).encode()
    return files


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
              st.sampled_from(HUGE[:8])),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=10)


def _json_bytes(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def file_content(draw, good: bytes, sentinel: Path, *, is_json: bool):
    """Bytes for one file of a run, or ("link", target) / ("dir",) for what is not a file."""
    choice = draw(st.sampled_from(["good", "good", "json", "field", "drop", "bytes", "truncate", "utf8", "link",
                                   "dir", "empty"]))
    if choice == "good":
        return good
    if choice == "json":
        return _json_bytes(draw(json_values))
    if choice in ("field", "drop") and is_json:
        try:
            value = json.loads(good)
        except ValueError:
            return good
        if isinstance(value, dict) and value:
            key = draw(st.sampled_from(sorted(value)))
            if choice == "drop":
                value.pop(key)
            else:
                value[key] = draw(json_values)
        return _json_bytes(value)
    if choice == "bytes":
        return draw(st.binary(max_size=200))
    if choice == "truncate":
        return good[: draw(st.integers(0, max(0, len(good) - 1)))]
    if choice == "utf8":
        return b"\xff\xfe" + good[:50] + b"\xc3\x28"
    if choice == "link":
        return ("link", draw(st.sampled_from([sentinel / "passwd", sentinel / "binary", sentinel / "dir",
                                              sentinel / "missing", Path("loop"), Path("/dev/null")])))
    if choice == "dir":
        return ("dir",)
    return b""


def place(path: Path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content[0] == "dir":
        path.mkdir()
    else:
        target = content[1]
        path.symlink_to(path if str(target) == "loop" else target)


def make_run_folder(draw, folder: Path, template: dict, sentinel: Path) -> None:
    names = [n for n in template if n not in ("sweep.json", "sweep.parquet")]
    touched = draw(st.lists(st.sampled_from(names), max_size=4, unique=True))
    for name in names:
        if name in touched:
            place(folder / name, file_content(draw, template[name], sentinel, is_json=name.endswith(".json")))
        else:
            place(folder / name, template[name])
    if "manifest.json" not in touched and draw(st.booleans()):  # a manifest that is the whole run's link
        target = sentinel.parent / f"manifest-{folder.name}.json"
        target.write_bytes(template["manifest.json"])
        (folder / "manifest.json").unlink()
        (folder / "manifest.json").symlink_to(target)


def make_results(draw, root: Path, template: dict, sentinel: Path) -> None:
    for i in range(draw(st.integers(1, 3))):
        shape = draw(st.sampled_from(["run", "run", "sweep", "linked-run"]))
        folder = root / f"r{i}"
        if shape == "run":
            make_run_folder(draw, folder, template, sentinel)
        elif shape == "linked-run":  # a run folder that is a link out of the results folder
            target = sentinel.parent / f"outside-run-{i}"
            shutil.rmtree(target, ignore_errors=True)
            make_run_folder(draw, target, template, sentinel)
            folder.symlink_to(target, target_is_directory=True)
        else:
            folder.mkdir()
            for name in ("sweep.json", "sweep.parquet"):
                if draw(st.booleans()):
                    place(folder / name, file_content(draw, template[name], sentinel, is_json=name.endswith("json")))
            for j in range(draw(st.integers(0, 2))):
                make_run_folder(draw, folder / f"m{j}", template, sentinel)


def runs_page(app, root_res) -> int:
    """The Runs page's table callback, asked over HTTP as the browser asks it."""
    key = next(k for k in app.callback_map if "runs-table.children" in k)
    ids = ["runs-table.children", "runs-count.children", "runs-signature.data", "runs-kind.options",
           "runs-status.options"]
    body = {"output": key,
            "outputs": [{"id": i.split(".")[0], "property": i.split(".")[1]} for i in ids],
            "inputs": [{"id": "runs-filter", "property": "value", "value": None},
                       {"id": "runs-kind", "property": "value", "value": None},
                       {"id": "runs-status", "property": "value", "value": None},
                       {"id": "runs-members", "property": "value", "value": ["members"]},
                       {"id": "runs-tick", "property": "n_intervals", "value": 1}],
            "state": [{"id": "runs-signature", "property": "data", "value": None}],
            "changedPropIds": ["runs-tick.n_intervals"]}
    root_res.cache.clear()
    reply = app.server.test_client().post("/_dash-update-component", json=body)
    assert reply.status_code == 200, reply.text[:500]
    return reply.status_code


@pytest.fixture(scope="module")
def runs_app(tmp_path_factory):
    from app import create_app

    root = tmp_path_factory.mktemp("app-results")
    app = create_app(root)
    return app, root


@FUZZ
@given(data=st.data())
def test_generated_results_folders_list_with_error_rows(tmp_path, workdir, sentinel, template, runs_app, capsys, data):
    from app.data import Results

    app, root = runs_app
    fresh(root)
    make_results(data.draw, root, template, sentinel)
    before = snapshot(sentinel, workdir)
    capsys.readouterr()
    assert cli.main(["runs", str(root)]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in out and not err, err
    entries = Results(root).listing()
    for folder in sorted(root.iterdir()):
        if (folder / "manifest.json").is_file() and not folder.is_symlink():
            (entry,) = [e for e in entries if e.id == folder.name]
            assert entry.status != "?" or entry.error, entry
    assert all("\n" not in (e.error or "") for e in entries)
    runs_page(app, app.server.config["CULTURESIM_RESULTS"])
    assert snapshot(sentinel, workdir) == before
