"""Measure runs of the ``autotelic`` kind: how many goals agents master, how diverse and deep they
are, how alike the agents' repertoires become, how much of the game they cover, and whether the
language model's rewards agree with the game's own facts.

Every function takes the run's ``repertoire`` and ``episodes`` tables (tables.py beside this module)
as polars frames and returns a polars frame, one row per step and agent; rows with a null
``agent_id`` are the population's. Measures that need at least two goals (pairwise distance) are
null below that, never NaN.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import polars as pl

from analysis import diversity
from analysis.embeddings import Embedder, embed_texts
from culturesim.kinds.autotelic.tables import EPISODES_SCHEMA, REPERTOIRE_SCHEMA
from culturesim.store import RunDir

__all__ = [
    "coverage",
    "goal_diversity",
    "load_autotelic",
    "mastered_goals",
    "repertoire_overlap",
    "reward_agreement",
    "subgoal_depth",
    "summary",
]


def load_autotelic(path: str | Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The run's (episodes, repertoire) tables, finished or still running."""
    run = RunDir(path)
    kind = run.read_manifest().get("kind")
    if kind != "autotelic":
        raise ValueError(f"{run.path} is a run of kind {kind!r}, not autotelic")
    return run.table_parts("episodes", EPISODES_SCHEMA), run.table_parts("repertoire", REPERTOIRE_SCHEMA)


def _chosen(repertoire: pl.DataFrame, mastered_only: bool) -> pl.DataFrame:
    return repertoire.filter(pl.col("mastered")) if mastered_only else repertoire


def mastered_goals(repertoire: pl.DataFrame) -> pl.DataFrame:
    """Goals known and mastered per agent and step; the population's row counts distinct goal texts."""
    per_agent = repertoire.group_by("step", "agent_id").agg(
        known=pl.len().cast(pl.Int64), mastered=pl.col("mastered").sum().cast(pl.Int64))
    population = repertoire.group_by("step").agg(
        known=pl.col("goal").n_unique().cast(pl.Int64),
        mastered=pl.col("goal").filter(pl.col("mastered")).n_unique().cast(pl.Int64),
    ).with_columns(agent_id=pl.lit(None, dtype=pl.Int64))
    return pl.concat([per_agent, population.select(per_agent.columns)]).sort("step", "agent_id", nulls_last=True)


def goal_diversity(repertoire: pl.DataFrame, embedder: Embedder, *, cache_dir: Path | None = None,
                   mastered_only: bool = True) -> pl.DataFrame:
    """Vendi score and mean pairwise cosine distance of each agent's goals (and the population's
    distinct goals) per step, in the embedder's space."""
    chosen = _chosen(repertoire, mastered_only)
    schema = {"step": pl.Int64, "agent_id": pl.Int64, "goals": pl.Int64, "vendi": pl.Float64,
              "mean_pairwise": pl.Float64}
    if chosen.is_empty():
        return pl.DataFrame(schema=schema)
    texts = sorted(set(chosen["goal"].to_list()))
    vectors = dict(zip(texts, embed_texts(texts, embedder, cache_dir=cache_dir), strict=True))
    rows = []
    groups = [((s, a), g["goal"].unique().sort().to_list()) for (s, a), g in chosen.group_by("step", "agent_id")]
    groups += [((s, None), g["goal"].unique().sort().to_list()) for (s,), g in chosen.group_by("step")]
    for (step, agent), goals in groups:
        X = np.stack([vectors[t] for t in goals])
        rows.append({"step": step, "agent_id": agent, "goals": len(goals), "vendi": diversity.vendi_score(X),
                     "mean_pairwise": diversity.mean_pairwise_distance(X) if len(goals) >= 2 else None})
    return pl.DataFrame(rows, schema=schema).sort("step", "agent_id", nulls_last=True)


def _depth(goal: str, subgoals: dict[str, list[str]], seen: frozenset[str] = frozenset()) -> int:
    """0 for a goal without subgoals; else one more than its deepest subgoal. A subgoal the agent
    does not hold counts as depth 0; a cycle stops where it closes."""
    subs = [s for s in subgoals.get(goal, []) if s not in seen]
    if not subgoals.get(goal):
        return 0
    return 1 + max((_depth(s, subgoals, seen | {goal}) for s in subs), default=0)


def subgoal_depth(repertoire: pl.DataFrame, *, mastered_only: bool = False) -> pl.DataFrame:
    """Mean and maximum subgoal depth of each agent's goals per step (through its own repertoire)."""
    rows = []
    for (step, agent), group in repertoire.group_by("step", "agent_id"):
        subgoals = dict(zip(group["goal"].to_list(), group["subgoals"].to_list(), strict=True))
        measured = _chosen(group, mastered_only)["goal"].to_list()
        if not measured:
            continue
        depths = [_depth(g, subgoals) for g in measured]
        rows.append({"step": step, "agent_id": agent, "mean_depth": float(np.mean(depths)),
                     "max_depth": int(max(depths))})
    schema = {"step": pl.Int64, "agent_id": pl.Int64, "mean_depth": pl.Float64, "max_depth": pl.Int64}
    return pl.DataFrame(rows, schema=schema).sort("step", "agent_id")


def _jaccard(a: set, b: set) -> float | None:
    union = a | b
    return len(a & b) / len(union) if union else None


