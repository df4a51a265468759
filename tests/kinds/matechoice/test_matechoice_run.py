"""The matechoice kind end to end: reproducibility, the recorded tables checked against
values recomputed from the individuals, resume after a crash, networks and bad input."""

from __future__ import annotations

import math
from pathlib import Path

import networkx as nx
import numpy as np
import polars as pl
import pytest
import test_gp_reference as ref  # the reference module in tests/
from scipy import stats

from culturesim import runner
from culturesim.kinds.matechoice.model import MateChoiceModel
from culturesim.scenario import ScenarioError, load, validate_data
from culturesim.store import RunDir
from culturesim.sweep import cells


def scenario(**spec):
    seed = spec.pop("seed", 5)
    steps = spec.pop("steps", 5)
    extra = spec.pop("extra", {})
    base = {"population": 40, "mode": "pimp", "diversity_sample": 10, "problem": {"name": "koza1"}}
    base.update(spec)
    return validate_data({"kind": "matechoice", "name": "t", "seed": seed, "steps": steps, "matechoice": base,
                          **extra}, "test")


def history(sc) -> list[dict]:
    model = MateChoiceModel(sc, MateChoiceModel.build_graph(sc))
    rows = []
    for _ in range(sc.steps + 1):
        rows.append(model.step().tables)
    return rows


def test_a_fixed_seed_reproduces_a_run_and_another_seed_does_not():
    a, b = history(scenario(steps=3)), history(scenario(steps=3))
    assert a == b
    c = history(scenario(steps=3, seed=6))
    assert [r["generations"] for r in c] != [r["generations"] for r in a]


def test_run_through_the_runner_writes_tables_that_match_the_individuals(tmp_path):
    sc = scenario(steps=4, problem={"name": "keijzer6"})
    run = runner.start(sc, out=tmp_path, show_progress=False)
    manifest = run.read_manifest()
    assert manifest["status"] == "done" and manifest["steps_completed"] == 5 and manifest["llm"] is None
    gens = pl.read_parquet(run.path / "generations.parquet").sort("step")
    ind = pl.read_parquet(run.path / "individuals.parquet")
    assert gens["step"].to_list() == [0, 1, 2, 3, 4] and ind.height == 5 * 40
    assert pl.read_parquet(run.path / "agents.parquet")["agent_id"].to_list() == list(range(40))
    x = np.arange(1, 51, dtype=float)
    target = np.cumsum(1 / x)
    xt = np.arange(1, 121, dtype=float)
    target_t = np.cumsum(1 / xt)
    for row in gens.iter_rows(named=True):
        g = ind.filter(pl.col("step") == row["step"]).sort("slot")
        fit = g["fitness"].to_numpy()
        assert row["best_train"] == pytest.approx(fit.min()) and row["median_train"] == pytest.approx(np.median(fit))
        assert row["median_test"] == pytest.approx(np.median(g["test_error"].to_numpy()))
        assert row["unique_structures"] == g["genome"].n_unique()
        assert row["mean_size"] == pytest.approx(g["size"].mean()) and row["mean_depth"] == pytest.approx(
            g["depth"].mean())
        _, counts = np.unique(np.round(fit, 10), return_counts=True)
        assert row["unique_fitness"] == len(counts)
        assert row["fitness_entropy"] == pytest.approx(stats.entropy(counts))
        singles = [("(" not in p) for p in g["preference"]]
        assert row["pref_single_node_share"] == pytest.approx(np.mean(singles))
        # every recorded genome, re-read from its text and evaluated point by point
        outs = [ref.outputs(ref.parse(t), [x], ["x"]) for t in g["genome"]]
        assert [ref.rmse(o, target) for o in outs] == pytest.approx(fit.tolist(), rel=1e-6)
        success = [all(abs(a - b) <= 0.01 for a, b in zip(o, target, strict=True)) for o in outs]
        assert row["n_success"] == sum(success) and row["success"] == any(success)
        best = int(np.argmin(fit))
        assert row["best_test"] == pytest.approx(ref.rmse(ref.outputs(ref.parse(g["genome"][best]), [xt], ["x"]),
                                                          target_t), rel=1e-6)
        outputs = np.array(outs)
        finite = outputs[np.all(np.isfinite(outputs), axis=1)]
        pairs = [math.sqrt(np.mean((finite[i] - finite[j]) ** 2)) for i in range(len(finite))
                 for j in range(i + 1, len(finite))]
        assert row["mean_output_distance"] == pytest.approx(np.mean([p for p in pairs if math.isfinite(p)]))
    # lineage: parents are individuals of the previous generation; an elite is its parent unchanged
    for step in range(1, 5):
        now, before = ind.filter(pl.col("step") == step), ind.filter(pl.col("step") == step - 1)
        ids = set(before["individual_id"].to_list())
        assert set(now["parent1"].to_list()) <= ids
        assert set(now["parent2"].drop_nulls().to_list()) <= ids
        elites = now.filter(pl.col("elite"))
        assert elites.height == 1 and elites["parent2"][0] is None
        genome_of = dict(zip(before["individual_id"], before["genome"], strict=True))
        assert elites["genome"][0] == genome_of[elites["parent1"][0]]
        assert elites["fitness"][0] == before["fitness"].min()


