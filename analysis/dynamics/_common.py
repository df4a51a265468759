"""What every family of :mod:`analysis.dynamics` needs: which rows are ideas, and embeddings read safely.

Failed rows are dropped by :func:`_valid_mask` (the package docstring says why). Embedding rows
are converted to float64 :data:`_ROWS` at a time, so the float32 embeddings of a whole run are
never copied whole, and a row without a direction (NaN, inf, all zero) is refused by its index
rather than turned into a NaN cosine.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from analysis.diversity import as_matrix

_ROWS = 65_536  # rows of X converted to float64 at a time


def _valid_mask(ideas: pl.DataFrame) -> np.ndarray:
    """Which rows are ideas (see the package docstring for why failed rows are dropped)."""
    keep = np.ones(ideas.height, dtype=bool)
    if "text" in ideas.columns:
        keep &= ideas["text"].is_not_null().to_numpy()
    if "error" in ideas.columns:
        keep &= ideas["error"].is_null().to_numpy()
    return keep


def _row_norms(X: np.ndarray, what: str) -> np.ndarray:
    """Norms of every row, refusing rows for which a cosine means nothing (NaN, inf, zero)."""
    norms = np.empty(X.shape[0])
    for start in range(0, X.shape[0], _ROWS):
        norms[start : start + _ROWS] = np.linalg.norm(X[start : start + _ROWS].astype(np.float64), axis=1)
    bad = np.flatnonzero(~np.isfinite(norms))
    if bad.size:
        raise ValueError(f"{what} has {bad.size} row(s) with NaN or inf (first: row {bad[0]})")
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise ValueError(f"{what} has {zero.size} all-zero row(s) (first: row {zero[0]}); cosine is undefined for them")
    return norms


def _mean_unit(X: np.ndarray, norms: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Mean of the unit rows, in float64, a block at a time (no second n x d array)."""
    idx = np.arange(X.shape[0]) if rows is None else rows
    total = np.zeros(X.shape[1])
    for start in range(0, idx.size, _ROWS):
        part = idx[start : start + _ROWS]
        total += (X[part].astype(np.float64) / norms[part, None]).sum(axis=0)
    return total / idx.size


def _aligned(ideas: pl.DataFrame, X: Any) -> np.ndarray:
    arr = as_matrix(X, "X")
    if arr.shape[0] != ideas.height:
        raise ValueError(f"X has {arr.shape[0]} rows but the ideas frame has {ideas.height}; they must be aligned")
    return arr


def _unit_vector(v: Any, what: str, dim: int) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-D vector, got shape {arr.shape}")
    if arr.size != dim:
        raise ValueError(f"{what} has {arr.size} dimensions but the embeddings have {dim}")
    norm = float(np.linalg.norm(arr))
    if not math.isfinite(norm) or norm == 0:
        raise ValueError(f"{what} must be finite and non-zero to define a direction")
    return arr / norm
