"""How a population's ideas change over time: drift, convergence, lineages and attractors.

Everything here is a pure function of an ideas table (``culturesim.store.IDEAS_SCHEMA``,
one run at a time) and, where meaning is needed, embeddings ``X`` with one row per row
of the frame passed in, in the same order.

A row whose ``text`` is null or whose ``error`` is set is not an idea: the agent failed
that step and kept the idea it had (``IdeaAgent.adopt``), and no later prompt can name it
as a parent. Every function therefore drops such rows, together with the rows of ``X``
aligned with them, so that callers can pass the table exactly as it was read. Frames
without a ``text`` or ``error`` column (derived frames) are taken as all ideas.

Similarities are cosine similarities; they are computed from sums of unit vectors
(``mean_a,b cos(a, b) = mean(â) · mean(b̂)``), so no population-sized matrix is ever built.
Ill-posed scalar results raise ``ValueError`` with the reason instead of returning NaN;
empty tables give empty frames with the usual schema.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from analysis.diversity import as_matrix, mean_pairwise_distance

__all__ = [
    "Attractor",
    "LINEAGE_SCHEMA",
    "PER_STEP_SCHEMA",
    "SURVIVING_SCHEMA",
    "TRAITS_SCHEMA",
    "attractors",
    "chain_attractors",
    "fixed_axis",
    "lineage",
    "mean_cross_similarity",
    "per_step",
    "rate_of_change",
    "surviving_lineages",
    "text_traits",
]

PER_STEP_SCHEMA = {"step": pl.Int64, "metric": pl.String, "value": pl.Float64}
LINEAGE_SCHEMA = {
    "idea_id": pl.String,
    "step": pl.Int64,
    "copies": pl.Int64,
    "descendants": pl.Int64,
    "depth": pl.Int64,
    "root_ids": pl.List(pl.String),
    "n_roots": pl.Int64,
    "missing_parents": pl.Int64,
}
SURVIVING_SCHEMA = {"step": pl.Int64, "lineages": pl.Int64}
TRAITS_SCHEMA = {"idea_id": pl.String, "chars": pl.Int64, "words": pl.Int64, "sentiment": pl.Float64}

_ROWS = 65_536  # rows of X converted to float64 at a time
_BITSET_BYTES = 256 * 2**20  # memory one bitset pass of the genealogy may use


# --------------------------------------------------------------------------- helpers


def _valid_mask(ideas: pl.DataFrame) -> np.ndarray:
    """Which rows are ideas (see the module docstring for why failed rows are dropped)."""
    keep = np.ones(ideas.height, dtype=bool)
    if "text" in ideas.columns:
        keep &= ideas["text"].is_not_null().to_numpy()
    if "error" in ideas.columns:
        keep &= ideas["error"].is_null().to_numpy()
    return keep


def _row_norms(X: np.ndarray, what: str) -> np.ndarray:
    """Norms of every row, refusing rows for which a cosine means nothing (NaN, inf, zero)."""
    norms = np.empty(X.shape[0])
    for start in range(0, X.shape[0], _ROWS):
        norms[start : start + _ROWS] = np.linalg.norm(X[start : start + _ROWS].astype(np.float64), axis=1)
    bad = np.flatnonzero(~np.isfinite(norms))
    if bad.size:
        raise ValueError(f"{what} has {bad.size} row(s) with NaN or inf (first: row {bad[0]})")
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise ValueError(f"{what} has {zero.size} all-zero row(s) (first: row {zero[0]}); cosine is undefined for them")
    return norms


def _mean_unit(X: np.ndarray, norms: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Mean of the unit rows, in float64, a block at a time (no second n x d array)."""
    idx = np.arange(X.shape[0]) if rows is None else rows
    total = np.zeros(X.shape[1])
    for start in range(0, idx.size, _ROWS):
        part = idx[start : start + _ROWS]
        total += (X[part].astype(np.float64) / norms[part, None]).sum(axis=0)
    return total / idx.size


def _aligned(ideas: pl.DataFrame, X: Any) -> np.ndarray:
    arr = as_matrix(X, "X")
    if arr.shape[0] != ideas.height:
        raise ValueError(f"X has {arr.shape[0]} rows but the ideas frame has {ideas.height}; they must be aligned")
    return arr


