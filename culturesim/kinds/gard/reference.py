"""A plain per-event Gillespie loop, written the way the MATLAB reference code is.

Not used by runs. It is the independent yardstick: tests compare the vectorised engine's
statistics with it, and ``bench/gard_speed.py`` measures how many events per second each
one does. One global event at a time over the whole population (``population_gard_nmin_v10``):
the rates of all assemblies in one table, the changed assembly's column refreshed after each
event.
"""

from __future__ import annotations

import math

import numpy as np

from culturesim.kinds.gard.engine import Chemistry


def _column(chem: Chemistry, n: np.ndarray) -> np.ndarray:
    size = n.sum()
    factor = 1.0 + (chem.beta @ n) / size
    return np.concatenate([chem.k_f * chem.rho * size * factor, chem.k_b * n * factor])


def growth_time(chem: Chemistry, n: np.ndarray, rng: np.random.Generator) -> float:
    """Time for one assembly to grow from ``n`` to ``N_max`` (``tgs_grow_v10``), event by event."""
    n = np.array(n, dtype=np.int64)
    g = chem.n_types
    t = 0.0
    while 0 < n.sum() < chem.n_max:
        rates = _column(chem, n)
        total = rates.sum()
        t += -math.log1p(-rng.random()) / total
        k = int(np.searchsorted(np.cumsum(rates), rng.random() * total, side="right"))
        k = min(k, 2 * g - 1)
        if k < g:
            n[k] += 1
        else:
            n[k - g] -= 1
    return t


def population(chem: Chemistry, n_slots: int, splits: int, rng: np.random.Generator) -> dict:
    """A neutral Moran population run to ``splits`` splits with one global event per loop."""
    g = chem.n_types
    pop = rng.multinomial(chem.n_min, chem.rho / chem.rho.sum(), size=n_slots).astype(np.int64)
    rates = np.stack([_column(chem, n) for n in pop])  # (M, 2G)
    t, events, done = 0.0, 0, 0
    while done < splits:
        flat = np.cumsum(rates.ravel())
        total = flat[-1]
        t += -math.log1p(-rng.random()) / total
        k = min(int(np.searchsorted(flat, rng.random() * total, side="right")), flat.size - 1)
        a, e = divmod(k, 2 * g)
        pop[a, e if e < g else e - g] += 1 if e < g else -1
        events += 1
        if pop[a].sum() >= chem.n_max:
            other = int(rng.integers(n_slots - 1))
            other += other >= a
            half = rng.multivariate_hypergeometric(pop[a], int(pop[a].sum()) // 2)
            pop[other] = pop[a] - half
            pop[a] = half
            rates[other] = _column(chem, pop[other])
            done += 1
        if pop[a].sum() == 0:
            pop[a] = rng.multinomial(chem.n_min, chem.rho / chem.rho.sum())
        rates[a] = _column(chem, pop[a])
    return {"time": t, "events": events, "splits": done, "compositions": pop}
