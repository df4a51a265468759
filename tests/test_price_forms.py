"""The two forms of the Price innovation term (analysis.price.decomposition): the immigration
form of Kerr & Godfrey-Smith (2009), the default, and the residual form. Both must add up to
the observed change exactly, agree when there are no innovations, and be worked by hand."""

from __future__ import annotations

import math
import random
from fractions import Fraction as F

import numpy as np
import pytest
from test_price import hand_example, random_genealogy  # the test module in tests/

from analysis.price import INNOVATION_FORMS, main, permutation_null, price

FORMS = ("immigration", "residual")


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs)


def parts(parents, children, attributions):
    """Observed means computed from the rows, independently of the package."""
    inherited = {c for c, _, _ in attributions}
    z_p = mean(z for _, _, z in parents)
    z_c = mean(z for _, z in children)
    z_inh = mean(z for c, z in children if c in inherited)
    new = [z for c, z in children if c not in inherited]
    m = F(len(new), len(children))
    return z_p, z_c, z_inh, (mean(new) if new else None), m


def test_forms_listed_and_default_is_immigration():
    assert INNOVATION_FORMS == FORMS
    t = price(*hand_example())
    assert t.innovation_form == "immigration"
    assert price(*hand_example(), innovation_form="residual").innovation_form == "residual"


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("form", FORMS)
def test_terms_sum_exactly_to_the_observed_change(seed, form):
    parents, children, attributions = random_genealogy(seed, exact=True)
    t = price(parents, children, attributions, innovation_form=form)
    z_p, z_c, z_inh, z_new, m = parts(parents, children, attributions)
    assert t.exact and t.innovation_form == form
    assert t.delta == z_c - z_p  # the observed change, from the rows
    assert t.between + t.within + t.transmission + t.innovation == t.delta and t.check() == 0
    assert t.selection == t.between + t.within
    if form == "immigration":  # Kerr & Godfrey-Smith: (1 - m)(selection + transmission) + m (z_new - z_parents)
        assert t.selection + t.transmission == (1 - m) * (z_inh - z_p)
        assert t.innovation == (m * (z_new - z_p) if z_new is not None else 0)
    else:
        assert t.selection + t.transmission == z_inh - z_p
        assert t.innovation == (m * (z_new - z_inh) if z_new is not None else 0)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("form", FORMS)
