"""Tests for analysis.price: the identity, its invariants, hand-worked numbers, and the I/O edges."""

from __future__ import annotations

import json
import math
import random
from fractions import Fraction as F

import numpy as np
import polars as pl
import pytest

from analysis.price import (
    PriceTerms,
    _arrays,
    _prepare,
    _prepare_float,
    _terms_float,
    load_tables,
    main,
    permutation_null,
    price,
    price_from_run,
)

TERMS = ("delta", "selection", "between", "within", "transmission", "innovation", "mean_fitness")


def random_genealogy(seed: int, exact: bool, n_parents: int = 12, n_children: int = 15, n_groups: int = 3):
    """Several parents per child, innovations, and (usually) parents without offspring."""
    r = random.Random(seed)

    def value():
        return F(r.randint(-50, 50), r.randint(1, 7)) if exact else r.uniform(-5, 5)

    parents = [(f"p{i}", f"g{r.randrange(n_groups)}", value()) for i in range(n_parents)]
    children, attributions = [], []
    for c in range(n_children):
        cid = f"c{c}"
        children.append((cid, value()))
        if r.random() < 0.25:
            continue  # innovation
        chosen = r.sample(range(n_parents // 2), r.randint(1, 3))  # upper half never reproduces
        raw = [r.randint(1, 5) for _ in chosen]
        for p, x in zip(chosen, raw, strict=True):
            weight = F(x, sum(raw)) if exact else x / sum(raw)
            attributions.append((cid, f"p{p}", weight))
    return parents, children, attributions


def close(a, b, scale=1.0):
    return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12 * scale)


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs)


# --------------------------------------------------------------------------- the identity


@pytest.mark.parametrize("seed", range(20))
def test_identity_exact_on_random_genealogies(seed):
    """The residual form (tests/test_price_forms.py checks the default, immigration, form)."""
    parents, children, attributions = random_genealogy(seed, exact=True)
    t = price(parents, children, attributions, innovation_form="residual")
    assert t.exact and all(isinstance(getattr(t, k), F) for k in TERMS)
    assert t.check() == 0
    assert t.delta == t.between + t.within + t.transmission + t.innovation
    assert t.selection == t.between + t.within
    # delta is the observed change, computed independently
    assert t.delta == mean(z for _, z in children) - mean(z for _, _, z in parents)
    # selection + transmission explain the inherited children's mean; innovation the rest
    inherited = {c for c, _, _ in attributions}
    z_inh = mean(z for c, z in children if c in inherited)
    z_inn = [z for c, z in children if c not in inherited]
    assert t.selection + t.transmission == z_inh - mean(z for _, _, z in parents)
    assert t.innovation == F(len(z_inn), len(children)) * (mean(z_inn) - z_inh)
    assert t.mean_fitness == F(len(inherited), len(parents))
    assert (t.n_parents, t.n_children, t.n_innovations) == (12, 15, len(z_inn))


@pytest.mark.parametrize("seed", range(20))
def test_identity_float_matches_exact(seed):
    parents, children, attributions = random_genealogy(seed, exact=True)
    exact = price(parents, children, attributions)
    as_float = price([(i, g, float(z)) for i, g, z in parents], [(i, float(z)) for i, z in children],
                     [(c, p, float(a)) for c, p, a in attributions])
    assert not as_float.exact and isinstance(as_float.delta, float)
    scale = max(abs(float(z)) for _, _, z in parents)
    assert close(as_float.check(), 0.0, scale)
    for k in TERMS:
        assert close(getattr(as_float, k), getattr(exact, k), scale), k


@pytest.mark.parametrize("seed", range(10))
def test_identity_float_random(seed):
    parents, children, attributions = random_genealogy(seed, exact=False, n_parents=40, n_children=60, n_groups=5)
    t = price(parents, children, attributions)
    observed = mean(z for _, z in children) - mean(z for _, _, z in parents)
    assert close(t.delta, observed, 5.0)
    assert close(t.between + t.within + t.transmission + t.innovation, t.delta, 5.0)


def test_single_level_identity_without_innovation():
    """w_bar * delta = Cov(w, z) + E(w dz) and delta = z_bar' - z_bar when every child has a parent."""
    parents, children, attributions = random_genealogy(3, exact=True)
    inherited = {c for c, _, _ in attributions}
    children = [(c, z) for c, z in children if c in inherited]
    t = price([(i, None, z) for i, _, z in parents], children, attributions)
    zp = {i: z for i, _, z in parents}
    zc = dict(children)
    w = {i: sum((a for _, p, a in attributions if p == i), F(0)) for i in zp}
    zprime = {i: (sum(a * zc[c] for c, p, a in attributions if p == i) / w[i] if w[i] else zp[i]) for i in zp}
    wbar, zbar = mean(w.values()), mean(zp.values())
    cov = mean(w[i] * zp[i] for i in zp) - wbar * zbar
    e_wdz = mean(w[i] * (zprime[i] - zp[i]) for i in zp)
    z_bar_prime = sum(w[i] * zprime[i] for i in zp) / sum(w.values())
    assert t.delta == z_bar_prime - zbar == mean(zc.values()) - zbar
    assert wbar * t.delta == cov + e_wdz
    assert t.innovation == 0 and t.between == 0 and t.within * wbar == cov and t.transmission * wbar == e_wdz


# --------------------------------------------------------------------------- hand-worked example


def hand_example(scale=1):
    # Parents: A (g1, z=0), B (g1, z=2), C (g2, z=4).
    # Children: c1 z=1 from A; c2 z=3 from A 1/2 + B 1/2; c3 z=2 and c4 z=6 are innovations.
    s = F(scale)
    parents = [("A", "g1", 0 * s), ("B", "g1", 2 * s), ("C", "g2", 4 * s)]
    children = [("c1", 1 * s), ("c2", 3 * s), ("c3", 2 * s), ("c4", 6 * s)]
    attributions = [("c1", "A", F(1)), ("c2", "A", F(1, 2)), ("c2", "B", F(1, 2))]
    return parents, children, attributions