def _unit_vector(v: Any, what: str, dim: int) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-D vector, got shape {arr.shape}")
    if arr.size != dim:
        raise ValueError(f"{what} has {arr.size} dimensions but the embeddings have {dim}")
    norm = float(np.linalg.norm(arr))
    if not math.isfinite(norm) or norm == 0:
        raise ValueError(f"{what} must be finite and non-zero to define a direction")
    return arr / norm


# --------------------------------------------------------------------------- similarity


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


# --------------------------------------------------------------------------- attractors


@dataclass(frozen=True)
class Attractor:
    """Where transmission pulls a trait, from a regression of end values on start values.

    ``last = intercept + slope * first``. If this held at every generation, the trait
    would move towards ``position`` = intercept / (1 - slope), where the line crosses the
    diagonal; ``strength`` = 1 - |slope| is how much of the distance to it is closed per
    pass (1: every chain ends at the attractor whatever it started from; 0: the end
    follows the start one for one; negative: the fixed point repels).
    """

    slope: float
    intercept: float
    position: float | None
    strength: float
    r2: float
    n: int
    note: str | None = None


_SLOPE_ONE = 1e-9  # |slope - 1| below this is treated as exactly 1 (no fixed point)


def attractors(first: Any, last: Any) -> Attractor:
    """Fit the attractor of a scalar trait across chains (or agents).

    ``first[i]`` and ``last[i]`` are the trait of chain i's first and last idea. With a
    slope of 1 (to within 1e-9) the line never crosses the diagonal: ``position`` is None
    and ``note`` says why, rather than an infinite or NaN position.
    """
    f = np.asarray(first, dtype=np.float64)
    g = np.asarray(last, dtype=np.float64)
    if f.ndim != 1 or g.ndim != 1 or f.shape != g.shape:
        raise ValueError(
            "attractors needs two 1-D arrays of one scalar per chain, "
            f"got shapes {np.shape(first)} and {np.shape(last)}"
        )
    n = f.size
    if n < 2:
        raise ValueError(f"attractors needs at least 2 chains, got {n}")
    if not (np.isfinite(f).all() and np.isfinite(g).all()):
        raise ValueError("attractors: first and last must be finite (no NaN or inf)")
    if np.ptp(f) == 0:
        raise ValueError(
            "attractors: every chain starts at the same value, so how the end depends on the start "
            "(the slope) is undefined; start chains at different values"
        )
    dx, dy = f - f.mean(), g - g.mean()
    slope = float(dx @ dy / (dx @ dx))
    intercept = float(g.mean() - slope * f.mean())
    resid = g - (intercept + slope * f)
    ss_tot = float(dy @ dy)
    r2 = 1.0 - float(resid @ resid) / ss_tot if ss_tot > 0 else 1.0  # all ends equal: a perfect flat fit
    note = None
    if abs(slope - 1.0) < _SLOPE_ONE:
        position = None
        note = (
            "slope is 1: the end follows the start one for one (shifted by the intercept), "
            "so the line never crosses the diagonal and there is no fixed point"
        )
    else:
        position = intercept / (1.0 - slope)
        if abs(slope) > 1:
            note = "|slope| > 1: the fixed point repels; chains move away from it"
    return Attractor(slope, intercept, position, 1.0 - abs(slope), r2, n, note)


def _trait_frame(trait: Any) -> pl.DataFrame:
    if isinstance(trait, dict):
        frame = pl.DataFrame(
            {"idea_id": list(trait.keys()), "value": [float(v) for v in trait.values()]},
            schema={"idea_id": pl.String, "value": pl.Float64},
        )
    elif isinstance(trait, pl.DataFrame):
        if "idea_id" not in trait.columns:
            raise ValueError("a trait frame needs an idea_id column")
        others = [c for c in trait.columns if c != "idea_id"]
        column = "value" if "value" in others else (others[0] if len(others) == 1 else None)
        if column is None:
            raise ValueError(f"a trait frame needs a 'value' column or exactly one column beside idea_id, got {others}")
        frame = trait.select(pl.col("idea_id").cast(pl.String), pl.col(column).cast(pl.Float64).alias("value"))
    else:
        raise TypeError(f"trait must be a dict idea_id -> value or a polars DataFrame, got {type(trait).__name__}")
    if frame["idea_id"].is_duplicated().any():
        raise ValueError("trait gives more than one value for some idea_id")
    bad = frame.filter(pl.col("value").is_null() | ~pl.col("value").is_finite())
    if bad.height:
        raise ValueError(f"trait has {bad.height} missing, NaN or inf value(s) (first: {bad['idea_id'][0]})")
    return frame


