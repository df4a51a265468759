"""What a caller who reaches the app can make it read, write or send (issue 18, item 3 and
the app's smaller items): nothing outside the results folder, no key the app was not
started with, no page for a Host it does not serve, no 500 for a wrong-typed callback input.

The launch page is driven over HTTP (the Dash callback route), as a browser would."""
# ruff: noqa: F811 - fixtures imported from conftest_app are used as test arguments

from __future__ import annotations

import http.client
import itertools
import json
import logging
import os
import socket
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest
from conftest_app import REPO, results_dir  # noqa: F401 - fixture

pytest.importorskip("dash")

from app import create_app  # noqa: E402
from app.guard import allowed_hosts  # noqa: E402

SECRET = "SECRET-TOKEN-5f3a9"
SCENARIO = """kind: culture
name: reach
steps: 1
population: {size: 2}
llm: {model: echo/x}
"""


@pytest.fixture
def place(tmp_path):
    """A results folder, a folder beside it holding a secret edge list, and a link inside
    the results folder that points out to it."""
    root = tmp_path / "results"
    root.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    # a header line: today's edge-list reader quotes it back in its error
    (outside / "edges.csv").write_text(f"from,{SECRET}\n0,1\n")
    (root / "link").symlink_to(outside, target_is_directory=True)
    return root, outside


def launch_key(app) -> str:
    return next(k for k in app.callback_map if "launch-msg.children" in k)


def press(app, client, text: str, button: str = "launch-validate", rel: str | None = None):
    """Validate or Start on the launch page, over the callback route; the response's text."""
    key = launch_key(app)
    outputs = [{"id": "launch-msg", "property": "children"},
               {"id": "launch-jobs", "property": "children@" + key.split("@", 1)[1].split(".", 1)[0]}]
    body = {"output": key, "outputs": outputs,
            "inputs": [{"id": b, "property": "n_clicks", "value": 1 if button == b else None}
                       for b in ("launch-validate", "launch-start")],
            "state": [{"id": "launch-file", "property": "value", "value": rel},
                      {"id": "launch-text", "property": "value", "value": text}],
            "changedPropIds": [f"{button}.n_clicks"]}
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.text
    return response.get_data(as_text=True)


def started(app) -> list:
    return app.server.config["CULTURESIM_LAUNCHER"].listing()


# ------------------------------------------------------------------ files outside the folder


@pytest.mark.parametrize("where", ["absolute", "symlink"])
def test_an_edgelist_outside_the_results_folder_is_refused_and_never_shown(place, where):
    root, outside = place
    path = outside / "edges.csv" if where == "absolute" else root / "link" / "edges.csv"
    text = SCENARIO + f"network: {{topology: edgelist, params: {{path: '{path}'}}}}\n"
    app = create_app(root)
    client = app.server.test_client()
    for button in ("launch-validate", "launch-start"):
        shown = press(app, client, text, button)
        assert SECRET not in shown
        assert "outside the results folder" in shown and "network.params" in shown
    assert started(app) == []


def test_an_edgelist_inside_the_results_folder_is_used(place):
    root, _ = place
    (root / "data").mkdir()
    (root / "data" / "edges.csv").write_text("0,1\n")
    text = SCENARIO + f"network: {{topology: edgelist, params: {{path: '{root / 'data' / 'edges.csv'}'}}}}\n"
    app = create_app(root)
    shown = press(app, app.server.test_client(), text)
    assert "reach: valid (culture, 1 steps)" in shown


def test_a_listed_file_beside_the_results_folder_runs_but_its_neighbours_are_not_read(place):
    """A scenario file offered from the results folder's parent: its ``output.dir: results`` is
    the working directory's (inside); an edge list beside it is outside."""
    root, _ = place
    (root.parent / "scen").mkdir()
    listed = root.parent / "scen" / "quick.yaml"
    listed.write_text(SCENARIO + "output: {dir: results}\n")
    (root.parent / "scen" / "edges.csv").write_text(f"from,{SECRET}\n")
    app = create_app(root)
    client = app.server.test_client()
    assert "reach: valid" in press(app, client, listed.read_text(), rel="scen/quick.yaml")
    listed.write_text(SCENARIO + "network: {topology: edgelist, params: {path: edges.csv}}\n")
    shown = press(app, client, listed.read_text(), rel="scen/quick.yaml")
    assert "outside the results folder" in shown and SECRET not in shown


