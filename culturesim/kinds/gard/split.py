"""Fission: an assembly at ``N_max`` splits into two random halves.

The reference code (``tgs_split_v10``) draws ``floor(N/2)`` molecules one by one without
replacement for the first daughter; that is a multivariate hypergeometric draw, made here in
one call (the ``count`` method: its cost grows with the ~100 molecules, not the 10,000
(type, root) classes). When the genealogy is tracked the draw is over (type, root) classes, so each
daughter gets a random half of the actual molecules and their roots travel with them. The
second daughter is the remainder, so molecules (and roots) are conserved exactly; for an odd
``N_max`` it gets the extra molecule (the reference discards it).
"""

from __future__ import annotations

import numpy as np


def split(composition: np.ndarray, roots: np.ndarray | None, rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None]:
    """``(n_a, roots_a, n_b, roots_b)`` with ``n_a + n_b == composition`` and ``sum(n_a) = N // 2``."""
    composition = np.asarray(composition, dtype=np.int64)
    half = int(composition.sum()) // 2
    if roots is None:
        a = rng.multivariate_hypergeometric(composition, half, method="count")
        return a, None, composition - a, None
    flat = np.asarray(roots, dtype=np.int64).ravel()
    ra = rng.multivariate_hypergeometric(flat, half, method="count").reshape(roots.shape)
    rb = roots - ra
    return ra.sum(axis=1), ra.astype(np.int32), rb.sum(axis=1), rb.astype(np.int32)
