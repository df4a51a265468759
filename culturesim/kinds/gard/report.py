"""``culturesim report`` for gard runs and sweeps: per run, the network's mutual-catalysis
propensity (pmc), its composome diversity and, for selection runs, the selection response;
then Markovitch & Lancet's abstract beside ours across the runs ("Paper vs this run";
:mod:`.paper_compare` says how each figure is computed)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

from culturesim.kinds.gard.paper_compare import print_paper_comparison, run_table
from culturesim.kinds.spec import ReportOptions
from culturesim.store import RunDir

HEADERS = {"run_id": "run", "mode": "mode", "network": "network", "pmc": "pmc", "splits": "splits",
           "composome_share": "composome share", "compotypes": "compotypes", "target_share": "near target",
           "neutral_share": "near target (neutral)", "selection_response": "selection response", "note": "note"}


def _cell(value) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def print_runs(table: pl.DataFrame, console: Console) -> None:
    out = Table(title="GARD runs: mutual catalysis, composome diversity, selection response")
    for col in table.columns:
        out.add_column(HEADERS[col], justify="left" if col in ("run_id", "mode", "network", "note") else "right")
    for row in table.iter_rows():
        out.add_row(*map(_cell, row))
    console.print(out)
    console.print("pmc: sum(beta) / (N_G trace(beta)), above 1 when catalysis of others outweighs self-catalysis; "
                  "composome share: splits with H to their parent split > 0.9; compotypes: k-means clusters of "
                  "the composomes; near target: share of splits with H to the selection target > 0.9",
                  highlight=False, soft_wrap=True)


def report(path: Path, runs: list[RunDir], options: ReportOptions) -> None:
    """Print the per-run table of the gard runs under ``path``, then the paper comparison.
    A run with no network recorded (no step finished) is a ValueError: the CLI's one-line error."""
    table = run_table(sorted(runs, key=lambda r: r.run_id), seed=options.seed)
    console = Console(width=max(160, Console().width))
    print_runs(table, console)
    print_paper_comparison(table, console=console)
