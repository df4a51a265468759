"""The Price decomposition of a real (tiny) GP run's genealogy, checked against the same
terms computed another way: numpy moments straight from the individuals table, with each
parent's offspring counted by hand from parent1/parent2."""

from __future__ import annotations

import io

import numpy as np
import polars as pl
import pytest
from rich.console import Console

from culturesim import runner
from culturesim.kinds.matechoice.price import genealogy_inputs, price_over_generations, run_price, run_summary
from culturesim.kinds.matechoice.report import print_price
from culturesim.scenario import validate_data


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    sc = validate_data({"kind": "matechoice", "name": "p", "seed": 11, "steps": 4,
                        "matechoice": {"population": 16, "mode": "pimp", "diversity_sample": 4, "elitism": 2,
                                       "problem": {"name": "koza1"}, "record_individuals": True}}, "test")
    return runner.start(sc, out=tmp_path_factory.mktemp("mc"), show_progress=False)


def by_hand(ind: pl.DataFrame, step: int, trait: str) -> dict:
    """delta, selection, transmission from numpy: w_i counts half an offspring per mating
    (a whole one for an elite or a self-mating), Cov with population moments (bias=True)."""
    par = ind.filter(pl.col("step") == step - 1).sort("individual_id")
    kid = ind.filter(pl.col("step") == step).sort("individual_id")
    ids = par["individual_id"].to_list()
    z = par[trait].cast(pl.Float64).to_numpy()
    zc = kid[trait].cast(pl.Float64).to_numpy()
    w = np.zeros(len(ids))
    wz = np.zeros(len(ids))  # sum of credit x child trait
    for p1, p2, zk in zip(kid["parent1"].to_list(), kid["parent2"].to_list(), zc, strict=True):
        mates = [p1] if p2 is None or p2 == p1 else [p1, p2]
        for p in mates:
            w[ids.index(p)] += 1 / len(mates)
            wz[ids.index(p)] += zk / len(mates)
    zprime = np.where(w > 0, wz / np.where(w > 0, w, 1), z)
    wbar = w.mean()
    return {"delta": zc.mean() - z.mean(), "selection": np.cov(w, z, bias=True)[0, 1] / wbar,
            "transmission": np.mean(w * (zprime - z)) / wbar, "wbar": wbar}


@pytest.mark.parametrize("trait", ["fitness", "size"])
def test_genealogy_price_matches_numpy_by_hand(run, trait):
    ind = pl.read_parquet(run.path / "individuals.parquet")
    frame = run_price(run, trait)
    assert frame["step"].to_list() == [1, 2, 3, 4]
    assert set(frame["innovation_form"]) == {"immigration"} and set(frame["trait"]) == {trait}
    for row in frame.iter_rows(named=True):
        if row["skipped"] is not None:  # an overflowing tree: said, not decomposed
            assert trait == "fitness" and "non-finite" in row["skipped"]
            continue
        hand = by_hand(ind, row["step"], trait)
        assert row["delta"] == pytest.approx(hand["delta"], rel=1e-12, abs=1e-12)
        assert row["selection"] == pytest.approx(hand["selection"], rel=1e-9, abs=1e-12)
        assert row["transmission"] == pytest.approx(hand["transmission"], rel=1e-9, abs=1e-12)
        assert row["mean_fitness"] == pytest.approx(hand["wbar"]) == 1.0  # every slot is refilled
        assert row["innovation"] == 0 and row["n_innovations"] == 0 and row["between"] == 0
        assert abs(row["residual"]) < 1e-9
        assert (row["n_parents"], row["n_children"]) == (16, 16)
    assert frame["skipped"].is_null().sum() >= 1
    # with no innovations the residual form gives the same terms
    other = run_price(run, trait, "residual")
    cols = ["delta", "selection", "transmission", "innovation"]
    assert other.select(cols).equals(frame.select(cols)) and set(other["innovation_form"]) == {"residual"}


