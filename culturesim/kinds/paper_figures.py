"""Paper vs this run, for every kind: a study's published figures as records, matched with
the figures a report of ours computed, so a reader sees at once where a simulated
population moves the way the paper's did and where it does not.

A kind keeps its transcription in its own ``paper.py`` (a citation and a tuple of
:class:`PaperFigure`) and turns its report into rows of :data:`OURS_SCHEMA`, one per figure
key it can compute (several rows per key where it has several conditions matching one
paper contrast); :func:`compare` and :func:`print_comparison` do the rest, the same way for
all five.

Why each figure carries its ``source``: only some texts could be read where this toolkit
was written. A number printed in the paper (``"paper"``, with its table, figure or section
in ``where``) is not the same as a number the authors' own analysis output prints
(``"authors"``: their repository, which may differ from the published version), a
direction stated in the abstract (``"abstract"``), or a number only a third-party summary
gives (``"summary"``, never to be quoted before checking). The printed table marks the
last two kinds of number so nobody mistakes them for the paper's.

Columns of :func:`compare`: ``difference`` (ours minus theirs) and ``covers`` (our 95%
interval holds their value, or meets the range they give; for a paper "no effect", holds
0) only where the two figures are on one scale; ``agrees`` compares directions. Ours is read from the CI where we have
one: a CI above or below 0 is a direction, a CI holding 0 is "no effect", which agrees
with a paper's "no effect" and, against a paper's increase or decrease, is left open
(``agrees`` null, "our CI holds 0" in the note) rather than counted as a disagreement:
an interval that holds 0 has not shown the opposite. Without a CI the sign alone is our
direction, and a "no effect" cannot be judged. A level (a count, a rate: no direction) is
compared only on one scale. A figure we cannot compute has a row saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

# Where a figure was read; the mark the printed table puts after a number of that source.
SOURCES = {"paper": "", "abstract": "", "authors": " †", "summary": " *"}
SOURCE_NOTES = {
    "authors": "† printed by the authors' own analysis output (their repository), not read in the paper itself",
    "summary": "* read only in a third-party summary of the paper, not checked against the paper",
}

OURS_SCHEMA = {"key": pl.String, "label": pl.String, "value": pl.Float64, "ci_low": pl.Float64,
               "ci_high": pl.Float64, "note": pl.String}

COMPARISON_SCHEMA = {
    "key": pl.String, "measure": pl.String, "contrast": pl.String, "statistic": pl.String, "direction": pl.String,
    "paper": pl.String, "source": pl.String, "where": pl.String, "ours_label": pl.String, "ours": pl.Float64,
    "ci_low": pl.Float64, "ci_high": pl.Float64, "difference": pl.Float64, "covers": pl.Boolean, "agrees": pl.Boolean,
    "note": pl.String,
}


@dataclass(frozen=True)
class PaperFigure:
    """One figure of a paper.

    ``key`` names the figure of ours it is compared with; ``value`` is None where the
    source states only a ``direction``: "+" increase, "-" decrease, "0" no effect, or ""
    where the figure is a level with no direction (a success rate, a count).
    ``value_range`` holds a range the source gives instead of one value. ``p`` is the
    p-value as the source writes it ("0.001", "<0.03"). ``same_scale``: our matching
    figure is the same statistic on the same scale, so a difference and CI coverage mean
    something; otherwise only directions are compared. ``where``: the table, figure,
    section (and page where known) or, for ``source="authors"``, the file and commit."""

    key: str
    measure: str
    contrast: str
    statistic: str
    direction: str
    where: str
    source: str
    value: float | None = None
    value_range: tuple[float, float] | None = None
    p: str | None = None
    same_scale: bool = False

    def __post_init__(self) -> None:
        if self.direction not in ("+", "-", "0", ""):
            raise ValueError(f"{self.key}: direction must be '+', '-', '0' or '', not {self.direction!r}")
        if self.source not in SOURCES:
            raise ValueError(f"{self.key}: source must be one of {', '.join(SOURCES)}, not {self.source!r}")
        if not self.direction and self.value is None and self.value_range is None:
            raise ValueError(f"{self.key}: a figure with no direction needs a value")


def ours_row(key: str, label: str | None, value: Any = None, low: Any = None, high: Any = None,
             note: str = "") -> dict:
    """One row of :data:`OURS_SCHEMA`."""
    return {"key": key, "label": label, "value": value, "ci_low": low, "ci_high": high, "note": note}


def ours_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=OURS_SCHEMA)


def paper_text(f: PaperFigure) -> str:
    """The paper's figure as the table prints it: value, range or direction, then p."""
    if f.value is not None:
        text = f"{f.value:+.2f}" if f.direction else f"{f.value:.4g}"
    elif f.value_range is not None:
        text = f"{f.value_range[0]:+.2f} to {f.value_range[1]:+.2f}"
    else:
        text = {"+": "increase", "-": "decrease", "0": "no effect"}[f.direction]
    return text + (f" (p {f.p if f.p.startswith('<') else '= ' + f.p})" if f.p else "")


