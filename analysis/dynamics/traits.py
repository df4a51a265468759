"""Scalar traits of each idea: length, sentiment, and position on a fixed semantic axis.

Drift, attractors (:func:`analysis.dynamics.chain_attractors`) and the Price decomposition
(:mod:`analysis.price`) measure scalars; these are the scalars that say what transmission
does to content.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import polars as pl

from analysis.diversity import as_matrix
from analysis.dynamics._common import _ROWS, _aligned, _mean_unit, _row_norms, _unit_vector, _valid_mask

TRAITS_SCHEMA = {"idea_id": pl.String, "chars": pl.Int64, "words": pl.Int64, "sentiment": pl.Float64}


@functools.cache
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()  # loads its lexicon from disk: once per process


def text_traits(ideas: pl.DataFrame, X: Any = None, axis: Any = None) -> pl.DataFrame:
    """Scalar traits of each idea (length, sentiment, position on a semantic axis).

    These are the traits whose drift and attractors (``chain_attractors``) say what
    transmission does to content. ``sentiment`` is VADER's compound score in [-1, 1];
    ``projection`` (only with both ``X`` and ``axis``) is the cosine of the idea with the
    axis, so ideas of different lengths are comparable. Use an axis fixed once
    (``fixed_axis``), never one refitted per step.
    """
    if (X is None) != (axis is None):
        raise ValueError("text_traits: pass both X and axis to get a projection, or neither")
    keep = _valid_mask(ideas)
    kept = ideas.filter(pl.Series(keep))
    schema = dict(TRAITS_SCHEMA)
    projection = None
    if X is not None:
        arr = _aligned(ideas, X)[keep]
        unit_axis = _unit_vector(axis, "axis", arr.shape[1])
        norms = _row_norms(arr, "X")
        projection = np.empty(arr.shape[0])
        for start in range(0, arr.shape[0], _ROWS):
            part = arr[start : start + _ROWS].astype(np.float64)
            projection[start : start + _ROWS] = part @ unit_axis / norms[start : start + _ROWS]
        schema["projection"] = pl.Float64
    if kept.height == 0:
        return pl.DataFrame(schema=schema)
    analyzer = _vader()
    texts = kept["text"].to_list()
    out = kept.select(
        pl.col("idea_id").cast(pl.String),
        pl.col("text").str.len_chars().cast(pl.Int64).alias("chars"),
        pl.col("text").str.count_matches(r"\S+").cast(pl.Int64).alias("words"),
    ).with_columns(
        pl.Series("sentiment", [analyzer.polarity_scores(t)["compound"] for t in texts], dtype=pl.Float64)
    )
    if projection is not None:
        out = out.with_columns(pl.Series("projection", projection, dtype=pl.Float64))
    return out


def fixed_axis(X_start: Any, X_end: Any) -> np.ndarray:
    """A unit direction of change: mean unit embedding at the end minus at the start.

    Fit it once (e.g. from step 0 and the last step, or from reference texts) and project
    every step on the same vector. An axis refitted per step moves with the population,
    so a steady drift along it would be absorbed into the axis and read as no change,
    and values from different steps would not be on the same scale.
    """
    A, B = as_matrix(X_start, "X_start"), as_matrix(X_end, "X_end")
    if A.shape[0] == 0 or B.shape[0] == 0:
        raise ValueError(f"fixed_axis needs ideas at both ends, got {A.shape[0]} and {B.shape[0]}")
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"X_start and X_end have different dimensions ({A.shape[1]} and {B.shape[1]})")
    diff = _mean_unit(B, _row_norms(B, "X_end")) - _mean_unit(A, _row_norms(A, "X_start"))
    norm = float(np.linalg.norm(diff))
    if norm <= 1e-12:
        raise ValueError("fixed_axis: start and end have the same mean direction, so there is no axis of change")
    return diff / norm