def chain_attractors(ideas: pl.DataFrame, trait: Any, by: str | pl.DataFrame = "agent_id") -> Attractor:
    """The attractor of a trait across chains, each chain's first idea against its last.

    ``trait``: a dict idea_id -> value, or a frame with idea_id and a value column (e.g.
    ``text_traits(...).select("idea_id", "sentiment")``). Ideas without a value are left
    out, so a trait measured on part of the run restricts the chains to that part.

    ``by`` says what a chain is:

    - a column of ``ideas`` (default ``"agent_id"``: in population runs each agent's
      succession of ideas is a chain of its own);
    - a frame with columns ``idea_id`` and ``chain`` mapping each idea to its chain (ideas
      not in it are left out). For ``update: chain`` runs, where one seed passes down each
      component, the lineage gives this mapping directly::

          roots = lineage(ideas).filter(pl.col("root_ids").list.len() == 1)
          chains = roots.select("idea_id", chain=pl.col("root_ids").list.first())

    A chain's first and last ideas are its earliest and latest by step (ties broken by
    idea_id); chains with a single idea say nothing about change and are left out.
    """
    values = _trait_frame(trait)
    kept = ideas.filter(pl.Series(_valid_mask(ideas)))
    if isinstance(by, pl.DataFrame):
        missing = {"idea_id", "chain"} - set(by.columns)
        if missing:
            raise ValueError(f"a chain mapping frame needs columns idea_id and chain (missing: {sorted(missing)})")
        if by["idea_id"].is_duplicated().any():
            raise ValueError("the chain mapping puts some idea in more than one chain")
        chain = by.select("idea_id", pl.col("chain").alias("__chain"))
        kept = kept.select("idea_id", "step").join(chain, on="idea_id", how="inner")
        label = "chain"
    else:
        if by not in ideas.columns:
            raise ValueError(
                f"by={by!r} is not a column of the ideas frame; pass a column name or an (idea_id, chain) frame"
            )
        kept = kept.select("idea_id", "step", pl.col(by).alias("__chain"))
        label = by
    ends = (
        kept.join(values, on="idea_id", how="inner")
        .drop_nulls("__chain")
        .sort("__chain", "step", "idea_id")
        .group_by("__chain")  # rows keep their sorted order within each group
        .agg(pl.col("value").first().alias("first"), pl.col("value").last().alias("last"), pl.len().alias("n"))
        .filter(pl.col("n") >= 2)
        .sort("__chain")
    )
    if ends.height < 2:
        raise ValueError(
            f"chain_attractors needs at least 2 chains with 2 or more valued ideas (chains by {label!r}), "
            f"found {ends.height}"
        )
    return attractors(ends["first"].to_numpy(), ends["last"].to_numpy())


# --------------------------------------------------------------------------- lineage


@dataclass
class _Genealogy:
    """The ideas as a DAG in topological order (positions 0..N-1 sorted by depth).

    Nodes 0..n-1 (before sorting) are the ideas in frame order; n..N-1 stand for parent
    ids that are not in the table, which are treated as roots of unknown history.
    """

    ids: pl.Series  # idea_id of each kept row, frame order
    steps: np.ndarray  # step of each kept row
    missing_ids: list[str]  # ids of the stand-in roots, in node order n..N-1
    missing_per_idea: np.ndarray  # parents of each kept row not in the table
    pos: np.ndarray  # node -> topological position
    depth: np.ndarray  # by position
    level_bounds: np.ndarray  # positions [level_bounds[L], level_bounds[L+1]) have depth L
    parent_ptr: np.ndarray  # by child position: parents in parent_pos[ptr[c]:ptr[c+1]]
    parent_pos: np.ndarray
    child_ptr: np.ndarray  # by parent position: children in child_pos[ptr[p]:ptr[p+1]]
    child_pos: np.ndarray

    @property
    def n(self) -> int:
        return self.steps.size

    @property
    def size(self) -> int:
        return self.pos.size