# every path a built-in kind's scenario may name, each placed outside the folder
PATHS = {
    "network.params.path": SCENARIO + "network: {topology: edgelist, params: {path: '{p}/edges.csv'}}\n",
    "output.dir": SCENARIO + "output: {dir: '{p}/runs'}\n",
    "llm.model": SCENARIO.replace("model: echo/x", "model: 'local/{p}/model.gguf'"),
    "exposure.ai_pool.file": "kind: exposure\nname: r\nsteps: 1\nllm: {model: echo/x}\n"
                             "exposure: {ai_pool: {file: '{p}/pool.csv'}}\n",
    "exposure.ai_pool.llm.model": "kind: exposure\nname: r\nsteps: 1\nllm: {model: echo/x}\n"
                                  "exposure: {ai_pool: {llm: {model: 'local/{p}/m.gguf'}}}\n",
    "game.cache_dir": "kind: autotelic\nname: r\nsteps: 1\npopulation: {size: 2}\nllm: {model: echo/x}\n"
                      "game: {cache_dir: '{p}/games'}\n",
    "matechoice.problem.csv.path": "kind: matechoice\nname: r\nsteps: 1\nmatechoice: {population: 4, problem: "
                                   "{name: csv, csv: {path: '{p}/d.csv', target: y}}}\n",
    "matechoice.problem.csv.test_path": "kind: matechoice\nname: r\nsteps: 1\nmatechoice: {population: 4, problem: "
                                        "{name: csv, csv: {path: d.csv, target: y, test_path: '{p}/t.csv'}}}\n",
}


def confined_validate(root: Path, text: str, *extra: str) -> subprocess.CompletedProcess:
    file = root / "s.yaml"
    file.write_text(text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "culturesim.cli", "validate", str(file), "--confine", str(root),
                           *extra], capture_output=True, text=True, env=env, cwd=root, timeout=120)


@pytest.mark.parametrize("key", sorted(PATHS))
def test_every_path_key_of_the_built_in_kinds_is_confined(place, key):
    """Refused before anything is read or written: no games folder appears outside."""
    root, outside = place
    (root / "d.csv").write_text("x,y\n1,2\n2,3\n")
    done = confined_validate(root, PATHS[key].replace("{p}", str(outside)))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "outside the results folder" in lines[0] and key.rsplit(".", 1)[0] in lines[0]
    assert sorted(p.name for p in outside.iterdir()) == ["edges.csv"]  # nothing written there