def repertoire_overlap(repertoire: pl.DataFrame, agents: list[int], *, edges: pl.DataFrame | None = None,
                       mastered_only: bool = True) -> pl.DataFrame:
    """Mean Jaccard similarity of the agents' goal sets per step, over all pairs of ``agents`` and,
    given the network's edges, over neighbouring pairs: homogenisation rises towards 1. Pairs where
    both sets are empty have no overlap to measure and are left out."""
    chosen = _chosen(repertoire, mastered_only)
    neighbours = set()
    if edges is not None:
        neighbours = {tuple(sorted(e)) for e in edges.select("source", "target").iter_rows() if e[0] != e[1]}
    rows = []
    for step in sorted(repertoire["step"].unique().to_list()):
        at = chosen.filter(pl.col("step") == step)
        sets = {a: set(at.filter(pl.col("agent_id") == a)["goal"].to_list()) for a in agents}
        pairs = {p: _jaccard(sets[p[0]], sets[p[1]]) for p in combinations(sorted(agents), 2)}
        all_pairs = [v for v in pairs.values() if v is not None]
        near = [v for p, v in pairs.items() if p in neighbours and v is not None]
        rows.append({"step": step, "mean_jaccard": float(np.mean(all_pairs)) if all_pairs else None,
                     "neighbour_jaccard": float(np.mean(near)) if near else None, "pairs": len(all_pairs)})
    schema = {"step": pl.Int64, "mean_jaccard": pl.Float64, "neighbour_jaccard": pl.Float64, "pairs": pl.Int64}
    return pl.DataFrame(rows, schema=schema)


def coverage(episodes: pl.DataFrame) -> pl.DataFrame:
    """Share of the held-out evaluation goals (checked by the game's facts) that an agent, and the
    population together, has reached in any episode up to each step."""
    totals = episodes.group_by("game").agg(pl.col("eval_total").first())
    denominator = int(totals["eval_total"].sum()) if not totals.is_empty() else 0
    schema = {"step": pl.Int64, "agent_id": pl.Int64, "reached": pl.Int64, "coverage": pl.Float64}
    if denominator == 0:
        return pl.DataFrame(schema=schema)
    reached = episodes.select("step", "agent_id", "game", "eval_achieved").explode("eval_achieved").drop_nulls()
    first = reached.group_by("agent_id", "game", "eval_achieved").agg(pl.col("step").min())
    steps = sorted(episodes["step"].unique().to_list())
    rows = []
    for agent in [*sorted(episodes["agent_id"].unique().to_list()), None]:
        mine = first if agent is None else first.filter(pl.col("agent_id") == agent)
        if agent is None:
            mine = mine.group_by("game", "eval_achieved").agg(pl.col("step").min())
        for step in steps:
            count = mine.filter(pl.col("step") <= step).height
            rows.append({"step": step, "agent_id": agent, "reached": count, "coverage": count / denominator})
    return pl.DataFrame(rows, schema=schema)


def reward_agreement(episodes: pl.DataFrame, *, by: str | None = None) -> pl.DataFrame:
    """How often the language model's reward matches the oracle's verdict, over episodes where both
    exist, with Cohen's kappa (agreement beyond what the two yes-rates give by chance; null when
    chance agreement is already perfect)."""
    judged = episodes.filter(pl.col("llm_reward").is_not_null() & pl.col("oracle_success").is_not_null())
    groups = [((None,), judged)] if by is None else sorted(judged.group_by(by), key=lambda g: g[0])
    rows = []
    for key, group in groups:
        llm = group["llm_reward"].cast(pl.Float64).to_numpy()
        oracle = group["oracle_success"].cast(pl.Float64).to_numpy()
        n = len(llm)
        if n == 0:
            continue
        observed = float(np.mean(llm == oracle))
        chance = float(llm.mean() * oracle.mean() + (1 - llm.mean()) * (1 - oracle.mean()))
        kappa = (observed - chance) / (1 - chance) if chance < 1 else None
        row = {"n": n, "agreement": observed, "kappa": kappa, "llm_yes": float(llm.mean()),
               "oracle_yes": float(oracle.mean())}
        if by is not None:
            row = {by: key[0], **row}
        rows.append(row)
    schema = {"n": pl.Int64, "agreement": pl.Float64, "kappa": pl.Float64, "llm_yes": pl.Float64,
              "oracle_yes": pl.Float64}
    if by is not None:
        schema = {by: episodes.schema[by], **schema}
    return pl.DataFrame(rows, schema=schema)


def summary(path: str | Path, embedder: Embedder, *, cache_dir: Path | None = None,
            diversity: pl.DataFrame | None = None) -> pl.DataFrame:
    """The population's measures per step as one tidy frame (step, metric, value).
    ``diversity``: :func:`goal_diversity`'s frame of this run, when the caller has computed
    it already (a Vendi score per agent and step is the costly part)."""
    episodes, repertoire = load_autotelic(path)
    run = RunDir(path)
    agents = pl.read_parquet(run.path / "agents.parquet")["agent_id"].to_list()
    edges = pl.read_parquet(run.path / "edges.parquet")
    if diversity is None:
        diversity = goal_diversity(repertoire, embedder, cache_dir=cache_dir)
    population = pl.col("agent_id").is_null()
    parts = [
        mastered_goals(repertoire).filter(population).select("step", "known", "mastered"),
        diversity.filter(population).select("step", "vendi", "mean_pairwise"),
        subgoal_depth(repertoire).group_by("step").agg(pl.col("mean_depth").mean(), pl.col("max_depth").max()),
        repertoire_overlap(repertoire, agents, edges=edges).select("step", "mean_jaccard", "neighbour_jaccard"),
        coverage(episodes).filter(population).select("step", "coverage"),
        reward_agreement(episodes, by="step").select("step", "agreement", "kappa"),
    ]
    frames = [p.unpivot(index="step", variable_name="metric", value_name="value")
              .with_columns(pl.col("value").cast(pl.Float64)) for p in parts if not p.is_empty()]
    if not frames:
        return pl.DataFrame(schema={"step": pl.Int64, "metric": pl.String, "value": pl.Float64})
    return pl.concat(frames).drop_nulls("value").sort("metric", "step")
