"""Paper vs this run for exposure: each headline figure of Ashkinaze et al. (:mod:`.paper`)
matched with the figure an exposure report computed (the comparison and its printing are
every kind's: :mod:`culturesim.kinds.paper_figures`).

Nothing is recomputed here: our figures are read off the report table
(:func:`culturesim.kinds.exposure.measures.report_table`), one per condition. A paper
contrast that names an exposure level ("high") is matched with each of our conditions of
that level (``high_disclosed``, ``high_undisclosed``) on its own row rather than pooled,
because pooling per-condition effect sizes or intervals would make up a statistic the
report never computed. A condition's level is its name up to the first underscore.

The slope over trials comes twice: this kind's own (``diversity_slope:*``, another scale
than the paper's, so directions only) and the authors' model fitted to the run
(``diversity_slope_authors:*``, from the report's ``authors_slope``: the paper's scale).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from culturesim.kinds import paper_figures
from culturesim.kinds.exposure.measures import REFERENCE
from culturesim.kinds.exposure.paper import FIGURES, PAPER, PaperFigure
from culturesim.kinds.paper_figures import OURS_SCHEMA, ours_frame
from culturesim.kinds.paper_figures import ours_row as _row

__all__ = ["OURS_SCHEMA", "compare", "level", "our_figures", "print_paper_comparison"]

# 95% normal interval of a slope from its standard error.
Z95 = 1.959963984540054


def level(condition: str) -> str:
    """The exposure level a condition name stands for: ``high_disclosed`` -> ``high``."""
    return condition.split("_", 1)[0]


def _slope_row(key: str, condition: str, slope: float | None, se: float | None) -> dict:
    """A slope with its 95% normal interval where it has a standard error."""
    if slope is None:
        return _row(key, condition, note="no slope fitted (see the report's notes)")
    if se is None:
        return _row(key, condition, slope)
    return _row(key, condition, slope, slope - Z95 * se, slope + Z95 * se)


def our_figures(table: pl.DataFrame) -> pl.DataFrame:
    """Our figures, keyed as :data:`.paper.FIGURES`, from an exposure report table."""
    rows: list[dict] = []
    by = {r["condition"]: r for r in table.iter_rows(named=True)}
    control = by.get(REFERENCE)
    for condition, r in by.items():
        lv = level(condition)
        if condition != REFERENCE:
            rows.append(_row(f"diversity_delta:{lv}", condition, r["delta_vs_control"]))
            rows.append(_row(f"diversity_diff:{lv}", condition, r["diff_vs_control"], r["diff_ci_low"],
                             r["diff_ci_high"]))
            ours = control["originality_mean"] if control else None
            if r["originality_mean"] is None or ours is None:
                rows.append(_row(f"creativity_diff:{lv}", condition,
                                 note="no originality scores (report without a judge?)"))
            else:
                rows.append(_row(f"creativity_diff:{lv}", condition, r["originality_mean"] - ours,
                                 note="difference of mean judged originality; no CI"))
        rows.append(_slope_row(f"diversity_slope:{lv}", condition, r["slope"], r["slope_se"]))
        rows.append(_slope_row(f"diversity_slope_authors:{lv}", condition, r.get("authors_slope"),
                               r.get("authors_slope_se")))
    disclosed = [r["diversity_mean"] for c, r in by.items() if c.endswith("_disclosed") and r["diversity_mean"] is not None]
    hidden = [r["diversity_mean"] for c, r in by.items() if c.endswith("_undisclosed") and r["diversity_mean"] is not None]
    if disclosed and hidden:
        rows.append(_row("disclosure_diff", "disclosed - undisclosed",
                         sum(disclosed) / len(disclosed) - sum(hidden) / len(hidden),
                         note="difference of mean diversity over conditions; no CI"))
    rows.append(_row("creativity_F", None, note="this report fits no F test of condition on creativity"))
    return ours_frame(rows)


def compare(ours: pl.DataFrame, figures: Sequence[PaperFigure] = FIGURES) -> pl.DataFrame:
    """Our figures against the paper's (:func:`culturesim.kinds.paper_figures.compare`)."""
    return paper_figures.compare(ours, figures)


def print_paper_comparison(table: pl.DataFrame, console: Any = None) -> pl.DataFrame:
    """The report's hook: our figures from the report table, compared and printed."""
    return paper_figures.show(our_figures(table), FIGURES, PAPER, console=console)
