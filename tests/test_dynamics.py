"""Tests for analysis.dynamics: every measure against a value computed another way."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import polars as pl
import pytest

from analysis.dynamics import (
    LINEAGE_SCHEMA,
    PER_STEP_SCHEMA,
    SURVIVING_SCHEMA,
    attractors,
    chain_attractors,
    fixed_axis,
    lineage,
    mean_cross_similarity,
    per_step,
    rate_of_change,
    surviving_lineages,
    text_traits,
)
from culturesim.store import IDEAS_SCHEMA

COLUMNS = ["run_id", "step", "agent_id", "idea_id", "text", "parent_ids", "operation", "source", "error"]


def frame(rows: list[dict]) -> pl.DataFrame:
    """An ideas table with the store's column types; fields not given are filled in."""
    full = []
    for r in rows:
        parents = r.get("parent_ids", [])
        full.append({
            "run_id": "run",
            "step": r["step"],
            "agent_id": r.get("agent_id", 0),
            "idea_id": r.get("idea_id", f"s{r['step']}-a{r.get('agent_id', 0)}"),
            "text": r.get("text", "an idea"),
            "parent_ids": parents,
            "operation": r.get("operation", "transform" if parents else "create"),
            "source": "seed" if r["step"] == 0 else "llm",
            "error": r.get("error"),
        })
    return pl.DataFrame(full, schema={c: IDEAS_SCHEMA[c] for c in COLUMNS}, orient="row")


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema={c: IDEAS_SCHEMA[c] for c in COLUMNS})


# ---------------------------------------------------------------- mean_cross_similarity


def test_mean_cross_similarity_matches_pairwise_loop():
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(17, 6)), rng.normal(size=(23, 6)) * 5.0
    expected = np.mean([a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) for a in A for b in B])
    assert mean_cross_similarity(A, B) == pytest.approx(expected, abs=1e-12)
    assert mean_cross_similarity(A.astype(np.float32), B) == pytest.approx(expected, abs=1e-6)


def test_mean_cross_similarity_never_builds_the_pair_matrix():
    # 300k x 300k pairs would need 720 GB as a matrix; the exact answer here is cos(u, v)
    u, v = np.array([1.0, 0.0, 0.0]), np.array([1.0, 1.0, 0.0])
    A, B = np.tile(u * 3, (300_000, 1)), np.tile(v, (300_000, 1))
    assert mean_cross_similarity(A, B) == pytest.approx(1 / math.sqrt(2), abs=1e-10)  # summation rounding


