"""One generation of GP with mate choice: select, vary, evaluate.

Kept apart from the Mesa model so the benchmark and the tests can drive evolution
directly; the model adds agents, records and measures. A generation keeps the
``elitism`` best individuals in their own slots and fills every other slot with one
offspring of a first parent (tournament in the slot's pool) and a second parent chosen
by the mode. Offspring inherit the genome by crossover and mutation; under PIMP they
inherit the ideal-mate preference the same way, with its own rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from culturesim.kinds.matechoice.gp import selection
from culturesim.kinds.matechoice.gp.distance import StructuralDistance, semantic
from culturesim.kinds.matechoice.gp.evaluate import Evaluator, rmse
from culturesim.kinds.matechoice.gp.operators import vary
from culturesim.kinds.matechoice.gp.primitives import PrimitiveSet
from culturesim.kinds.matechoice.gp.tree import Tree, ramped_half_and_half


@dataclass(frozen=True)
class GPConfig:
    population: int = 500
    mode: str = "tournament"  # tournament | random | pimp
    tournament_size: int = 7
    candidates: int = 5
    candidate_rule: str = "random"  # random | tournament
    distance: str = "semantic"  # semantic | structural
    crossover_rate: float = 0.9
    mutation_rate: float = 0.1
    mutation: str = "subtree"  # subtree | point | both
    preference_crossover_rate: float = 0.9
    preference_mutation_rate: float = 0.1
    preference_mutation: str = "subtree"
    elitism: int = 1
    max_depth: int = 17
    init_depth: tuple[int, int] = (2, 6)
    mutation_depth: tuple[int, int] = (0, 2)

    @property
    def preferences(self) -> bool:
        return self.mode == "pimp"


@dataclass
class Population:
    genomes: list[Tree]
    preferences: list[Tree] | None
    fitness: np.ndarray  # training RMSE
    outputs: np.ndarray  # population x training cases
    test_outputs: np.ndarray | None  # population x test cases, when the engine has them
    parents: np.ndarray  # population x 2 slot indices in the previous generation, -1 for none
    elite: np.ndarray  # bool: copied unchanged from the previous generation


class Engine:
    def __init__(self, config: GPConfig, pset: PrimitiveSet, X: np.ndarray, y: np.ndarray,
                 pools: selection.Pools | None = None, X_test: np.ndarray | None = None):
        """``X_test``: test inputs evaluated in the same pass as the training inputs (one
        walk of each tree over both case vectors costs about as much as one over either)."""
        self.config = config
        self.pset = pset
        self.y = np.asarray(y, dtype=np.float64)
        self.n_train = X.shape[1]
        self.has_test = X_test is not None
        self.evaluator = Evaluator(np.hstack([X, X_test]) if X_test is not None else X, pset)
        self.structural = StructuralDistance(pset)
        self.pools = pools or selection.Pools(config.population)

    def _population(self, genomes, preferences, parents, elite) -> Population:
        both = self.evaluator.matrix(genomes)
        keep = genomes + (preferences or [])
        self.evaluator.retain(keep)
        self.structural.retain(keep)
        outputs = both[:, : self.n_train]
        test = both[:, self.n_train:] if self.has_test else None
        return Population(genomes, preferences, rmse(outputs, self.y), outputs, test, parents, elite)

    def initial(self, rng: np.random.Generator) -> Population:
        c = self.config
        genomes = ramped_half_and_half(self.pset, rng, c.population, *c.init_depth)
        prefs = ramped_half_and_half(self.pset, rng, c.population, *c.init_depth) if c.preferences else None
        n = c.population
        return self._population(genomes, prefs, np.full((n, 2), -1), np.zeros(n, dtype=bool))

    def mates(self, pop: Population, slots: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """First and second parents for the given slots."""
        c = self.config
        first = selection.tournament(pop.fitness, self.pools, slots, c.tournament_size, rng)
        if c.mode == "tournament":
            second = selection.tournament(pop.fitness, self.pools, slots, c.tournament_size, rng)
        elif c.mode == "random":
            second = selection.uniform(self.pools, slots, rng)
        elif c.mode == "pimp":
            second, _ = selection.pimp(pop.fitness, self.pools, slots, first, c.candidates, c.candidate_rule,
                                       c.tournament_size, rng, lambda f, k: self.ideal_distances(pop, f, k))
        else:
            raise ValueError(f"unknown mode {c.mode!r}; allowed: {', '.join(selection.MODES)}")
        return first, second

    def ideal_distances(self, pop: Population, first: np.ndarray, cands: np.ndarray) -> np.ndarray:
        """Distance of each candidate's genome to each first parent's ideal mate (len(first) x k)."""
        prefs = pop.preferences
        if self.config.distance == "semantic":
            ideals = self.evaluator.matrix([prefs[i] for i in first])[:, : self.n_train]
            return semantic(pop.outputs[cands], ideals[:, None, :])
        if self.config.distance == "structural":
            k = cands.shape[1]
            left = [prefs[i] for i in np.repeat(first, k)]
            right = [pop.genomes[j] for j in cands.ravel()]
            return self.structural.pairs(left, right).reshape(cands.shape).astype(float)
        raise ValueError(f"unknown distance {self.config.distance!r}; allowed: semantic, structural")

    def next(self, pop: Population, rng: np.random.Generator) -> Population:
        c = self.config
        n = c.population
        elites = np.sort(np.argsort(pop.fitness, kind="stable")[: c.elitism])
        slots = np.setdiff1d(np.arange(n), elites)
        first, second = self.mates(pop, slots, rng)
        genomes = list(pop.genomes)
        prefs = list(pop.preferences) if pop.preferences is not None else None
        parents = np.full((n, 2), -1)
        parents[elites, 0] = elites
        elite = np.zeros(n, dtype=bool)
        elite[elites] = True
        g_args = dict(crossover_rate=c.crossover_rate, mutation_rate=c.mutation_rate, mutation=c.mutation,
                      max_depth=c.max_depth, depth_range=c.mutation_depth)
        p_args = dict(crossover_rate=c.preference_crossover_rate, mutation_rate=c.preference_mutation_rate,
                      mutation=c.preference_mutation, max_depth=c.max_depth, depth_range=c.mutation_depth)
        old_g, old_p = pop.genomes, pop.preferences
        for s, a, b in zip(slots.tolist(), first.tolist(), second.tolist(), strict=True):
            genomes[s] = vary(old_g[a], old_g[b], rng, self.pset, **g_args)
            if prefs is not None:
                prefs[s] = vary(old_p[a], old_p[b], rng, self.pset, **p_args)
        parents[slots, 0] = first
        parents[slots, 1] = second
        return self._population(genomes, prefs, parents, elite)
