"""Paper vs this run for autotelic runs: the figures of :mod:`.paper` computed from a run's
episodes and repertoire tables, then compared and printed by every kind's machinery
(:mod:`culturesim.kinds.paper_figures`).

Why the intervals are a bootstrap over agents: an agent's episodes are not independent of
each other (its repertoire and competence carry over from one to the next), so the agent
is the unit that repeats, and an ordinary least-squares standard error over episodes would
be too narrow. Each resample draws as many agents as the run has, with replacement
(``numpy.random.default_rng(seed).integers(0, agents, size=(RESAMPLES, agents))``, agents
in id order, a fresh generator per figure so one figure's interval does not depend on
which others were computed), refits the statistic on the drawn agents' rows, and the 95%
interval is the 2.5th and 97.5th percentiles. With one agent there is nothing to resample:
the figure has no interval. With few agents the percentile interval is rough; the note
says how many there were.

- slopes (``success_slope``, ``eval_slope``): the least-squares slope of the per-episode
  value on the step, over all episodes of all agents pooled. Resamples whose steps do not
  vary (no slope to fit) are left out of the percentiles.
- ``vendi_gain``: per agent, the Vendi score of its mastered goals at the run's last step
  minus at its first (:func:`culturesim.kinds.autotelic.measures.goal_diversity`); an agent
  with no mastered goal at a step counts 0, the effective number of an empty set. The figure
  is the mean over agents; the resamples average the drawn agents' changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from culturesim.kinds import paper_figures
from culturesim.kinds.autotelic.measures import goal_diversity
from culturesim.kinds.autotelic.paper import FIGURES, PAPER, PaperFigure
from culturesim.kinds.paper_figures import ours_frame, ours_row

__all__ = ["RESAMPLES", "compare", "our_figures", "pooled_slope", "print_paper_comparison", "vendi_gain"]

RESAMPLES = 2000


def _draws(agents: int, seed: int, resamples: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, agents, size=(resamples, agents))


def _interval(values: np.ndarray) -> tuple[float | None, float | None]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    low, high = np.quantile(values, [0.025, 0.975])
    return float(low), float(high)


def pooled_slope(frame: pl.DataFrame, value: str, *, seed: int = 0,
                 resamples: int = RESAMPLES) -> tuple[float | None, float | None, float | None, int, int]:
    """(slope, low, high, episodes, agents): the least-squares slope of ``value`` on ``step`` over
    the rows of ``frame`` (null values left out), with its bootstrap interval over agents. The
    slope is None when the steps do not vary; the interval None with fewer than two agents."""
    rows = frame.select("agent_id", "step", value).drop_nulls()
    agents = sorted(rows["agent_id"].unique().to_list())
    if rows.height < 2 or rows["step"].n_unique() < 2:
        return None, None, None, rows.height, len(agents)
    x = rows["step"].cast(pl.Float64)
    y = rows[value].cast(pl.Float64)
    # per agent: n, sum x, sum y, sum xx, sum xy; a resample's slope is a sum of these over its draws
    stats = (rows.with_columns(x=x, y=y).group_by("agent_id")
             .agg(n=pl.len().cast(pl.Float64), sx=pl.col("x").sum(), sy=pl.col("y").sum(),
                  sxx=(pl.col("x") ** 2).sum(), sxy=(pl.col("x") * pl.col("y")).sum())
             .sort("agent_id").select("n", "sx", "sy", "sxx", "sxy").to_numpy())
    n, sx, sy, sxx, sxy = stats.sum(axis=0)
    slope = float((n * sxy - sx * sy) / (n * sxx - sx * sx))
    if len(agents) < 2:
        return slope, None, None, rows.height, len(agents)
    draws = _draws(len(agents), seed, resamples)
    counts = np.stack([np.bincount(d, minlength=len(agents)) for d in draws]).astype(float)
    n, sx, sy, sxx, sxy = (counts @ stats).T
    denominator = n * sxx - sx * sx
    with np.errstate(divide="ignore", invalid="ignore"):
        slopes = np.where(np.abs(denominator) > 1e-12 * np.maximum(n * sxx, 1.0),
                          (n * sxy - sx * sy) / denominator, np.nan)
    low, high = _interval(slopes)
    return slope, low, high, rows.height, len(agents)


def vendi_gain(diversity: pl.DataFrame, agents: Sequence[int], first: int, last: int, *, seed: int = 0,
               resamples: int = RESAMPLES) -> tuple[float | None, float | None, float | None]:
    """(mean change, low, high) of each agent's Vendi score from step ``first`` to ``last``, given
    :func:`goal_diversity`'s frame; a missing (step, agent) counts 0."""
    agents = sorted(agents)
    if not agents or first >= last:
        return None, None, None
    vendi = {(s, a): v for s, a, v in diversity.select("step", "agent_id", "vendi").iter_rows() if a is not None}
    changes = np.array([vendi.get((last, a), 0.0) - vendi.get((first, a), 0.0) for a in agents])
    mean = float(changes.mean())
    if len(agents) < 2:
        return mean, None, None
    low, high = _interval(changes[_draws(len(agents), seed, resamples)].mean(axis=1))
    return mean, low, high


