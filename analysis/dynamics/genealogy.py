"""Who copied whom: the lineage of every idea from ``parent_ids``, and how many lineages survive.

The ideas form a DAG (a combine has several parents, and asynchronous updates let an agent
read an idea of its own step), so depth, roots and descendants are computed on it one depth
level at a time with bitsets, in vectorised passes whose memory :data:`_BITSET_BYTES` bounds,
never by a per-idea recursion. :func:`lineage` gives the costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from analysis.dynamics._common import _valid_mask

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

_BITSET_BYTES = 256 * 2**20  # memory one bitset pass of the genealogy may use


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