def test_float_terms_sum_to_the_observed_change(seed, form):
    parents, children, attributions = random_genealogy(seed, exact=False, n_parents=40, n_children=60, n_groups=5)
    t = price(parents, children, attributions, innovation_form=form)
    observed = float(np.mean([z for _, z in children]) - np.mean([z for _, _, z in parents]))
    assert math.isclose(t.delta, observed, rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(t.between + t.within + t.transmission + t.innovation, observed, rel_tol=1e-12, abs_tol=1e-12)
    exact = price(*random_genealogy(seed, exact=True), innovation_form=form)
    as_float = price(*[[tuple(float(v) if isinstance(v, F) else v for v in row) for row in rows]
                       for rows in random_genealogy(seed, exact=True)], innovation_form=form)
    for k in ("delta", "between", "within", "transmission", "innovation"):
        assert math.isclose(getattr(as_float, k), getattr(exact, k), rel_tol=1e-12, abs_tol=1e-12), k


@pytest.mark.parametrize("seed", range(10))
def test_multilevel_terms_stay_consistent_across_forms(seed):
    """Each of between, within and transmission is the residual form's weighted by 1 - m; the
    two levels still add to selection; only the innovation term is defined differently."""
    parents, children, attributions = random_genealogy(seed, exact=True, n_groups=4)
    imm = price(parents, children, attributions)
    res = price(parents, children, attributions, innovation_form="residual")
    m = F(imm.n_innovations, imm.n_children)
    for k in ("between", "within", "transmission"):
        assert getattr(imm, k) == (1 - m) * getattr(res, k), k
    assert imm.selection == imm.between + imm.within and res.selection == res.between + res.within
    assert imm.delta == res.delta and imm.mean_fitness == res.mean_fitness
    # the difference between the forms is exactly m times the selection-and-transmission change
    assert imm.innovation - res.innovation == m * (res.selection + res.transmission)


def test_hand_worked_immigration_form_one_group():
    """Parents A z=0, B z=4. Children c1 z=1 from A; c2 z=5 and c3 z=5 from B; c4 z=10 new.
    By hand: z_parents = 2, z_children = 21/4, delta = 13/4; m = 1/4.
    w_A = 1, w_B = 2, w_bar = 3/2; Cov(w, z) = (0*1 + 4*2)/2 - (3/2)(2) = 1, /w_bar = 2/3;
    z'_A = 1, z'_B = 5; E(w dz) = (1*1 + 2*1)/2 = 3/2, /w_bar = 1.
    Immigration: selection (3/4)(2/3) = 1/2, transmission (3/4)(1) = 3/4, innovation (1/4)(10 - 2) = 2.
    Residual: selection 2/3, transmission 1, innovation (1/4)(10 - 11/3) = 19/12.
    Both sum to 13/4."""
    parents = [("A", None, 0), ("B", None, 4)]
    children = [("c1", 1), ("c2", 5), ("c3", 5), ("c4", 10)]
    attributions = [("c1", "A", 1), ("c2", "B", 1), ("c3", "B", 1)]
    imm = price(parents, children, attributions)
    assert (imm.delta, imm.selection, imm.transmission, imm.innovation) == (F(13, 4), F(1, 2), F(3, 4), F(2))
    assert imm.between == 0 and imm.within == F(1, 2) and imm.mean_fitness == F(3, 2)
    res = price(parents, children, attributions, innovation_form="residual")
    assert (res.delta, res.selection, res.transmission, res.innovation) == (F(13, 4), F(2, 3), F(1), F(19, 12))
    assert imm.check() == res.check() == 0


def test_hand_worked_immigration_form_two_groups():
    """tests/test_price.py's hand example (groups g1 = {A, B}, g2 = {C}; m = 2/4) in the
    immigration form: the residual form's between -1, within -1/2 and transmission 3/2, each
    times 1 - m = 1/2, and innovation m (z_new - z_parents) = (1/2)(4 - 2) = 1."""
    t = price(*hand_example())
    assert (t.between, t.within, t.transmission, t.innovation) == (F(-1, 2), F(-1, 4), F(3, 4), F(1))
    assert t.delta == 1 and t.selection == F(-3, 4) and t.check() == 0


@pytest.mark.parametrize("exact", [True, False])
def test_forms_agree_without_innovations_and_with_only_innovations(exact):
    r = random.Random(3)
    val = (lambda: F(r.randint(-9, 9), r.randint(1, 4))) if exact else (lambda: r.uniform(-3, 3))
    parents = [(f"p{i}", i % 2, val()) for i in range(6)]
    children = [(f"c{c}", val()) for c in range(8)]
    attributions = [(f"c{c}", f"p{r.randrange(6)}", 1) for c in range(8)]
    a = price(parents, children, attributions)
    b = price(parents, children, attributions, innovation_form="residual")
    assert a.as_dict() | {"innovation_form": None} == b.as_dict() | {"innovation_form": None}
    a = price(parents, children, [])
    b = price(parents, children, [], innovation_form="residual")
    assert a.innovation == b.innovation == a.delta and a.selection == b.selection == 0


def test_unknown_form_is_one_line_error(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"unknown innovation_form 'price'; allowed: immigration, residual"):
        price(*hand_example(), innovation_form="price")
    with pytest.raises(ValueError, match="unknown innovation_form"):
        permutation_null(*hand_example(), n=5, innovation_form="nope")
    (tmp_path / "p.csv").write_text("id,trait\nA,0\n")
    (tmp_path / "c.csv").write_text("id,trait\nx,1\n")
    (tmp_path / "a.csv").write_text("child,parent,weight\nx,A,1\n")
    code = main(["--parents", str(tmp_path / "p.csv"), "--children", str(tmp_path / "c.csv"),
                 "--attributions", str(tmp_path / "a.csv"), "--innovation-form", "other"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and err.count("\n") == 1


def test_permutation_null_follows_the_form():
    """The null's draws are weighted like the observed terms: observed and mean scale by 1 - m, z is unchanged."""
    parents, children, attributions = random_genealogy(5, exact=False, n_parents=30, n_children=40, n_groups=4)
    imm = permutation_null(parents, children, attributions, n=200, rng=1)
    res = permutation_null(parents, children, attributions, n=200, rng=1, innovation_form="residual")
    t = price(parents, children, attributions)
    kept = 1 - t.n_innovations / t.n_children
    assert 0 < kept < 1
    for level in ("between", "within"):
        assert imm[level]["observed"] == getattr(t, level)
        assert math.isclose(imm[level]["observed"], kept * res[level]["observed"], rel_tol=1e-12)
        assert math.isclose(imm[level]["mean"], kept * res[level]["mean"], rel_tol=1e-9, abs_tol=1e-15)
        assert math.isclose(imm[level]["sd"], kept * res[level]["sd"], rel_tol=1e-9)
        assert math.isclose(imm[level]["z"], res[level]["z"], rel_tol=1e-9)