def _slope_row(key: str, label: str, frame: pl.DataFrame, value: str, seed: int, what: str) -> dict:
    slope, low, high, episodes, agents = pooled_slope(frame, value, seed=seed)
    if slope is None:
        return ours_row(key, label, note=f"not computed: {what} on fewer than two steps ({episodes} episodes)")
    ci = f"bootstrap over {agents} agents" if low is not None else "one agent: no interval"
    return ours_row(key, label, slope, low, high, note=f"{episodes} episodes; {ci}")


def our_figures(episodes: pl.DataFrame, repertoire: pl.DataFrame, embedder: Any, *, seed: int = 0,
                cache_dir: Path | None = None, diversity: pl.DataFrame | None = None) -> pl.DataFrame:
    """Our figures, keyed as :data:`.paper.FIGURES`, from a run's episodes and repertoire tables
    (and :func:`goal_diversity`'s frame of them, when the caller has it already)."""
    pursued = episodes.filter(pl.col("goal").is_not_null()).with_columns(
        oracle=pl.col("oracle_success").cast(pl.Float64), reward=pl.col("llm_reward").cast(pl.Float64))
    share = episodes.with_columns(share=pl.when(pl.col("eval_total") > 0).then(
        pl.col("eval_achieved").list.len() / pl.col("eval_total")))
    rows = [
        _slope_row("success_slope", "oracle's verdict", pursued, "oracle", seed, "goals the oracle can read"),
        _slope_row("success_slope", "language model's reward", pursued, "reward", seed, "parsed rewards"),
        _slope_row("eval_slope", "all episodes", share, "share", seed, "evaluation goals"),
    ]
    steps = episodes["step"]
    agents = sorted(episodes["agent_id"].unique().to_list())
    if episodes.is_empty() or steps.n_unique() < 2:
        rows.append(ours_row("vendi_gain", None, note="not computed: the run has fewer than two steps"))
    else:
        first, last = int(steps.min()), int(steps.max())
        if diversity is None:
            diversity = goal_diversity(repertoire, embedder, cache_dir=cache_dir)
        mean, low, high = vendi_gain(diversity, agents, first, last, seed=seed)
        ci = f"bootstrap over {len(agents)} agents" if low is not None else "one agent: no interval"
        rows.append(ours_row("vendi_gain", f"step {last} - step {first}", mean, low, high,
                             note=f"embedder {getattr(embedder, 'name', embedder)}; {ci}"))
    return ours_frame(rows)


def compare(ours: pl.DataFrame, figures: Sequence[PaperFigure] = FIGURES) -> pl.DataFrame:
    """Our figures against the paper's (:func:`culturesim.kinds.paper_figures.compare`)."""
    return paper_figures.compare(ours, figures)


def print_paper_comparison(ours: pl.DataFrame, console: Any = None) -> pl.DataFrame:
    """The report's hook: our figures compared with the paper's and printed."""
    return paper_figures.show(ours, FIGURES, PAPER, console=console)
