"""The shared "Paper vs this run" rules (culturesim.kinds.paper_figures) that no single kind's
tests reach: a level figure (a count, no direction), and a paper with no figure at all."""

from __future__ import annotations

import io
from dataclasses import replace

from rich.console import Console

from culturesim.kinds.paper_figures import PaperFigure, compare, ours_frame, ours_row, print_comparison

COUNT = PaperFigure(key="count", measure="m", contrast="c", statistic="instances", direction="", value=3,
                    where="abstract", source="abstract")


def printed(comparison, paper="P") -> str:
    out = io.StringIO()
    print_comparison(comparison, paper, console=Console(file=out, width=200))
    return out.getvalue()


def test_level_on_one_scale_is_a_difference_not_a_direction():
    got = compare(ours_frame([ours_row("count", "run", 2.0)]), [replace(COUNT, same_scale=True)])
    row = got.row(0, named=True)
    assert (row["difference"], row["covers"], row["agrees"]) == (-1.0, None, None)
    text = printed(got)
    assert "| 3 " in text.replace("│", "|") and "+3.000" not in text  # a count prints as a count


def test_level_on_another_scale_is_not_compared():
    row = compare(ours_frame([ours_row("count", "run", 2.0)]), [COUNT]).row(0, named=True)
    assert row["difference"] is None and row["agrees"] is None
    assert "scales differ: not compared" in row["note"]


def test_paper_without_figures_says_so():
    text = printed(compare(ours_frame([]), []), paper="Someone (2024)")
    assert "Someone (2024) states no figure" in text


def test_a_range_on_one_scale_is_covered_when_our_interval_meets_it():
    span = PaperFigure(key="r", measure="m", contrast="c", statistic="s", direction="+", value_range=(0.53, 0.57),
                       where="w", source="summary", same_scale=True)
    rows = [ours_row("r", "meets", 0.45, 0.30, 0.54), ours_row("r", "inside", 0.55, 0.54, 0.56),
            ours_row("r", "below", 0.20, 0.10, 0.52), ours_row("r", "no CI", 0.55)]
    got = {r["ours_label"]: r for r in compare(ours_frame(rows), [span]).iter_rows(named=True)}
    assert [got[k]["covers"] for k in ("meets", "inside", "below", "no CI")] == [True, True, False, None]
    assert all(r["difference"] is None for r in got.values())  # no single value to subtract