def test_elites_and_self_matings_are_credited_once(run):
    ind = pl.read_parquet(run.path / "individuals.parquet")
    parents, children, attributions = genealogy_inputs(ind, 2, "size")
    totals = attributions.group_by("child").agg(pl.col("weight").sum())
    assert totals["weight"].to_list() == [1.0] * 16 and totals.height == children.height == 16
    elites = ind.filter((pl.col("step") == 2) & pl.col("elite"))
    assert elites.height == 2
    for row in elites.iter_rows(named=True):  # an elite: one link, weight 1, to itself in the step before
        links = attributions.filter(pl.col("child") == row["individual_id"])
        assert links["parent"].to_list() == [row["parent1"]] and links["weight"].to_list() == [1.0]


def test_non_finite_errors_skip_the_generation_and_bad_input_is_refused(run):
    ind = pl.read_parquet(run.path / "individuals.parquet")
    broken = ind.with_columns(pl.when((pl.col("step") == 2) & (pl.col("slot") == 3)).then(float("inf"))
                              .otherwise(pl.col("fitness")).alias("fitness"))
    frame = price_over_generations(broken, "fitness")
    skipped = frame.filter(pl.col("skipped").is_not_null())["step"].to_list()
    assert 2 in skipped and 3 in skipped  # generation 2 is a child of step 2 and a parent of step 3
    assert frame.filter(pl.col("step") == 2)["delta"].is_null().all()
    with pytest.raises(ValueError, match="unknown trait 'depth'; allowed: fitness, size"):
        price_over_generations(ind, "depth")
    with pytest.raises(ValueError, match="unknown innovation_form"):
        price_over_generations(ind, "size", "other")


def test_report_names_the_trait_and_the_form(run):
    summary, frames, without = run_summary([run], "size", "residual")
    assert without == [] and summary.height == 1
    frame = frames[run.run_id]
    assert summary["delta"][0] == pytest.approx(frame["delta"].sum())
    ind = pl.read_parquet(run.path / "individuals.parquet")
    first, last = ind.filter(pl.col("step") == 0)["size"].mean(), ind.filter(pl.col("step") == 4)["size"].mean()
    assert summary["delta"][0] == pytest.approx(last - first)  # the per-generation changes telescope
    out = io.StringIO()
    print_price([run], "size", "immigration", Console(file=out, width=200))
    text = out.getvalue()
    assert "tree size (nodes)" in text and "innovation form: immigration" in text and "Kerr & Godfrey-Smith" in text


def test_selection_page_draws_the_genealogy_price_through_the_kind_view(run):
    from app import create_app
    from app.pages import selection

    app = create_app(run.path.parent)
    with app.server.test_request_context():
        frame = selection.data(run.run_id, "size", None, "residual")
        fig = selection.figure(frame, run.run_id, "size", None, "residual")
        default = selection.data(run.run_id, "size", None, None)
    assert frame.select("step", "delta").equals(run_price(run, "size", "residual").select("step", "delta"))
    assert set(frame["innovation_form"]) == {"residual"} and set(default["innovation_form"]) == {"immigration"}
    assert "residual form" in fig.layout.title.text
    assert "Kerr & Godfrey-Smith" in selection.figure(default, run.run_id, "size", None).layout.title.text


def test_culturesim_report_prints_the_genealogy_price_of_a_run(run, capsys):
    from culturesim.cli import main

    assert main(["report", str(run.path), "--price-trait", "size", "--innovation-form", "residual"]) == 0
    out = capsys.readouterr().out
    assert "Kruskal" in out  # the study table first
    assert "Price decomposition of the mean tree size (nodes) per generation" in out
    assert "innovation form: residual" in out
    assert main(["report", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "training error (RMSE)" in out and "innovation form: immigration (Kerr & Godfrey-Smith 2009" in out
    assert main(["report", str(run.path), "--price-trait", "depth"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "unknown --price-trait 'depth'" in err and err.count("\n") == 1
