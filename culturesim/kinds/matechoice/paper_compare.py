"""Paper vs this run for matechoice: each headline figure of Simões et al. (:mod:`.paper`)
matched with the figure our runs give (the comparison and its printing are every kind's:
:mod:`culturesim.kinds.paper_figures`).

An instance is one group of the report table: a problem, a mutation type and rate (and any
other swept parameter but the mode), as the paper's instances are its problems crossed
with its mutation rates.

Diversity, one row per instance and baseline: PIMP's mean final diversity
(:data:`.paper.DIVERSITY`) minus the baseline's, with a 95% bootstrap percentile interval
over runs (each mode's runs resampled on their own, ``scipy.stats.bootstrap``, drawing
from one Generator seeded by ``culturesim report --seed``, instances in table order, so a
seed replays the table). The run is the unit of replication, as in the report's tests; the
note carries the report's Holm-adjusted two-sided Mann-Whitney p for the same pair, which
is the test the paper's "statistically significant" is read against. A difference of means
rather than a rank effect size, because it is on the measure's own scale (edit operations)
and the direction is all the paper states.

Success, one row: the number of instances with all three modes where PIMP's success rate
(share of runs that ever held a solution within the threshold) is above both tournament's
and random's (a tie is not "higher"). It is on the paper's scale only when the run has the
paper's six instances; otherwise the comparison says the scales differ.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from scipy import stats as sps

from culturesim.kinds import paper_figures
from culturesim.kinds.matechoice.measures import group_keys
from culturesim.kinds.matechoice.paper import DIVERSITY, FIGURES, PAPER, PAPER_INSTANCES, PaperFigure
from culturesim.kinds.paper_figures import OURS_SCHEMA, ours_frame
from culturesim.kinds.paper_figures import ours_row as _row

__all__ = ["OURS_SCHEMA", "compare", "figures_for", "instance_label", "our_figures", "print_paper_comparison",
           "success_count"]

BASELINES = ("tournament", "random")
N_BOOT = 10_000


def instance_label(keys: Sequence[str], values: Sequence[Any]) -> str:
    """``koza1, subtree mutation at 0.1`` (and ``name=value`` for any other swept key)."""
    v = dict(zip(keys, values, strict=True))
    rate = v.get("mutation_rate")
    label = str(v.get("problem"))
    if rate is not None:
        label += f", {v.get('mutation')} mutation at {rate:g}"
    extra = [f"{k.rsplit('.', 1)[-1]}={v[k]}" for k in keys if k not in ("problem", "mutation", "mutation_rate")]
    return ", ".join([label, *extra])


def _instances(table: pl.DataFrame, measure: str) -> dict[tuple, dict[str, dict]]:
    """Per instance (its key values), the report rows of ``measure`` by mode."""
    keys = table.columns[: table.columns.index("measure")]
    out: dict[tuple, dict[str, dict]] = {}
    for r in table.filter(pl.col("measure") == measure).iter_rows(named=True):
        out.setdefault(tuple(r[k] for k in keys), {})[r["mode"]] = r
    return out


def success_count(table: pl.DataFrame) -> tuple[int, int]:
    """(instances where PIMP's success rate is above both baselines', instances with all three modes)."""
    higher = complete = 0
    for by_mode in _instances(table, "success").values():
        rates = {m: by_mode[m]["mean"] for m in ("pimp", *BASELINES) if m in by_mode and by_mode[m]["n"]}
        if len(rates) < 3:
            continue
        complete += 1
        higher += all(rates["pimp"] > rates[b] for b in BASELINES)
    return higher, complete


def _diff_of_means(a, b, axis=-1):
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def _values(group: pl.DataFrame, mode: str) -> np.ndarray:
    col = group.filter(pl.col("mode") == mode)[DIVERSITY].cast(pl.Float64, strict=False).drop_nulls()
    return col.filter(col.is_finite()).to_numpy()


def our_figures(runs: pl.DataFrame, table: pl.DataFrame, seed: int = 0, n_boot: int = N_BOOT) -> pl.DataFrame:
    """Our figures, keyed as :data:`.paper.FIGURES`, from a run table
    (:func:`..measures.run_table`) and its report table (:func:`..measures.table_of_runs`)."""
    rng = np.random.default_rng(seed)
    keys = group_keys(runs)
    tests = _instances(table, DIVERSITY)
    rows: list[dict] = []
    for values, group in runs.group_by(keys, maintain_order=True):
        label = instance_label(keys, values)
        pimp = _values(group, "pimp")
        for baseline in BASELINES:
            other = _values(group, baseline)
            if not pimp.size or not other.size:
                continue
            diff = float(pimp.mean() - other.mean())
            p = tests.get(tuple(values), {}).get("pimp", {}).get(f"p_vs_{baseline}")
            note = (f"Holm Mann-Whitney p = {p:.3g}" if p is not None else "no Mann-Whitney test") + \
                   f" (runs: {pimp.size} PIMP, {other.size} {baseline})"
            if min(pimp.size, other.size) < 2:
                rows.append(_row(f"diversity_diff:{baseline}", label, diff, note=note + "; no CI under 2 runs a mode"))
                continue
            ci = sps.bootstrap((pimp, other), _diff_of_means, n_resamples=n_boot, confidence_level=0.95,
                               method="percentile", rng=rng).confidence_interval
            rows.append(_row(f"diversity_diff:{baseline}", label, diff, float(ci.low), float(ci.high), note))
    higher, complete = success_count(table)
    if complete:
        rows.append(_row("success_instances", f"{complete} instance(s) here", float(higher),
                         note=f"PIMP above both in {higher} of the {complete} instance(s) with all three modes "
                              f"(the paper has {PAPER_INSTANCES}); a tie is not higher"))
    else:
        rows.append(_row("success_instances", None, note="no instance here has all three modes"))
    return ours_frame(rows)


def figures_for(n_instances: int, figures: Sequence[PaperFigure] = FIGURES) -> tuple[PaperFigure, ...]:
    """The figures with the success count on the paper's scale only when the run has the
    paper's number of instances (a count out of 4 is not a count out of 6)."""
    return tuple(dataclasses.replace(f, same_scale=n_instances == PAPER_INSTANCES) if f.key == "success_instances"
                 else f for f in figures)


def compare(ours: pl.DataFrame, n_instances: int, figures: Sequence[PaperFigure] = FIGURES) -> pl.DataFrame:
    """Our figures against the paper's (:func:`culturesim.kinds.paper_figures.compare`)."""
    return paper_figures.compare(ours, figures_for(n_instances, figures))


def print_paper_comparison(runs: pl.DataFrame, table: pl.DataFrame, seed: int = 0,
                           console: Any = None) -> pl.DataFrame:
    """The report's hook: our figures from the run and report tables, compared and printed."""
    figures = figures_for(success_count(table)[1], FIGURES)
    return paper_figures.show(our_figures(runs, table, seed), figures, PAPER, console=console)
