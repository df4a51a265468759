"""GARD protocell assemblies as a culturesim kind: molecular heredity and group selection.

One runner step is a fixed number of splits (``GardScenario.splits_per_step``): by default one
Moran generation (as many splits as assemblies) in the population modes, one split of every
lineage in lineage mode. Splits are the model's natural clock and keep the number of step files
proportional to the work done, whatever the catalysis makes of continuous time.

Each step writes:

* ``assemblies``: one row per split (the composition at ``N_max`` in sparse form, its parent
  split, time, slot replaced, cosine similarity to the parent split's composition);
* ``genealogy``: the population at the step's end as molecule classes ``(slot, ancestor, type,
  root, count)``: ``ancestor`` is the slot at the step's start the assembly descends from and
  ``root`` the type of the molecule there that each molecule descends from (-1: it joined
  spontaneously, an innovation). With the previous step's snapshot (step 0 for the first) this
  is a complete genealogy of molecules within assemblies, which ``measures.py`` (beside this module) turns into
  the multilevel Price decomposition (molecules as individuals, assemblies as groups);
* ``timeline``: time, splits, events and deaths of the step;
* ``beta`` and ``target`` (first step only): the catalysis network and the selection target.

Everything is drawn from generators seeded by the scenario (beta: ``beta_seed`` or
``[seed, 0]``; dynamics ``[seed, 1]``; automatic target ``[seed, 2]``), so a run is a function
of its scenario and :meth:`GardModel.replay` resumes it by re-simulating the completed steps.
"""

from __future__ import annotations

from pathlib import Path

import mesa
import networkx as nx
import numpy as np

from culturesim.kinds.contract import Door, KindModel, StepRecord
from culturesim.kinds.gard.engine import Chemistry
from culturesim.kinds.gard.network import lognormal_beta
from culturesim.kinds.gard.schema import GardScenario
from culturesim.kinds.gard.tables import TABLES
from culturesim.kinds.gard.world import World, auto_target


def chemistry(scenario: GardScenario) -> Chemistry:
    """The scenario's chemistry, beta drawn from its own seed."""
    spec = scenario.gard
    g = spec.n_types
    if spec.beta == "lognormal":
        seed = spec.beta_seed if spec.beta_seed is not None else [scenario.seed, 0]
        beta = lognormal_beta(g, spec.mu, spec.sigma, np.random.default_rng(seed))
    else:
        beta = np.full((g, g), float(spec.beta))
    rho = np.asarray(spec.rho, dtype=float) if spec.rho is not None else np.full(g, 1.0 / g)
    return Chemistry(beta=beta, rho=rho, k_f=spec.k_f, k_b=spec.k_b, n_max=spec.n_max)


def target_of(scenario: GardScenario, chem: Chemistry) -> np.ndarray | None:
    sel = scenario.gard.selection
    if scenario.gard.mode != "selection":
        return None
    if sel.target == "auto":
        return auto_target(chem, sel.burn_in, np.random.default_rng([scenario.seed, 2]))
    if isinstance(sel.target, dict):
        target = np.zeros(chem.n_types)
        for k, v in sel.target.items():
            target[int(k)] = v
        return target
    return np.asarray(sel.target, dtype=float)


class GardModel(KindModel, mesa.Model):
    uses_llm = False
    resume = "replay"
    progress = "steps"

    def __init__(self, scenario: GardScenario, graph: nx.Graph | None = None, llm: Door | None = None,
                 run_id: str = "", *, base_dir: Path | None = None):
        super().__init__(rng=scenario.seed)
        self.scenario = scenario
        self.run_id = run_id
        spec = scenario.gard
        self.chem = chemistry(scenario)
        self.target = target_of(scenario, self.chem)
        self.world = World(self.chem, spec.mode, spec.assemblies, np.random.default_rng([scenario.seed, 1]),
                           target=self.target, factor=spec.selection.factor, track=spec.track_genealogy)
        self.first_step = 1

    @classmethod
    def build_graph(cls, scenario: GardScenario, base_dir: Path | None = None) -> nx.Graph:
        """Assembly slots, panmictic: any daughter may replace any other slot (no edges)."""
        graph = nx.Graph()
        graph.add_nodes_from(range(scenario.gard.assemblies))
        return graph

    def tables(self) -> dict[str, dict]:
        return TABLES

    @property
    def next_step(self) -> int:
        return self.first_step + self.steps

    def agents_table(self) -> list[dict]:
        return [{"agent_id": k, "community": None, "mode": self.scenario.gard.mode} for k in range(self.world.m)]

    def step(self) -> StepRecord:
        step = self.first_step + self.steps - 1
        world = self.world
        extra: dict[str, list[dict]] = {name: [] for name in TABLES}
        if step == self.first_step:
            extra["genealogy"] = self._genealogy_rows(0)
            extra["beta"] = [{"i": i, "j": j, "beta": float(self.chem.beta[i, j])}
                             for i in range(self.chem.n_types) for j in range(self.chem.n_types)]
            if self.target is not None:
                extra["target"] = [{"type": k, "count": float(v)} for k, v in enumerate(self.target) if v > 0]
        world.start_window()
        record = world.run_splits(self.scenario.splits_per_step)
        extra["assemblies"] = [{"step": step, **row} for row in record.splits]
        extra["genealogy"] += self._genealogy_rows(step)
        extra["timeline"] = [{"step": step, "time": record.time, "splits": len(record.splits),
                              "events": record.events, "deaths": record.deaths,
                              "mean_size": float(world.pop.size.mean())}]
        return StepRecord(tables=extra)

    def _genealogy_rows(self, step: int) -> list[dict]:
        if not self.world.pop.track:
            return []
        if step == 0:  # the initial population: every molecule is its own root
            slot, typ = np.nonzero(self.world.pop.n)
            return [{"step": 0, "slot": s, "ancestor": s, "type": t, "root": t, "count": int(self.world.pop.n[s, t])}
                    for s, t in zip(slot.tolist(), typ.tolist(), strict=True)]
        return [{"step": step, "slot": s, "ancestor": a, "type": t, "root": r, "count": c}
                for s, a, t, r, c in self.world.genealogy()]

    # --- resume -------------------------------------------------------------------------
    def replay(self, completed: int) -> None:
        """Re-simulate ``completed`` steps without output: the run is a function of its seed."""
        for _ in range(completed):
            self.step()
