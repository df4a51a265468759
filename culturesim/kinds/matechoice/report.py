"""``culturesim report`` for matechoice runs and sweeps: success and final diversities per
mating mode, with Kruskal-Wallis and Holm-corrected Mann-Whitney tests; then, for runs that
recorded their individuals, the Price decomposition of the genealogy
(culturesim.kinds.matechoice.price) for the trait ``--price-trait`` in the form
``--innovation-form``, both named in the table's title. Between the two, "Paper vs this run":
the paper's headline figures beside ours (paper_compare; its bootstrap is seeded by ``--seed``)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from analysis.price import FORM_SOURCES
from culturesim.kinds.matechoice.measures import print_report, run_table, table_of_runs
from culturesim.kinds.matechoice.paper_compare import print_paper_comparison
from culturesim.kinds.matechoice.price import TRAITS, run_summary
from culturesim.kinds.spec import ReportOptions
from culturesim.store import RunDir


def _cell(value) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def print_price(runs: list[RunDir], trait: str, innovation_form: str, console: Console) -> None:
    """Per run, the Price terms summed over generations; for a single run, every generation too."""
    summary, frames, without = run_summary(runs, trait, innovation_form)
    form = f"innovation form: {innovation_form} ({FORM_SOURCES[innovation_form]})"
    if not summary.is_empty():
        table = Table(title=f"Price decomposition of the mean {TRAITS[trait]}, summed over generations\n{form}")
        for col in summary.columns:
            table.add_column(col, justify="left" if col in ("run_id", "mode") else "right")
        for row in summary.iter_rows():
            table.add_row(*map(_cell, row))
        console.print(table)
    if len(frames) == 1:
        frame = next(iter(frames.values()))
        cols = ["step", "delta", "selection", "transmission", "innovation", "residual", "skipped"]
        table = Table(title=f"Price decomposition of the mean {TRAITS[trait]} per generation ({form})")
        for col in cols:
            table.add_column(col, justify="left" if col == "skipped" else "right")
        for row in frame.select(cols).iter_rows():
            table.add_row(*map(_cell, row))
        console.print(table)
    if without:
        console.print(f"{len(without)} run(s) recorded no individuals (matechoice.record_individuals: false): "
                      f"no Price decomposition for them")


def report(path: Path, runs: list[RunDir], options: ReportOptions) -> None:
    """Print the study table of every matechoice run under ``path``, the paper's figures
    beside ours, then the Price decomposition of their genealogies (bad input: ValueError)."""
    if options.price_trait not in TRAITS:
        raise ValueError(f"unknown --price-trait {options.price_trait!r} for matechoice runs; allowed: "
                         f"{', '.join(TRAITS)}")
    runs_table = run_table(path)
    table = table_of_runs(runs_table)
    console = Console(width=max(160, Console().width))
    print_report(table, console=console)
    print_paper_comparison(runs_table, table, seed=options.seed, console=console)
    print_price(runs, options.price_trait, options.innovation_form, console)