def _our_direction(value: float, low: float | None, high: float | None) -> str | None:
    if low is not None and high is not None:
        return "+" if low > 0 else "-" if high < 0 else "0"
    return "+" if value > 0 else "-" if value < 0 else None


def compare(ours: pl.DataFrame, figures: Sequence[PaperFigure]) -> pl.DataFrame:
    """One row per paper figure and matching figure of ours (see the module docstring)."""
    rows = []
    for f in figures:
        matches = list(ours.filter(pl.col("key") == f.key).iter_rows(named=True))
        if not matches:
            matches = [ours_row(f.key, None, note="not computed: this run has no matching condition")]
        for m in matches:
            value, low, high = m["value"], m["ci_low"], m["ci_high"]
            has_ci = low is not None and high is not None
            difference = covers = agrees = None
            left_open = False  # our CI holds 0 against a paper's increase or decrease: neither shown nor refuted
            if value is not None:
                if f.same_scale and f.value is not None:
                    difference = value - f.value
                target = f.value if (f.same_scale and f.value is not None) else 0.0 if f.direction == "0" else None
                if has_ci and target is not None:
                    covers = low <= target <= high
                elif has_ci and f.same_scale and f.value_range is not None:
                    covers = low <= f.value_range[1] and f.value_range[0] <= high  # our CI meets their range
                mine = _our_direction(value, low, high)
                left_open = mine == "0" and f.direction in ("+", "-")
                if f.direction and mine is not None and (f.direction != "0" or has_ci):
                    agrees = None if left_open else mine == f.direction
            note = m["note"] or ("" if value is not None else "not computed")
            extra = "our CI holds 0: direction not shown" if left_open else ""
            if value is not None and not f.same_scale and f.value is not None:
                extra = "; ".join(n for n in (extra, "scales differ: directions compared only" if f.direction
                                              else "scales differ: not compared") if n)
            note = "; ".join(n for n in (note, extra) if n)
            rows.append({"key": f.key, "measure": f.measure, "contrast": f.contrast, "statistic": f.statistic,
                         "direction": f.direction, "paper": paper_text(f), "source": f.source, "where": f.where,
                         "ours_label": m["label"], "ours": value, "ci_low": low, "ci_high": high,
                         "difference": difference, "covers": covers, "agrees": agrees, "note": note})
    return pl.DataFrame(rows, schema=COMPARISON_SCHEMA)


def _fmt(value: Any, level: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.4g}" if level else f"{value:+.3f}"


def print_comparison(comparison: pl.DataFrame, paper: str, console: Any = None, *, empty_note: str = "") -> None:
    """The comparison as a rich table titled "Paper vs this run", then the citation and
    what each mark on a number means (only the marks the table uses). A paper with no
    figure gets one line instead, ended by ``empty_note`` (what to compare with instead)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if comparison.is_empty():
        console.print(" ".join(t for t in (f"Paper vs this run: {paper} states no figure this report can be set "
                                           f"beside.", empty_note) if t),
                      highlight=False, soft_wrap=True, markup=False)
        return
    out = Table(title="Paper vs this run")
    for header in ("measure", "contrast", "statistic", "paper", "ref", "ours (condition)", "ours [95% CI]",
                   "difference", "CI covers", "agrees", "note"):
        out.add_column(header, justify="right" if header in ("ours [95% CI]", "difference") else "left")
    refs: dict[str, int] = {}
    for r in comparison.iter_rows(named=True):
        ref = refs.setdefault(r["where"], len(refs) + 1)
        level = r["direction"] == ""
        ours = _fmt(r["ours"], level)
        if r["ci_low"] is not None and r["ci_high"] is not None:
            ours += f" [{_fmt(r['ci_low'], level)}, {_fmt(r['ci_high'], level)}]"
        out.add_row(r["measure"], r["contrast"], r["statistic"], r["paper"] + SOURCES[r["source"]], str(ref),
                    r["ours_label"] or "-", ours, _fmt(r["difference"], level), _fmt(r["covers"]),
                    _fmt(r["agrees"]), r["note"] or "")
    console.print(out)
    console.print(f"paper: {paper}. Where each figure is printed:", highlight=False, soft_wrap=True)
    for where, ref in refs.items():
        console.print(f"  [{ref}] {where}", highlight=False, soft_wrap=True, markup=False)
    for source in sorted(set(comparison["source"].to_list())):
        if source in SOURCE_NOTES:
            console.print(SOURCE_NOTES[source] + ".", highlight=False, soft_wrap=True)


def show(ours: pl.DataFrame, figures: Sequence[PaperFigure], paper: str, console: Any = None, *,
         empty_note: str = "") -> pl.DataFrame:
    """What a kind's report calls: our figures compared with the paper's, printed, returned."""
    comparison = compare(ours, figures)
    print_comparison(comparison, paper, console=console, empty_note=empty_note)
    return comparison
