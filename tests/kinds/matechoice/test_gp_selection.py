"""Mate selection: tournament against its closed form, random mates without a fitness
advantage, PIMP choosing the candidate nearest the ideal, and network pools."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import test_gp_reference as ref  # the reference module in tests/
import zss
from scipy import stats
from test_gp_core import _zss

from culturesim.kinds.matechoice.gp import selection
from culturesim.kinds.matechoice.gp.engine import Engine, GPConfig
from culturesim.kinds.matechoice.gp.problems import benchmark
from culturesim.kinds.matechoice.gp.tree import to_string


def test_tournament_matches_its_closed_form():
    """With replacement, the i-th best of N wins a tournament of t with probability
    ((N - i + 1)^t - (N - i)^t) / N^t."""
    n, t, draws = 10, 3, 30_000
    rng = np.random.default_rng(11)
    fitness = rng.permutation(n).astype(float)  # distinct errors, shuffled over slots
    winners = selection.tournament(fitness, selection.Pools(n), np.zeros(draws, dtype=int), t, rng)
    rank = np.argsort(np.argsort(fitness))  # 0 = best
    observed = np.bincount(rank[winners], minlength=n)
    i = np.arange(1, n + 1)
    expected = ((n - i + 1) ** t - (n - i) ** t) / n**t
    assert expected.sum() == pytest.approx(1.0)
    assert stats.chisquare(observed, expected * draws).pvalue > 0.01
    # the test has power: uniform choice is far from these probabilities
    assert stats.chisquare(np.bincount(rank[rng.integers(n, size=draws)], minlength=n),
                           expected * draws).pvalue < 1e-6


def _engine(mode: str, n: int = 200, **kw) -> tuple[Engine, object]:
    problem = benchmark("keijzer6", np.random.default_rng(0))
    engine = Engine(GPConfig(population=n, mode=mode, **kw), problem.pset, problem.X_train, problem.y_train)
    return engine, engine.initial(np.random.default_rng(4))


def test_random_mode_gives_the_second_parent_no_fitness_advantage():
    engine, pop = _engine("random")
    slots = np.arange(engine.config.population).repeat(50)
    first, second = engine.mates(pop, slots, np.random.default_rng(8))
    n = engine.config.population
    counts = np.bincount(second, minlength=n)
    assert stats.chisquare(counts).pvalue > 0.01  # every individual equally likely
    ranks = np.argsort(np.argsort(pop.fitness, kind="stable"))
    assert abs(stats.spearmanr(ranks, counts).statistic) < 0.15
    # while the first parent (a tournament winner) is strongly favoured by fitness
    firsts = np.bincount(first, minlength=n)
    assert stats.spearmanr(ranks, firsts).statistic < -0.5


def test_tournament_mode_selects_both_parents_by_fitness():
    engine, pop = _engine("tournament")
    first, second = engine.mates(pop, np.arange(200).repeat(20), np.random.default_rng(2))
    ranks = np.argsort(np.argsort(pop.fitness, kind="stable"))
    for chosen in (first, second):
        assert stats.spearmanr(ranks, np.bincount(chosen, minlength=200)).statistic < -0.5


@pytest.mark.parametrize("rule", ["random", "tournament"])
def test_pimp_semantic_picks_the_candidate_nearest_the_ideal(rule):
    engine, pop = _engine("pimp", n=60, candidates=6, candidate_rule=rule)
    problem_x, names = engine.evaluator.X, engine.pset.var_names
    slots = np.arange(60)
    first = selection.tournament(pop.fitness, engine.pools, slots, 7, np.random.default_rng(1))
    chosen, cands = selection.pimp(pop.fitness, engine.pools, slots, first, 6, rule, 7, np.random.default_rng(2),
                                   lambda f, k: engine.ideal_distances(pop, f, k))
    assert cands.shape == (60, 6)
    for f, row, c in zip(first, cands, chosen, strict=True):
        ideal = ref.outputs(ref.parse(to_string(pop.preferences[f], engine.pset)), problem_x, names)
        dists = [ref.rmse(ref.outputs(ref.parse(to_string(pop.genomes[j], engine.pset)), problem_x, names), ideal)
                 for j in row]
        # the chosen one is at the smallest distance (equal trees may differ in the last bit)
        assert c in row and dists[list(row).index(c)] <= min(dists) * (1 + 1e-9) + 1e-12
    assert np.mean(cands[:, 0] != chosen) > 0.5  # not just the first candidate
    if rule == "tournament":  # candidates are tournament winners: better than the population at large
        assert np.median(pop.fitness[cands]) < np.median(pop.fitness)


def test_pimp_structural_picks_the_candidate_nearest_the_ideal():
    engine, pop = _engine("pimp", n=40, candidates=4, distance="structural")
    first, second = engine.mates(pop, np.arange(40), np.random.default_rng(3))
    # replay the candidate draws: same generator, same order as mates()
    rng = np.random.default_rng(3)
    selection.tournament(pop.fitness, engine.pools, np.arange(40), 7, rng)
    cands = selection.candidates(pop.fitness, engine.pools, np.arange(40), 4, "random", 7, rng)
    for f, row, c in zip(first, cands, second, strict=True):
        d = [zss.simple_distance(_zss(pop.preferences[f], engine.pset), _zss(pop.genomes[j], engine.pset))
             for j in row]
        assert c == row[int(np.argmin(d))]


def test_network_pools_keep_mates_among_neighbours():
    graph = nx.cycle_graph(30)
    pools = selection.Pools.from_graph(graph)
    fitness = np.random.default_rng(0).random(30)
    slots = np.arange(30).repeat(40)
    rng = np.random.default_rng(5)
    for chosen in (selection.tournament(fitness, pools, slots, 3, rng), selection.uniform(pools, slots, rng),
                   selection.candidates(fitness, pools, slots, 4, "random", 3, rng)):
        chosen = chosen.reshape(len(slots), -1)
        for s, row in zip(slots, chosen, strict=True):
            assert set(row.tolist()) <= {s, (s - 1) % 30, (s + 1) % 30}
    # every member of a pool is reachable, uniformly
    counts = np.bincount(selection.uniform(pools, np.zeros(6000, dtype=int), rng), minlength=30)
    assert set(np.flatnonzero(counts)) == {0, 1, 29}
    assert stats.chisquare(counts[[0, 1, 29]]).pvalue > 0.01
