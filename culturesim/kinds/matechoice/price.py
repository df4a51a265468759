"""The Price decomposition of a GP run's genealogy: why the population's mean training error
(or tree size) changed from one generation to the next.

Why: mate choice is a claim about *how* a population changes, not only where it ends. The
exact Price decomposition (:func:`analysis.price.price`) splits each generation's change in
the mean trait into selection (fitter individuals had more offspring) and transmission
(offspring differ from their parents through crossover and mutation), so PIMP, tournament
and random mating can be compared on those parts.

The genealogy is the ``individuals`` table (written when ``record_individuals`` is on):
generation ``g``'s individuals are the children and generation ``g - 1``'s the parents; each
child names its two mates (``parent1``, ``parent2``), and an elite names itself (as
``parent1``, no ``parent2``). Each named mate is credited equally, 1/2 each (1 when both
mates are the same individual, or for an elite), because the table records who mated, not
how much of each ended up in the child after crossover: the same choice as
:func:`analysis.price.price_from_run` makes for idea runs. A parent's fitness ``w`` is then
its number of offspring counted that way.

Every child of a bred generation has parents, so there are no innovations (``m = 0``) and
the two forms of the innovation term agree; the form asked for is recorded all the same.
Traits: ``fitness`` (training RMSE, so selection that works is *negative*: it lowers the
mean error) and ``size`` (nodes). A generation in which some individual's error is not
finite (an output that overflowed) cannot be decomposed: it is left out, with its reason
in the ``skipped`` column.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from analysis.price import price
from analysis.price.decomposition import check_form
from culturesim.kinds.matechoice.tables import INDIVIDUALS_SCHEMA
from culturesim.store import RunDir

TRAITS = {"fitness": "training error (RMSE)", "size": "tree size (nodes)"}
TERM_COLUMNS = ("delta", "between", "within", "transmission", "innovation", "selection", "mean_fitness")
SCHEMA = {"step": pl.Int64, "parent_step": pl.Int64, "trait": pl.String,
          **{k: pl.Float64 for k in TERM_COLUMNS}, "residual": pl.Float64,
          "n_parents": pl.Int64, "n_children": pl.Int64, "n_innovations": pl.Int64,
          "innovation_form": pl.String, "skipped": pl.String}


def _trait(trait: str) -> pl.Expr:
    if trait not in TRAITS:
        raise ValueError(f"unknown trait {trait!r}; allowed: {', '.join(TRAITS)}")
    return pl.col(trait).cast(pl.Float64).alias("trait")


def genealogy_inputs(individuals: pl.DataFrame, step: int, trait: str = "fitness"
                     ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Parents (generation ``step - 1``), children (``step``) and attributions for
    :func:`analysis.price.price`, ids being the table's ``individual_id``."""
    value = _trait(trait)
    parents = individuals.filter(pl.col("step") == step - 1).select(pl.col("individual_id").alias("id"), value)
    kids = individuals.filter(pl.col("step") == step)
    if parents.is_empty():
        raise ValueError(f"individuals: no generation {step - 1} recorded (the parents of generation {step})")
    if kids.is_empty():
        raise ValueError(f"individuals: no generation {step} recorded")
    children = kids.select(pl.col("individual_id").alias("id"), value)
    mates = kids.select(pl.col("individual_id").alias("child"), "parent1", "parent2")
    one = mates.filter(pl.col("parent2").is_null() | (pl.col("parent2") == pl.col("parent1")))
    two = mates.filter(pl.col("parent2").is_not_null() & (pl.col("parent2") != pl.col("parent1")))
    attributions = pl.concat([
        one.select("child", pl.col("parent1").alias("parent"), pl.lit(1.0).alias("weight")),
        two.select("child", pl.col("parent1").alias("parent"), pl.lit(0.5).alias("weight")),
        two.select("child", pl.col("parent2").alias("parent"), pl.lit(0.5).alias("weight")),
    ]).filter(pl.col("parent").is_not_null())
    return parents, children, attributions