def _csr(keys: np.ndarray, values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((values, keys))
    ptr = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=size), out=ptr[1:])
    return ptr, values[order]


def _gather(ptr: np.ndarray, values: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """values[ptr[v]:ptr[v+1]] for every v in nodes, concatenated, without a Python loop."""
    starts = ptr[nodes]
    counts = ptr[nodes + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return values[:0]
    offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)
    return values[offsets]


def _genealogy(ideas: pl.DataFrame) -> _Genealogy:
    kept = ideas.filter(pl.Series(_valid_mask(ideas))).select("idea_id", "step", "parent_ids")
    duplicated = kept.filter(pl.col("idea_id").is_duplicated())
    if duplicated.height:
        raise ValueError(
            f"idea_id {duplicated['idea_id'][0]!r} appears more than once; lineage needs one run at a time"
        )
    n = kept.height
    edges = (
        kept.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("child"), pl.col("parent_ids").alias("parent_id"))
        .explode("parent_id")
        .drop_nulls("parent_id")
        .unique(maintain_order=True)
        .join(
            kept.select(pl.col("idea_id").alias("parent_id"), pl.int_range(pl.len(), dtype=pl.Int64).alias("parent")),
            on="parent_id",
            how="left",
        )
    )
    missing_ids = edges.filter(pl.col("parent").is_null())["parent_id"].unique().sort().to_list()
    if missing_ids:
        stand_in = pl.DataFrame(
            {"parent_id": missing_ids, "stand_in": np.arange(n, n + len(missing_ids), dtype=np.int64)},
            schema={"parent_id": pl.String, "stand_in": pl.Int64},
        )
        edges = edges.join(stand_in, on="parent_id", how="left").with_columns(
            pl.coalesce("parent", "stand_in").alias("parent")
        )
    size = n + len(missing_ids)
    child = edges["child"].to_numpy().astype(np.int64)
    parent = edges["parent"].to_numpy().astype(np.int64)
    missing_per_idea = np.bincount(child[parent >= n], minlength=n).astype(np.int64)

    # Depth by Kahn's algorithm, one whole level at a time: a node's depth is the longest
    # path back to a root. Steps alone do not order the DAG (asynchronous updates let an
    # agent read an idea made earlier in the same step).
    child_ptr, children = _csr(parent, child, size)
    indegree = np.bincount(child, minlength=size)
    depth = np.full(size, -1, dtype=np.int64)
    frontier = np.flatnonzero(indegree == 0)
    level = done = 0
    while frontier.size:
        depth[frontier] = level
        done += frontier.size
        reached, counts = np.unique(_gather(child_ptr, children, frontier), return_counts=True)
        indegree[reached] -= counts
        frontier = reached[indegree[reached] == 0]
        level += 1
    if done < size:
        stuck = np.flatnonzero(depth < 0)
        some = ", ".join(repr(x) for x in kept["idea_id"].gather(stuck[stuck < n][:3]).to_list())
        raise ValueError(f"parent_ids contain a cycle through {stuck.size} idea(s) (e.g. {some})")

    order = np.lexsort((np.arange(size), depth))  # by depth, then frame order (stand-ins last)
    pos = np.empty(size, dtype=np.int64)
    pos[order] = np.arange(size)
    depth_sorted = depth[order]
    level_bounds = np.searchsorted(depth_sorted, np.arange(level + 1))
    cpos, ppos = pos[child], pos[parent]
    parent_ptr, parent_pos = _csr(cpos, ppos, size)
    child_ptr, child_pos = _csr(ppos, cpos, size)
    return _Genealogy(
        ids=kept["idea_id"],
        steps=kept["step"].to_numpy().astype(np.int64),
        missing_ids=missing_ids,
        missing_per_idea=missing_per_idea,
        pos=pos,
        depth=depth_sorted,
        level_bounds=level_bounds,
        parent_ptr=parent_ptr,
        parent_pos=parent_pos,
        child_ptr=child_ptr,
        child_pos=child_pos,
    )