def _path_fields(model, prefix=()) -> typing.Iterator[tuple[tuple[str, ...], object]]:
    from pydantic import BaseModel

    for name, field in model.model_fields.items():
        yield (*prefix, name), field
        for arg in (field.annotation, *typing.get_args(field.annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                yield from _path_fields(arg, (*prefix, name))


def test_every_field_named_like_a_path_is_declared_a_path():
    """A kind's path field must be ``PathStr`` (its value is then confined); a field called
    ...path, ...file or ...dir that is a plain string would slip past the app's confinement."""
    from culturesim import confine
    from culturesim.kinds import all_kinds

    unmarked = []
    for kind in all_kinds():
        for path, field in _path_fields(kind.load_schema()):
            if not path[-1].endswith(("path", "file", "dir")):
                continue
            checks = (confine.check_path, confine.check_output_path)
            marked = any(getattr(m, "func", None) in checks for m in field.metadata) or any(
                getattr(m, "func", None) in checks
                for arg in typing.get_args(field.annotation) for m in getattr(arg, "__metadata__", ()))
            if not marked:
                unmarked.append(f"{kind.name}: {'.'.join(path)}")
    assert unmarked == []


# ------------------------------------------------------------------ keys and the environment


def test_a_key_variable_the_app_was_not_started_with_is_refused(place):
    root, _ = place
    text = SCENARIO.replace("model: echo/x", "model: openai/x, api_base: 'http://127.0.0.1:9/v1', "
                            "api_key_env: HOME")
    app = create_app(root)
    client = app.server.test_client()
    for button in ("launch-validate", "launch-start"):
        shown = press(app, client, text, button)
        assert "llm.api_key_env" in shown and "not one the app may hand" in shown and "--allow-key-env HOME" in shown
    assert started(app) == []
    allowed = create_app(root, allow_key_env=["HOME"])
    assert "reach: valid" in press(allowed, allowed.server.test_client(), text)


def test_only_the_allowed_key_reaches_the_job_and_the_server(place, monkeypatch):
    """The fake server records the Authorization header; the job's environment (read from
    /proc while it runs) holds the allowed key and none of the app's other variables."""
    from culturesim.testing.fakeserver import FakeServer

    root, _ = place
    monkeypatch.setenv("CS_TEST_KEY", "key-allowed-77")
    monkeypatch.setenv("SECRET_X", "secret-never-passed")
    app = create_app(root, allow_key_env=["CS_TEST_KEY"])
    client = app.server.test_client()
    with FakeServer() as server:
        text = SCENARIO.replace("steps: 1", "steps: 3").replace(
            "model: echo/x", f"model: openai/slow0.3, api_base: '{server.base_url}', api_key_env: CS_TEST_KEY, "
                             f"cache: false")
        refused = press(app, client, text.replace("api_key_env: CS_TEST_KEY", "api_key_env: SECRET_X"), "launch-start")
        assert "not one the app may hand" in refused and started(app) == []
        shown = press(app, client, text, "launch-start")
        assert "started, writing" in shown
        (job,) = started(app)
        deadline = time.monotonic() + 60
        while not server.headers:
            assert job.proc.poll() is None, job.log_tail()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        raw = Path(f"/proc/{job.proc.pid}/environ").read_bytes()
        env = dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
        assert job.proc.wait(timeout=60) == 0, job.log_tail()
        assert {h.get("authorization") for h in server.headers} == {"Bearer key-allowed-77"}
    assert env["CS_TEST_KEY"] == "key-allowed-77"
    assert "SECRET_X" not in env and "secret-never-passed" not in raw.decode()
    assert Path(env["HOME"]).resolve().is_relative_to(root.resolve())
    assert env["CULTURESIM_CONFINE"] == str(root.resolve())
    assert set(env) <= {"PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TMPDIR",
                        "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES",
                        "PYTHONPATH", "HOME", "CULTURESIM_CACHE_DIR", "LITELLM_LOCAL_MODEL_COST_MAP",
                        "PYTHONUNBUFFERED", "HF_HUB_OFFLINE", "CULTURESIM_CONFINE", "CULTURESIM_ALLOW_KEY_ENV",
                        "CS_TEST_KEY"}


# ------------------------------------------------------------------ the Host header


HOSTS = [("127.0.0.1:8050", 200), ("localhost:8050", 200), ("[::1]:8050", 200), ("LOCALHOST", 200),
         ("evil.example:8050", 400), ("127.0.0.1.evil.example", 400), ("", 400), ("localhost.:8050", 400)]


def test_requests_for_a_host_not_served_are_refused(place, caplog):
    root, _ = place
    client = create_app(root).server.test_client()
    for (host, status), (path, method) in itertools.product(
            HOSTS, (("/", "get"), ("/_dash-layout", "get"), ("/_dash-update-component", "post"))):
        response = getattr(client, method)(path, headers={"Host": host}, json={} if method == "post" else None)
        refused = response.status_code == 400 and "not served here" in response.get_data(as_text=True)
        assert refused == (status == 400), (host, path, response.status_code)
        if status == 200 and method == "get":
            assert response.status_code == 200
    assert not any(r.exc_info for r in caplog.records)


def test_allowed_names_are_served_and_others_not(place, monkeypatch):
    root, _ = place
    app = create_app(root, hosts=allowed_hosts("0.0.0.0", ["lab.example"]))
    client = app.server.test_client()
    assert client.get("/", headers={"Host": "lab.example:8050"}).status_code == 200
    assert client.get("/", headers={"Host": "evil.example:8050"}).status_code == 400
    app = create_app(root, hosts=allowed_hosts("10.1.2.3"))
    assert app.server.test_client().get("/", headers={"Host": "10.1.2.3:8050"}).status_code == 200
    # gunicorn's entry reads the names from the environment
    import importlib

    import app.wsgi as wsgi

    monkeypatch.setenv("CULTURESIM_RESULTS", str(root))
    monkeypatch.setenv("CULTURESIM_ALLOWED_HOSTS", "proxy.example, other.example")
    wsgi = importlib.reload(wsgi)
    client = wsgi.server.test_client()
    assert client.get("/", headers={"Host": "proxy.example"}).status_code == 200
    assert client.get("/", headers={"Host": "localhost:1"}).status_code == 200
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_culturesim_app_refuses_foreign_hosts_over_http(place):
    """The real server started by ``culturesim app``, asked with raw Host headers."""
    root, _ = place
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "culturesim.cli", "app", str(root), "--port", str(port),
                             "--allow-host", "lab.example"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)

        def status(host: str) -> int:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.putrequest("GET", "/_dash-layout", skip_host=True)
            conn.putheader("Host", host)
            conn.endheaders()
            code = conn.getresponse().status
            conn.close()
            return code

        assert status(f"127.0.0.1:{port}") == 200
        assert status(f"lab.example:{port}") == 200
        assert status(f"attacker.example:{port}") == 400
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0].decode()
    assert "Traceback" not in out


