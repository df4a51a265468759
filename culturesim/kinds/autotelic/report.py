"""``culturesim report`` for autotelic runs: per run, the population's measures per step
(:func:`culturesim.kinds.autotelic.measures.summary`: goals known and mastered, their
diversity and depth, how alike the agents' repertoires are, coverage of the evaluation goals,
agreement of the model's rewards with the game's facts), then the paper's claims beside our
figures ("Paper vs this run", :mod:`.paper_compare`).

A long run shows at most :data:`MAX_ROWS` steps, evenly spaced and always the first and the
last, so the table stays readable; the title says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

from culturesim.kinds.autotelic.measures import goal_diversity, load_autotelic, summary
from culturesim.kinds.autotelic.paper_compare import our_figures, print_paper_comparison
from culturesim.kinds.spec import ReportOptions
from culturesim.store import RunDir, RunError

MAX_ROWS = 12

# the summary's metrics in the order the table shows them
COLUMNS = ("known", "mastered", "vendi", "mean_pairwise", "mean_depth", "max_depth", "mean_jaccard",
           "neighbour_jaccard", "coverage", "agreement", "kappa")
COUNTS = ("known", "mastered", "max_depth")  # whole numbers, shown as such


def shown_steps(steps: list[int], limit: int = MAX_ROWS) -> list[int]:
    """All steps, or ``limit`` of them evenly spaced from the first to the last."""
    steps = sorted(steps)
    if len(steps) <= limit:
        return steps
    return [steps[i] for i in sorted(set(np.linspace(0, len(steps) - 1, limit).round().astype(int).tolist()))]


def step_table(metrics: pl.DataFrame) -> pl.DataFrame:
    """The summary's tidy (step, metric, value) frame as one row per step, one column per metric."""
    if metrics.is_empty():
        return pl.DataFrame(schema={"step": pl.Int64})
    wide = metrics.pivot(on="metric", index="step", values="value").sort("step")
    return wide.select("step", *[pl.col(c).round().cast(pl.Int64) if c in COUNTS else pl.col(c)
                                 for c in COLUMNS if c in wide.columns])


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def print_steps(run: RunDir, wide: pl.DataFrame, embedder_name: str, console: Console) -> None:
    steps = shown_steps(wide["step"].to_list()) if not wide.is_empty() else []
    title = f"{run.run_id}: the population per step (embedder {embedder_name})"
    if wide.height > len(steps):
        title += f", {len(steps)} of {wide.height} steps"
    table = Table(title=title)
    for col in wide.columns:
        table.add_column(col, justify="right")
    for row in wide.filter(pl.col("step").is_in(steps)).iter_rows():
        table.add_row(*map(_cell, row))
    console.print(table)


def report(path: Path, runs: list[RunDir], options: ReportOptions) -> None:
    """Print each autotelic run's table and its "Paper vs this run" (bad input: ValueError)."""
    from analysis.embeddings import make_embedder

    embedder = make_embedder(options.embedder)
    console = Console(width=max(160, Console().width))
    for run in runs:
        cache = run.path / "embeddings"
        try:
            episodes, repertoire = load_autotelic(run.path)
            diversity = goal_diversity(repertoire, embedder, cache_dir=cache)  # the table's and the paper's
            wide = step_table(summary(run.path, embedder, diversity=diversity))
        except RunError as exc:
            raise ValueError(str(exc)) from None
        print_steps(run, wide, embedder.name, console)
        print_paper_comparison(our_figures(episodes, repertoire, embedder, seed=options.seed, diversity=diversity),
                               console=console)
