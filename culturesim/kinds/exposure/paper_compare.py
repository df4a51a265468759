"""Paper vs this run: each headline figure of Ashkinaze et al. (:mod:`.paper`) beside the
matching figure an exposure report computed, so a reader sees at once where a simulated
population moves the way the paper's people did and where it does not.

Nothing is recomputed here: our figures are read off the report table
(:func:`culturesim.kinds.exposure.measures.report_table`), one per condition. A paper
contrast that names an exposure level ("high") is matched with each of our conditions of
that level (``high_disclosed``, ``high_undisclosed``) on its own row rather than pooled,
because pooling per-condition effect sizes or intervals would make up a statistic the
report never computed. A condition's level is its name up to the first underscore.

Columns of :func:`compare`: ``difference`` (ours minus theirs) and ``covers`` (our 95%
interval holds their value; for a paper "no effect", holds 0) only where the two figures
are on one scale; ``agrees`` compares directions: ours is read from the CI where we have
one (excluding 0 or not), else from the sign alone, and a "no effect" cannot be judged
without a CI. A figure we cannot compute has a row saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from culturesim.kinds.exposure.measures import REFERENCE
from culturesim.kinds.exposure.paper import FIGURES, PAPER, PaperFigure

OURS_SCHEMA = {"key": pl.String, "label": pl.String, "value": pl.Float64, "ci_low": pl.Float64,
               "ci_high": pl.Float64, "note": pl.String}

COMPARISON_SCHEMA = {
    "key": pl.String, "measure": pl.String, "contrast": pl.String, "statistic": pl.String, "paper": pl.String,
    "source": pl.String, "where": pl.String, "ours_label": pl.String, "ours": pl.Float64, "ci_low": pl.Float64,
    "ci_high": pl.Float64, "difference": pl.Float64, "covers": pl.Boolean, "agrees": pl.Boolean, "note": pl.String,
}

# 95% normal interval of a slope from its standard error.
Z95 = 1.959963984540054


def level(condition: str) -> str:
    """The exposure level a condition name stands for: ``high_disclosed`` -> ``high``."""
    return condition.split("_", 1)[0]


def _row(key: str, label: str | None, value: Any = None, low: Any = None, high: Any = None, note: str = "") -> dict:
    return {"key": key, "label": label, "value": value, "ci_low": low, "ci_high": high, "note": note}


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
        slope, se = r["slope"], r["slope_se"]
        if slope is None:
            rows.append(_row(f"diversity_slope:{lv}", condition, note="no slope fitted (see the report's notes)"))
        elif se is None:
            rows.append(_row(f"diversity_slope:{lv}", condition, slope))
        else:
            rows.append(_row(f"diversity_slope:{lv}", condition, slope, slope - Z95 * se, slope + Z95 * se))
    disclosed = [r["diversity_mean"] for c, r in by.items() if c.endswith("_disclosed") and r["diversity_mean"] is not None]
    hidden = [r["diversity_mean"] for c, r in by.items() if c.endswith("_undisclosed") and r["diversity_mean"] is not None]
    if disclosed and hidden:
        rows.append(_row("disclosure_diff", "disclosed - undisclosed",
                         sum(disclosed) / len(disclosed) - sum(hidden) / len(hidden),
                         note="difference of mean diversity over conditions; no CI"))
    rows.append(_row("creativity_F", None, note="this report fits no F test of condition on creativity"))
    return pl.DataFrame(rows, schema=OURS_SCHEMA)


def _paper_text(f: PaperFigure) -> str:
    if f.value is not None:
        text = f"{f.value:+.2f}"
    elif f.value_range is not None:
        text = f"{f.value_range[0]:+.2f} to {f.value_range[1]:+.2f}"
    else:
        text = {"+": "increase", "-": "decrease", "0": "no effect"}[f.direction]
    return text + (f" (p {f.p if f.p.startswith('<') else '= ' + f.p})" if f.p else "")


def _our_direction(value: float, low: float | None, high: float | None) -> str | None:
    if low is not None and high is not None:
        return "+" if low > 0 else "-" if high < 0 else "0"
    return "+" if value > 0 else "-" if value < 0 else None


def compare(ours: pl.DataFrame, figures: Sequence[PaperFigure] = FIGURES) -> pl.DataFrame:
    """One row per paper figure and matching figure of ours (see the module docstring)."""
    rows = []
    for f in figures:
        matches = list(ours.filter(pl.col("key") == f.key).iter_rows(named=True))
        if not matches:
            matches = [_row(f.key, None, note="not computed: this run has no matching condition")]
        for m in matches:
            value, low, high = m["value"], m["ci_low"], m["ci_high"]
            has_ci = low is not None and high is not None
            difference = covers = agrees = None
            if value is not None:
                if f.same_scale and f.value is not None:
                    difference = value - f.value
                target = f.value if (f.same_scale and f.value is not None) else 0.0 if f.direction == "0" else None
                if has_ci and target is not None:
                    covers = low <= target <= high
                mine = _our_direction(value, low, high)
                if mine is not None and (f.direction != "0" or has_ci):
                    agrees = mine == f.direction
            note = m["note"] or ("" if value is not None else "not computed")
            if value is not None and not f.same_scale and f.value is not None:
                note = "; ".join(n for n in (note, "scales differ: directions compared only") if n)
            rows.append({"key": f.key, "measure": f.measure, "contrast": f.contrast, "statistic": f.statistic,
                         "paper": _paper_text(f), "source": f.source, "where": f.where, "ours_label": m["label"],
                         "ours": value, "ci_low": low, "ci_high": high, "difference": difference,
                         "covers": covers, "agrees": agrees, "note": note})
    return pl.DataFrame(rows, schema=COMPARISON_SCHEMA)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:+.3f}"


def print_comparison(comparison: pl.DataFrame, console: Any = None) -> None:
    """The comparison as a rich table titled "Paper vs this run", then where each paper
    figure comes from (the numbers not read in the paper itself are marked)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    out = Table(title="Paper vs this run")
    for header in ("measure", "contrast", "statistic", "paper", "ours (condition)", "ours [95% CI]", "difference",
                   "CI covers", "agrees", "note"):
        out.add_column(header, justify="right" if header in ("ours [95% CI]", "difference") else "left")
    for r in comparison.iter_rows(named=True):
        ours = _fmt(r["ours"])
        if r["ci_low"] is not None and r["ci_high"] is not None:
            ours += f" [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
        paper = r["paper"] + (" *" if r["source"] != "paper: abstract" else "")
        out.add_row(r["measure"], r["contrast"], r["statistic"], paper, r["ours_label"] or "-", ours,
                    _fmt(r["difference"]), _fmt(r["covers"]), _fmt(r["agrees"]), r["note"] or "")
    console.print(out)
    console.print(f"paper: {PAPER}. * read in a third-party summary of the paper, not checked against its "
                  "results section.", highlight=False, soft_wrap=True)


def print_paper_comparison(table: pl.DataFrame, console: Any = None) -> pl.DataFrame:
    """The report's hook: our figures from the report table, compared and printed."""
    comparison = compare(our_figures(table))
    print_comparison(comparison, console=console)
    return comparison