def test_mean_cross_similarity_refuses_ill_posed_input():
    with pytest.raises(ValueError, match="both sides"):
        mean_cross_similarity(np.zeros((0, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="all-zero"):
        mean_cross_similarity(np.zeros((1, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="dimensions"):
        mean_cross_similarity(np.ones((1, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        mean_cross_similarity(np.array([[np.nan, 1.0]]), np.ones((2, 2)))


# ---------------------------------------------------------------- per_step

E1, E2, E3 = np.eye(3)
MIX = (E2 + E3) / math.sqrt(2)


def three_steps() -> tuple[pl.DataFrame, np.ndarray]:
    """Hand-chosen vectors (not all unit length) whose similarities are exact.

    step 0: agents 0, 1 both along e1
    step 1: the same again (a failed agent 2 with a vector that would change everything)
    step 2: e2 and e3 (orthogonal to each other and to the past)
    step 3: agent 0 halfway between e2 and e3; agent 1 fails
    step 4: agent 1 along e3 again (its last idea was at step 2); every other row failed
    step 5: only failures
    """
    rows = [
        ({"step": 0, "agent_id": 0}, 2 * E1),
        ({"step": 0, "agent_id": 1}, E1),
        ({"step": 1, "agent_id": 0}, E1),
        ({"step": 1, "agent_id": 1}, 0.5 * E1),
        ({"step": 1, "agent_id": 2, "text": None, "error": "timeout"}, E2),
        ({"step": 2, "agent_id": 0}, E2),
        ({"step": 2, "agent_id": 1}, 3 * E3),
        ({"step": 2, "agent_id": 2, "text": "half an answer", "error": "length"}, E1),
        ({"step": 3, "agent_id": 0}, MIX),
        ({"step": 3, "agent_id": 1, "text": None, "error": "timeout"}, np.zeros(3)),
        ({"step": 4, "agent_id": 1}, 2 * E3),
        ({"step": 5, "agent_id": 0, "text": None, "error": "timeout"}, E1),
    ]
    return frame([r for r, _ in rows]), np.array([x for _, x in rows])


def as_dict(result: pl.DataFrame) -> dict[tuple[int, str], float]:
    return {(s, m): v for s, m, v in result.iter_rows()}


def test_per_step_on_hand_built_steps():
    ideas, X = three_steps()
    got = as_dict(per_step(ideas, X))
    r = 1 / math.sqrt(2)
    expected = {
        (0, "n_ideas"): 2, (0, "diversity"): 0, (0, "similarity_to_start"): 1,
        (1, "n_ideas"): 2, (1, "diversity"): 0, (1, "similarity_to_start"): 1,
        (1, "similarity_to_previous"): 1, (1, "self_similarity"): 1,
        (2, "n_ideas"): 2, (2, "diversity"): 1, (2, "similarity_to_start"): 0,
        (2, "similarity_to_previous"): 0, (2, "self_similarity"): 0,
        # one idea: no diversity row; cos(mix, e2) = cos(mix, e3) = 1/sqrt 2
        (3, "n_ideas"): 1, (3, "similarity_to_start"): 0,
        (3, "similarity_to_previous"): r, (3, "self_similarity"): r,
        # agent 1 is compared with its step-2 idea (e3), the population with step 3
        (4, "n_ideas"): 1, (4, "similarity_to_start"): 0,
        (4, "similarity_to_previous"): r, (4, "self_similarity"): 1,
    }
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


def test_per_step_values_match_direct_computation():
    rng = np.random.default_rng(3)
    rows = [{"step": s, "agent_id": a} for s in range(4) for a in range(6)]
    ideas, X = frame(rows), rng.normal(size=(24, 5))
    got = as_dict(per_step(ideas, X))
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    cos = unit @ unit.T
    for s in range(4):
        here = slice(6 * s, 6 * s + 6)
        block = cos[here, here]
        assert got[(s, "diversity")] == pytest.approx(1 - block[np.triu_indices(6, 1)].mean(), abs=1e-12)
        assert got[(s, "similarity_to_start")] == pytest.approx(cos[here, 0:6].mean(), abs=1e-12)
        if s:
            prev = slice(6 * s - 6, 6 * s)
            assert got[(s, "similarity_to_previous")] == pytest.approx(cos[here, prev].mean(), abs=1e-12)
            assert got[(s, "self_similarity")] == pytest.approx(np.diag(cos[here, prev]).mean(), abs=1e-12)


def test_per_step_excludes_failed_rows_and_their_vectors():
    ideas, X = three_steps()
    clean = ideas["error"].is_null().to_numpy()
    assert per_step(ideas, X).equals(per_step(ideas.filter(pl.col("error").is_null()), X[clean]))
    # the failed rows' vectors may be anything, even zero or NaN
    X_bad = X.copy()
    X_bad[~clean] = np.nan
    assert per_step(ideas, X_bad).equals(per_step(ideas, X))


def test_per_step_empty_and_misaligned():
    result = per_step(empty(), np.zeros((0, 3)))
    assert result.height == 0 and result.schema == pl.Schema(PER_STEP_SCHEMA)
    ideas, X = three_steps()
    with pytest.raises(ValueError, match="aligned"):
        per_step(ideas, X[:-1])
    with pytest.raises(ValueError, match="one run at a time"):
        per_step(pl.concat([ideas, ideas]), np.vstack([X, X]))


# ---------------------------------------------------------------- rate_of_change


def test_rate_of_change_of_a_linear_series_is_its_slope():
    steps = np.arange(0, 20, 2)
    series = pl.DataFrame({"step": steps, "metric": "diversity", "value": 0.7 - 0.03 * steps})
    noise = pl.DataFrame({"step": steps, "metric": "n_ideas", "value": np.full(steps.size, 9.0)})
    both = pl.concat([series, noise]).cast(PER_STEP_SCHEMA)
    assert rate_of_change(both) == pytest.approx(-0.03, abs=1e-12)
    assert rate_of_change(both, "n_ideas") == pytest.approx(0.0, abs=1e-12)


def test_rate_of_change_needs_two_steps():
    one = pl.DataFrame({"step": [3], "metric": ["diversity"], "value": [0.5]}).cast(PER_STEP_SCHEMA)
    with pytest.raises(ValueError, match="at least 2"):
        rate_of_change(one)
    with pytest.raises(ValueError, match="metrics present: diversity"):
        rate_of_change(one, "self_similarity")
    same_step = pl.DataFrame({"step": [3, 3], "metric": ["diversity"] * 2, "value": [0.5, 0.6]})
    with pytest.raises(ValueError, match="undefined"):
        rate_of_change(same_step.cast(PER_STEP_SCHEMA))


def test_rate_of_change_of_per_step_output():
    ideas, X = three_steps()
    # similarity_to_start at steps 0..4 is 1, 1, 0, 0, 0
    assert rate_of_change(per_step(ideas, X), "similarity_to_start") == pytest.approx(
        np.polyfit([0, 1, 2, 3, 4], [1, 1, 0, 0, 0], 1)[0], abs=1e-12
    )


# ---------------------------------------------------------------- attractors


def test_attractors_recover_a_known_fixed_point():
    rng = np.random.default_rng(1)
    first = rng.uniform(-10, 10, size=400)
    last = 3.0 + 0.4 * first + rng.normal(scale=1e-6, size=400)
    a = attractors(first, last)
    assert a.slope == pytest.approx(0.4, abs=1e-6)
    assert a.intercept == pytest.approx(3.0, abs=1e-6)
    assert a.position == pytest.approx(5.0, abs=1e-5)  # 3 / (1 - 0.4)
    assert a.strength == pytest.approx(0.6, abs=1e-6)
    assert a.r2 == pytest.approx(1.0, abs=1e-9)
    assert a.n == 400 and a.note is None


def test_attractors_slope_one_has_no_position():
    first = np.linspace(0, 1, 11)
    a = attractors(first, first + 2.0)
    assert a.position is None
    assert a.slope == pytest.approx(1.0) and a.strength == pytest.approx(0.0, abs=1e-9)
    assert "no fixed point" in a.note


def test_attractors_repelling_and_flat():
    first = np.array([0.0, 1.0, 2.0])
    a = attractors(first, 2 * first - 1)  # crosses the diagonal at 1, but pushes away from it
    assert a.position == pytest.approx(1.0) and a.strength == pytest.approx(-1.0) and "repels" in a.note
    flat = attractors(first, np.full(3, 0.25))  # every chain ends at 0.25
    assert flat.position == pytest.approx(0.25) and flat.strength == 1.0 and flat.r2 == 1.0


def test_attractors_refuse_ill_posed_input():
    with pytest.raises(ValueError, match="at least 2"):
        attractors([1.0], [2.0])
    with pytest.raises(ValueError, match="same value"):
        attractors([1.0, 1.0, 1.0], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        attractors([1.0, np.nan], [0.0, 1.0])
    with pytest.raises(ValueError, match="1-D"):
        attractors([1.0, 2.0], [0.0, 1.0, 2.0])


def test_chain_attractors_by_agent_and_by_chain_frame():
    rng = np.random.default_rng(2)
    starts = rng.uniform(0, 1, size=8)
    rows, trait = [], {}
    for agent, x0 in enumerate(starts):
        for step in range(4):
            rows.append({"step": step, "agent_id": agent})
            trait[f"s{step}-a{agent}"] = x0 if step == 0 else 0.2 + 0.5 * x0 + 0.01 * step
    # failed rows are ignored even with a trait value; an idea without a value is skipped
    rows.append({"step": 4, "agent_id": 0, "text": None, "error": "timeout"})
    trait["s4-a0"] = 99.0
    del trait["s3-a1"]
    ideas = frame(rows)
    last = {a: trait[f"s3-a{a}"] if a != 1 else trait["s2-a1"] for a in range(8)}
    expected = attractors(starts, [last[a] for a in range(8)])
    got = chain_attractors(ideas, trait)
    assert got == expected
    assert got.position == pytest.approx(0.2 / 0.5 + 0.03 / 0.5, abs=0.02)
    as_frame = pl.DataFrame({"idea_id": list(trait), "sentiment": list(trait.values())})
    assert chain_attractors(ideas, as_frame) == expected
    # the same chains, named by an (idea_id, chain) frame
    chains = ideas.select("idea_id", chain=pl.format("c{}", pl.col("agent_id")))
    assert chain_attractors(ideas, trait, by=chains) == expected


def test_chain_attractors_chains_from_lineage():
    # three chains 0->1->2 of agents: each seed passed down its chain (update: chain)
    rows, trait = [], {}
    for c, x0 in enumerate([0.0, 1.0, 2.0]):
        previous = None
        for pos in range(3):
            agent = 3 * c + pos
            idea = f"s{pos}-a{agent}"
            rows.append({"step": pos, "agent_id": agent, "parent_ids": [previous] if previous else []})
            trait[idea] = x0 * 0.5**pos + 1.0 * (1 - 0.5**pos)  # halves the distance to 1 each pass
            previous = idea
    ideas = frame(rows)
    roots = lineage(ideas).filter(pl.col("root_ids").list.len() == 1)
    chains = roots.select("idea_id", chain=pl.col("root_ids").list.first())
    a = chain_attractors(ideas, trait, by=chains)
    assert a.n == 3 and a.slope == pytest.approx(0.25) and a.position == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2 chains"):
        chain_attractors(ideas, trait)  # every agent has only one idea
    with pytest.raises(ValueError, match="not a column"):
        chain_attractors(ideas, trait, by="chain")


# ---------------------------------------------------------------- lineage

# A hand-drawn genealogy (failed rows are not ideas):
#
#   step 0   A        B        C            seeds
#   step 1   D(A)     E(A,B)   F(C)         transform, combine, transform
#   step 2   G(D)     H(D,E)   M(G)   x(F)  M reads G within the step; x failed
#   step 3   J(G)     K()      L(H, ?)      K is created; ? = s1-a9 is not in the table
GENEALOGY = [
    ("A", 0, []), ("B", 0, []), ("C", 0, []),
    ("D", 1, ["A"]), ("E", 1, ["A", "B"]), ("F", 1, ["C"]),
    ("M", 2, ["G"]),  # before its parent in the table on purpose
    ("G", 2, ["D"]), ("H", 2, ["D", "E", "D"]), ("x", 2, ["F"]),
    ("J", 3, ["G"]), ("K", 3, []), ("L", 3, ["H", "s1-a9"]),
]


def genealogy() -> pl.DataFrame:
    return frame([
        {"idea_id": i, "step": s, "agent_id": k, "parent_ids": p,
         "text": None if i == "x" else f"idea {i}", "error": "timeout" if i == "x" else None}
        for k, (i, s, p) in enumerate(GENEALOGY)
    ])


def test_lineage_on_a_hand_drawn_genealogy():
    got = {r["idea_id"]: r for r in lineage(genealogy()).iter_rows(named=True)}
    assert list(got) == ["A", "B", "C", "D", "E", "F", "M", "G", "H", "J", "K", "L"]  # table order, no x
    copies = {"A": 2, "B": 1, "C": 1, "D": 2, "E": 1, "F": 0, "G": 2, "H": 1, "M": 0, "J": 0, "K": 0, "L": 0}
    descendants = {"A": 7, "B": 3, "C": 1, "D": 5, "E": 2, "F": 0, "G": 2, "H": 1, "M": 0, "J": 0, "K": 0, "L": 0}
    depth = {"A": 0, "B": 0, "C": 0, "K": 0, "D": 1, "E": 1, "F": 1, "G": 2, "H": 2, "M": 3, "J": 3, "L": 3}
    roots = {
        "A": ["A"], "B": ["B"], "C": ["C"], "D": ["A"], "E": ["A", "B"], "F": ["C"], "G": ["A"],
        "H": ["A", "B"], "M": ["A"], "J": ["A"], "K": ["K"], "L": ["A", "B", "s1-a9"],
    }
    assert {i: r["copies"] for i, r in got.items()} == copies
    assert {i: r["descendants"] for i, r in got.items()} == descendants
    assert {i: r["depth"] for i, r in got.items()} == depth
    assert {i: r["root_ids"] for i, r in got.items()} == roots
    assert {i: r["n_roots"] for i, r in got.items()} == {i: len(r) for i, r in roots.items()}
    assert {i: r["missing_parents"] for i, r in got.items()} == {i: int(i == "L") for i in got}
    assert got["M"]["step"] == 2


def test_lineage_of_a_bare_frame_and_without_the_costly_columns():
    whole = lineage(genealogy())
    bare = genealogy().filter(pl.col("error").is_null()).select("idea_id", "step", "parent_ids")
    assert lineage(bare).equals(whole)  # no text/error columns: every row is an idea
    light = lineage(genealogy(), descendants=False, root_ids=False)
    assert light.schema == whole.schema
    assert light["descendants"].null_count() == light["root_ids"].null_count() == light.height
    assert light.drop("descendants", "root_ids").equals(whole.drop("descendants", "root_ids"))


def test_surviving_lineages_on_the_hand_drawn_genealogy():
    got = surviving_lineages(genealogy())
    assert got.schema == pl.Schema(SURVIVING_SCHEMA)
    # step 3: J {A}, K {K}, L {A, B, s1-a9}
    assert got.rows() == [(0, 3), (1, 3), (2, 2), (3, 4)]


def test_lineage_empty_and_refusals():
    for ideas in (empty(), genealogy().filter(pl.col("idea_id") == "x")):
        assert lineage(ideas).schema == pl.Schema(LINEAGE_SCHEMA) and lineage(ideas).height == 0
        assert surviving_lineages(ideas).schema == pl.Schema(SURVIVING_SCHEMA)
    with pytest.raises(ValueError, match="cycle"):
        lineage(frame([{"idea_id": "p", "step": 1, "parent_ids": ["q"]},
                       {"idea_id": "q", "step": 1, "parent_ids": ["p"]}]))
    with pytest.raises(ValueError, match="one run at a time"):
        lineage(pl.concat([genealogy(), genealogy()]))


def test_lineage_of_a_filtered_frame_counts_missing_parents():
    later = lineage(genealogy().filter(pl.col("step") >= 2))
    got = {r["idea_id"]: r for r in later.iter_rows(named=True)}
    assert got["G"]["root_ids"] == ["D"] and got["G"]["depth"] == 1 and got["G"]["missing_parents"] == 1
    assert got["H"]["root_ids"] == ["D", "E"] and got["H"]["missing_parents"] == 2
    assert got["L"]["root_ids"] == ["D", "E", "s1-a9"] and got["L"]["depth"] == 2


def random_run(seed: int, steps: int = 20, agents: int = 25) -> pl.DataFrame:
    """A random genealogy: parents from the previous step or earlier in the same step,
    some creates, some failures, a few parents outside the table."""
    rng = np.random.default_rng(seed)
    rows, alive = [], []
    for step in range(steps):
        here = []
        for agent in rng.permutation(agents):
            idea = f"s{step}-a{agent}"
            pool = alive + here
            k = 0 if step == 0 or rng.random() < 0.05 else int(rng.integers(1, 4))
            parents = [pool[i] for i in rng.choice(len(pool), size=min(k, len(pool)), replace=False)] if pool else []
            if rng.random() < 0.02:
                parents.append(f"outside-{rng.integers(5)}")
            failed = step > 0 and rng.random() < 0.05
            rows.append({"idea_id": idea, "step": step, "agent_id": int(agent), "parent_ids": parents,
                         "text": None if failed else "t", "error": "boom" if failed else None})
            if not failed:
                here.append(idea)
        alive = here
    return frame(rows)


def test_lineage_matches_networkx_on_a_random_dag():
    ideas = random_run(seed=7)
    kept = ideas.filter(pl.col("error").is_null())
    assert 450 <= kept.height <= 500
    G = nx.DiGraph()
    G.add_nodes_from(kept["idea_id"])
    for idea, parents in kept.select("idea_id", "parent_ids").iter_rows():
        G.add_edges_from((p, idea) for p in parents)
    present = set(kept["idea_id"])
    longest = {}
    for v in nx.topological_sort(G):
        longest[v] = max((longest[p] + 1 for p in G.predecessors(v)), default=0)
    got = lineage(ideas)
    assert got.height == kept.height
    for r in got.iter_rows(named=True):
        v = r["idea_id"]
        assert r["descendants"] == len(nx.descendants(G, v)), v
        assert r["copies"] == G.out_degree(v)
        assert r["depth"] == longest[v]
        assert set(r["root_ids"]) == {a for a in nx.ancestors(G, v) | {v} if G.in_degree(a) == 0}
        assert r["missing_parents"] == sum(p not in present for p in G.predecessors(v))
    roots_of = {r["idea_id"]: set(r["root_ids"]) for r in got.iter_rows(named=True)}
    expected = [
        (step, len(set().union(*(roots_of[i] for i in group["idea_id"]))))
        for (step,), group in kept.sort("step").group_by("step", maintain_order=True)
    ]
    assert surviving_lineages(ideas).rows() == expected


def test_lineage_descendants_across_bitset_blocks(monkeypatch):
    # force one 64-idea word per pass, so the blocks and their edges are exercised
    from analysis.dynamics import genealogy

    ideas = random_run(seed=11, steps=12, agents=30)
    whole, alive = lineage(ideas), surviving_lineages(ideas)
    monkeypatch.setattr(genealogy, "_BITSET_BYTES", 1)
    assert lineage(ideas).equals(whole)
    assert surviving_lineages(ideas).equals(alive)


# ---------------------------------------------------------------- text traits


def test_vader_sentiment_sign_and_counts():
    ideas = frame([
        {"step": 1, "agent_id": 0, "text": "What a wonderful, joyful day; I love it!"},
        {"step": 1, "agent_id": 1, "text": "This is terrible,  awful and I hate it."},
        {"step": 1, "agent_id": 2, "text": None, "error": "timeout"},
    ])
    got = text_traits(ideas)
    assert got.schema == pl.Schema({"idea_id": pl.String, "chars": pl.Int64, "words": pl.Int64,
                                    "sentiment": pl.Float64})
    assert got["idea_id"].to_list() == ["s1-a0", "s1-a1"]
    positive, negative = got["sentiment"].to_list()
    assert positive > 0.5 and negative < -0.5
    assert got["chars"].to_list() == [40, 39] and got["words"].to_list() == [8, 8]


def test_projection_equals_manual_dot_product():
    rng = np.random.default_rng(4)
    ideas = frame([{"step": s, "agent_id": a, "text": "neutral words"} for s in range(2) for a in range(5)])
    X, axis = rng.normal(size=(10, 7)), rng.normal(size=7)
    got = text_traits(ideas, X, axis)["projection"].to_numpy()
    manual = np.array([x @ axis / (np.linalg.norm(x) * np.linalg.norm(axis)) for x in X])
    np.testing.assert_allclose(got, manual, atol=1e-12)
    with pytest.raises(ValueError, match="both X and axis"):
        text_traits(ideas, X)
    with pytest.raises(ValueError, match="dimensions"):
        text_traits(ideas, X, axis[:3])


def test_text_traits_of_an_empty_frame():
    got = text_traits(empty(), np.zeros((0, 3)), np.ones(3))
    assert got.height == 0 and got.columns == ["idea_id", "chars", "words", "sentiment", "projection"]


def test_fixed_axis_points_from_start_to_end():
    start = np.array([E1 * 3, E1, E1 * 0.5])
    end = np.array([E2, E2 * 2])
    np.testing.assert_allclose(fixed_axis(start, end), (E2 - E1) / math.sqrt(2), atol=1e-12)
    ideas = frame([{"step": 0, "agent_id": a} for a in range(3)] + [{"step": 9, "agent_id": a} for a in range(2)])
    projection = text_traits(ideas, np.vstack([start, end]), fixed_axis(start, end))["projection"]
    np.testing.assert_allclose(projection.to_numpy(), np.array([-1, -1, -1, 1, 1]) / math.sqrt(2), atol=1e-12)
    with pytest.raises(ValueError, match="no axis"):
        fixed_axis(start, start * 2)
