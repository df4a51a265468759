"""Many GARD assemblies advanced by exact stochastic events, vectorised across assemblies.

Each assembly is a Gillespie process of its own: with composition ``n`` (size ``N``) and
catalytic sums ``s_i = sum_j beta_ij n_j``, type ``i`` joins at rate
``k_f rho_i N (1 + s_i/N)`` and leaves at rate ``k_b n_i (1 + s_i/N)``, so the mean
follows the GARD equation ``dn_i/dt = (k_f rho_i N - k_b n_i)(1 + s_i/N)``.

Why per-assembly clocks and not tau-leaping: between splits assemblies do not interact, so
each can run its own *exact* event chain; :meth:`Assemblies.advance` performs one event in
every assembly asked for at once (one matrix product for all catalytic sums, one inverse-CDF
draw per assembly), and each assembly keeps its own clock. No approximation is made: the
event sequence of every assembly has exactly the law of Gillespie's direct method. Where
assemblies do interact (a Moran replacement at a split), :mod:`.world` orders the work so
that no split is processed before every other assembly has been simulated up to its time.
Tau-leaping would have been cheaper per unit time but biases a process whose defining event
(reaching ``N_max``) is a first-passage time, which a leap overshoots.

Genealogy (``track=True``): every molecule carries the type of the molecule it descends from
at the last :meth:`reset_roots` (its *root*), or the innovation mark ``G`` for one that joined
spontaneously (or was catalysed by such a molecule). A join is attributed to one catalyst
molecule drawn in proportion to its contribution to the join rate (the spontaneous part
``k_f rho_i N`` counts as no catalyst), and takes that catalyst's root; a leaving molecule is
drawn at random among its type. Molecules of one type in one assembly are exchangeable, so
counts ``roots[a, i, r]`` (type ``i``, root type ``r``) carry the whole genealogy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Chemistry:
    """What is shared by all assemblies: the catalysis network, the environment, the rates."""

    beta: np.ndarray  # (G, G): beta[i, j], catalysis of type i's joining by a molecule of type j
    rho: np.ndarray  # (G,): environmental concentrations
    k_f: float
    k_b: float
    n_max: int

    @property
    def n_types(self) -> int:
        return int(self.rho.shape[0])

    @property
    def n_min(self) -> int:
        """Size of a daughter right after a split (``floor(N_max / 2)``, as the reference code)."""
        return self.n_max // 2


def pick(weights_cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Row-wise inverse CDF: the first column whose cumulative weight exceeds ``u * total``.

    A zero-weight column is never chosen (its cumulative weight equals its left neighbour's);
    the rare ``u * total`` that rounds up to the total falls back to the last positive column.
    """
    total = weights_cum[:, -1]
    chosen = (weights_cum <= (u * total)[:, None]).sum(axis=1)
    over = chosen >= weights_cum.shape[1]
    if over.any():
        for row in np.flatnonzero(over):
            steps = np.diff(weights_cum[row], prepend=0.0)
            chosen[row] = int(np.flatnonzero(steps > 0)[-1])
    return chosen