# ------------------------------------------------------------------ wrong-typed callback inputs

BAD_VALUES = [["a", "b"], {"x": 1}, None, 10**30, 1e308, "x" * 2000]


def _dep(dep: dict, value) -> dict | list:
    if isinstance(dep["id"], dict) or str(dep["id"]).startswith("{"):
        return []  # a pattern-matching input: no component matched
    return {"id": dep["id"], "property": dep["property"], "value": value}


def _payload(key: str, cb: dict, value_at) -> dict:
    outs = cb["output"] if isinstance(cb["output"], list) else [cb["output"]]
    outputs = [[] if isinstance(o.component_id, dict) else {"id": o.component_id, "property": o.component_property}
               for o in outs]
    inputs = [_dep(d, value_at(i)) for i, d in enumerate(cb["inputs"])]
    state = [_dep(d, value_at(len(inputs) + i)) for i, d in enumerate(cb["state"])]
    changed = [f"{d['id']}.{d['property']}" for d in cb["inputs"] if isinstance(d["id"], str)][:1]
    return {"output": key, "outputs": outputs if isinstance(cb["output"], list) else outputs[0],
            "inputs": inputs, "state": state, "changedPropIds": changed}


def test_wrong_typed_inputs_to_every_callback_give_no_500(results_dir, caplog):
    """Each registered callback, each input in turn given each wrong value (the others a real
    run id, so the wrong one reaches the page's code), then all at once."""
    caplog.set_level(logging.WARNING)
    app = create_app(results_dir["root"])
    client = app.server.test_client()
    client.get("/")
    client.get("/_dash-dependencies")
    failures, sent = [], 0
    for key, cb in list(app.callback_map.items()):
        positions = len(cb["inputs"]) + len(cb["state"])
        for bad in BAD_VALUES:
            for pos in (None, *range(positions)):
                def value_at(i, pos=pos, bad=bad):
                    return bad if pos is None or i == pos else "alpha"

                response = client.post("/_dash-update-component", json=_payload(key, cb, value_at))
                sent += 1
                if response.status_code >= 500:
                    failures.append((key, repr(bad)[:20], pos, response.status_code))
    assert sent > 300 and failures == []
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    # the refusals are logged on one line each, naming the callback
    assert any("refused its input" in r.getMessage() for r in caplog.records)
    # a payload that is no callback request at all
    for body in ({}, {"output": 5}, {"output": "x.y", "inputs": "nope"}, []):
        assert client.post("/_dash-update-component", json=body).status_code < 500
    assert json.loads(client.get("/_dash-dependencies").get_data())


def test_sweep_cells_are_confined_like_the_base_scenario(place):
    root, outside = place
    (root / "e.csv").write_text("0,1\n")
    text = SCENARIO + ("network: {topology: edgelist, params: {path: e.csv}}\n"
                       f"sweep: {{grid: {{network.params.path: [e.csv, '{outside}/edges.csv'], "
                       "llm.api_key_env: [null, HOME]}}\n")
    done = confined_validate(root, text)
    assert done.returncode == 2 and SECRET not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert sum("outside the results folder" in line for line in lines) == 2  # cells 2 and 3
    assert sum("'HOME' is not one the app may hand" in line for line in lines) == 2  # cells 1 and 3
    assert confined_validate(root, text, "--allow-key-env", "HOME").stderr.count("outside the results folder") == 2


def test_group_and_agent_llm_keys_are_confined_like_the_scenarios(place):
    """A group's or one agent's ``llm`` keys reach a model file and a key variable just as the
    scenario's own block does, so they are checked the same way."""
    root, outside = place
    text = SCENARIO + ("groups:\n  served: {ids: [1], llm: {model: openai/x, api_base: 'http://127.0.0.1:9/v1', "
                       "api_key_env: HOME}}\n"
                       f"agents:\n  0: {{llm: {{model: 'local/{outside}/m.gguf'}}}}\n")
    done = confined_validate(root, text)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 2, done.stderr
    assert "groups.served.llm.api_key_env" in lines[0] and "'HOME' is not one the app may hand" in lines[0]
    assert "agents.0.llm.model" in lines[1] and "outside the results folder" in lines[1]
    allowed = confined_validate(root, text, "--allow-key-env", "HOME")
    assert allowed.returncode == 2 and allowed.stderr.count("error:") == 1
