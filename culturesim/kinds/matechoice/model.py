"""Genetic programming with mate choice: individuals that carry their ideal mate.

Restates PIMP (Simoes, Lourenco and Machado 2023, 2025) as a Mesa model. Each agent is
a slot of the population holding one individual: a solution tree (genome) and, under
PIMP, an ideal-mate tree of the same primitives. Step 0 draws the initial population;
each later step breeds one generation (culturesim/gp/engine.py): elites keep their
slots, every other slot gets one offspring. With a ``network`` block a slot's parents
come only from the slot and its neighbours; without one, mating is panmictic.

Everything random in generation g comes from a generator seeded by (run seed, g), and
the measures draw from their own generator, so the run is a function of its seed:
``replay`` re-breeds finished generations without recording to resume a stopped run.
"""

from __future__ import annotations

from pathlib import Path

import mesa
import networkx as nx
import numpy as np

from culturesim.kinds.contract import Door, KindModel, StepRecord
from culturesim.kinds.matechoice.gp import problems, selection
from culturesim.kinds.matechoice.gp.engine import Engine, GPConfig, Population
from culturesim.kinds.matechoice.gp.evaluate import hits, rmse
from culturesim.kinds.matechoice.gp.measures import generation_row
from culturesim.kinds.matechoice.gp.primitives import Constants
from culturesim.kinds.matechoice.gp.tree import Tree, to_string
from culturesim.kinds.matechoice.schema import MateChoiceScenario
from culturesim.kinds.matechoice.tables import GENERATIONS_SCHEMA, TABLES
from culturesim.networks import population_graph


class Individual(mesa.Agent):
    """One slot of the population and the individual that occupies it this generation."""

    def __init__(self, model: MateChoiceModel, slot: int):
        super().__init__(model)
        self.slot = slot
        self.individual_id = -1
        self.genome: Tree | None = None
        self.preference: Tree | None = None
        self.parents: tuple[int | None, int | None] = (None, None)
        self.fitness = float("inf")


def load_problem(scenario: MateChoiceScenario, base_dir: Path | None) -> problems.Problem:
    spec = scenario.matechoice.problem
    rng = np.random.default_rng([spec.data_seed if spec.data_seed is not None else scenario.seed, 2])
    constants = Constants(spec.constants.kind, spec.constants.a, spec.constants.b) if spec.constants else None
    functions = tuple(spec.functions) if spec.functions else None
    if spec.name != "csv":
        return problems.benchmark(spec.name, rng, functions, constants)

    def resolve(raw: str) -> Path:
        path = Path(raw)
        return path if path.is_absolute() else (base_dir or Path.cwd()) / path

    csv = spec.csv
    return problems.from_csv(resolve(csv.path), csv.target, csv.inputs,
                             test_path=resolve(csv.test_path) if csv.test_path else None,
                             test_fraction=csv.test_fraction, rng=rng,
                             functions=functions or problems.NGUYEN_SET, constants=constants or Constants())


def gp_config(scenario: MateChoiceScenario) -> GPConfig:
    s = scenario.matechoice
    return GPConfig(
        population=s.population, mode=s.mode, tournament_size=s.tournament_size, candidates=s.candidates,
        candidate_rule=s.candidate_pool, distance=s.distance, crossover_rate=s.crossover_rate,
        mutation_rate=s.mutation_rate, mutation=s.mutation,
        preference_crossover_rate=s.crossover_rate if s.preference_crossover_rate is None
        else s.preference_crossover_rate,
        preference_mutation_rate=s.mutation_rate if s.preference_mutation_rate is None
        else s.preference_mutation_rate,
        preference_mutation=s.preference_mutation or s.mutation, elitism=s.elitism, max_depth=s.max_depth,
        init_depth=tuple(s.init_depth), mutation_depth=tuple(s.mutation_depth))


