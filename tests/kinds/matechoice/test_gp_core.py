"""GP mechanics: protected operators, trees, vectorised evaluation against a plain-Python
reference, variation operators, tree edit distance against zss, and the problems' data."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import test_gp_reference as ref  # the reference module in tests/
import zss

from culturesim.kinds.matechoice.gp.distance import StructuralDistance, mean_pairwise_semantic, semantic
from culturesim.kinds.matechoice.gp.evaluate import Evaluator, evaluate, hits, rmse
from culturesim.kinds.matechoice.gp.operators import crossover, mutate, point_mutation, subtree_mutation
from culturesim.kinds.matechoice.gp.primitives import (
    KEIJZER_SET,
    KOZA_SET,
    Constants,
    make_pset,
    pdiv,
    pinv,
    plog,
    psqrt,
)
from culturesim.kinds.matechoice.gp.problems import benchmark
from culturesim.kinds.matechoice.gp.tree import depth_of, layout, make_tree, ramped_half_and_half, to_string

KOZA = make_pset(KOZA_SET, 1, var_names=("x",))
KEIJZER = make_pset(KEIJZER_SET, 1, Constants("normal", 0, 5), ("x",))
PAGIE = make_pset(KOZA_SET, 2, var_names=("x", "y"))


def test_protected_operators():
    with np.errstate(all="ignore"):
        assert pdiv(1.0, 0.0) == 1.0 and pdiv(6.0, 3.0) == 2.0
        assert list(pdiv(np.array([1.0, 4.0, -3.0]), np.array([0.0, 2.0, 0.0]))) == [1.0, 2.0, 1.0]
        assert plog(0.0) == 0.0 and plog(-math.e) == pytest.approx(1.0) and plog(math.e**2) == pytest.approx(2.0)
        assert psqrt(-4.0) == 2.0 and psqrt(9.0) == 3.0
        assert pinv(0.0) == 1.0 and pinv(4.0) == 0.25
    # overflow makes the error infinite (worst), never nan or a crash
    big = make_tree([KOZA.names.index("exp"), KOZA.names.index("exp"), KOZA.names.index("x")], [0.0] * 3, KOZA)
    out = evaluate(big, np.array([[10.0]]), KOZA)
    assert math.isinf(rmse(out, np.array([0.0]))[()])


def test_unknown_function_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown function 'ad' \(did you mean 'add'\?\); known: add"):
        make_pset(["ad"], 1)


def test_tree_string_depth_and_size_by_hand():
    n = KEIJZER.names
    codes = [n.index("add"), n.index("x"), n.index("mul"), n.index("x"), KEIJZER.const_code]
    tree = make_tree(codes, [0, 0, 0, 0, 1.5], KEIJZER)
    assert to_string(tree, KEIJZER) == "add(x, mul(x, 1.5))"
    assert (tree.size, tree.depth) == (5, 2)
    assert layout(tree.codes, KEIJZER.arity) == ([0, 1, 1, 2, 2], [5, 2, 5, 4, 5])
    assert list(evaluate(tree, np.array([[2.0, -1.0]]), KEIJZER)) == [5.0, -2.5]
    with pytest.raises(ValueError, match="ends before"):
        depth_of(tuple(codes[:3]), KEIJZER)


@pytest.mark.parametrize("pset", [KOZA, KEIJZER, PAGIE], ids=["koza", "keijzer", "pagie"])
def test_vectorised_evaluation_equals_plain_python(pset):
    rng = np.random.default_rng(5)
    X = rng.uniform(-3, 3, size=(pset.n_vars, 15))
    X[0, 0] = 0.0  # protected cases on purpose
    trees = ramped_half_and_half(pset, rng, 150, 1, 6)
    for tree in trees:
        fast = evaluate(tree, X, pset)
        slow = np.array(ref.outputs(ref.parse(to_string(tree, pset)), X, pset.var_names))
        assert fast.shape == slow.shape
        finite = np.isfinite(slow)
        assert np.array_equal(np.isfinite(fast), finite), to_string(tree, pset)
        # numpy's SIMD sin/exp differ from libm in the last bits, which nested calls can amplify
        np.testing.assert_allclose(fast[finite], slow[finite], rtol=1e-6, atol=1e-9)


def test_evaluator_cache_and_measures():
    X = np.array([[0.0, 1.0, 2.0]])
    ev = Evaluator(X, KOZA)
    trees = ramped_half_and_half(KOZA, np.random.default_rng(1), 20, 1, 3)
    M = ev.matrix(trees + trees)
    assert ev.evaluations == len({t.key for t in trees})
    assert np.array_equal(M[:20], M[20:], equal_nan=True)
    y = np.array([1.0, 1.0, 1.0])
    out = np.array([[1.0, 1.005, 0.995], [1.0, 1.02, 1.0]])
    assert list(hits(out, y, 0.01)) == [True, False]
    assert rmse(out, y)[1] == pytest.approx(math.sqrt(0.02**2 / 3))
    assert semantic(out[0], out[1]) == pytest.approx(math.sqrt((0.015**2 + 0.005**2) / 3))
    rows = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    pairs = [math.hypot(3, 4) / math.sqrt(2), 4 / math.sqrt(2), 3 / math.sqrt(2)]
    assert mean_pairwise_semantic(rows) == pytest.approx(np.mean(pairs))


def _is_crossover_of(child, a, b) -> bool:
    """Whether ``child`` is ``a`` with one non-root subtree replaced by a subtree of ``b``."""
    ends_a, ends_b = layout(a.codes, KEIJZER.arity)[1], layout(b.codes, KEIJZER.arity)[1]
    subtrees_b = {(b.codes[j:e], b.consts[j:e]) for j, e in enumerate(ends_b)}
    for i in range(1, a.size):
        tail = a.size - ends_a[i]
        middle = (child.codes[i:child.size - tail], child.consts[i:child.size - tail])
        if (child.codes[:i] == a.codes[:i] and child.codes[child.size - tail:] == a.codes[ends_a[i]:]
                and middle in subtrees_b):
            return True
    return False


def test_crossover_and_mutation_respect_depth_and_keep_trees_whole():
    rng = np.random.default_rng(2)
    trees = ramped_half_and_half(KEIJZER, rng, 60, 2, 6)
    for k in range(400):
        a, b = trees[k % 60], trees[(7 * k + 3) % 60]
        child = crossover(a, b, rng, KEIJZER, 8)
        assert child.depth == depth_of(child.codes, KEIJZER) <= max(8, a.depth)
        if child is not a:
            assert _is_crossover_of(child, a, b)
        for kind in ("subtree", "point", "both"):
            m = mutate(a, kind, rng, KEIJZER, 8, (0, 2))
            assert m.depth == depth_of(m.codes, KEIJZER) <= max(8, a.depth)
    p = point_mutation(trees[0], rng, KEIJZER)
    assert p.size == trees[0].size
    assert [KEIJZER.arity[c] for c in p.codes] == [KEIJZER.arity[c] for c in trees[0].codes]
    assert sum(x != y for x, y in zip(p.key[0] + p.key[1], trees[0].key[0] + trees[0].key[1], strict=True)) <= 2
    # a limit below the parent's own depth leaves every subtree mutation that deepens it undone
    deep = max(trees, key=lambda t: t.depth)
    assert all(subtree_mutation(deep, rng, KEIJZER, 0, (1, 2)) is deep for _ in range(20))


def _zss(tree, pset):
    pos = 0

    def build():
        nonlocal pos
        i = pos
        pos += 1
        code = tree.codes[i]
        node = zss.Node(("c", tree.consts[i]) if code == pset.const_code else code)
        for _ in range(pset.arity[code]):
            node.addkid(build())
        return node

    return build()


def test_tree_edit_distance_equals_zss():
    dist = StructuralDistance(KEIJZER)
    rng = np.random.default_rng(3)
    trees = ramped_half_and_half(KEIJZER, rng, 50, 1, 6)
    left, right = trees[:25], trees[25:]
    expected = [zss.simple_distance(_zss(a, KEIJZER), _zss(b, KEIJZER)) for a, b in zip(left, right, strict=True)]
    assert list(dist.pairs(left, right)) == expected
    assert dist(trees[0], trees[0]) == 0
    sample = trees[:8]
    pairwise = [zss.simple_distance(_zss(a, KEIJZER), _zss(b, KEIJZER))
                for i, a in enumerate(sample) for b in sample[i + 1:]]
    assert dist.mean_pairwise(sample) == pytest.approx(np.mean(pairwise))


def test_benchmark_data_match_their_definitions():
    rng = np.random.default_rng(0)
    koza = benchmark("koza1", rng)
    x = koza.X_train[0]
    assert koza.X_train.shape == (1, 20) and np.all(np.abs(x) <= 1)
    np.testing.assert_allclose(koza.y_train, x**4 + x**3 + x**2 + x)
    assert benchmark("koza1", np.random.default_rng(0)).X_train.tolist() == koza.X_train.tolist()

    ng = benchmark("nguyen7", rng)
    assert ng.X_train.shape == (1, 20) and np.all((ng.X_train >= 0) & (ng.X_train <= 2))
    np.testing.assert_allclose(ng.y_train, [math.log(v + 1) + math.log(v * v + 1) for v in ng.X_train[0]])

    kj = benchmark("keijzer6", rng)
    assert kj.X_train[0].tolist() == list(range(1, 51)) and kj.X_test[0].tolist() == list(range(1, 121))
    assert kj.y_train[:3].tolist() == pytest.approx([1.0, 1.5, 11 / 6])
    assert kj.y_test[119] == pytest.approx(float(sum(Fraction(1, i) for i in range(1, 121))))
    assert kj.pset.names[: kj.pset.n_functions] == KEIJZER_SET and kj.pset.constants.kind == "normal"

    pg = benchmark("pagie1", rng)
    assert pg.X_train.shape == (2, 676)
    assert sorted(set(np.round(pg.X_train[0], 9))) == pytest.approx([-5 + 0.4 * k for k in range(26)])
    at = {(round(a, 6), round(b, 6)): v for a, b, v in zip(*pg.X_train, pg.y_train, strict=True)}
    assert at[(1.0, 1.0)] == pytest.approx(1.0)
    assert at[(-5.0, -5.0)] == pytest.approx(2 * 625 / 626)
    assert at[(2.2, -0.2)] == pytest.approx(1 / (1 + 2.2**-4) + 1 / (1 + 0.2**-4))