class Assemblies:
    """``M`` assemblies as arrays: compositions ``n`` (M, G), clocks, selection gains, roots."""

    def __init__(self, chem: Chemistry, n0: np.ndarray, *, track: bool = True):
        self.chem = chem
        self.n = np.array(n0, dtype=np.int64)
        m, g = self.n.shape
        if g != chem.n_types:
            raise ValueError(f"compositions have {g} types, the chemistry {chem.n_types}")
        self.clock = np.zeros(m)
        self.gain = np.ones(m)  # catalytic gain of the types present (selection mode); 1 = unbiased
        self.sums = self.n @ np.asarray(chem.beta, dtype=float).T  # (M, G): beta @ n per row, kept current
        self.track = track
        self.roots = np.zeros((m, g, g + 1), dtype=np.int32) if track else None
        self.events = 0
        self._kf_rho = chem.k_f * chem.rho
        self._beta_t = np.ascontiguousarray(chem.beta.T)
        if track:
            self.reset_roots()

    @property
    def size(self) -> np.ndarray:
        return self.n.sum(axis=1)

    def reset_roots(self, rows: np.ndarray | None = None) -> None:
        """Start a genealogy window: every molecule is its own root (root type = its type)."""
        if not self.track:
            return
        rows = np.arange(self.n.shape[0]) if rows is None else np.asarray(rows)
        g = self.chem.n_types
        self.roots[rows] = 0
        diag = np.arange(g)
        self.roots[rows[:, None], diag[None, :], diag[None, :]] = self.n[rows]

    def set(self, row: int, composition: np.ndarray, roots: np.ndarray | None, clock: float, gain: float) -> None:
        """Put a (new) assembly into ``row``: a daughter after a split, or a reseeded one."""
        self.n[row] = composition
        self.sums[row] = self.chem.beta @ self.n[row]
        self.clock[row] = clock
        self.gain[row] = gain
        if self.track:
            if roots is None:  # molecules with no recorded ancestry: innovations
                self.roots[row] = 0
                self.roots[row, :, -1] = composition
            else:
                self.roots[row] = roots

    def factor(self, rows: np.ndarray) -> np.ndarray:
        """``1 + s_i / N`` per row. In selection mode the assembly's gain multiplies the sums of
        the types present (the reference's ``modifybeta``: beta_ij scaled when i and j are both in)."""
        n = self.n[rows]
        s = self.sums[rows]
        gain = self.gain[rows]
        if np.any(gain != 1.0):
            s = s * np.where(n > 0, gain[:, None], 1.0)
        return 1.0 + s / n.sum(axis=1)[:, None]

    def rates(self, rows: np.ndarray) -> np.ndarray:
        """Join rates (first G columns) and leave rates (last G) of the given rows."""
        n = self.n[rows]
        factor = self.factor(rows)
        return np.concatenate([self._kf_rho * n.sum(axis=1)[:, None] * factor, self.chem.k_b * n * factor], axis=1)

    def recompute_sums(self) -> float:
        """Recompute the catalytic sums from scratch; returns the largest drift of the kept ones.

        The sums are updated by adding or removing one column of beta per event (a matrix
        product per event would cost ``G`` times more); the drift this leaves is rounding error
        relative to beta's largest entries, negligible against the 1 in ``1 + s/N``.
        """
        exact = self.n @ np.asarray(self.chem.beta, dtype=float).T
        drift = float(np.max(np.abs(exact - self.sums))) if exact.size else 0.0
        self.sums = exact
        return drift

    def advance(self, rows: np.ndarray, rng: np.random.Generator) -> None:
        """One event in each of ``rows`` (assemblies with at least one molecule), at its own clock."""
        if rows.size == 0:
            return
        g = self.chem.n_types
        n = self.n[rows]
        size = n.sum(axis=1)
        gain = self.gain[rows]
        factor = self.factor(rows)
        cum = np.cumsum(np.concatenate([self._kf_rho * size[:, None] * factor, self.chem.k_b * n * factor], axis=1),
                        axis=1)
        u = rng.random((rows.size, 4))
        self.clock[rows] += -np.log1p(-u[:, 0]) / cum[:, -1]
        event = pick(cum, u[:, 1])
        join = event < g
        kind = np.where(join, event, event - g)
        sign = np.where(join, 1, -1)
        self.n[rows, kind] += sign
        self.sums[rows] += sign[:, None] * self._beta_t[kind]
        self.events += rows.size
        if self.track:
            self._attribute(rows, n, size, gain, kind, join, u[:, 2], u[:, 3])

    def _attribute(self, rows, n, size, gain, kind, join, u_cat, u_root) -> None:
        """Which root the joining (or leaving) molecule has; see the module docstring."""
        g = self.chem.n_types
        weights = self.chem.beta[kind] * n  # (A, G): catalysis of this join by each type present
        weights *= np.where(n[np.arange(rows.size), kind] > 0, gain, 1.0)[:, None]
        catalyst = pick(np.cumsum(np.concatenate([size[:, None].astype(float), weights], axis=1), axis=1), u_cat) - 1
        spontaneous = join & (catalyst < 0)
        source = np.where(join, np.maximum(catalyst, 0), kind)
        held = self.roots[rows, source].astype(float)  # (A, G+1): the roots among the source type
        held[spontaneous, -1] = 1.0  # no catalyst: the innovation mark (the draw is then ignored)
        root = pick(np.cumsum(held, axis=1), u_root)
        root = np.where(spontaneous, g, root)
        self.roots[rows, kind, root] += np.where(join, 1, -1).astype(np.int32)