def test_hand_worked_example():
    """The residual form; tests/test_price_forms.py works the immigration form by hand."""
    t = price(*hand_example(), innovation_form="residual")
    # w_A = 1 + 1/2 = 3/2, w_B = 1/2, w_C = 0; N_inh = 2, N_p = 3 -> w_bar = 2/3.
    assert t.mean_fitness == F(2, 3)
    # z'_A = (1*1 + 1/2*3) / (3/2) = 5/3, z'_B = 3, z'_C = z_C = 4 (no offspring).
    # z_bar_parents = 2, z_bar_children = (1+3+2+6)/4 = 3 -> delta = 1.
    assert t.delta == 1
    # z_bar_inh = (1+3)/2 = 2, z_bar_inn = (2+6)/2 = 4 -> innovation = (2/4)(4 - 2) = 1.
    assert t.innovation == 1
    # Groups: g1 = {A, B}: W = 1, Z = 1; g2 = {C}: W = 0, Z = 4.
    # between = [2 (1 - 2/3)(1 - 2) + 1 (0 - 2/3)(4 - 2)] / 3 = (-2/3 - 4/3) / 3 = -2/3; / w_bar -> -1.
    assert t.between == -1
    # within = [(3/2 - 1)(0 - 1) + (1/2 - 1)(2 - 1) + 0] / 3 = -1/3; / w_bar -> -1/2.
    assert t.within == F(-1, 2)
    # Check: Cov(w, z) = E(wz) - w_bar z_bar = (1/2*2)/3 - 4/3 = -1 = -2/3 + -1/3.
    assert t.selection == F(-3, 2)
    # transmission = [3/2 (5/3 - 0) + 1/2 (3 - 2) + 0] / 3 = 1; / w_bar -> 3/2.
    assert t.transmission == F(3, 2)
    # -1 - 1/2 + 3/2 + 1 = 1 = delta.
    assert t.check() == 0
    assert (t.n_parents, t.n_children, t.n_innovations) == (3, 4, 2)


def test_as_dict_and_dataframe_input():
    parents, children, attributions = hand_example()
    t = price(*hand_example())
    d = t.as_dict()
    assert set(d) == set(TERMS) | {"n_parents", "n_children", "n_innovations", "innovation_form"}
    assert d["innovation_form"] == "immigration"
    assert d["transmission"] == F(3, 4)  # (1 - m) 3/2 with m = 2/4 innovations
    def frame(rows, names):  # Fractions kept as Python objects (an Object column)
        cols = list(zip(*rows, strict=True))
        return pl.DataFrame([pl.Series(n, list(c), dtype=pl.Object if n in ("trait", "weight") else pl.String)
                             for n, c in zip(names, cols, strict=True)])

    frames = (frame(parents, ["id", "group", "trait"]), frame(children, ["id", "trait"]),
              frame(attributions, ["child", "parent", "weight"]))
    tf = price(*frames)  # Fractions in an Object column stay exact
    assert tf == t and tf.exact
    ints = price(pl.DataFrame({"id": ["a", "b"], "trait": [1, 2]}), pl.DataFrame({"id": ["c"], "trait": [2]}),
                 pl.DataFrame({"child": ["c"], "parent": ["b"], "weight": [1]}))
    assert ints.exact and ints.check() == 0  # integer columns take the exact path
    # float DataFrames take the float path and agree
    ff = price(frames[0].with_columns(pl.Series("trait", [float(z) for _, _, z in parents])),
               frames[1].with_columns(pl.Series("trait", [float(z) for _, z in children])),
               frames[2].with_columns(pl.Series("weight", [float(a) for _, _, a in attributions])))
    assert not ff.exact and all(close(getattr(ff, k), getattr(t, k), 6) for k in TERMS)
    # group column may be absent: one group
    one = price(frames[0].drop("group"), frames[1], frames[2])
    assert one.between == 0 and one.selection == t.selection


# --------------------------------------------------------------------------- invariants


@pytest.mark.parametrize("seed", range(5))
def test_one_group_has_no_between(seed):
    parents, children, attributions = random_genealogy(seed, exact=True)
    t = price([(i, None, z) for i, _, z in parents], children, attributions)
    assert t.between == 0 and t.within == t.selection and t.check() == 0


@pytest.mark.parametrize("seed", range(5))
def test_singleton_groups_have_no_within(seed):
    parents, children, attributions = random_genealogy(seed, exact=True)
    t = price([(i, i, z) for i, _, z in parents], children, attributions)
    assert t.within == 0 and t.between == t.selection and t.check() == 0


