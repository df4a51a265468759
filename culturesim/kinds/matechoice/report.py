"""``culturesim report`` for matechoice runs and sweeps: success and final diversities per
mating mode, with Kruskal-Wallis and Holm-corrected Mann-Whitney tests."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from culturesim.kinds.matechoice.measures import print_report, report_table
from culturesim.kinds.spec import ReportOptions
from culturesim.store import RunDir


def report(path: Path, runs: list[RunDir], options: ReportOptions) -> None:
    """Print the study table of every matechoice run under ``path`` (bad input: ValueError)."""
    table = report_table(path)
    print_report(table, console=Console(width=max(160, Console().width)))
