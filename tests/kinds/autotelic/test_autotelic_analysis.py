"""Measures of autotelic runs on small tables whose answers are worked out by hand or by another library."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score

from culturesim.kinds.autotelic import measures as at
from culturesim.kinds.autotelic.tables import EPISODES_SCHEMA, REPERTOIRE_SCHEMA


def repertoire(rows: list[tuple]) -> pl.DataFrame:
    """rows: (step, agent_id, goal, subgoals, mastered)."""
    full = [{"run_id": "r", "step": s, "agent_id": a, "goal_id": g, "goal": g, "subgoals": subs, "source": "relabel",
             "origin": "o", "from_agent": None, "first_step": 1, "attempts": 1, "successes": int(m),
             "competence": float(m), "mastered": m, "trajectory_len": 1} for s, a, g, subs, m in rows]
    return pl.DataFrame(full, schema=REPERTOIRE_SCHEMA)


def episodes(rows: list[dict]) -> pl.DataFrame:
    base = {"run_id": "r", "episode": 1, "game": "0:abc", "goal": "g", "goal_id": "x", "source": "own",
            "subgoals": [], "actions": [], "replayed": 0, "relabeled": [], "relabel_status": "ok",
            "llm_reward": None, "reward_status": "ok", "oracle_success": None, "eval_achieved": [],
            "eval_total": 4, "won": False, "lost": False}
    return pl.DataFrame([{**base, **r} for r in rows], schema=EPISODES_SCHEMA)


@dataclass
class TableEmbedder:
    """Fixed vectors per text, so the geometry is known exactly."""

    vectors: dict[str, list[float]]
    name: str = "table"
    cacheable: bool = False

    def embed(self, texts):
        return np.array([self.vectors[t] for t in texts], dtype=np.float32)


REP = repertoire([
    (1, 0, "a", [], True), (1, 0, "b", [], True), (1, 0, "c", [], False),
    (1, 1, "a", [], True), (1, 1, "d", [], True),
    (2, 0, "a", [], True), (2, 0, "b", [], True), (2, 0, "c", [], True),
    (2, 1, "a", [], True), (2, 1, "b", [], False), (2, 1, "d", [], True),
])


def test_mastered_goals_per_agent_and_population():
    table = at.mastered_goals(REP)
    got = {(r["step"], r["agent_id"]): (r["known"], r["mastered"]) for r in table.iter_rows(named=True)}
    assert got == {(1, 0): (3, 2), (1, 1): (2, 2), (1, None): (4, 3),
                   (2, 0): (3, 3), (2, 1): (3, 2), (2, None): (4, 4)}


def test_goal_diversity_matches_closed_forms():
    # a and b orthogonal, c equal to a, d orthogonal to both
    embedder = TableEmbedder({"a": [1, 0, 0], "b": [0, 1, 0], "c": [1, 0, 0], "d": [0, 0, 1]})
    table = at.goal_diversity(REP, embedder)
    row = {(r["step"], r["agent_id"]): r for r in table.iter_rows(named=True)}
    # step 1, agent 0 masters {a, b}: two orthogonal goals
    assert row[(1, 0)]["goals"] == 2 and row[(1, 0)]["vendi"] == pytest.approx(2.0)
    assert row[(1, 0)]["mean_pairwise"] == pytest.approx(1.0)
    # step 2, agent 0 masters {a, b, c} with c == a: kernel eigenvalues 2/3 and 1/3
    p = np.array([2 / 3, 1 / 3])
    assert row[(2, 0)]["vendi"] == pytest.approx(math.exp(-(p * np.log(p)).sum()))
    assert row[(2, 0)]["mean_pairwise"] == pytest.approx(2 / 3)  # pairs: (a,b)=1, (a,c)=0, (b,c)=1
    # population at step 2: {a, b, c, d}, the kernel's eigenvalues by numpy directly
    X = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=float)
    eig = np.linalg.eigvalsh(X @ X.T / 4)
    eig = eig[eig > 1e-12]
    assert row[(2, None)]["vendi"] == pytest.approx(math.exp(-(eig * np.log(eig)).sum()))
    # one goal: no pair to measure
    single = at.goal_diversity(repertoire([(1, 0, "a", [], True)]), embedder)
    assert single["mean_pairwise"].to_list() == [None, None] and single["vendi"].to_list() == [1.0, 1.0]


def test_subgoal_depth_by_hand():
    rep = repertoire([
        (1, 0, "c", [], True), (1, 0, "b", ["c"], True), (1, 0, "a", ["b", "unknown"], True),
        (1, 1, "x", ["y"], True), (1, 1, "y", ["x"], True),  # a cycle stops where it closes
    ])
    table = at.subgoal_depth(rep)
    got = {r["agent_id"]: (r["mean_depth"], r["max_depth"]) for r in table.iter_rows(named=True)}
    assert got[0] == (pytest.approx((2 + 1 + 0) / 3), 2)
    assert got[1] == (pytest.approx(2.0), 2)


def test_repertoire_overlap_is_mean_jaccard():
    rep = REP.vstack(repertoire([(1, 2, "z", [], True), (2, 2, "a", [], True)]))
    edges = pl.DataFrame({"source": [0, 1], "target": [1, 2]})
    table = at.repertoire_overlap(rep, [0, 1, 2], edges=edges)
    mastered = {1: {0: {"a", "b"}, 1: {"a", "d"}, 2: {"z"}}, 2: {0: {"a", "b", "c"}, 1: {"a", "d"}, 2: {"a"}}}
    for row in table.iter_rows(named=True):
        sets = mastered[row["step"]]
        j = {(u, v): len(sets[u] & sets[v]) / len(sets[u] | sets[v]) for u, v in [(0, 1), (0, 2), (1, 2)]}
        assert row["mean_jaccard"] == pytest.approx(np.mean(list(j.values())))
        assert row["neighbour_jaccard"] == pytest.approx((j[(0, 1)] + j[(1, 2)]) / 2)
        assert row["pairs"] == 3


def test_coverage_accumulates_over_steps():
    eps = episodes([
        {"step": 1, "agent_id": 0, "eval_achieved": ["go to the kitchen"]},
        {"step": 1, "agent_id": 1, "eval_achieved": []},
        {"step": 2, "agent_id": 0, "eval_achieved": ["go to the kitchen", "open the fridge"]},
        {"step": 2, "agent_id": 1, "eval_achieved": ["take the knife"]},
    ])
    table = at.coverage(eps)
    got = {(r["step"], r["agent_id"]): r["coverage"] for r in table.iter_rows(named=True)}
    assert got == {(1, 0): 1 / 4, (1, 1): 0.0, (1, None): 1 / 4, (2, 0): 2 / 4, (2, 1): 1 / 4, (2, None): 3 / 4}


def test_reward_agreement_matches_sklearn():
    rng = np.random.default_rng(3)
    llm = rng.random(60) < 0.6
    oracle = np.where(rng.random(60) < 0.7, llm, ~llm)
    rows = [{"step": 1 + i % 2, "agent_id": 0, "llm_reward": bool(a), "oracle_success": bool(b)}
            for i, (a, b) in enumerate(zip(llm, oracle, strict=True))]
    rows += [{"step": 1, "agent_id": 0, "llm_reward": True, "oracle_success": None},  # oracle cannot judge
             {"step": 1, "agent_id": 0, "llm_reward": None, "oracle_success": True}]  # reward unparsable
    table = at.reward_agreement(episodes(rows))
    assert table["n"].item() == 60
    assert table["agreement"].item() == pytest.approx(accuracy_score(oracle, llm))
    assert table["kappa"].item() == pytest.approx(cohen_kappa_score(oracle, llm))
    by_step = at.reward_agreement(episodes(rows), by="step")
    for row in by_step.iter_rows(named=True):
        mask = np.arange(60) % 2 == row["step"] - 1
        assert row["kappa"] == pytest.approx(cohen_kappa_score(oracle[mask], llm[mask]))
    # both always say yes: chance agreement is perfect and kappa is undefined
    same = at.reward_agreement(episodes([{"step": 1, "agent_id": 0, "llm_reward": True, "oracle_success": True}]))
    assert same["agreement"].item() == 1.0 and same["kappa"].item() is None