@pytest.mark.parametrize("exact", [True, False])
def test_faithful_copies_have_no_transmission(exact):
    r = random.Random(7)
    parents = [(f"p{i}", i % 2, F(r.randint(0, 9)) if exact else r.random()) for i in range(6)]
    children, attributions = [], []
    for c in range(10):
        pid, _, z = parents[r.randrange(4)]
        children.append((f"c{c}", z))
        attributions.append((f"c{c}", pid, 1))
    children.append(("new", F(100) if exact else 100.0))
    t = price(parents, children, attributions)
    assert t.transmission == 0
    assert math.isclose(float(t.check()), 0.0, abs_tol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_duplicating_every_child_changes_no_term(seed):
    parents, children, attributions = random_genealogy(seed, exact=True)
    t = price(parents, children, attributions)
    kids2 = children + [(c + "'", z) for c, z in children]
    attr2 = attributions + [(c + "'", p, a) for c, p, a in attributions]
    t2 = price(parents, kids2, attr2)
    for k in TERMS:
        expected = 2 * getattr(t, k) if k == "mean_fitness" else getattr(t, k)
        assert getattr(t2, k) == expected, k


@pytest.mark.parametrize("seed", range(5))
def test_shifting_every_trait_changes_no_term(seed):
    parents, children, attributions = random_genealogy(seed, exact=True)
    t = price(parents, children, attributions)
    shift = F(17, 3)
    t2 = price([(i, g, z + shift) for i, g, z in parents], [(c, z + shift) for c, z in children], attributions)
    assert t2 == t


def test_parent_without_offspring_gives_no_nan():
    parents = [("a", "x", 1.0), ("b", "x", 2.0), ("lonely", "y", 5.0)]
    children = [("c1", 1.5), ("c2", 2.5)]
    attributions = [("c1", "a", 1.0), ("c2", "b", 0.7), ("c2", "a", 0.3), ("c2", "lonely", 0.0)]
    t = price(parents, children, attributions)
    assert all(math.isfinite(getattr(t, k)) for k in TERMS)
    assert abs(t.check()) < 1e-12


@pytest.mark.parametrize("exact", [True, False])
def test_all_innovations(exact):
    one = F(1) if exact else 1.0
    parents = [("a", None, one), ("b", None, 3 * one)]
    children = [("x", 4 * one), ("y", 6 * one)]
    t = price(parents, children, [])
    assert t.mean_fitness == 0 and t.between == t.within == t.transmission == 0
    assert t.innovation == t.delta == 3 and t.check() == 0 and t.n_innovations == 2


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("case, message", [
    ("unknown_child", r"row 3 .*unknown child id 'zz'"),
    ("unknown_parent", r"row 3 .*unknown parent id 'ZZ'"),
    ("negative", r"row 0 .*negative weight"),
    ("sum", r"child='c2'.*sum to 3/4"),
    ("float_sum", r"child='c2'.*not 1"),
    ("dup_parent", r"parents row 3 .*duplicate parent id 'A'"),
    ("dup_child", r"children row 4 .*duplicate child id 'c1'"),
    ("dup_link", r"attributions row 3 .*duplicate attribution"),
    ("nan_parent", r"parents row 1 .*trait is NaN"),
    ("nan_child", r"children row 0 .*trait is NaN"),
    ("nan_weight", r"attributions row 0 .*weight is NaN"),
    ("empty_parents", r"parents: empty"),
    ("empty_children", r"children: empty"),
    ("bad_row", r"parents row 0: expected"),
    ("string_trait", r"children row 0 .*must be a real number"),
])
def test_validation_errors(case, message):
    parents, children, attributions = hand_example()
    if case == "unknown_child":
        attributions = attributions + [("zz", "A", F(1))]
    elif case == "unknown_parent":
        attributions = attributions + [("c3", "ZZ", F(1))]
    elif case == "negative":
        attributions = [("c1", "A", F(-1))] + attributions[1:]
    elif case == "sum":
        attributions = attributions[:2] + [("c2", "B", F(1, 4))]
    elif case == "float_sum":
        attributions = [(c, p, float(a)) for c, p, a in attributions[:2]] + [("c2", "B", 0.5 - 1e-6)]
    elif case == "dup_parent":
        parents = parents + [("A", "g1", F(1))]
    elif case == "dup_child":
        children = children + [("c1", F(1))]
    elif case == "dup_link":
        attributions = attributions + [("c1", "A", F(0))]
    elif case == "nan_parent":
        parents = [parents[0], ("B", "g1", float("nan")), parents[2]]
    elif case == "nan_child":
        children = [("c1", float("nan"))] + children[1:]
    elif case == "nan_weight":
        attributions = [("c1", "A", float("nan"))] + attributions[1:]
    elif case == "empty_parents":
        parents = []
    elif case == "empty_children":
        children, attributions = [], []
    elif case == "bad_row":
        parents = [("A",)] + parents[1:]
    elif case == "string_trait":
        children = [("c1", "1.5")] + children[1:]
    with pytest.raises(ValueError, match=message):
        price(parents, children, attributions)


def test_float_weights_within_tolerance_are_accepted_and_renormalised():
    parents, children, attributions = hand_example()
    attributions = [("c1", "A", 1.0 + 5e-10), ("c2", "A", 0.5), ("c2", "B", 0.5)]
    t = price(parents, children, attributions, innovation_form="residual")
    assert abs(t.check()) < 1e-12 and math.isclose(t.transmission, 1.5, rel_tol=1e-8)


# --------------------------------------------------------------------------- permutation null


def test_permutation_null_finite_and_reproducible():
    parents, children, attributions = random_genealogy(1, exact=False, n_parents=30, n_children=40, n_groups=4)
    a = permutation_null(parents, children, attributions, n=200, rng=np.random.default_rng(5))
    b = permutation_null(parents, children, attributions, n=200, rng=np.random.default_rng(5))
    c = permutation_null(parents, children, attributions, n=200, rng=np.random.default_rng(6))
    assert a == b and a != c and a["n"] == 200
    t = price(parents, children, attributions)
    for level in ("between", "within"):
        s = a[level]
        assert all(math.isfinite(s[k]) for k in ("observed", "mean", "sd", "z", "p"))
        assert s["sd"] > 0 and 0 < s["p"] <= 1
        assert s["observed"] == getattr(t, level)
        assert math.isclose(s["z"], (s["observed"] - s["mean"]) / s["sd"])
    # other generator kinds are reproducible too
    r1 = permutation_null(parents, children, attributions, n=50, rng=random.Random(3))
    r2 = permutation_null(parents, children, attributions, n=50, rng=random.Random(3))
    assert r1 == r2
    assert permutation_null(parents, children, attributions, n=50, rng=9) == \
        permutation_null(parents, children, attributions, n=50, rng=9)


def test_permutation_null_matches_brute_force():
    """Each draw must equal price() on a genealogy whose parents' offspring were really swapped."""
    parents, children, attributions = random_genealogy(2, exact=True, n_parents=8, n_children=10)
    n = 20
    got = permutation_null(parents, children, attributions, n=n, rng=np.random.default_rng(11))
    perms = np.random.default_rng(11).permuted(np.tile(np.arange(8), (n, 1)), axis=1)
    ids = [i for i, _, _ in parents]
    draws = {"between": [], "within": []}
    for perm in perms:
        # parent j receives the offspring of parent perm[j]
        new_owner = {ids[perm[j]]: ids[j] for j in range(8)}
        t = price(parents, children, [(c, new_owner[p], a) for c, p, a in attributions])
        draws["between"].append(float(t.between))
        draws["within"].append(float(t.within))
    for level in draws:
        assert math.isclose(got[level]["mean"], float(np.mean(draws[level])), rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(got[level]["sd"], float(np.std(draws[level])), rel_tol=1e-9, abs_tol=1e-12)


def test_permutation_null_degenerate_groups_give_zero_z():
    parents, children, attributions = random_genealogy(4, exact=True)
    one = permutation_null([(i, None, z) for i, _, z in parents], children, attributions, n=30, rng=1)
    assert one["between"]["z"] == 0.0 and math.isfinite(one["within"]["z"])
    single = permutation_null([(i, i, z) for i, _, z in parents], children, attributions, n=30, rng=1)
    assert single["within"]["z"] == 0.0 and math.isfinite(single["between"]["z"])
    with pytest.raises(ValueError, match="n must be"):
        permutation_null(parents, children, attributions, n=0, rng=1)


# --------------------------------------------------------------------------- idea runs


def test_price_from_run():
    rows = [
        # step 0: three valid parents and one failure
        (0, 0, "s0-a0", [], "x", None),
        (0, 1, "s0-a1", [], "x", None),
        (0, 2, "s0-a2", [], "x", None),
        (0, 3, "s0-a3", [], None, "timeout"),
        # step 1
        (1, 0, "s1-a0", ["s0-a0"], "x", None),                 # -> a0 (1)
        (1, 1, "s1-a1", ["s0-a0", "s0-a1", "s0-a3"], "x", None),  # failed s0-a3 ignored -> 1/2, 1/2
        (1, 2, "s1-a2", ["old-idea"], "x", None),              # parents elsewhere -> innovation
        (1, 3, "s1-a3", [], "x", None),                        # innovation
        (1, 4, "s1-a4", ["s0-a1"], None, "boom"),              # failed child: not a child
        (2, 0, "s2-a0", ["s1-a0"], "x", None),                 # other step: ignored
    ]
    ideas = pl.DataFrame(rows, schema={"step": pl.Int64, "agent_id": pl.Int64, "idea_id": pl.String,
                                       "parent_ids": pl.List(pl.String), "text": pl.String, "error": pl.String},
                         orient="row")
    values = {"s0-a0": 0, "s0-a1": 2, "s0-a2": 4, "s1-a0": 1, "s1-a1": 3, "s1-a2": 2, "s1-a3": 6}
    trait = pl.DataFrame({"idea_id": list(values), "value": list(values.values())})
    groups = {0: "g1", 1: "g1", 2: "g2", 3: "g2"}
    t = price_from_run(ideas, trait, groups, 0, 1)
    assert t == price(*hand_example())  # the same genealogy as the hand-worked example
    one = price_from_run(ideas, trait, None, 0, 1)
    assert one.between == 0 and one.selection == t.selection
    with pytest.raises(ValueError, match="no group for agent 2"):
        price_from_run(ideas, trait, {0: "g1", 1: "g1"}, 0, 1)
    with pytest.raises(ValueError, match="no value for idea 's1-a3'"):
        price_from_run(ideas, trait.filter(pl.col("idea_id") != "s1-a3"), groups, 0, 1)
    with pytest.raises(ValueError, match="no valid ideas at parent_step=5"):
        price_from_run(ideas, trait, groups, 5, 6)
    with pytest.raises(ValueError, match="must come after"):
        price_from_run(ideas, trait, groups, 1, 1)


# --------------------------------------------------------------------------- files and CLI


def write(path, text):
    path.write_text(text)
    return str(path)


@pytest.fixture
def csvs(tmp_path):
    # the hand-worked example with every trait divided by 3: every term is divided by 3
    p = write(tmp_path / "p.csv", "id,group,trait\nA,g1,0\nB,g1,2/3\nC,g2,4/3\n")
    c = write(tmp_path / "c.csv", "id,trait\nc1,1/3\nc2,1\nc3,2/3\nc4,2\n")
    a = write(tmp_path / "a.csv", "child,parent,weight\nc1,A,1\nc2,A,1/2\nc2,B,1/2\n")
    return tmp_path, p, c, a


def test_load_tables_parses_fractions_exactly(csvs):
    _, p, c, a = csvs
    parents, children, attributions = load_tables(p, c, a)
    assert parents[1] == ("B", "g1", F(2, 3)) and children[0] == ("c1", F(1, 3))
    assert attributions[1] == ("c2", "A", F(1, 2))
    t = price(parents, children, attributions, innovation_form="residual")
    assert t == price(*hand_example(F(1, 3)), innovation_form="residual")
    assert (t.delta, t.between, t.within, t.transmission, t.innovation) == \
        (F(1, 3), F(-1, 3), F(-1, 6), F(1, 2), F(1, 3))


def test_load_tables_decimals_are_floats(tmp_path, csvs):
    _, p, _, a = csvs
    c = write(tmp_path / "c2.csv", "id,trait\nc1,0.5\nc2,1\nc3,2/3\nc4,2\n")
    _, children, _ = load_tables(p, c, a)
    assert children[0] == ("c1", 0.5) and isinstance(children[2][1], float)
    t = price(*load_tables(p, c, a))
    assert not t.exact and abs(t.check()) < 1e-12


def test_main_writes_exact_json(csvs, capsys):
    tmp, p, c, a = csvs
    out = tmp / "terms.json"
    assert main(["--parents", p, "--children", c, "--attributions", a, "--innovation-form", "residual",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "delta" in printed and "-1/6" in printed and "transmission" in printed
    assert printed.startswith("innovation form: residual")
    data = json.loads(out.read_text())
    assert data["exact"] is True and data["innovation_form"] == "residual"
    assert data["exact_terms"]["delta"] == "1/3"
    assert data["exact_terms"]["within"] == "-1/6"
    assert data["exact_terms"]["transmission"] == "1/2"
    assert data["exact_terms"]["mean_fitness"] == "2/3"
    assert math.isclose(data["terms"]["between"], -1 / 3)
    assert (data["n_parents"], data["n_children"], data["n_innovations"]) == (3, 4, 2)


@pytest.mark.parametrize("which, text, message", [
    ("p", "", "empty file"),
    ("p", "id,group,trait\n", "no data rows"),
    ("c", "id,value\nc1,1\n", "missing column(s) trait"),
    ("c", "id,trait\nc1,nan\nc2,1\nc3,1\nc4,1\n", "line 2: trait is 'nan'"),
    ("c", "id,trait\nc1,\nc2,1\nc3,1\nc4,1\n", "line 2: trait is missing"),
    ("c", "id,trait\nc1,abc\nc2,1\nc3,1\nc4,1\n", "'abc' is not a number"),
    ("p", "id,trait\nA,1/0\nB,1\nC,1\n", "divides by zero"),
    ("a", "child,parent,weight\nc1,A,1\nc2,A,1/2\nc2,Q,1/2\n", "unknown parent id 'Q'"),
    ("a", "child,parent,weight\nc1,A,1\nc2,A,3/2\nc2,B,-1/2\n", "negative weight"),
    ("a", "child,parent,weight\nc1,A,1\nc2,A,1/2\nc2,B,1/3\n", "sum to 5/6"),
    ("p", "id,group,trait\nA,g1,0\nA,g1,2/3\nC,g2,4/3\n", "duplicate parent id 'A'"),
])
def test_main_bad_input(csvs, capsys, which, text, message):
    tmp, p, c, a = csvs
    files = {"p": p, "c": c, "a": a}
    files[which] = write(tmp / f"bad_{which}.csv", text)
    code = main(["--parents", files["p"], "--children", files["c"], "--attributions", files["a"]])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and message in err and "Traceback" not in err


def test_main_usage_errors(csvs, capsys):
    tmp, p, c, a = csvs
    assert main(["--parents", p, "--children", c]) == 2
    assert capsys.readouterr().err.startswith("error:")
    assert main(["--parents", str(tmp / "missing.csv"), "--children", c, "--attributions", a]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "not found" in err


def _strict_json(text):
    def refuse(name):
        raise AssertionError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("parents, children", [
    ("id,trait\nA,1.5e308\nB,1.7e308\n", "id,trait\nx,1.7e308\ny,1.6e308\n"),  # sums overflow: nan terms
    ("id,trait\nA,1e308\nB,1e308\n", "id,trait\nx,-1e308\ny,-1e308\n"),  # delta = -inf
])
def test_main_refuses_terms_that_overflow_and_writes_no_json(tmp_path, capsys, parents, children):
    p, c = write(tmp_path / "p.csv", parents), write(tmp_path / "c.csv", children)
    a = write(tmp_path / "a.csv", "child,parent,weight\nx,A,1\ny,B,1\n")
    out = tmp_path / "terms.json"
    code = main(["--parents", p, "--children", c, "--attributions", a, "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""  # no inf or nan term printed
    assert captured.err.startswith("error:") and captured.err.count("\n") == 1
    assert "rescale the trait" in captured.err and "Traceback" not in captured.err
    assert not out.exists()
    with pytest.raises(ValueError, match="rescale the trait"):
        price(*load_tables(p, c, a))


def test_price_refuses_non_finite_float_terms_naming_them():
    with pytest.raises(ValueError, match=r"delta=-?inf.*rescale the trait"):
        price([("A", 1e308), ("B", 1e308)], [("x", -1e308), ("y", -1e308)], [("x", "A", 1.0), ("y", "B", 1.0)])


def test_main_exact_terms_too_large_for_a_float_are_one_line(tmp_path, capsys):
    huge = "1" + "0" * 400
    p = write(tmp_path / "p.csv", f"id,trait\nA,{huge}\nB,2\n")
    c = write(tmp_path / "c.csv", "id,trait\nx,1\ny,2\n")
    a = write(tmp_path / "a.csv", "child,parent,weight\nx,A,1\ny,B,1\n")
    assert price(*load_tables(p, c, a)).exact  # the Fractions themselves are fine
    code = main(["--parents", p, "--children", c, "--attributions", a, "--out", str(tmp_path / "t.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and "too large for a float" in err and "Traceback" not in err
    assert not (tmp_path / "t.json").exists()
    # one exact trait beyond float range among float ones: refused, naming the row
    c2 = write(tmp_path / "c2.csv", "id,trait\nx,0.5\ny,2\n")
    assert main(["--parents", p, "--children", c2, "--attributions", a]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "too large for a float" in err and "Traceback" not in err
    with pytest.raises(ValueError, match=r"parents row 0 \(id='A'\): trait is too large"):
        price([("A", 10 ** 400), ("B", 2)], [("x", 0.5), ("y", 2.0)], [("x", "A", 1), ("y", "B", 1)])


def test_permutation_null_of_exact_traits_beyond_float_range_is_one_line():
    with pytest.raises(ValueError, match="too large for a float.*rescale the trait"):
        permutation_null([("A", 10 ** 400), ("B", 2)], [("x", 1), ("y", 2)], [("x", "A", 1), ("y", "B", 1)], n=10)


def test_main_json_is_strict_json(csvs):
    tmp, p, c, a = csvs
    out = tmp / "terms.json"
    assert main(["--parents", p, "--children", c, "--attributions", a, "--out", str(out)]) == 0
    assert _strict_json(out.read_text())["exact_terms"]["delta"] == "1/3"


@pytest.mark.parametrize("name", ["a[1].csv", "*.csv", "p?.csv", "{x,y}.csv"])
def test_main_reads_exactly_the_named_file_not_a_glob(csvs, capsys, name):
    tmp, p, c, a = csvs
    sub = tmp / "sub"
    sub.mkdir()
    named = write(sub / name, "id,group,trait\nA,g1,0\nB,g1,2/3\nC,g2,4/3\n")
    write(sub / "p1.csv", "id,group,trait\nA,g1,100\nB,g1,200\nC,g2,300\n")  # what a glob would also match
    write(sub / "x.csv", "id,group,trait\nA,g1,100\nB,g1,200\nC,g2,300\n")
    assert load_tables(named, c, a) == load_tables(p, c, a)
    out = tmp / "terms.json"
    assert main(["--parents", named, "--children", c, "--attributions", a, "--out", str(out)]) == 0
    assert json.loads(out.read_text())["exact_terms"]["delta"] == "1/3"
    missing = str(sub / "q[1].csv")
    assert main(["--parents", missing, "--children", c, "--attributions", a]) == 2
    assert "not found" in capsys.readouterr().err


def test_header_only_attributions_means_all_innovations(csvs, tmp_path):
    _, p, c, _ = csvs
    a = write(tmp_path / "none.csv", "child,parent,weight\n")
    t = price(*load_tables(p, c, a))
    assert t.n_innovations == 4 and t.innovation == t.delta and t.check() == 0


def test_priceterms_is_a_dataclass_record():
    t = PriceTerms(*(F(i) for i in range(7)), 1, 2, 3)
    assert t.check() == 0 - (2 + 3 + 4 + 5)


def test_culturesim_price_command_by_hand_example(tmp_path):
    """Through the installed CLI: parents a=1/3, b=2/3 (group 1), c=1 (group 2); children
    x=1/2 (from a and b, half each), y=1 (from c), z=0 (an innovation). By hand:
    mean parent 2/3, mean child 1/2, so delta = -1/6; inherited mean 3/4 gives
    innovation (1/3)(0 - 3/4) = -1/4; the rest, 3/4 - 2/3 = 1/12, is between-group
    selection (a and b copy nothing of their own trait; c passes its trait on unchanged)."""
    import subprocess
    import sys

    (tmp_path / "p.csv").write_text("id,group,trait\na,1,1/3\nb,1,2/3\nc,2,1\n")
    (tmp_path / "c.csv").write_text("id,trait\nx,1/2\ny,1\nz,0\n")
    (tmp_path / "a.csv").write_text("child,parent,weight\nx,a,1/2\nx,b,1/2\ny,c,1\n")
    out = tmp_path / "terms.json"
    done = subprocess.run([sys.executable, "-m", "culturesim.cli", "price", "--parents", str(tmp_path / "p.csv"),
                           "--children", str(tmp_path / "c.csv"), "--attributions", str(tmp_path / "a.csv"),
                           "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("innovation form: immigration (Kerr & Godfrey-Smith 2009")
    data = json.loads(out.read_text())
    exact = data["exact_terms"]
    # the default, immigration form: m = 1/3 innovations; between (1 - m) 1/12 = 1/18 and
    # innovation m (0 - 2/3) = -2/9; 1/18 - 2/9 = -1/6
    assert data["innovation_form"] == "immigration"
    assert (exact["delta"], exact["between"], exact["within"], exact["transmission"], exact["innovation"]) == \
        ("-1/6", "1/18", "0/1", "0/1", "-2/9")
    done = subprocess.run([sys.executable, "-m", "culturesim.cli", "price", "--parents", str(tmp_path / "p.csv"),
                           "--children", str(tmp_path / "c.csv"), "--attributions", str(tmp_path / "a.csv"),
                           "--innovation-form", "residual", "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    exact = json.loads(out.read_text())["exact_terms"]
    assert (exact["delta"], exact["between"], exact["within"], exact["transmission"], exact["innovation"]) == \
        ("-1/6", "1/12", "0/1", "0/1", "-1/4")


# --------------------------------------------------------------------------- the vectorised float path


def floats(parents, children, attributions):
    return ([(i, g, float(z)) for i, g, z in parents], [(c, float(z)) for c, z in children],
            [(c, p, float(a)) for c, p, a in attributions])


def frames(parents, children, attributions, ids=None):
    """Float DataFrames; ``ids`` renames every id (e.g. to integers), as a caller with its own keys would."""
    ids = ids or {}
    return (pl.DataFrame({"id": [ids.get(i, i) for i, _, _ in parents], "group": [g for _, g, _ in parents],
                          "trait": [float(z) for _, _, z in parents]}),
            pl.DataFrame({"id": [ids.get(c, c) for c, _ in children], "trait": [float(z) for _, z in children]}),
            pl.DataFrame({"child": [ids.get(c, c) for c, _, _ in attributions],
                          "parent": [ids.get(p, p) for _, p, _ in attributions],
                          "weight": [float(a) for _, _, a in attributions]},
                         schema={"child": pl.Int64 if ids else pl.String, "parent": pl.Int64 if ids else pl.String,
                                 "weight": pl.Float64}))


def row_by_row(parents, children, attributions):
    """The float terms through the row-by-row preparation, which the column-wise one must reproduce."""
    return _terms_float(_arrays(_prepare(parents, children, attributions)))


@pytest.mark.parametrize("seed", range(20))
def test_vectorised_float_path_matches_exact_path(seed):
    """Groups, innovations, several parents per child and childless parents (the upper half never
    reproduces): rows, DataFrames with string ids and with integer ids (not row numbers) all take
    the column-wise path, agree with the Fraction terms to 1e-12 and with the row-by-row float
    preparation to the last bit."""
    parents, children, attributions = random_genealogy(seed, exact=True, n_parents=30, n_children=40, n_groups=4)
    exact = price(parents, children, attributions)
    assert exact.exact and exact.n_innovations > 0
    r = random.Random(seed)
    names = [i for i, _, _ in parents] + [c for c, _ in children]
    ids = dict(zip(names, r.sample(range(-10**6, 10**6), len(names)), strict=True))
    scale = max(abs(float(z)) for _, _, z in parents)
    rows = floats(parents, children, attributions)
    reference = row_by_row(*rows)
    for inputs in (rows, frames(parents, children, attributions), frames(parents, children, attributions, ids)):
        assert _prepare_float(*inputs) is not None  # the fast path, not the fallback
        t = price(*inputs)
        assert not t.exact and t == reference
        assert close(t.check(), 0.0, scale)
        for k in TERMS:
            assert close(getattr(t, k), getattr(exact, k), scale), k
        assert (t.n_parents, t.n_children, t.n_innovations) == (exact.n_parents, exact.n_children, exact.n_innovations)


def test_vectorised_float_path_mixed_ints_groups_and_generators():
    parents, children, attributions = hand_example()
    # float traits with int weights (as GARD passes them), parents without a group column, a generator
    p = [(i, float(z)) for i, _, z in parents]
    c = [(i, float(z)) for i, z in children]
    a = [("c1", "A", 1), ("c2", "A", 0.5), ("c2", "B", 0.5)]
    t = price(p, c, a)
    one = price([(i, None, z) for i, _, z in parents], children, attributions)
    assert _prepare_float(p, c, a) is not None
    assert all(close(getattr(t, k), getattr(one, k), 6) for k in TERMS)
    assert price((row for row in p), iter(c), (row for row in a)) == t
    # int group labels equal to bools and floats are the same group, as in a dict
    g = [("A", 1, 0.0), ("B", True, 2.0), ("C", 2.0, 4.0)]
    assert price(g, c, a) == price([("A", "x", 0.0), ("B", "x", 2.0), ("C", "y", 4.0)], c, a)


FLOAT_ERRORS = [
    ("unknown_child", r"row 3 .*unknown child id 'zz'"),
    ("unknown_parent", r"row 3 .*unknown parent id 'ZZ'"),
    ("negative", r"row 0 .*negative weight"),
    ("sum", r"child='c2'.*not 1"),
    ("dup_parent", r"parents row 3 .*duplicate parent id 'A'"),
    ("dup_child", r"children row 4 .*duplicate child id 'c1'"),
    ("dup_link", r"attributions row 3 .*duplicate attribution"),
    ("nan_parent", r"parents row 1 .*trait is NaN"),
    ("inf_child", r"children row 0 .*trait is infinite"),
    ("missing_id", r"children row 1 \(id=None\): id is missing"),
    ("missing_trait", r"parents row 2 .*trait is missing"),
]
ROW_ONLY_ERRORS = [  # inputs a DataFrame cannot hold
    ("unhashable_group", r"parents row 0 .*group \['g'\] is not hashable"),
    ("string_trait", r"children row 0 .*must be a real number"),
    ("bad_row", r"attributions row 1: expected"),
]


@pytest.mark.parametrize("case, message, as_frame", [(c, m, f) for c, m in FLOAT_ERRORS for f in (False, True)]
                         + [(c, m, False) for c, m in ROW_ONLY_ERRORS])
def test_float_validation_errors_are_the_row_by_row_ones(case, message, as_frame):
    parents, children, attributions = floats(*hand_example())
    if case == "unknown_child":
        attributions = attributions + [("zz", "A", 1.0)]
    elif case == "unknown_parent":
        attributions = attributions + [("c3", "ZZ", 1.0)]
    elif case == "negative":
        attributions = [("c1", "A", -1.0)] + attributions[1:]
    elif case == "sum":
        attributions = attributions[:2] + [("c2", "B", 0.25)]
    elif case == "dup_parent":
        parents = parents + [("A", "g1", 1.0)]
    elif case == "dup_child":
        children = children + [("c1", 1.0)]
    elif case == "dup_link":
        attributions = attributions + [("c1", "A", 0.0)]
    elif case == "nan_parent":
        parents = [parents[0], ("B", "g1", float("nan")), parents[2]]
    elif case == "inf_child":
        children = [("c1", float("inf"))] + children[1:]
    elif case == "missing_id":
        children = [children[0], (None, 3.0)] + children[2:]
    elif case == "missing_trait":
        parents = parents[:2] + [("C", "g2", None)]
    elif case == "unhashable_group":
        parents = [("A", ["g"], 0.0)] + parents[1:]
    elif case == "string_trait":
        children = [("c1", "1.5")] + children[1:]
    elif case == "bad_row":
        attributions = [attributions[0], ("c2", "A")] + attributions[2:]
    inputs = (parents, children, attributions)
    if as_frame:
        inputs = (pl.DataFrame(parents, schema=["id", "group", "trait"], orient="row"),
                  pl.DataFrame(children, schema=["id", "trait"], orient="row"),
                  pl.DataFrame(attributions, schema=["child", "parent", "weight"], orient="row"))
    assert _prepare_float(*inputs) is None  # the column-wise path declines; the row-by-row one explains
    with pytest.raises(ValueError, match=message):
        price(*inputs)
    with pytest.raises(ValueError, match=message):
        permutation_null(*inputs, n=5, rng=1)


def big_genealogy(seed: int, n_parents: int = 40_000, n_groups: int = 500):
    """A GARD-sized step as DataFrames with integer ids: dyadic traits and weights (so that the
    exact path stays affordable), 1 to 3 parents per child, innovations, childless parents."""
    rng = np.random.default_rng(seed)
    n_children = n_parents + n_parents // 8
    links = []
    for c in range(n_children):
        if rng.random() < 0.06:
            continue
        k = int(rng.integers(1, 4))
        chosen = rng.choice(n_parents * 3 // 4, size=k, replace=False)  # the last quarter never reproduces
        weights = {1: [1], 2: [F(1, 2), F(1, 2)], 3: [F(1, 2), F(1, 4), F(1, 4)]}[k]
        links.extend((c, int(p), w) for p, w in zip(chosen, weights, strict=True))
    pid = rng.permutation(n_parents) * 7 - 1000  # ids that are not row numbers
    parents = pl.DataFrame({"id": pid, "group": np.sort(rng.integers(0, n_groups, n_parents)),
                            "trait": rng.integers(-400, 400, n_parents) / 8})
    children = pl.DataFrame({"id": np.arange(n_children), "trait": rng.integers(-400, 400, n_children) / 8})
    attributions = pl.DataFrame({"child": [c for c, _, _ in links], "parent": pid[[p for _, p, _ in links]],
                                 "weight": [float(w) for _, _, w in links]})
    return parents, children, attributions, links


def test_size_gard_step_fast_and_equal_to_exact():
    import time

    parents, children, attributions, links = big_genealogy(0)
    fast = _prepare_float(parents, children, attributions)
    assert fast is not None
    t = price(parents, children, attributions)
    # the same step through the exact Fraction path (dyadic values keep the Fractions small)
    exact = price([(i, g, F(z)) for i, g, z in parents.rows()], [(i, F(z)) for i, z in children.rows()],
                  [(c, int(parents["id"][p]), w) for c, p, w in links])
    assert exact.exact
    scale = float(parents["trait"].abs().max())
    for k in TERMS:
        assert close(getattr(t, k), getattr(exact, k), scale), k
    assert (t.n_parents, t.n_children, t.n_innovations) == (exact.n_parents, exact.n_children, exact.n_innovations)
    assert t.n_innovations > 0 and t.n_parents == 40_000

    def best(f, reps=3):
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            f()
            times.append(time.perf_counter() - start)
        return min(times)

    slow = best(lambda: row_by_row(parents, children, attributions), reps=2)
    quick = best(lambda: price(parents, children, attributions))
    assert row_by_row(parents, children, attributions) == t
    assert slow > 10 * quick, (slow, quick)


def test_permutation_null_float_matches_brute_force():
    """As the exact brute-force test, through the column-wise path (DataFrames, float weights)."""
    parents, children, attributions = random_genealogy(5, exact=False, n_parents=10, n_children=14)
    inputs = frames(parents, children, attributions)
    assert _prepare_float(*inputs) is not None
    n = 30
    got = permutation_null(*inputs, n=n, rng=np.random.default_rng(2))
    assert got == permutation_null(parents, children, attributions, n=n, rng=np.random.default_rng(2))
    perms = np.random.default_rng(2).permuted(np.tile(np.arange(10), (n, 1)), axis=1)
    ids = [i for i, _, _ in parents]
    draws = {"between": [], "within": []}
    for perm in perms:
        new_owner = {ids[perm[j]]: ids[j] for j in range(10)}
        t = price(parents, children, [(c, new_owner[p], a) for c, p, a in attributions])
        draws["between"].append(t.between)
        draws["within"].append(t.within)
    for level in draws:
        assert got[level]["observed"] == getattr(price(*inputs), level)
        assert math.isclose(got[level]["mean"], float(np.mean(draws[level])), rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(got[level]["sd"], float(np.std(draws[level])), rel_tol=1e-9, abs_tol=1e-12)


# --------------------------------------------------------------------------- GARD's inputs, vectorised


def price_inputs_by_loop(genealogy, step, trait):
    """The GARD kind's measures.price_inputs as first written, row by row: the reference for the vectorised one."""
    before = genealogy.filter(pl.col("step") == step - 1).group_by("slot", "type").agg(pl.col("count").sum())
    after = genealogy.filter(pl.col("step") == step).sort("slot", "type", "root")
    parents, held = [], {}
    for slot, typ, count in before.sort("slot", "type").iter_rows():
        held[(slot, typ)] = count
        parents.extend(((slot, typ, k), slot, trait[typ]) for k in range(count))
    children, attributions, turn = [], [], {}
    for slot, ancestor, typ, root, count in after.select("slot", "ancestor", "type", "root", "count").iter_rows():
        for k in range(count):
            cid = ("c", slot, typ, root, k)
            children.append((cid, trait[typ]))
            if root < 0:
                continue
            key = (ancestor, root)
            nth = turn.get(key, 0)
            turn[key] = nth + 1
            attributions.append((cid, (ancestor, root, nth % held[key]), 1))
    return parents, children, attributions


def random_gard_step(seed: int, slots: int = 7, types: int = 6) -> pl.DataFrame:
    """Steps 0 and 1 of a genealogy: classes split over several roots, assemblies that copy others, innovations."""
    r = random.Random(seed)
    rows, held = [], {}
    for s in range(slots):
        for t in r.sample(range(types), r.randint(1, types)):
            for root in r.sample(range(types), r.randint(1, 2)):
                c = r.randint(1, 4)
                rows.append((0, s, s, t, root, c))
                held.setdefault(s, set()).add(t)
    for s in range(slots):
        ancestor = r.randrange(slots)
        for t in r.sample(range(types), r.randint(1, types)):
            for root in r.sample(sorted(held[ancestor]) + [-1], r.randint(1, 2)):
                rows.append((1, s, ancestor, t, root, r.randint(1, 6)))
    r.shuffle(rows)
    return pl.DataFrame(rows, schema=["step", "slot", "ancestor", "type", "root", "count"], orient="row")


@pytest.mark.parametrize("seed", range(10))
def test_gard_inputs_vectorised_equal_the_loop(seed):
    from culturesim.kinds.gard import measures as ga

    g = random_gard_step(seed)
    z = np.random.default_rng(seed).normal(size=6)
    rows = ga.price_inputs(g, 1, z)
    assert rows == price_inputs_by_loop(g, 1, [float(x) for x in z])
    assert all(type(p[2]) is float for p in rows[0])  # numpy scalars come out as Python numbers
    exact = [F(k - 2, 3) for k in range(6)]
    assert ga.price_inputs(g, 1, exact) == price_inputs_by_loop(g, 1, exact)
    # selection_over_steps hands price() the same genealogy with row numbers for ids
    t = price(*ga._price_frames(ga._step_genealogy(g, 1), z))
    assert t == price(*rows) and t.check() == pytest.approx(0.0, abs=1e-12)
    assert t.n_parents == g.filter(pl.col("step") == 0)["count"].sum()


def test_gard_inputs_name_a_missing_root():
    from culturesim.kinds.gard import measures as ga

    rows = [(0, 0, 0, 0, 0, 2), (1, 0, 0, 0, 0, 1), (1, 1, 1, 1, -1, 1), (1, 1, 1, 1, 1, 1)]
    g = pl.DataFrame(rows, schema=["step", "slot", "ancestor", "type", "root", "count"], orient="row")
    with pytest.raises(ValueError, match=r"step 1: slot 1 has molecules rooted in type 1 of slot 1, which held none"):
        ga.price_inputs(g, 1, [1.0, 0.0])