def price_over_generations(individuals: pl.DataFrame, trait: str = "fitness",
                           innovation_form: str = "immigration", steps: list[int] | None = None) -> pl.DataFrame:
    """One row per decomposed generation (every recorded one after the first, or ``steps``):
    the terms, the residual of the identity, the counts, the form, and why a generation was
    skipped (``skipped``; the terms are then null)."""
    _trait(trait)
    check_form(innovation_form)
    for col in ("step", "individual_id", "parent1", "parent2", trait):
        if col not in individuals.columns:
            raise ValueError(f"individuals: missing column {col!r}")
    recorded = sorted(set(individuals["step"].unique().to_list()))
    available = [s for s in recorded if s - 1 in recorded]
    steps = available if steps is None else [s for s in steps if s in available]
    rows = []
    for step in steps:
        row = {"step": step, "parent_step": step - 1, "trait": trait, "innovation_form": innovation_form,
               "skipped": None}
        window = individuals.filter(pl.col("step").is_in([step - 1, step]))
        bad = window.filter(~pl.col(trait).cast(pl.Float64).is_finite()).height
        if bad:
            rows.append({**row, "skipped": f"{bad} individual(s) of generations {step - 1}-{step} have a "
                                           f"non-finite {trait}"})
            continue
        try:
            terms = price(*genealogy_inputs(window, step, trait), innovation_form=innovation_form)
        except ValueError as exc:
            rows.append({**row, "skipped": str(exc)})
            continue
        row.update({k: float(getattr(terms, k)) for k in TERM_COLUMNS})
        row.update(residual=float(terms.check()), n_parents=terms.n_parents, n_children=terms.n_children,
                   n_innovations=terms.n_innovations)
        rows.append(row)
    return pl.DataFrame(rows, schema=SCHEMA).sort("step")


def run_price(run: str | Path | RunDir, trait: str = "fitness", innovation_form: str = "immigration",
              steps: list[int] | None = None) -> pl.DataFrame:
    """:func:`price_over_generations` of a run folder's ``individuals`` table."""
    run = run if isinstance(run, RunDir) else RunDir(run)
    individuals = run.table_parts("individuals", INDIVIDUALS_SCHEMA)
    if individuals.is_empty():
        raise ValueError(f"{run.path}: no individuals recorded (run with matechoice.record_individuals: true)")
    return price_over_generations(individuals, trait, innovation_form, steps)


def run_summary(runs: list[RunDir], trait: str = "fitness", innovation_form: str = "immigration"
                ) -> tuple[pl.DataFrame, dict[str, pl.DataFrame], list[str]]:
    """For ``culturesim report``: one row per run with individuals (its mode, the number of
    generations decomposed and skipped, each term summed over generations, so that
    ``delta`` is the change from the first to the last generation decomposed, and the
    largest residual), each run's per-generation frame, and the ids of runs without
    individuals (nothing to decompose)."""
    rows, frames, without = [], {}, []
    for run in runs:
        manifest = run.read_manifest()
        if manifest.get("kind") != "matechoice" or manifest.get("status") != "done":
            continue
        try:
            frame = run_price(run, trait, innovation_form)
        except ValueError:
            without.append(run.run_id)
            continue
        frames[run.run_id] = frame
        done = frame.filter(pl.col("skipped").is_null())
        spec = (manifest.get("scenario") or {}).get("matechoice") or {}
        row = {"run_id": run.run_id, "mode": spec.get("mode"), "generations": done.height,
               "skipped": frame.height - done.height}
        for k in ("delta", "selection", "transmission", "innovation"):
            row[k] = float(done[k].sum()) if done.height else None
        row["max_abs_residual"] = float(done["residual"].abs().max()) if done.height else None
        rows.append(row)
    schema = {"run_id": pl.String, "mode": pl.String, "generations": pl.Int64, "skipped": pl.Int64,
              "delta": pl.Float64, "selection": pl.Float64, "transmission": pl.Float64, "innovation": pl.Float64,
              "max_abs_residual": pl.Float64}
    return pl.DataFrame(rows, schema=schema), frames, without
