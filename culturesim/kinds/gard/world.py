"""The three GARD modes on top of the vectorised engine, with what the runner records.

* ``lineage``: each slot is an independent lineage; at a split one daughter carries on and
  the other is discarded (Markovitch & Lancet's single-assembly GARD; several slots are
  replicate lineages run together).
* ``population``: a Moran process (``population_gard_nmin_v10``): when an assembly splits,
  one daughter stays in its slot and the other replaces another slot chosen uniformly.
* ``selection``: the population mode with the reference's bias toward a target composition:
  a daughter's catalysis among the types it holds is scaled by ``factor * H(daughter, target)``
  for its whole growth cycle, so assemblies like the target grow faster and spread.

Exactness of the Moran ordering: a split at time ``T`` is processed only once every other
slot has been simulated up to ``T`` without splitting (its clock is past ``T``). A slot whose
clock ran past ``T`` and is then overwritten loses nothing that mattered: a replaced assembly's
future is discarded. Work therefore always goes to the slots that are behind the earliest
pending split. Snapshots at a step's end hold each slot at its own clock, which is at most
one event past the step's last split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from culturesim.kinds.gard.engine import Assemblies, Chemistry
from culturesim.kinds.gard.network import cosine, selection_gain
from culturesim.kinds.gard.split import split

MODES = ("lineage", "population", "selection")


@dataclass
class StepRecord:
    """What one runner step produced: the split events and the genealogy snapshot."""

    splits: list[dict] = field(default_factory=list)
    deaths: int = 0
    events: int = 0
    time: float = 0.0


class World:
    """A GARD population in one of :data:`MODES`, advanced split by split."""

    def __init__(self, chem: Chemistry, mode: str, n_slots: int, rng: np.random.Generator, *,
                 target: np.ndarray | None = None, factor: float = 1.1, track: bool = True):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode != "lineage" and n_slots < 2:
            raise ValueError(f"the {mode} mode needs at least 2 assemblies (a split replaces another)")
        if mode == "selection" and target is None:
            raise ValueError("the selection mode needs a target composition")
        self.chem = chem
        self.mode = mode
        self.rng = rng
        self.target = None if target is None else np.asarray(target, dtype=float)
        self.factor = factor
        self.m = n_slots
        self.pop = Assemblies(chem, self.new_compositions(n_slots), track=track)
        if mode == "selection":
            self.pop.gain[:] = [selection_gain(c, self.target, factor) for c in self.pop.n]
        self.frozen = np.zeros(n_slots, dtype=bool)  # reached N_max, split pending at its clock
        self.split_count = 0
        self.cycle_parent = np.full(n_slots, -1, dtype=np.int64)  # split that started the slot's cycle
        self.parent_split = np.zeros((n_slots, chem.n_types), dtype=np.int64)  # that split's composition
        self.birth_time = np.zeros(n_slots)
        self.generation = np.zeros(n_slots, dtype=np.int64)
        self.ancestor = np.arange(n_slots)  # slot at the window's start that each slot descends from
        self.record = StepRecord()

    def new_compositions(self, k: int) -> np.ndarray:
        """Fresh random assemblies of size ``N_min`` drawn from the environment (rho)."""
        p = self.chem.rho / self.chem.rho.sum()
        return self.rng.multinomial(self.chem.n_min, p, size=k).astype(np.int64)

    # --- windows ----------------------------------------------------------------------------
    def start_window(self) -> np.ndarray:
        """Begin a genealogy window (a runner step); returns the parents' compositions."""
        self.ancestor = np.arange(self.m)
        self.pop.reset_roots()
        self.record = StepRecord()
        return self.pop.n.copy()

    def genealogy(self) -> list[tuple[int, int, int, int, int]]:
        """``(slot, ancestor, type, root, count)`` of every molecule class now; root -1 = innovation."""
        if not self.pop.track:
            return []
        g = self.chem.n_types
        slot, typ, root = np.nonzero(self.pop.roots)
        counts = self.pop.roots[slot, typ, root]
        root = np.where(root == g, -1, root)
        return list(zip(slot.tolist(), self.ancestor[slot].tolist(), typ.tolist(), root.tolist(),
                        counts.tolist(), strict=True))

    # --- running ----------------------------------------------------------------------------
    def run_splits(self, count: int) -> StepRecord:
        """Advance until ``count`` splits happened (population modes) or every lineage split
        ``count`` times (lineage mode); the splits are appended to the current record."""
        events0 = self.pop.events
        if self.mode == "lineage":
            self._run_lineages(count)
        else:
            self._run_moran(count)
        self.record.events += self.pop.events - events0
        return self.record

    def _grow(self, rows: np.ndarray) -> np.ndarray:
        """One event in each row; returns the rows that reached ``N_max``; reseeds dead ones."""
        self.pop.advance(rows, self.rng)
        sizes = self.pop.n[rows].sum(axis=1)
        dead = rows[sizes == 0]
        if dead.size:  # every molecule left: the reference reseeds the slot with a random assembly
            fresh = self.new_compositions(dead.size)
            for row, comp in zip(dead.tolist(), fresh, strict=True):
                gain = selection_gain(comp, self.target, self.factor) if self.mode == "selection" else 1.0
                self.pop.set(row, comp, None, self.pop.clock[row], gain)
                self.cycle_parent[row] = -1
                self.generation[row] = 0
                self.birth_time[row] = self.pop.clock[row]
            self.record.deaths += dead.size
        return rows[sizes >= self.chem.n_max]

    def _run_lineages(self, count: int) -> None:
        remaining = np.full(self.m, count)
        while True:
            rows = np.flatnonzero(remaining > 0)
            if rows.size == 0:
                break
            for row in self._grow(rows).tolist():
                self._split(row, None)
                remaining[row] -= 1

    def _run_moran(self, count: int) -> None:
        done = 0
        while done < count:
            pending = np.flatnonzero(self.frozen)
            horizon = self.pop.clock[pending].min() if pending.size else np.inf
            behind = np.flatnonzero(~self.frozen & (self.pop.clock < horizon))
            if behind.size:
                self.frozen[self._grow(behind)] = True
                continue
            row = int(pending[np.argmin(self.pop.clock[pending])])
            other = int(self.rng.integers(self.m - 1))
            other += other >= row
            self._split(row, other)
            done += 1

    def _split(self, row: int, other: int | None) -> None:
        """Record the split of ``row``; daughters go to ``row`` and (Moran) to ``other``."""
        pop = self.pop
        comp = pop.n[row].copy()
        time = float(pop.clock[row])
        parent = int(self.cycle_parent[row])
        nz = np.flatnonzero(comp)
        self.record.splits.append({
            "split_id": self.split_count,
            "parent_id": parent if parent >= 0 else None,
            "slot": row,
            "replaced": other,
            "time": time,
            "birth_time": float(self.birth_time[row]),
            "generation": int(self.generation[row]),
            "size": int(comp.sum()),
            "types": nz.tolist(),
            "counts": comp[nz].tolist(),
            "similarity_to_parent": cosine(comp, self.parent_split[row]) if parent >= 0 else None,
            "gain": float(pop.gain[row]),
        })
        self.record.time = time
        na, ra, nb, rb = split(comp, pop.roots[row] if pop.track else None, self.rng)
        generation = int(self.generation[row]) + 1
        if other is not None:
            self.ancestor[other] = self.ancestor[row]
        for slot, n_d, r_d in [(row, na, ra)] + ([(other, nb, rb)] if other is not None else []):
            gain = selection_gain(n_d, self.target, self.factor) if self.mode == "selection" else 1.0
            pop.set(slot, n_d, r_d, time, gain)
            self.frozen[slot] = False
            self.cycle_parent[slot] = self.split_count
            self.parent_split[slot] = comp
            self.birth_time[slot] = time
            self.generation[slot] = generation
        self.split_count += 1


def auto_target(chem: Chemistry, burn_in: int, rng: np.random.Generator, threshold: float = 0.9) -> np.ndarray:
    """A target the network can actually reach: the densest composome of a neutral lineage.

    The reference selection experiments target the lineage's most frequent compotype; without
    clustering, the composition at the split with the most other splits within cosine
    ``threshold`` of it (the medoid of the densest compotype) stands for it.
    """
    world = World(chem, "lineage", 1, rng, track=False)
    world.run_splits(burn_in)
    comps = np.zeros((len(world.record.splits), chem.n_types))
    for k, s in enumerate(world.record.splits):
        comps[k, s["types"]] = s["counts"]
    unit = comps / np.linalg.norm(comps, axis=1, keepdims=True)
    neighbours = ((unit @ unit.T) > threshold).sum(axis=1)
    return comps[int(np.argmax(neighbours))]