class MateChoiceModel(KindModel, mesa.Model):
    uses_llm = False
    resume = "replay"
    progress = "steps"

    def __init__(self, scenario: MateChoiceScenario, graph: nx.Graph, llm: Door | None = None,
                 run_id: str = "", *, base_dir: Path | None = None):
        super().__init__(rng=scenario.seed)
        self.scenario = scenario
        self.graph = graph
        self.run_id = run_id
        spec = scenario.matechoice
        if graph.number_of_nodes() != spec.population:
            raise ValueError(f"the network has {graph.number_of_nodes()} nodes but matechoice.population is "
                             f"{spec.population}")
        self._tables = TABLES if spec.record_individuals else {"generations": GENERATIONS_SCHEMA}
        self.problem = load_problem(scenario, base_dir)
        pools = selection.Pools.from_graph(graph) if scenario.network is not None else None
        self.engine = Engine(gp_config(scenario), self.problem.pset, self.problem.X_train, self.problem.y_train,
                             pools, X_test=self.problem.X_test)
        self.individuals = [Individual(self, slot) for slot in range(spec.population)]
        self.population: Population | None = None
        self.first_step = 0
        self.recording = True
        self._strings: dict[tuple, str] = {}

    @classmethod
    def build_graph(cls, scenario: MateChoiceScenario, base_dir: Path | None = None) -> nx.Graph:
        """Slots without edges (panmictic), or the scenario's network over the slots."""
        n = scenario.matechoice.population
        if scenario.network is None:
            return nx.empty_graph(n)
        return population_graph(scenario, base_dir, size=n)

    def tables(self) -> dict[str, dict]:
        return self._tables

    @property
    def next_step(self) -> int:
        return self.first_step + self.steps

    def agents_table(self) -> list[dict]:
        return [{"agent_id": a.slot, "community": self.graph.nodes[a.slot].get("community"),
                 "degree": int(self.graph.degree(a.slot))} for a in self.individuals]

    # --- evolution --------------------------------------------------------------------
    def step(self) -> StepRecord:
        generation = self.first_step + self.steps - 1
        rng = np.random.default_rng([self.scenario.seed, generation])
        if self.population is None:
            self.population = self.engine.initial(rng)
        else:
            self.population = self.engine.next(self.population, rng)
        self._place(generation)
        return StepRecord(tables=self._records(generation) if self.recording else {n: [] for n in self._tables})

    def replay(self, completed: int) -> None:
        """Breed ``completed`` generations again, without measures: the state a resumed run
        continues from is then exactly the state the interrupted run had reached."""
        self.recording = False
        try:
            for _ in range(completed):
                self.step()
        finally:
            self.recording = True

    def _place(self, generation: int) -> None:
        pop = self.population
        n = len(pop.genomes)
        for agent in self.individuals:
            s = agent.slot
            agent.individual_id = generation * n + s
            agent.genome = pop.genomes[s]
            agent.preference = pop.preferences[s] if pop.preferences is not None else None
            p1, p2 = pop.parents[s]
            agent.parents = (None if p1 < 0 else (generation - 1) * n + int(p1),
                             None if p2 < 0 else (generation - 1) * n + int(p2))
            agent.fitness = float(pop.fitness[s])

    def _string(self, tree: Tree | None) -> str | None:
        if tree is None:
            return None
        found = self._strings.get(tree.key)
        if found is None:
            found = self._strings[tree.key] = to_string(tree, self.problem.pset)
        return found

    def _records(self, generation: int) -> dict[str, list[dict]]:
        pop = self.population
        spec = self.scenario.matechoice
        test_error = rmse(pop.test_outputs, self.problem.y_test)
        success = hits(pop.outputs, self.problem.y_train, spec.problem.success_threshold)
        n = len(pop.genomes)
        sample = np.sort(np.random.default_rng([self.scenario.seed, generation, 9]).choice(
            n, size=min(spec.diversity_sample, n), replace=False))
        row = generation_row(generation, pop.genomes, pop.preferences, pop.fitness, test_error, pop.outputs,
                             success, sample, self.engine.structural)
        out = {"generations": [row]}
        if "individuals" in self._tables:
            out["individuals"] = [
                {"step": generation, "individual_id": a.individual_id, "slot": a.slot, "parent1": a.parents[0],
                 "parent2": a.parents[1], "elite": bool(pop.elite[a.slot]), "fitness": a.fitness,
                 "test_error": float(test_error[a.slot]), "size": a.genome.size, "depth": a.genome.depth,
                 "genome": self._string(a.genome), "preference": self._string(a.preference)}
                for a in self.individuals]
            keep = {t.key for t in pop.genomes} | {t.key for t in (pop.preferences or [])}
            self._strings = {k: v for k, v in self._strings.items() if k in keep}
        return out
