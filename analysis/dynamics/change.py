"""How far a population moves from step to step, and the trend of any per-step measure.

:func:`per_step` tabulates, per step, the population's diversity and its cosine similarity to
the start, to the previous step and to each agent's own last idea; :func:`rate_of_change`
reduces one of those to a slope so that runs of different lengths compare.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from analysis.diversity import as_matrix, mean_pairwise_distance
from analysis.dynamics._common import _ROWS, _aligned, _mean_unit, _row_norms, _valid_mask

PER_STEP_SCHEMA = {"step": pl.Int64, "metric": pl.String, "value": pl.Float64}


def mean_cross_similarity(A: Any, B: Any) -> float:
    """Mean cosine similarity over all pairs (a, b), a in A, b in B.

    Computed as (Σâ/n_a) · (Σb̂/n_b), which is the exact pairwise mean, in O((n_a + n_b)·d):
    whole populations across steps can be compared without an n_a x n_b matrix. Pairs of
    a row with itself count when A and B share rows, which is what comparing a population
    with itself means here (so it is not 1 unless all rows point the same way).
    """
    A, B = as_matrix(A, "A"), as_matrix(B, "B")
    if A.shape[0] == 0 or B.shape[0] == 0:
        raise ValueError(f"mean_cross_similarity needs ideas on both sides, got {A.shape[0]} and {B.shape[0]}")
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"A and B have different dimensions ({A.shape[1]} and {B.shape[1]})")
    return float(_mean_unit(A, _row_norms(A, "A")) @ _mean_unit(B, _row_norms(B, "B")))


def per_step(ideas: pl.DataFrame, X: Any) -> pl.DataFrame:
    """Tidy (step, metric, value) rows describing each step's population, for plotting and fits.

    Metrics, each only where it is defined (a missing row, never NaN):

    - ``n_ideas``: ideas present at the step.
    - ``diversity``: mean pairwise cosine distance within the step (``analysis.diversity``);
      steps with fewer than 2 ideas have none.
    - ``similarity_to_start``: mean cross similarity to the first step that has ideas. At
      the first step itself it is the population's similarity to itself (self pairs
      included), the baseline later steps are read against.
    - ``similarity_to_previous``: mean cross similarity to the previous step that has
      ideas (steps where every agent failed are skipped, not compared as empty).
    - ``self_similarity``: mean over agents of the cosine between the agent's idea at the
      step and its own latest earlier idea: how much agents rewrite their own idea, as
      opposed to how much the population moves (an agent absent in between is compared
      with the idea it still held).

    One run at a time: two ideas of the same agent at the same step raise ``ValueError``.
    """
    X = _aligned(ideas, X)
    keep = _valid_mask(ideas)
    kept, X = ideas.filter(pl.Series(keep)), X[keep]
    if kept.height == 0:
        return pl.DataFrame(schema=PER_STEP_SCHEMA)
    norms = _row_norms(X, "X")
    steps = kept["step"].to_numpy().astype(np.int64)
    agents = kept["agent_id"].to_numpy().astype(np.int64)

    by_agent = np.lexsort((steps, agents))
    same_agent = agents[by_agent[1:]] == agents[by_agent[:-1]]
    clash = same_agent & (steps[by_agent[1:]] == steps[by_agent[:-1]])
    if clash.any():
        k = by_agent[1:][clash][0]
        raise ValueError(
            f"agent {agents[k]} has more than one idea at step {steps[k]}; per_step measures one run at a time"
        )
    current, previous = by_agent[1:][same_agent], by_agent[:-1][same_agent]
    self_sim = np.empty(current.size)
    for start in range(0, current.size, _ROWS):
        cur, prev = current[start : start + _ROWS], previous[start : start + _ROWS]
        dots = np.einsum("ij,ij->i", X[cur].astype(np.float64), X[prev].astype(np.float64))
        self_sim[start : start + _ROWS] = dots / (norms[cur] * norms[prev])

    rows: list[tuple[int, str, float]] = []
    order = np.argsort(steps, kind="stable")
    uniq, starts = np.unique(steps[order], return_index=True)
    self_at = np.searchsorted(uniq, steps[current])
    self_sum = np.bincount(self_at, weights=self_sim, minlength=uniq.size)
    self_count = np.bincount(self_at, minlength=uniq.size)
    bounds = [*starts.tolist(), order.size]
    start_mean = prev_mean = None
    for k, step in enumerate(uniq.tolist()):
        idx = order[bounds[k] : bounds[k + 1]]
        mean = _mean_unit(X, norms, idx)
        if start_mean is None:
            start_mean = mean
        rows.append((step, "n_ideas", float(idx.size)))
        if idx.size >= 2:
            rows.append((step, "diversity", mean_pairwise_distance(X[idx])))
        rows.append((step, "similarity_to_start", float(mean @ start_mean)))
        if prev_mean is not None:
            rows.append((step, "similarity_to_previous", float(mean @ prev_mean)))
        if self_count[k]:
            rows.append((step, "self_similarity", float(self_sum[k] / self_count[k])))
        prev_mean = mean
    return pl.DataFrame(rows, schema=PER_STEP_SCHEMA, orient="row")


def rate_of_change(per_step_frame: pl.DataFrame, metric: str = "diversity") -> float:
    """OLS slope of a ``per_step`` metric over steps: the trend, in metric units per step.

    A slope is the simplest summary that compares runs of different lengths; it is a
    trend, not a claim that the change is linear.
    """
    points = (
        per_step_frame.filter(pl.col("metric") == metric).select("step", "value").drop_nulls().sort("step")
    )
    if points.height < 2:
        known = sorted(per_step_frame["metric"].unique().to_list()) if per_step_frame.height else []
        raise ValueError(
            f"rate_of_change: metric {metric!r} has {points.height} point(s), a slope needs at least 2"
            + (f" (metrics present: {', '.join(known)})" if known else "")
        )
    x = points["step"].to_numpy().astype(np.float64)
    y = points["value"].to_numpy().astype(np.float64)
    if not np.isfinite(y).all():
        raise ValueError(f"rate_of_change: metric {metric!r} has NaN or inf values")
    if np.ptp(x) == 0:
        raise ValueError(f"rate_of_change: all points of {metric!r} are at step {int(x[0])}; the slope is undefined")
    dx = x - x.mean()
    return float(dx @ (y - y.mean()) / (dx @ dx))
