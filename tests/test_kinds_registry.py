"""One test over the registry: every built-in kind is found through its entry point, its
parts load (schema, model, tables, measures, report, view, importers), and its quick
scenario runs for a step or two through the real runner and writes what it declares.

Like Mesa's examples, where one test steps every model, a kind that breaks its contract
fails here whatever its own tests cover. The models are the deterministic ``echo/``
stand-in (every ``llm`` block of the scenario, nested ones included): the real model is
exercised by test_run_embedded.py and the kinds' own tests.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from pathlib import Path

import polars as pl
import pytest
import yaml

from culturesim import runner
from culturesim.kinds import UnknownKind, get_kind, kind_names
from culturesim.kinds.contract import KindModel
from culturesim.kinds.spec import load
from culturesim.scenario import ScenarioBase, ScenarioError, validate_data
from culturesim.store import RunDir

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
BUILT_IN = [ep.name for ep in importlib.metadata.entry_points(group="culturesim.kinds")
            if ep.value.startswith("culturesim.kinds.")]


def quick_scenario(kind: str) -> Path:
    """The kind's quick scenario in scenarios/: the smallest file of that kind named *quick*."""
    found = [p for p in sorted(SCENARIOS.glob("*.yaml"))
             if "quick" in p.stem and (yaml.safe_load(p.read_text()) or {}).get("kind") == kind]
    assert found, f"no quick scenario of kind {kind!r} in {SCENARIOS}"
    return found[0]


def on_echo(data):
    """Every ``llm`` block, however deep, on the instant stand-in model."""
    if isinstance(data, dict):
        return {k: ({**on_echo(v), "model": "echo/registry"} if k == "llm" and isinstance(v, dict) else on_echo(v))
                for k, v in data.items()}
    return [on_echo(v) for v in data] if isinstance(data, list) else data


def test_the_five_studies_are_registered_through_entry_points():
    assert set(BUILT_IN) == {"culture", "exposure", "matechoice", "autotelic", "gard"}
    assert set(BUILT_IN) <= set(kind_names())
    with pytest.raises(UnknownKind, match="no kind 'nope' is installed; known: .*culture"):
        get_kind("nope")


def test_an_unknown_kind_in_a_scenario_lists_the_registered_ones():
    with pytest.raises(ScenarioError, match=r"kind: 'cultur' \(did you mean 'culture'\?\); allowed: .*gard"):
        validate_data({"kind": "cultur", "name": "x", "steps": 1}, "t.yaml")


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_kind_loads_its_parts(name):
    kind = get_kind(name)
    assert kind.name == name and kind.description
    assert issubclass(kind.load_schema(), ScenarioBase)
    model = kind.load_model()
    assert issubclass(model, KindModel)
    assert model.resume in ("restore", "replay") and model.progress in ("requests", "steps")
    tables = kind.load_tables()
    assert all(isinstance(schema, dict) and schema for schema in tables.values())
    if kind.measures:
        assert kind.load_measures() is not None
    if kind.report:
        assert callable(kind.load_report())
    if kind.view:
        kind.load_view()  # registers its sections with the app
        from app.kinds import price_source, sections_for

        assert sections_for(name) or price_source(name)
    for path in kind.importers.values():
        assert callable(load(path))


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_kind_runs_its_quick_scenario(name, tmp_path):
    path = quick_scenario(name)
    data = on_echo(yaml.safe_load(path.read_text()))
    data.update(steps=2, output={"run_id": f"registry-{name}"})
    scenario = validate_data(data, str(path))
    run = runner.start(scenario, out=tmp_path, base_dir=SCENARIOS, show_progress=False)
    manifest = run.read_manifest()
    assert manifest["status"] == "done" and manifest["kind"] == name
    model = runner.model_class(name)
    assert manifest["steps_completed"] == 2 - manifest["first_step"] + 1 == len(run.completed_steps())
    assert pl.read_parquet(run.path / "agents.parquet").height > 0
    declared = get_kind(name).load_tables()
    written = {p.stem for p in run.path.glob("*.parquet")} - {"ideas", "prompts", "agents", "edges"}
    assert written <= set(declared), f"tables written but not declared in the kind's tables module: {written}"
    assert written or run.ideas().height, "the run wrote neither ideas nor tables of its own"
    if model.uses_llm:
        assert run.ideas()["model"].drop_nulls().unique().to_list() in (["echo/registry"], [])
    assert RunDir(run.path).idea_counts() == manifest["counts"]


@pytest.fixture
def broken_plugin(monkeypatch):
    """An installed entry point whose module does not exist (a half-installed plug-in), and an
    in-process kind whose view does not import."""
    from culturesim.kinds import register, registry, unregister

    eps = dict(registry._entry_points())
    eps["ghost"] = importlib.metadata.EntryPoint(name="ghost", value="no_such_plugin_module:KIND",
                                                 group=registry.GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: eps)
    registry.get_kind.cache_clear()
    from culturesim.kinds import Kind

    register(Kind(name="badview", schema="x:Y", model="x:Y", tables="x", view="no_such_view_module"))
    yield
    unregister("badview")
    registry.get_kind.cache_clear()


def test_a_broken_plug_in_takes_no_other_kind_down(broken_plugin, tmp_path):
    from culturesim.kinds import KindLoadError, all_kinds

    with pytest.raises(KindLoadError, match="kind 'ghost' .*no_such_plugin_module.*could not be loaded: "
                                            "ModuleNotFoundError"):
        get_kind("ghost")
    with pytest.warns(RuntimeWarning, match="ghost"):
        names = [k.name for k in all_kinds()]
    assert set(BUILT_IN) <= set(names) and "ghost" not in names
    # a scenario of that kind gets one line naming the file and the broken kind, not a traceback
    with pytest.raises(ScenarioError, match=r"^s\.yaml: kind: kind 'ghost' .* could not be loaded"):
        validate_data({"kind": "ghost", "name": "x", "steps": 1}, "s.yaml")
    # the app starts; the broken view's runs show its error where the sections would be
    from app.kinds import load_kind_views, sections_for

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_kind_views()
    said = " ".join(str(w.message) for w in caught if w.category is RuntimeWarning)
    assert "'ghost'" in said and "'badview' kind's view" in said
    (section,) = sections_for("badview")
    with pytest.raises(RuntimeError, match="no_such_view_module"):
        section.render(None, "run")
    assert sections_for("gard")
