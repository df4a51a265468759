"""The catalysis network: ``beta[i, j]`` is how strongly a molecule of type ``j`` in an
assembly speeds up the joining (and leaving) of type ``i``.

GARD draws it once per run, lognormal (``ln beta ~ Normal(mu, sigma)``, the defaults
``mu = -4, sigma = 4`` of Markovitch & Lancet 2012): a few very strong catalytic links
among many negligible ones, which is what lets compositional attractors (composomes)
emerge. Its own seed so a sweep can hold the network fixed while the dynamics vary.
"""

from __future__ import annotations

import numpy as np


def lognormal_beta(n_types: int, mu: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """An ``n_types x n_types`` matrix with ``ln beta ~ Normal(mu, sigma)`` entry by entry."""
    return np.exp(rng.normal(mu, sigma, size=(n_types, n_types)))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """GARD's similarity H of two compositions (0 when either is empty), as ``tgs_H``."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(min(1.0, max(0.0, float(np.dot(a, b)) / (na * nb))))


def selection_gain(composition: np.ndarray, target: np.ndarray, factor: float) -> float:
    """The catalytic gain an assembly gets at birth in selection mode: ``factor * H(n, target)``.

    As in the reference population code (``population_gard_nmin_v10``): an assembly close to
    the target (H near 1) has its internal catalysis enhanced by up to ``factor``; one far from
    it has it damped (gain below 1), so it grows and splits more slowly and, in a Moran
    population, leaves fewer descendants.
    """
    return factor * cosine(composition, target)
