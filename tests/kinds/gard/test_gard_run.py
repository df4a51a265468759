"""The gard kind end to end: schema, runner, tables, reproducibility, resume, and its measures."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import polars as pl
import pytest

from analysis.price import price
from culturesim import runner
from culturesim.kinds.gard import measures as ga
from culturesim.kinds.gard.model import GardModel
from culturesim.kinds.gard.tables import TABLES as GARD_TABLES
from culturesim.scenario import ScenarioError, load, validate_data

TABLES = ("assemblies", "genealogy", "timeline", "beta", "target")


def scenario(**gard):
    data = {"kind": "gard", "name": "gard-test", "seed": 3, "steps": 4,
            "gard": {"mode": "population", "assemblies": 12, "n_types": 30, "n_max": 40, **gard}}
    return validate_data(data, "test")


def tables(path) -> dict[str, pl.DataFrame]:
    return {name: pl.read_parquet(path / f"{name}.parquet") for name in TABLES}


def test_schema_defaults_are_the_reference_parameters():
    s = validate_data({"kind": "gard", "name": "x", "steps": 1}, "test")
    g = s.gard
    assert (g.n_types, g.n_max, g.k_f, g.k_b, g.mu, g.sigma, g.rho) == (100, 100, 0.01, 1e-4, -4.0, 4.0, None)
    assert s.splits_per_step == 1 and scenario().splits_per_step == 12


@pytest.mark.parametrize("gard, key", [
    ({"rho": [0.5, 0.5]}, "gard.rho"),
    ({"mode": "population", "assemblies": 1}, "gard.assemblies"),
    ({"selection": {"target": [1, 2]}}, "gard.selection.target"),
    ({"k_f": 0}, "gard.k_f"),
    ({"modes": "lineage"}, "gard.modes"),
])
def test_bad_scenarios_name_the_key(gard, key):
    with pytest.raises(ScenarioError) as err:
        validate_data({"kind": "gard", "name": "x", "steps": 1, "gard": gard}, "f.yaml")
    assert len(err.value.problems) == 1 and f"f.yaml: {key}" in err.value.problems[0]


def test_a_run_writes_its_tables(tmp_path):
    s = scenario()
    run = runner.start(s, out=tmp_path, show_progress=False)
    assert run.read_manifest()["status"] == "done"
    t = tables(run.path)
    assert t["assemblies"].height == 4 * 12 and t["timeline"]["splits"].to_list() == [12] * 4
    assert t["beta"].height == 30 * 30 and t["target"].is_empty()
    assert sorted(t["genealogy"]["step"].unique().to_list()) == [0, 1, 2, 3, 4]
    # every split is at N_max and its composition lists add up to it
    a = t["assemblies"]
    assert (a["size"] == 40).all() and (a["counts"].list.sum() == 40).all()
    assert (a["time"].diff().drop_nulls() >= 0).all()  # Moran: splits in time order
    # each step's genealogy snapshot holds one assembly per slot
    per_step = t["genealogy"].group_by("step").agg(pl.col("slot").n_unique())
    assert per_step["slot"].to_list() == [12] * 5
    assert pl.read_parquet(run.path / "agents.parquet")["agent_id"].to_list() == list(range(12))


def test_a_fixed_seed_reproduces_a_run():
    def steps(s, k=3):
        model = GardModel(s)
        out = []
        for _ in range(k):
            out.append({name: pl.DataFrame(rows, schema=GARD_TABLES[name])
                        for name, rows in model.step().tables.items()})
        return out

    one, two = steps(scenario()), steps(scenario())
    other = steps(scenario(beta_seed=99))
    for a, b in zip(one, two, strict=True):
        for name in TABLES:
            assert a[name].equals(b[name]), name
    assert not one[0]["beta"].equals(other[0]["beta"])
    assert not one[2]["assemblies"].equals(other[2]["assemblies"])


def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    s = scenario(mode="selection", selection={"target": {0: 3, 1: 2, 5: 1}})
    whole = runner.start(s.model_copy(update={"output": s.output.model_copy(update={"run_id": "whole"})}),
                         out=tmp_path, show_progress=False)
    real_step = GardModel.step

    def crashing(self):
        if self.steps == 3:
            raise RuntimeError("simulated crash")
        return real_step(self)

    monkeypatch.setattr(GardModel, "step", crashing)
    cut = s.model_copy(update={"output": s.output.model_copy(update={"run_id": "cut"})})
    with pytest.raises(RuntimeError, match="simulated crash"):
        runner.start(cut, out=tmp_path, show_progress=False)
    assert (tmp_path / "cut").is_dir() and len(runner.RunDir(tmp_path / "cut").completed_steps()) == 2
    monkeypatch.setattr(GardModel, "step", real_step)
    resumed = runner.resume(tmp_path / "cut", show_progress=False)
    assert resumed.read_manifest()["status"] == "done"
    a, b = tables(whole.path), tables(resumed.path)
    for name in TABLES:
        assert a[name].equals(b[name]), name
    assert b["target"]["type"].to_list() == [0, 1, 5]


def test_price_terms_of_a_run_add_up_to_the_observed_change(tmp_path):
    run = runner.start(scenario(), out=tmp_path, show_progress=False)
    sel = ga.selection_over_steps(run.path)
    assert sel.height == 4 * len(ga.TRAITS)
    g = pl.read_parquet(run.path / "genealogy.parquet")
    traits = ga.molecule_traits(ga.beta_matrix(run.path))
    for row in sel.iter_rows(named=True):
        parts = row["between"] + row["within"] + row["transmission"] + row["innovation"]
        assert parts == pytest.approx(row["delta"], rel=1e-12, abs=1e-12)
        # the change, computed by hand from the molecule counts: mean trait after minus before
        z = traits[row["trait"]].to_numpy()
        means = []
        for step in (row["step"] - 1, row["step"]):
            snap = g.filter(pl.col("step") == step)
            counts = snap["count"].to_numpy()
            means.append(float((counts * z[snap["type"].to_numpy()]).sum() / counts.sum()))
        assert row["delta"] == pytest.approx(means[1] - means[0], rel=1e-9, abs=1e-12)
        assert row["n_parents"] == int(g.filter(pl.col("step") == row["step"] - 1)["count"].sum())


def test_one_lineage_has_no_between_assembly_selection(tmp_path):
    s = validate_data({"kind": "gard", "name": "lin", "seed": 2, "steps": 3,
                       "gard": {"n_types": 20, "n_max": 30}}, "test")
    run = runner.start(s, out=tmp_path, show_progress=False)
    sel = ga.selection_over_steps(run.path, traits=["catalytic_out"])
    assert (sel["between"] == 0).all() and sel.height == 3


def test_price_inputs_by_hand():
    """Two assemblies; slot 0 splits into slots 0 and 1, slot 1 is replaced. Worked with fractions:
    parents z = [1, 1, 0 | 0, 0], fitness [2, 2, 0 | 0, 0] (w_bar 4/5, z_bar 2/5); children three of
    type 0 and one of type 1 inherited, one innovation of type 1. Group means W = (4/3, 0), Z = (2/3, 0):
    between = [3 (8/15)(4/15) + 2 (4/5)(2/5)] / 5 / w_bar = 4/15; Cov(w, z) = 4/5 - 8/25 = 12/25 so
    within = 12/25 / w_bar - 4/15 = 1/3; transmission = (2 (1/2 - 1)) / 5 / w_bar = -1/4 (one parent's
    offspring are half type 1); innovation = (1/5)(0 - 3/4) = -3/20; delta = 3/5 - 2/5 = 1/5. Those are
    the residual form's terms; in the default, immigration form (Kerr & Godfrey-Smith 2009) the
    first three are weighted by 1 - m = 4/5 (16/75, 4/15, -1/5) and innovation is m (z_new - z_parents)
    = (1/5)(0 - 2/5) = -2/25; 16/75 + 20/75 - 15/75 - 6/75 = 1/5."""
    rows = [(0, 0, 0, 0, 0, 2), (0, 0, 0, 1, 1, 1), (0, 1, 1, 1, 1, 2),
            (1, 0, 0, 0, 0, 3), (1, 0, 0, 1, -1, 1), (1, 1, 0, 1, 0, 1)]
    g = pl.DataFrame(rows, schema=["step", "slot", "ancestor", "type", "root", "count"], orient="row")
    parents, children, attributions = ga.price_inputs(g, 1, [1, 0])
    terms = price(parents, children, attributions, innovation_form="residual")
    assert terms.exact
    assert (terms.delta, terms.between, terms.within) == (Fraction(1, 5), Fraction(4, 15), Fraction(1, 3))
    assert (terms.transmission, terms.innovation) == (Fraction(-1, 4), Fraction(-3, 20))
    assert terms.check() == 0 and terms.n_innovations == 1
    imm = price(parents, children, attributions)
    assert (imm.delta, imm.between, imm.within) == (Fraction(1, 5), Fraction(16, 75), Fraction(4, 15))
    assert (imm.transmission, imm.innovation) == (Fraction(-1, 5), Fraction(-2, 25))
    assert imm.check() == 0 and imm.innovation_form == "immigration"


def test_network_measures():
    beta = np.array([[2.0, 1.0], [3.0, 4.0]])
    assert ga.mutual_catalysis(beta) == pytest.approx(10 / (6 * 2))
    assert ga.mutual_catalysis(np.full((5, 5), 0.3)) == pytest.approx(1.0)
    t = ga.molecule_traits(beta)
    assert t["others_vs_self"].to_list() == pytest.approx([np.log10(3 / 2), np.log10(1 / 4)])
    assert t["catalytic_out"].to_list() == pytest.approx([np.log10(5), np.log10(5)])
    assert t["catalysed_in"].to_list() == pytest.approx([np.log10(3), np.log10(7)])


def test_similarity_and_compotypes(tmp_path):
    s = validate_data({"kind": "gard", "name": "lin", "seed": 5, "steps": 60,
                       "gard": {"n_types": 30, "n_max": 40, "assemblies": 2}}, "test")
    run = runner.start(s, out=tmp_path, show_progress=False)
    sim = ga.similarity_over_time(run.path)
    splits, dense = ga.compositions(run.path)
    by_id = {sid: k for k, sid in enumerate(splits["split_id"].to_list())}
    for row in sim.filter(pl.col("parent_id").is_not_null()).iter_rows(named=True):
        a, b = dense[by_id[row["split_id"]]], dense[by_id[row["parent_id"]]]
        assert row["similarity_to_parent"] == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
        assert row["composome"] == (row["similarity_to_parent"] > 0.9)
    per_step = ga.composomes_over_steps(run.path)
    assert per_step["step"].to_list() == list(range(2, 61))  # first splits have no parent split
    step9 = [r["similarity_to_parent"] for r in sim.iter_rows(named=True) if r["step"] == 9]
    assert per_step.filter(pl.col("step") == 9)["composome_share"][0] == pytest.approx(np.mean(np.array(step9) > 0.9))
    found = ga.compotypes(run.path, ks=range(1, 5))
    tags = found["tags"]["compotype"].to_numpy()
    is_comp = sim["composome"].fill_null(False).to_numpy()
    assert ((tags >= 0) == is_comp).all()
    assert 1 <= found["k"] <= 4 and found["scores"].height >= 1


def test_shipped_scenarios_validate():
    quick = load("scenarios/gard_quick.yaml")
    population = load("scenarios/gard_population.yaml")
    assert quick.kind == population.kind == "gard"
    assert population.gard.mode == "population" and population.gard.assemblies == 500
