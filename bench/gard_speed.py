"""GARD speed: a Moran population of 500 assemblies for 1,000 splits (target: under a minute).

Reference chemistry (100 types, N_max 100, k_f 0.01, k_b 1e-4, ln beta ~ N(-4, 4)), molecule
genealogy on, as a run records it. Prints the wall time and events per second of the
vectorised engine (culturesim/kinds/gard/engine.py), and against it a plain per-event Python
Gillespie loop (culturesim/kinds/gard/reference.py: one global event per iteration over the whole
population, as the MATLAB reference code does) on a smaller population, measured in this same
invocation, plus the vectorised engine on that smaller population. Events are joins and leaves.

    python bench/gard_speed.py [--assemblies 500] [--splits 1000] [--small 50] [--small-splits 100]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from culturesim.kinds.gard import reference
from culturesim.kinds.gard.engine import Chemistry
from culturesim.kinds.gard.network import lognormal_beta
from culturesim.kinds.gard.world import World


def chemistry(seed: int = 1) -> Chemistry:
    g = 100
    return Chemistry(beta=lognormal_beta(g, -4.0, 4.0, np.random.default_rng(seed)), rho=np.full(g, 1.0 / g),
                     k_f=0.01, k_b=1e-4, n_max=100)


def vectorised(chem: Chemistry, assemblies: int, splits: int, track: bool = True) -> tuple[float, int]:
    t0 = time.perf_counter()
    world = World(chem, "population", assemblies, np.random.default_rng(2), track=track)
    world.start_window()
    record = world.run_splits(splits)
    world.genealogy()  # what a step writes
    return time.perf_counter() - t0, record.events


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--assemblies", type=int, default=500)
    ap.add_argument("--splits", type=int, default=1000)
    ap.add_argument("--small", type=int, default=50)
    ap.add_argument("--small-splits", type=int, default=100)
    args = ap.parse_args()
    chem = chemistry()
    print(f"cores visible: {os.cpu_count()}  (load average {os.getloadavg()[0]:.1f})")

    wall, events = vectorised(chem, args.assemblies, args.splits)
    print(f"vectorised, {args.assemblies} assemblies, {args.splits} splits: {wall:.2f} s, {events} events, "
          f"{events / wall:,.0f} events/s, {args.splits / wall:,.0f} splits/s "
          f"({'under' if wall < 60 else 'OVER'} the 60 s target)")
    wall_nt, events_nt = vectorised(chem, args.assemblies, args.splits, track=False)
    print(f"  same without genealogy: {wall_nt:.2f} s, {events_nt / wall_nt:,.0f} events/s")

    t0 = time.perf_counter()
    out = reference.population(chem, args.small, args.small_splits, np.random.default_rng(3))
    loop_wall = time.perf_counter() - t0
    loop_rate = out["events"] / loop_wall
    print(f"plain per-event loop, {args.small} assemblies, {args.small_splits} splits: {loop_wall:.2f} s, "
          f"{out['events']} events, {loop_rate:,.0f} events/s")
    small_wall, small_events = vectorised(chem, args.small, args.small_splits)
    print(f"vectorised, {args.small} assemblies, {args.small_splits} splits: {small_wall:.2f} s, "
          f"{small_events / small_wall:,.0f} events/s")
    print(f"ratio (events/s), vectorised {args.assemblies} assemblies / loop {args.small}: "
          f"{events / wall / loop_rate:.1f}x")
    same = small_events / small_wall / loop_rate
    print(f"ratio (events/s), vectorised / loop at {args.small} assemblies: {same:.1f}x")
    print(f"time for the full size by the loop, extrapolated (its cost grows with the population): "
          f"> {events / loop_rate:.0f} s")


if __name__ == "__main__":
    main()