def _words_per_block(rows: int, bits: int) -> int:
    return int(max(1, min(-(-bits // 64), _BITSET_BYTES // (8 * max(rows, 1)))))


def _propagate(g: _Genealogy, seeds: np.ndarray, lo: int, hi: int, forward: bool) -> np.ndarray:
    """Bitsets of which seeds reach (forward) or are reached from (backward) each node.

    Rows are positions lo..hi-1 (the only ones that can be reached from these seeds);
    bit j stands for seeds[j]. One vectorised pass per depth level: every node ORs the
    bitsets of its parents (forward) or children (backward), which costs O(edges · words)
    per call, never a per-idea recursion.
    """
    words = -(-seeds.size // 64)
    rows = hi - lo
    reach = np.zeros((rows + 1, words), dtype=np.uint64)  # last row: always zero
    j = np.arange(seeds.size)
    reach[seeds - lo, j >> 6] |= np.left_shift(np.uint64(1), (j & 63).astype(np.uint64))
    ptr, nbrs = (g.parent_ptr, g.parent_pos) if forward else (g.child_ptr, g.child_pos)
    batch = max(1, _BITSET_BYTES // (8 * words))  # edges gathered at once
    bounds = g.level_bounds
    levels = range(bounds.size - 1)
    for L in levels if forward else reversed(levels):
        a, end = max(int(bounds[L]), lo), min(int(bounds[L + 1]), hi)
        while a < end:  # the nodes of one level never read each other: any split is exact
            b = min(end, max(a + 1, int(np.searchsorted(ptr, ptr[a] + batch, side="right")) - 1))
            e0, e1 = int(ptr[a]), int(ptr[b])
            if e0 < e1:
                nb = nbrs[e0:e1]
                r = nb - lo
                r[(nb < lo) | (nb >= hi)] = rows
                starts = ptr[a:b]
                has = ptr[a + 1 : b + 1] > starts
                red = np.bitwise_or.reduceat(reach[r], starts[has] - e0, axis=0)
                reach[np.flatnonzero(has) + (a - lo)] |= red
            a = b
    return reach[:rows]


def _descendant_counts(g: _Genealogy) -> np.ndarray:
    """Distinct descendants of every idea, by position.

    Counting distinct descendants is a transitive closure: with combines, the sets of
    different children overlap, so sums over children double count. Each pass takes a
    block of target ideas, marks which of them each idea reaches (backward bitsets) and
    adds the popcounts; the total cost is O(edges · ideas / 64) word operations, cut by
    only visiting ideas that sit before the block in topological order.
    """
    counts = np.zeros(g.size, dtype=np.int64)
    targets = np.flatnonzero(g.parent_ptr[1:] > g.parent_ptr[:-1])  # ideas with a parent
    k = 0
    while k < targets.size:
        block = targets[k : k + 64 * _words_per_block(g.size, targets.size - k)]
        hi = int(block[-1]) + 1
        reach = _propagate(g, block, 0, hi, forward=False)
        counts[:hi] += np.bitwise_count(reach).sum(axis=1, dtype=np.int64)
        counts[block] -= 1  # each target carries its own bit
        k += block.size
    return counts


def _root_blocks(g: _Genealogy):
    """(root positions, bitsets over those roots for every position), a block of roots at a time."""
    roots = np.arange(int(g.level_bounds[1]) if g.level_bounds.size > 1 else 0)
    k = 0
    while k < roots.size:
        block = roots[k : k + 64 * _words_per_block(g.size, roots.size - k)]
        yield block, _propagate(g, block, 0, g.size, forward=True)
        k += block.size


def _root_pairs(g: _Genealogy, with_ids: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """How many roots each idea descends from and, if asked, which: (counts, roots by
    position, grouped by idea in frame order and ascending within an idea)."""
    mine = g.pos[: g.n]
    counts = np.zeros(g.n, dtype=np.int64)
    pair_rows: list[np.ndarray] = []
    pair_roots: list[np.ndarray] = []
    blocks = 0
    for block, reach in _root_blocks(g):
        blocks += 1
        for start in range(0, g.n, 8192):
            bits = reach[mine[start : start + 8192]]
            if not with_ids:
                counts[start : start + 8192] += np.bitwise_count(bits).sum(axis=1, dtype=np.int64)
                continue
            r, j = np.nonzero(np.unpackbits(bits.view(np.uint8), axis=1, bitorder="little")[:, : block.size])
            pair_rows.append(r + start)
            pair_roots.append(block[j])
    if not with_ids:
        return counts, None
    rows, roots = np.concatenate(pair_rows), np.concatenate(pair_roots)
    if blocks > 1:  # each block's pairs are sorted by idea: merge the runs
        order = np.argsort(rows, kind="stable")
        rows, roots = rows[order], roots[order]
    return np.bincount(rows, minlength=g.n).astype(np.int64), roots


def lineage(ideas: pl.DataFrame, *, descendants: bool = True, root_ids: bool = True) -> pl.DataFrame:
    """The genealogy of every idea, from ``parent_ids``: who was copied and how far it went.

    One row per idea (failed rows are not ideas), in frame order:

    - ``copies``: ideas that list it as a parent (the agent's own next idea included,
      unlike the model's running ``copies``, which counts only other agents' reads);
    - ``descendants``: distinct ideas downstream of it, transitively;
    - ``depth``: the longest path back to a root (0 for roots);
    - ``root_ids``: the roots it descends from, in table order (missing parents last);
      a root lists itself;
    - ``n_roots``: how many roots that is (how many lineages merged into the idea);
    - ``missing_parents``: parent ids not in the table.

    A root is an idea with no parents (a seed or a create). A parent id not in the table
    (a frame filtered by step, say) is treated as a root of unknown history: its children
    get depth 1 and list it among their roots, and ``missing_parents`` counts it, so a
    filtered frame works and shows where its history was cut, with no warning to ignore.

    Cost: depth, copies, n_roots and missing_parents take a few vectorised passes per
    depth level, O(edges · roots / 64) in all. Two columns can outgrow that on large
    well-mixed runs: ``root_ids`` is as large as its output (every idea of a mixed
    population descends from every seed), and ``descendants`` is a transitive closure,
    O(edges · ideas / 64) (about 10 s for 3·10^5 ideas and 100 s for 10^6 ideas with
    2·10^6 edges, on one core, where the rest takes 2 s). Pass
    ``root_ids=False`` or ``descendants=False`` to leave that column null instead.
    """
    if ideas.height == 0 or not _valid_mask(ideas).any():
        return pl.DataFrame(schema=LINEAGE_SCHEMA)
    g = _genealogy(ideas)
    n = g.n
    mine = g.pos[:n]
    n_roots, roots = _root_pairs(g, with_ids=root_ids)
    if roots is not None:
        names = pl.concat([g.ids, pl.Series("idea_id", g.missing_ids, dtype=pl.String)])
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(n_roots, out=offsets[1:])
        values = names.gather(np.argsort(g.pos)[roots]).cast(pl.String).to_arrow()
        ids_column = pl.Series("root_ids", pa.LargeListArray.from_arrays(pa.array(offsets), values))
    else:
        ids_column = pl.Series("root_ids", [None] * n, dtype=pl.List(pl.String))
    counts = _descendant_counts(g)[mine] if descendants else None
    return pl.DataFrame(
        {
            "idea_id": g.ids,
            "step": g.steps,
            "copies": (g.child_ptr[1:] - g.child_ptr[:-1])[mine],
            "descendants": pl.Series("descendants", counts, dtype=pl.Int64) if descendants else [None] * n,
            "depth": g.depth[mine],
            "root_ids": ids_column,
            "n_roots": n_roots,
            "missing_parents": g.missing_per_idea,
        },
        schema=LINEAGE_SCHEMA,
    )


def surviving_lineages(ideas: pl.DataFrame) -> pl.DataFrame:
    """How many lineages are still alive at each step: the narrowing of cultural ancestry.

    For each step with ideas, the number of distinct roots (see ``lineage``; missing
    parents count as roots) that at least one idea made at that step descends from, or
    is. Ideas are counted at the step they were made: an agent that fails keeps its old
    idea, but that idea was counted at its own step.
    """
    if ideas.height == 0 or not _valid_mask(ideas).any():
        return pl.DataFrame(schema=SURVIVING_SCHEMA)
    g = _genealogy(ideas)
    order = np.argsort(g.steps, kind="stable")
    steps, starts = np.unique(g.steps[order], return_index=True)
    rows_by_step = g.pos[: g.n][order]
    alive = np.zeros(steps.size, dtype=np.int64)
    for _, reach in _root_blocks(g):
        merged = np.bitwise_or.reduceat(reach[rows_by_step], starts, axis=0)
        alive += np.bitwise_count(merged).sum(axis=1, dtype=np.int64)
    return pl.DataFrame({"step": steps, "lineages": alive}, schema=SURVIVING_SCHEMA)


# --------------------------------------------------------------------------- text traits


@functools.cache
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()  # loads its lexicon from disk: once per process


def text_traits(ideas: pl.DataFrame, X: Any = None, axis: Any = None) -> pl.DataFrame:
    """Scalar traits of each idea (length, sentiment, position on a semantic axis).

    These are the traits whose drift and attractors (``chain_attractors``) say what
    transmission does to content. ``sentiment`` is VADER's compound score in [-1, 1];
    ``projection`` (only with both ``X`` and ``axis``) is the cosine of the idea with the
    axis, so ideas of different lengths are comparable. Use an axis fixed once
    (``fixed_axis``), never one refitted per step.
    """
    if (X is None) != (axis is None):
        raise ValueError("text_traits: pass both X and axis to get a projection, or neither")
    keep = _valid_mask(ideas)
    kept = ideas.filter(pl.Series(keep))
    schema = dict(TRAITS_SCHEMA)
    projection = None
    if X is not None:
        arr = _aligned(ideas, X)[keep]
        unit_axis = _unit_vector(axis, "axis", arr.shape[1])
        norms = _row_norms(arr, "X")
        projection = np.empty(arr.shape[0])
        for start in range(0, arr.shape[0], _ROWS):
            part = arr[start : start + _ROWS].astype(np.float64)
            projection[start : start + _ROWS] = part @ unit_axis / norms[start : start + _ROWS]
        schema["projection"] = pl.Float64
    if kept.height == 0:
        return pl.DataFrame(schema=schema)
    analyzer = _vader()
    texts = kept["text"].to_list()
    out = kept.select(
        pl.col("idea_id").cast(pl.String),
        pl.col("text").str.len_chars().cast(pl.Int64).alias("chars"),
        pl.col("text").str.count_matches(r"\S+").cast(pl.Int64).alias("words"),
    ).with_columns(
        pl.Series("sentiment", [analyzer.polarity_scores(t)["compound"] for t in texts], dtype=pl.Float64)
    )
    if projection is not None:
        out = out.with_columns(pl.Series("projection", projection, dtype=pl.Float64))
    return out


def fixed_axis(X_start: Any, X_end: Any) -> np.ndarray:
    """A unit direction of change: mean unit embedding at the end minus at the start.

    Fit it once (e.g. from step 0 and the last step, or from reference texts) and project
    every step on the same vector. An axis refitted per step moves with the population,
    so a steady drift along it would be absorbed into the axis and read as no change,
    and values from different steps would not be on the same scale.
    """
    A, B = as_matrix(X_start, "X_start"), as_matrix(X_end, "X_end")
    if A.shape[0] == 0 or B.shape[0] == 0:
        raise ValueError(f"fixed_axis needs ideas at both ends, got {A.shape[0]} and {B.shape[0]}")
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"X_start and X_end have different dimensions ({A.shape[1]} and {B.shape[1]})")
    diff = _mean_unit(B, _row_norms(B, "X_end")) - _mean_unit(A, _row_norms(A, "X_start"))
    norm = float(np.linalg.norm(diff))
    if norm <= 1e-12:
        raise ValueError("fixed_axis: start and end have the same mean direction, so there is no axis of change")
    return diff / norm
