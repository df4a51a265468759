"""``culturesim report`` for culture runs: LLM-Culture's measures (Perez et al. 2024) at the first
and last step, for the runs under PATH and, with ``--reference PATH``, beside those of a
reference: a run imported from their files, a folder of such runs, or one of their
``output*.json`` files (imported into a temporary folder first). Both sides go through the same
functions (``culturesim.kinds.culture.measures.run_metrics``), so the columns compare like with
like; several runs (a sweep, a folder of seeds) show the mean over runs and how many there are.
After the table, a "Paper vs this run" line: the paper's abstract states no figure to compare
with (``culturesim.kinds.culture.paper``), so the comparison is with the authors' output files
through ``--reference``, and when one was given, the table above is it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

from culturesim.kinds.culture.measures import METRICS, run_metrics
from culturesim.kinds import paper_figures
from culturesim.kinds.culture.paper import FIGURES, PAPER
from culturesim.kinds.paper_figures import ours_frame
from culturesim.kinds.spec import ReportOptions
from culturesim.store import RunDir, RunError, population_ideas, runs_under


def per_step(runs: list[RunDir], embedder) -> pl.DataFrame:
    """run_id, step, metric, value: every measure of every run (the whole-run ones with a null step)."""
    frames = []
    for run in runs:
        ideas = population_ideas(run.ideas()).sort("step", "agent_id")
        table = pl.DataFrame(run_metrics(ideas, embedder, cache_dir=run.path / "embeddings"),
                             schema={"step": pl.Int64, "metric": pl.String, "value": pl.Float64})
        frames.append(table.with_columns(pl.lit(run.run_id).alias("run_id")))
    schema = {"run_id": pl.String, "step": pl.Int64, "metric": pl.String, "value": pl.Float64}
    return pl.concat(frames).select(list(schema)) if frames else pl.DataFrame(schema=schema)


def summary(steps: pl.DataFrame) -> pl.DataFrame:
    """run_id, metric, first, last: each measure at the run's first and last step it has (the
    whole-run measures in both columns), from :func:`per_step`."""
    rows = []
    for (run_id, metric), part in steps.sort("step", nulls_last=True).group_by("run_id", "metric",
                                                                              maintain_order=True):
        values = part["value"].to_list()
        rows.append({"run_id": run_id, "metric": metric, "first": values[0], "last": values[-1]})
    return pl.DataFrame(rows, schema={"run_id": pl.String, "metric": pl.String, "first": pl.Float64,
                                      "last": pl.Float64})


def plot_beside(ours: pl.DataFrame, theirs: pl.DataFrame | None, path: str | Path, title: str):
    """One panel per measure over generations (mean over runs), ours and, when given, the
    reference's, in one self-contained HTML file: the issue's "one table and one plot"."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    sides = [("this run", ours, "#1f77b4")] + ([("reference", theirs, "#d62728")] if theirs is not None else [])
    metrics = [m for m in METRICS if any(side.filter((pl.col("metric") == m) & pl.col("step").is_not_null()).height
                                         for _, side, _ in sides)]
    cols = 3
    fig = make_subplots(rows=max(1, -(-len(metrics) // cols)), cols=cols, subplot_titles=metrics)
    for i, metric in enumerate(metrics):
        for name, side, colour in sides:
            means = (side.filter((pl.col("metric") == metric) & pl.col("step").is_not_null())
                     .group_by("step").agg(pl.col("value").mean()).sort("step"))
            fig.add_trace(go.Scatter(x=means["step"].to_list(), y=means["value"].to_list(), name=name,
                                     mode="lines+markers", line={"color": colour}, legendgroup=name,
                                     showlegend=i == 0), row=i // cols + 1, col=i % cols + 1)
    fig.update_layout(title=title, height=300 * max(1, -(-len(metrics) // cols)), template="plotly_white")
    fig.write_html(str(path), include_plotlyjs=True)
    return fig


def _side(frame: pl.DataFrame) -> dict[str, tuple[float, float, int]]:
    means = frame.group_by("metric").agg(pl.col("first").mean(), pl.col("last").mean(), pl.len())
    return {m: (f, last, n) for m, f, last, n in means.iter_rows()}


def reference_runs(path: str | Path, folder: Path) -> list[RunDir]:
    """The runs of ``--reference``: run folders under it, or an LLM-Culture file imported into ``folder``."""
    from culturesim.kinds.culture.importer import import_llm_culture

    path = Path(path)
    if path.is_file():
        return [import_llm_culture(path, folder)]
    if not path.exists():
        raise ValueError(f"--reference {path}: no such run, folder or file")
    runs = runs_under(path)
    if not runs:
        raise ValueError(f"--reference {path}: no run folder here (import LLM-Culture files with "
                         f"culturesim import llm-culture, or give an output*.json file)")
    return runs


def reference_note(reference: str | None) -> str:
    """What this kind compares with instead of paper figures (its paper states none:
    ``paper.FIGURES`` is empty): the authors' own output files."""
    note = ("Its abstract presents a framework; compare with the authors' own output files (LLM-Culture's "
            "output*.json, or runs imported with culturesim import llm-culture) through --reference.")
    if reference:
        note += f" The table above is that comparison: its reference columns are {reference}, measured the same way."
    return note


def report(path: Path, runs: list[RunDir], options: ReportOptions) -> None:
    """Print the measures of the culture runs under ``path`` (and of the reference); bad input: ValueError."""
    from analysis.embeddings import make_embedder

    embedder = make_embedder(options.embedder)
    try:
        ours_steps = per_step(runs, embedder)
        theirs_steps = None
        if options.reference:
            with tempfile.TemporaryDirectory() as tmp:
                theirs_steps = per_step(reference_runs(options.reference, Path(tmp)), embedder)
    except RunError as exc:
        raise ValueError(str(exc)) from None
    ours = _side(summary(ours_steps))
    theirs = _side(summary(theirs_steps)) if theirs_steps is not None else None
    cell = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    n_ours = max((n for *_, n in ours.values()), default=0)
    table = Table(title=f"LLM-Culture measures: {path} ({n_ours} run(s), embedder {embedder.name})")
    table.add_column("measure")
    table.add_column("first step", justify="right")
    table.add_column("last step", justify="right")
    if theirs is not None:
        n_theirs = max((n for *_, n in theirs.values()), default=0)
        table.add_column(f"reference first ({n_theirs})", justify="right")
        table.add_column("reference last", justify="right")
    for metric in METRICS:
        if metric not in ours and (theirs is None or metric not in theirs):
            continue
        first, last, _ = ours.get(metric, (None, None, 0))
        row = [metric, cell(first), cell(last)]
        if theirs is not None:
            rf, rl, _ = theirs.get(metric, (None, None, 0))
            row += [cell(rf), cell(rl)]
        table.add_row(*row)
    console = Console(width=max(120, Console().width))
    console.print(table)
    paper_figures.show(ours_frame([]), FIGURES, PAPER, console=console, empty_note=reference_note(options.reference))
    if options.plot:
        plot_beside(ours_steps, theirs_steps, options.plot,
                    f"LLM-Culture measures: {path}" + (f" beside {options.reference}" if options.reference else ""))
        console.print(f"plot: {options.plot}", highlight=False, soft_wrap=True, markup=False)
