"""Generations per second of culturesim's GP against DEAP's standard GP, in one run.

Keijzer-6 (train x = 1..50), population 500, the Keijzer primitives (add, mul, protected
inv, neg, sqrt of |x|, constants N(0, 5)), tournaments of 7, one-point subtree crossover
at 0.9, subtree mutation (a full tree of depth 0..2) at 0.1, depth limit 17, no elitism,
ramped half-and-half initialisation (depth 2..6). DEAP runs its symbolic regression
example's loop (varAnd, evaluate the individuals whose fitness is invalid) with its
standard evaluation: the tree compiled to a Python lambda and called point by point.
A second DEAP variant compiles to numpy and evaluates the whole case vector at once,
the strongest DEAP setup short of changing DEAP. culturesim is timed twice: the GP
engine alone (the same work DEAP does) and the whole model step with every
per-generation measure of the ``generations`` table.

    .venv/bin/python bench/matechoice_vs_deap.py [--generations 10] [--population 500]
"""

from __future__ import annotations

import argparse
import math
import operator
import random
import time

import numpy as np
from deap import algorithms, base, creator, gp, tools

from culturesim.kinds.matechoice.gp.engine import Engine, GPConfig
from culturesim.kinds.matechoice.gp.primitives import FUNCTIONS
from culturesim.kinds.matechoice.gp.problems import benchmark
from culturesim.kinds.matechoice.model import MateChoiceModel
from culturesim.scenario import validate_data


def deap_toolbox(points: np.ndarray, target: np.ndarray, vectorised: bool, seed: int):
    random.seed(seed)
    pset = gp.PrimitiveSet("MAIN", 1)
    for name in ("add", "mul", "inv", "neg", "sqrt"):
        f = FUNCTIONS[name]
        pset.addPrimitive(f.numpy if vectorised else f.scalar, f.arity, name=name)
    pset.addEphemeralConstant("erc", lambda: random.gauss(0, 5))
    pset.renameArguments(ARG0="x")
    if not hasattr(creator, "FitnessMin"):
        creator.create("FitnessMin", base.Fitness, weights=(-1.0,))
        creator.create("Individual", gp.PrimitiveTree, fitness=creator.FitnessMin)
    tb = base.Toolbox()
    tb.register("expr", gp.genHalfAndHalf, pset=pset, min_=2, max_=6)
    tb.register("individual", tools.initIterate, creator.Individual, tb.expr)
    tb.register("population", tools.initRepeat, list, tb.individual)
    tb.register("compile", gp.compile, pset=pset)
    xs, ys = points.tolist(), target.tolist()

    def evaluate(ind):
        func = tb.compile(expr=ind)
        if vectorised:
            with np.errstate(all="ignore"):
                err = float(np.sqrt(np.mean((np.asarray(func(points), dtype=float) - target) ** 2)))
            return (err if math.isfinite(err) else math.inf,)
        try:
            err = math.sqrt(math.fsum((func(x) - y) ** 2 for x, y in zip(xs, ys, strict=True)) / len(xs))
        except (OverflowError, ValueError):
            err = math.inf
        return (err,)

    tb.register("evaluate", evaluate)
    tb.register("select", tools.selTournament, tournsize=7)
    tb.register("mate", gp.cxOnePoint)
    tb.register("expr_mut", gp.genFull, min_=0, max_=2)
    tb.register("mutate", gp.mutUniform, expr=tb.expr_mut, pset=pset)
    limit = gp.staticLimit(key=operator.attrgetter("height"), max_value=17)
    tb.decorate("mate", limit)
    tb.decorate("mutate", limit)
    return tb


def time_deap(problem, population: int, generations: int, vectorised: bool, seed: int) -> float:
    tb = deap_toolbox(problem.X_train[0], problem.y_train, vectorised, seed)
    pop = tb.population(n=population)
    for ind in pop:
        ind.fitness.values = tb.evaluate(ind)
    start = time.perf_counter()
    for _ in range(generations):
        offspring = algorithms.varAnd(tb.select(pop, len(pop)), tb, cxpb=0.9, mutpb=0.1)
        for ind in (i for i in offspring if not i.fitness.valid):
            ind.fitness.values = tb.evaluate(ind)
        pop[:] = offspring
    return generations / (time.perf_counter() - start)


def time_engine(problem, population: int, generations: int, seed: int) -> float:
    config = GPConfig(population=population, mode="tournament", tournament_size=7, crossover_rate=0.9,
                      mutation_rate=0.1, mutation="subtree", elitism=0, max_depth=17, init_depth=(2, 6),
                      mutation_depth=(0, 2))
    engine = Engine(config, problem.pset, problem.X_train, problem.y_train)
    rng = np.random.default_rng(seed)
    pop = engine.initial(rng)
    start = time.perf_counter()
    for _ in range(generations):
        pop = engine.next(pop, rng)
    return generations / (time.perf_counter() - start)


def time_model(population: int, generations: int, seed: int, mode: str) -> float:
    scenario = validate_data({
        "kind": "matechoice", "name": "bench", "seed": seed, "steps": generations,
        "matechoice": {"population": population, "mode": mode, "elitism": 0, "record_individuals": False,
                       "problem": {"name": "keijzer6"}}}, "bench")
    model = MateChoiceModel(scenario, MateChoiceModel.build_graph(scenario))
    model.step()  # generation 0
    start = time.perf_counter()
    for _ in range(generations):
        model.step()
    return generations / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--population", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    problem = benchmark("keijzer6", np.random.default_rng(0))
    n, g, s = args.population, args.generations, args.seed
    deap_std = time_deap(problem, n, g, vectorised=False, seed=s)
    deap_np = time_deap(problem, n, g, vectorised=True, seed=s)
    engine = time_engine(problem, n, g, s)
    model_t = time_model(n, g, s, "tournament")
    model_p = time_model(n, g, s, "pimp")
    print(f"Keijzer-6, population {n}, {g} generations (generations/s)")
    print(f"  DEAP standard (per point)        {deap_std:8.2f}")
    print(f"  DEAP with numpy evaluation       {deap_np:8.2f}")
    print(f"  culturesim GP engine             {engine:8.2f}   ratio vs DEAP standard {engine / deap_std:5.2f}x, "
          f"vs DEAP numpy {engine / deap_np:5.2f}x")
    print(f"  culturesim model + measures      {model_t:8.2f}   ratio vs DEAP standard {model_t / deap_std:5.2f}x "
          f"(tournament)")
    print(f"  culturesim model + measures      {model_p:8.2f}   ratio vs DEAP standard {model_p / deap_std:5.2f}x "
          f"(PIMP, semantic)")


if __name__ == "__main__":
    main()
