"""GARD dynamics against theory: growth laws, the catalysis factor, splitting, Moran ordering."""

from __future__ import annotations

import math

import numpy as np
import pytest

from culturesim.kinds.gard import reference
from culturesim.kinds.gard.engine import Assemblies, Chemistry, pick
from culturesim.kinds.gard.network import lognormal_beta
from culturesim.kinds.gard.split import split
from culturesim.kinds.gard.world import World

G, N_MAX, K_F, K_B = 100, 100, 0.01, 1e-4


def chem(beta: float | np.ndarray = 0.0, n_types: int = G) -> Chemistry:
    b = np.full((n_types, n_types), float(beta)) if np.isscalar(beta) else beta
    return Chemistry(beta=b, rho=np.full(n_types, 1.0 / n_types), k_f=K_F, k_b=K_B, n_max=N_MAX)


def first_growth_times(c: Chemistry, lineages: int, seed: int) -> np.ndarray:
    """Time from birth (N_max/2) to the first split of each of many independent lineages."""
    world = World(c, "lineage", lineages, np.random.default_rng(seed))
    record = world.run_splits(1)
    times = np.array([s["time"] - s["birth_time"] for s in sorted(record.splits, key=lambda s: s["slot"])])
    assert len(times) == lineages
    return times


def birth_death_mean(n0: int, n1: int, birth: float, death: float) -> float:
    """Exact mean first-passage time n0 -> n1 of the linear birth-death chain (rates birth*N, death*N):
    the time to climb from N to N+1 is T_N = 1/(birth N) + (death/birth) T_{N-1}."""
    climb, total = 0.0, 0.0
    for n in range(1, n1):
        climb = 1.0 / (birth * n) + (death / birth) * climb
        if n >= n0:
            total += climb
    return total


