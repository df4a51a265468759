"""Whether the selection terms say more than chance: a permutation null for between and within.

A selection term is a covariance of fitness with the trait, and a covariance of a few dozen
parents is rarely exactly 0 even when fitness ignores the trait. :func:`permutation_null`
says how far from chance the observed terms are by handing each parent's offspring to a
random parent of the same step.
"""

from __future__ import annotations

import math
import numbers
import random
from collections.abc import Iterable
from typing import Any

import numpy as np

from analysis.price.decomposition import _fitness, _prepared, _terms_exact, _terms_float, check_form
from analysis.price.rows import _Data


def _permutations(rng: Any, n_items: int, n: int) -> Iterable[np.ndarray]:
    """Batches of permutations from whichever kind of generator the caller uses for reproducibility."""
    if rng is None or isinstance(rng, (int, np.integer)):
        rng = np.random.default_rng(rng)
    batch = max(1, min(n, 4_000_000 // max(1, n_items)))
    done = 0
    while done < n:
        b = min(batch, n - done)
        if isinstance(rng, np.random.Generator):
            yield rng.permuted(np.tile(np.arange(n_items), (b, 1)), axis=1)
        elif isinstance(rng, random.Random):
            rows = []
            for _ in range(b):
                perm = list(range(n_items))
                rng.shuffle(perm)
                rows.append(perm)
            yield np.asarray(rows, dtype=np.intp).reshape(b, n_items)
        else:
            raise ValueError(f"rng must be a numpy Generator, a random.Random, an int seed or None, got {rng!r}")
        done += b


def permutation_null(parents: Any, children: Any, attributions: Any, *, n: int = 1000, rng: Any = None,
                     innovation_form: str = "immigration") -> dict:
    """How surprising the observed between- and within-group selection is if fitness ignored the trait.

    Each parent's offspring (its fitness, together with its offspring trait) is handed to a
    random parent of the same step; groups and parent traits stay put. Only fitness enters
    the selection terms, so this breaks exactly the trait-fitness association they measure
    while keeping the fitness distribution, the group sizes and the innovations. The null is a
    statistical statement, so it is computed in float64 even for exact inputs.

    Returns ``{"n": n, "between": {...}, "within": {...}}``, each with ``observed``, ``mean``,
    ``sd`` (population sd of the null draws), ``z`` and a two-sided ``p``
    (``(1 + #{|null - mean| >= |observed - mean|}) / (n + 1)``). When the null has no spread
    (one group for between, singleton groups for within, or no inherited children) ``z`` is 0.

    ``innovation_form`` is :func:`analysis.price.price`'s: in the immigration form the observed
    terms and every draw are weighted by the inherited share ``1 - m`` (unchanged by the
    permutation, so ``z`` and ``p`` are the same in both forms; observed, mean and sd scale).
    """
    check_form(innovation_form)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    d = _prepared(parents, children, attributions)
    if isinstance(d, _Data):  # exact input: the observed terms stay Fractions, the null is float
        observed = _terms_exact(d, innovation_form)
        w = np.asarray([float(x) for x in _fitness(d)[0]])
        try:
            z = np.asarray([float(x) for x in d.zp])
        except OverflowError:  # exact traits beyond float range: the null is drawn in float
            raise ValueError("a parent trait is too large for a float, and the null is drawn in float; "
                             "rescale the trait (divide it by a constant)") from None
        g, n_k = np.asarray(d.group_index), d.n_groups
    else:
        observed = _terms_float(d, innovation_form)
        w = np.bincount(d.p, weights=d.a, minlength=len(d.z))
        z, g, n_k = d.z, d.g, d.n_groups
    n_p = len(z)
    size = np.bincount(g, minlength=n_k).astype(float)
    wbar, zbar = float(w.mean()), float(z.mean())
    Z = np.bincount(g, weights=z, minlength=n_k) / size
    # With fitness permuted, Cov_k(W_k, Z_k) = E[(w - w_bar)(Z_g - z_bar)] and E_k[Cov_k] = E[(w - w_bar)(z - Z_g)]
    # (both trait factors sum to 0 over the parents), so each draw is two dot products over the
    # parents: O(n_p) per draw and no (n_p x groups) matrix.
    between_axis = (Z[g] - zbar) / n_p
    within_axis = (z - Z[g]) / n_p
    centred = w - wbar
    if innovation_form == "immigration" and observed.n_children:
        # the inherited share 1 - m weights both selection terms (analysis.price.decomposition)
        centred = centred * (1.0 - observed.n_innovations / observed.n_children)

    between_null, within_null = [], []
    for perms in _permutations(rng, n_p, int(n)):
        if wbar == 0:
            between_null.append(np.zeros(len(perms)))
            within_null.append(np.zeros(len(perms)))
            continue
        wp = centred[perms]  # (b, n_p): row r gives parent j the offspring of parent perms[r, j]
        b = np.zeros(len(wp)) if n_k == 1 else wp @ between_axis / wbar
        within = np.zeros(len(wp)) if n_k == n_p else wp @ within_axis / wbar
        between_null.append(b)
        within_null.append(within)

    def summary(obs: Any, draws: list[np.ndarray]) -> dict[str, float]:
        x = np.concatenate(draws)
        obs = float(obs)
        mean, sd = float(x.mean()), float(x.std())
        tol = 1e-9 * (float(np.std(w)) * float(np.std(z)) / wbar if wbar else 0.0) + 1e-300
        dev = abs(obs - mean)
        if sd <= tol:
            zscore = 0.0 if dev <= tol else math.copysign(math.inf, obs - mean)
        else:
            zscore = (obs - mean) / sd
        p = (1 + int(np.sum(np.abs(x - mean) >= dev - tol))) / (len(x) + 1)
        return {"observed": obs, "mean": mean, "sd": sd, "z": zscore, "p": min(1.0, p)}

    return {"n": int(n), "between": summary(observed.between, between_null),
            "within": summary(observed.within, within_null)}