def test_resume_after_a_crash_gives_the_tables_of_an_uninterrupted_run(tmp_path, monkeypatch):
    sc = scenario(steps=6, mode="pimp", distance="structural", population=30)
    whole = runner.start(sc, out=tmp_path / "a", show_progress=False)
    original = MateChoiceModel._records

    def crash(self, generation):
        if generation == 4:
            raise RuntimeError("killed")
        return original(self, generation)

    monkeypatch.setattr(MateChoiceModel, "_records", crash)
    with pytest.raises(RuntimeError, match="killed"):
        runner.start(sc, out=tmp_path / "b", show_progress=False)
    broken = RunDir(tmp_path / "b" / sc.output.run_id) if sc.output.run_id else RunDir(
        next((tmp_path / "b").iterdir()))
    assert broken.read_manifest()["status"] == "failed" and broken.completed_steps() == [0, 1, 2, 3]
    monkeypatch.setattr(MateChoiceModel, "_records", original)
    resumed = runner.resume(broken.path, show_progress=False)
    assert resumed.read_manifest()["status"] == "done"
    for name in ("generations", "individuals"):
        a = pl.read_parquet(whole.path / f"{name}.parquet")
        b = pl.read_parquet(resumed.path / f"{name}.parquet")
        assert a.height > 0 and a.equals(b), name


def test_record_individuals_off_and_a_network_population(tmp_path):
    sc = scenario(steps=3, population=30, record_individuals=False)
    run = runner.start(sc, out=tmp_path / "a", show_progress=False)
    assert (run.path / "generations.parquet").is_file() and not (run.path / "individuals.parquet").exists()

    sc = scenario(steps=3, population=30, mode="random", extra={"network": {"topology": "ring", "params": {"k": 1}}})
    run = runner.start(sc, out=tmp_path / "b", show_progress=False)
    edges = pl.read_parquet(run.path / "edges.parquet")
    graph = nx.Graph(list(edges.iter_rows()))
    assert graph.number_of_edges() == 30
    ind = pl.read_parquet(run.path / "individuals.parquet").filter(pl.col("step") > 0)
    for row in ind.filter(~pl.col("elite")).iter_rows(named=True):
        near = {row["slot"], *graph.neighbors(row["slot"])}
        assert {row["parent1"] % 30, row["parent2"] % 30} <= near


def test_bad_scenarios_get_one_line_errors(tmp_path):
    with pytest.raises(ScenarioError, match=r"matechoice\.problem\.functions\.1: unknown function 'sinn' "
                                            r"\(did you mean 'sin'\?\)"):
        scenario(problem={"name": "koza1", "functions": ["add", "sinn"]})
    with pytest.raises(ScenarioError, match="matechoice.elitism.*no room"):
        scenario(population=4, elitism=4)
    with pytest.raises(ScenarioError, match="name csv needs a csv block"):
        scenario(problem={"name": "csv"})
    sc = scenario(problem={"name": "csv", "csv": {"path": "missing.csv", "target": "y"}})
    with pytest.raises(ScenarioError) as info:
        runner.check(sc, tmp_path)
    assert "matechoice.problem.csv.path" in str(info.value) and "does not exist" in str(info.value)
    (tmp_path / "d.csv").write_text("a,y\n1,2\n2,4\n3,6\n")
    graph, model = runner.check(scenario(problem={"name": "csv", "csv": {"path": "d.csv", "target": "y"}}),
                                tmp_path)
    assert model.problem.y_train.tolist() == [2, 4, 6]


def test_shipped_scenarios_load():
    root = Path(__file__).resolve().parents[3] / "scenarios"
    quick = load(root / "matechoice_quick.yaml")
    assert quick.kind == "matechoice"
    study = load(root / "matechoice_study.yaml")
    grid = cells(study)
    assert len(grid) == 18 and study.sweep.replicates == 30
    assert {c["matechoice.mode"] for c in grid} == {"tournament", "random", "pimp"}
    assert len({c["matechoice.mutation_rate"] for c in grid}) == 2
