"""The voter kind's model: discrete opinions copied along the edges of a network.

Two textbook rules, chosen by ``voter.rule``:

* ``voter`` (synchronous voter model): in a step, every agent at once takes the opinion that a
  uniformly chosen one of the agents it listens to held at the end of the previous step. An agent
  that listens to nobody keeps its opinion.
* ``moran`` (neutral Moran process on a graph, birth-death): a step is one generation of ``size``
  events, one after the other; in each, a uniformly chosen agent reproduces and a uniformly chosen
  one of the agents it influences takes its current opinion.

On an undirected network an agent listens to and influences its neighbours; on a directed one an
edge ``u -> v`` means ``u`` influences ``v``. Neighbours are taken in increasing id order, so the
dynamics depend on the network alone, not on the order its edges were built or read back in (a
resumed run gets the network from ``edges.parquet``).

Randomness never comes from a global generator: the network is drawn from ``[seed, 1]`` (by
``culturesim.networks.population_graph``, as every kind on a population network), the initial
placement of opinions from ``[seed, 2, 0]`` and step ``t`` from ``[seed, 2, t]``. So step ``t`` is a
function of the scenario and the state after step ``t - 1`` alone, which is what lets the runner
resume a run by replaying its completed steps (``resume = "replay"``) and lets a test recompute
any step on its own. Step ``t`` draws ``size`` uniforms (voter: one per agent, in id order) or
``size`` pairs (moran: reproducer, then target, per event); a choice among ``d`` agents is
``floor(u * d)``.
"""

from __future__ import annotations

from pathlib import Path

import mesa
import networkx as nx
import numpy as np

from culturesim.kinds.contract import Door, KindModel, StepRecord
from culturesim.networks import population_graph
from voter_kind.schema import VoterScenario
from voter_kind.tables import TABLES

STREAM = 2  # [seed, 1] is the network's stream (culturesim.networks.population_graph)


def initial_opinions(scenario: VoterScenario) -> np.ndarray:
    """Exact counts per opinion (largest remainder of ``initial`` times size, ties to the lower
    opinion), placed on the agents by a random permutation from ``[seed, 2, 0]``."""
    n, spec = scenario.population.size, scenario.voter
    shares = np.full(spec.opinions, 1.0) if spec.initial is None else np.asarray(spec.initial, dtype=float)
    exact = shares / shares.sum() * n
    counts = np.floor(exact).astype(np.int64)
    short = n - int(counts.sum())
    if short:
        order = np.lexsort((np.arange(spec.opinions), -(exact - counts)))  # largest remainder first
        counts[order[:short]] += 1
    placed = np.repeat(np.arange(spec.opinions, dtype=np.int64), counts)
    return np.random.default_rng([scenario.seed, STREAM, 0]).permutation(placed)


def _adjacency(graph: nx.Graph, n: int, listen: bool) -> tuple[np.ndarray, np.ndarray]:
    """CSR offsets and neighbour ids, each node's neighbours sorted: whom it listens to
    (``listen``) or whom it influences."""
    if graph.is_directed():
        neighbours = graph.predecessors if listen else graph.successors
    else:
        neighbours = graph.neighbors
    lists = [sorted(int(j) for j in neighbours(i)) for i in range(n)]
    offsets = np.zeros(n + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(x) for x in lists])
    flat = np.fromiter((j for x in lists for j in x), dtype=np.int64, count=int(offsets[-1]))
    return offsets, flat


class VoterModel(KindModel, mesa.Model):
    """A seeded voter / Moran model; no language model, resumed by replay, progress in steps.

    KindModel comes first in the bases, as the contract asks: mesa.Model wraps ``step`` to count
    steps and drops its return value, and KindModel's wrapper keeps the returned StepRecord.
    """

    uses_llm = False
    resume = "replay"
    progress = "steps"

    def __init__(self, scenario: VoterScenario, graph: nx.Graph, llm: Door | None = None, run_id: str = "", *,
                 base_dir: Path | None = None):
        super().__init__(rng=scenario.seed)  # mesa's own generator; the dynamics never use it
        self.scenario = scenario
        self.run_id = run_id
        self.graph = graph
        self.n = scenario.population.size
        if sorted(graph.nodes) != list(range(self.n)):
            raise ValueError(f"the network's nodes are not the agents 0..{self.n - 1}")
        self.first_step = 1
        self.done = 0  # steps simulated so far; mesa's ``steps`` counts calls of step() only, not replayed ones
        self.initial = initial_opinions(scenario)
        self.opinion = self.initial.copy()
        self.listen_offsets, self.listen_to = _adjacency(graph, self.n, listen=True)
        self.out_offsets, self.influences = _adjacency(graph, self.n, listen=False)

    @classmethod
    def build_graph(cls, scenario: VoterScenario, base_dir: Path | None = None) -> nx.Graph:
        """The ``network`` block over ``population.size`` agents, as every population kind builds it."""
        return population_graph(scenario, base_dir)

    @property
    def next_step(self) -> int:
        return self.first_step + self.done

    def tables(self) -> dict[str, dict]:
        return TABLES

    def agents_table(self) -> list[dict]:
        """Each agent's opinion before step 1 (the state every step builds on)."""
        return [{"agent_id": i, "community": self.graph.nodes[i].get("community"),
                 "initial_opinion": int(self.initial[i])} for i in range(self.n)]

    def _advance(self) -> np.ndarray:
        """Simulate the next step in place; returns ``copied_from`` per agent (-1: none)."""
        step = self.next_step
        rng = np.random.default_rng([self.scenario.seed, STREAM, step])
        copied = np.full(self.n, -1, dtype=np.int64)
        if self.scenario.voter.rule == "voter":
            u = rng.random(self.n)
            degree = np.diff(self.listen_offsets)
            has = degree > 0
            pick = self.listen_offsets[:-1] + np.minimum((u * degree).astype(np.int64), np.maximum(degree - 1, 0))
            copied[has] = self.listen_to[pick[has]]
            before = self.opinion.copy()
            self.opinion[has] = before[copied[has]]
        else:
            u = rng.random((self.n, 2)).tolist()
            offsets, influences = self.out_offsets.tolist(), self.influences.tolist()
            opinion, came = self.opinion.tolist(), copied.tolist()
            for a, b in u:  # one birth after the other: a later event sees an earlier one's result
                r = min(int(a * self.n), self.n - 1)
                d = offsets[r + 1] - offsets[r]
                if d == 0:
                    continue
                t = influences[offsets[r] + min(int(b * d), d - 1)]
                opinion[t] = opinion[r]
                came[t] = r
            self.opinion = np.asarray(opinion, dtype=np.int64)
            copied = np.asarray(came, dtype=np.int64)
        self.done += 1
        return copied

    def step(self) -> StepRecord:
        step = self.next_step
        copied = self._advance()
        rows = [{"step": step, "agent_id": i, "opinion": o, "copied_from": c if c >= 0 else None}
                for i, (o, c) in enumerate(zip(self.opinion.tolist(), copied.tolist(), strict=True))]
        return StepRecord(tables={"opinions": rows})

    def replay(self, completed: int) -> None:
        """Simulate the ``completed`` steps again, writing nothing: the run is a function of its seed."""
        for _ in range(completed):
            self._advance()