def test_growth_without_catalysis_follows_the_ode():
    """beta = 0: dN/dt = (k_f - k_b) N, so N_max/2 -> N_max takes ln 2 / (k_f - k_b) on average."""
    times = first_growth_times(chem(0.0), 1500, seed=11)
    ode = math.log(2) / (K_F - K_B)
    exact = birth_death_mean(N_MAX // 2, N_MAX, K_F, K_B)
    se = times.std() / math.sqrt(times.size)
    assert abs(times.mean() - exact) < 4 * se  # the stochastic process, exactly
    assert abs(times.mean() / ode - 1) < 0.03  # the ODE, up to the discreteness of molecules (~0.7%)
    assert abs(exact / ode - 1) < 0.01


def test_reference_loop_agrees_with_the_vectorised_engine():
    """An independent per-event loop (the MATLAB reference's way) gives the same mean growth time."""
    c = chem(0.0)
    rng = np.random.default_rng(5)
    loop = np.array([reference.growth_time(c, rng.multinomial(N_MAX // 2, c.rho), rng) for _ in range(300)])
    vec = first_growth_times(c, 1500, seed=12)
    se = math.sqrt(loop.var() / loop.size + vec.var() / vec.size)
    assert abs(loop.mean() - vec.mean()) < 4 * se


@pytest.mark.parametrize("b", [0.5, 3.0])
def test_uniform_catalysis_scales_time_by_one_plus_b(b):
    """beta = b everywhere: sum_j beta n_j / N = b, every rate is (1 + b) times larger, the same path
    runs (1 + b) times faster. Same seed, so the event chains coincide and times match pathwise."""
    base = first_growth_times(chem(0.0), 300, seed=21)
    fast = first_growth_times(chem(b), 300, seed=21)
    np.testing.assert_allclose(fast * (1 + b), base, rtol=1e-9)
    exact = birth_death_mean(N_MAX // 2, N_MAX, K_F, K_B) / (1 + b)
    other = first_growth_times(chem(b), 1500, seed=22)  # and in law, on fresh randomness
    assert abs(other.mean() - exact) < 4 * other.std() / math.sqrt(other.size)


def test_rates_are_the_gard_equation():
    """Join and leave rates equal (k_f rho_i N, k_b n_i) times (1 + sum_j beta_ij n_j / N), by hand."""
    rng = np.random.default_rng(3)
    beta = lognormal_beta(5, -1.0, 1.0, rng)
    c = Chemistry(beta=beta, rho=np.array([0.1, 0.2, 0.3, 0.15, 0.25]), k_f=0.02, k_b=0.003, n_max=20)
    n = np.array([[3, 0, 2, 1, 4], [0, 5, 0, 0, 1]])
    pop = Assemblies(c, n)
    got = pop.rates(np.arange(2))
    for a in range(2):
        size = n[a].sum()
        for i in range(5):
            factor = 1 + sum(beta[i, j] * n[a, j] for j in range(5)) / size
            assert got[a, i] == pytest.approx(0.02 * c.rho[i] * size * factor, rel=1e-12)
            assert got[a, 5 + i] == pytest.approx(0.003 * n[a, i] * factor, rel=1e-12)
    for _ in range(200):  # the incrementally kept sums stay equal to beta @ n
        pop.advance(np.arange(2), rng)
    assert pop.recompute_sums() < 1e-9 * beta.max()


def test_pick_never_chooses_a_zero_weight_column():
    weights = np.array([[0.0, 2.0, 0.0, 1.0, 0.0]] * 4)
    cum = np.cumsum(weights, axis=1)
    chosen = pick(cum, np.array([0.0, 0.66, 0.67, 1.0]))  # 1.0: the rounding fall-back
    assert chosen.tolist() == [1, 1, 3, 3]


def test_split_conserves_molecules_and_roots():
    rng = np.random.default_rng(8)
    for _ in range(50):
        comp = rng.multinomial(N_MAX + int(rng.integers(0, 3)), np.full(G, 1 / G))
        roots = np.zeros((G, G + 1), dtype=np.int32)
        for i in np.flatnonzero(comp):  # spread each type's molecules over a few roots
            roots[i] = rng.multinomial(comp[i], np.full(G + 1, 1 / (G + 1)))
        a, ra, b, rb = split(comp, roots, rng)
        assert a.sum() == comp.sum() // 2
        np.testing.assert_array_equal(a + b, comp)
        np.testing.assert_array_equal(ra + rb, roots)
        np.testing.assert_array_equal(ra.sum(axis=1), a)
        assert (a >= 0).all() and (b >= 0).all() and (ra >= 0).all() and (rb >= 0).all()


def test_split_is_a_random_half():
    """Each molecule lands in the first daughter with probability 1/2: the hypergeometric mean."""
    rng = np.random.default_rng(9)
    comp = np.array([60, 30, 10])
    draws = np.array([split(comp, None, rng)[0] for _ in range(4000)])
    np.testing.assert_allclose(draws.mean(axis=0), comp / 2, atol=0.3)
    # variance of a hypergeometric draw of 50 from 100: 50 * p(1-p) * 50/99
    p = comp / comp.sum()
    np.testing.assert_allclose(draws.var(axis=0), 50 * p * (1 - p) * 50 / 99, rtol=0.1)


def test_moran_splits_happen_in_time_order_and_keep_the_genealogy():
    beta = lognormal_beta(G, -4.0, 4.0, np.random.default_rng(1))
    world = World(chem(beta), "population", 30, np.random.default_rng(2))
    world.start_window()
    record = world.run_splits(150)
    times = [s["time"] for s in record.splits]
    assert times == sorted(times) and len(times) == 150
    by_id = {s["split_id"]: s for s in record.splits}
    for s in record.splits:
        assert s["size"] == N_MAX and s["birth_time"] <= s["time"]
        if s["parent_id"] in by_id:  # born at its parent's split
            assert s["birth_time"] == by_id[s["parent_id"]]["time"]
        if s["similarity_to_parent"] is not None:
            assert 0.0 <= s["similarity_to_parent"] <= 1.0
    np.testing.assert_array_equal(world.pop.roots.sum(axis=2), world.pop.n)  # roots account for every molecule
    assert (world.pop.size < N_MAX).sum() + world.frozen.sum() == 30


def test_neutral_moran_matches_the_reference_population_loop():
    """beta = 0 Moran population: time per split agrees with the one-global-event reference loop."""
    c = chem(0.0, n_types=10)
    vec, loop = [], []
    for r in range(8):
        world = World(c, "population", 10, np.random.default_rng(100 + r), track=False)
        vec.append(world.run_splits(120).time / 120)
        loop.append(reference.population(c, 10, 120, np.random.default_rng(200 + r))["time"] / 120)
    vec, loop = np.array(vec), np.array(loop)
    se = math.sqrt(vec.var(ddof=1) / vec.size + loop.var(ddof=1) / loop.size)
    assert abs(vec.mean() - loop.mean()) < 4 * se
    # ten assemblies each splitting every ~ln 2/(k_f - k_b): about a tenth of that per split
    assert 0.05 < vec.mean() / (math.log(2) / (K_F - K_B)) < 0.2


def test_selection_gain_is_factor_times_similarity_to_target():
    """A daughter's catalysis among its own types is scaled by factor * H(daughter, target) (the
    reference's population selection), and the scaled sums are what the rates use."""
    beta = lognormal_beta(G, -4.0, 4.0, np.random.default_rng(4))
    target = np.zeros(G)
    target[:10] = 5.0
    world = World(chem(beta), "selection", 40, np.random.default_rng(5), target=target, factor=1.1)
    record = world.run_splits(80)
    last = record.splits[-1]  # its two daughters have had no event yet: birth compositions
    for slot in (last["slot"], last["replaced"]):
        comp = world.pop.n[slot]
        h = comp @ target / (np.linalg.norm(comp) * np.linalg.norm(target))
        assert world.pop.gain[slot] == pytest.approx(1.1 * h, rel=1e-12)
        rates = world.pop.rates(np.array([slot]))[0]
        s = beta @ comp * np.where(comp > 0, 1.1 * h, 1.0)
        np.testing.assert_allclose(rates[:G], K_F / G * comp.sum() * (1 + s / comp.sum()), rtol=1e-9)
    assert all(0.0 <= s["gain"] <= 1.1 + 1e-12 for s in record.splits)
