"""Diversity of a population's ideas, from their texts or their embedding vectors.

These numbers get cited, so every function here is a pure function of its input
(plus an explicit, seeded ``numpy.random.Generator`` where sampling is unavoidable)
and refuses input on which its answer would be meaningless instead of returning
NaN. In particular no pairwise measure ever pairs an item with itself: the old
tooling compared each text with itself, which drags similarity up by a 1/n term
that depends on population size rather than on the ideas.

Vectors are rows of a float array ``X`` of shape ``(n, d)`` at any scale; only
their directions matter (cosine geometry), so rows are normalised here and a
zero row, which has no direction, is an error.

Pairwise measures depend on how many items were drawn (small samples look more
diverse by chance), so compare conditions at equal sample size with
:func:`resample`.
"""

from __future__ import annotations

import gzip
import math
import numbers
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ClusterResult",
    "Resampled",
    "as_matrix",
    "centroid_distance",
    "clusters",
    "compression_ratio",
    "distinct_n",
    "homogenization",
    "mean_pairwise_distance",
    "median_pairwise_distance",
    "resample",
    "vendi_score",
]

# Largest temporary (in matrix entries) any blocked computation allocates: 8 MiB
# of float64, so memory stays O(n*d + this) however large n is.
_BLOCK_ELEMS = 1 << 20

# Above this many vectors clusters() clusters a sample: agglomerative clustering
# needs all n(n-1)/2 distances, ~100 MB at 5000 and growing quadratically.
CLUSTER_SAMPLE = 5000

_TOKEN = re.compile(r"\w+")
_LINKAGES = ("average", "complete", "single")


@dataclass(frozen=True)
class ClusterResult:
    """Cluster labels with the two summaries people report (how many, how even).

    ``labels`` are numbered in order of first appearance so that equal
    partitions give equal arrays whatever order the clustering found them in.
    ``entropy`` is in nats, of the cluster-size proportions.
    """

    labels: np.ndarray
    count: int
    entropy: float


@dataclass(frozen=True)
class Resampled:
    """A metric over ``r`` equal-size random subsets, so conditions compare at equal m.

    ``std`` is the sample standard deviation (ddof=1) of ``values``: the spread
    of the metric across subsets of size m, not a standard error of ``mean``.
    """

    mean: float
    std: float
    values: np.ndarray


# --------------------------------------------------------------------------- input


def as_matrix(X: Any, what: str = "X", dtype: Any = None) -> np.ndarray:
    """``X`` as a 2-D array of real numbers, so every measure fails the same clear way on bad vectors.

    Shared by this module and :mod:`analysis.dynamics`. ``dtype=None`` keeps the array as
    given, without a copy (dynamics streams float32 embeddings of a whole run a block of rows
    at a time); a dtype converts to it. Only the shape and the kind of number are checked
    here: whether no rows, zero dimensions or a NaN make a measure meaningless is for the
    measure to say.
    """
    try:
        arr = np.asarray(X) if dtype is None else np.asarray(X, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be a numeric array of shape (n, d): {exc}") from None
    if arr.ndim != 2:
        raise ValueError(
            f"{what} must be 2-D (n vectors x d dimensions), got shape {arr.shape}; "
            f"reshape a single vector with {what}[None, :]"
        )
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{what} must hold real numbers, got dtype {arr.dtype}")
    return arr


def _vectors(X: Any, what: str = "X") -> np.ndarray:
    """What every measure here needs: at least one finite float64 vector with a direction to compare."""
    arr = as_matrix(X, what, np.float64)
    n, d = arr.shape
    if n == 0:
        raise ValueError(f"{what} is empty: no vectors to measure")
    if d == 0:
        raise ValueError(f"{what} has vectors of dimension 0: no direction to compare")
    if not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        raise ValueError(f"{what} has non-finite values (NaN or inf) in rows {_some(bad)}")
    return arr


def _some(idx: np.ndarray, k: int = 5) -> str:
    shown = ", ".join(str(int(i)) for i in idx[:k])
    return shown + (f", ... ({len(idx)} in all)" if len(idx) > k else "")


def _unit_rows(block: np.ndarray, offset: int = 0) -> np.ndarray:
    """Rows scaled to unit length, robust to any magnitude.

    Dividing by the largest entry first keeps the squared norm from overflowing
    (1e200) or underflowing (1e-200), which is what "any scale" requires.
    """
    peak = np.abs(block).max(axis=1)
    zero = peak == 0
    if zero.any():
        raise ValueError(
            f"X has all-zero rows {_some(np.flatnonzero(zero) + offset)}; "
            "a zero vector has no direction, so its cosine distance is undefined"
        )
    scaled = block / peak[:, None]
    return scaled / np.linalg.norm(scaled, axis=1)[:, None]


def _normalised(X: Any) -> np.ndarray:
    return _unit_rows(_vectors(X))


def _need_pairs(n: int, name: str) -> None:
    if n < 2:
        raise ValueError(f"{name} needs at least 2 vectors (got {n}): it averages over pairs of distinct items")


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _generator(rng: Any, why: str) -> np.random.Generator:
    if rng is None:
        raise ValueError(f"rng is required {why}: pass a seeded numpy.random.Generator")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _texts(texts: Any) -> list[str]:
    # A bare string is a sequence of characters; measuring it would silently
    # treat each character as an idea.
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be a sequence of strings, not a single string; wrap it: [text]")
    try:
        items = list(texts)
    except TypeError:
        raise TypeError(f"texts must be a sequence of strings, got {type(texts).__name__}") from None
    if not items:
        raise ValueError("texts is empty: no ideas to measure")
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
    return items


def _finite(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value):  # a bug guard: the inputs are already checked
        raise ArithmeticError(f"{name} came out non-finite ({value}); please report this input")
    return value


# ------------------------------------------------------------------ vector metrics


def mean_pairwise_distance(X: Any, *, block: int = 2048) -> float:
    """Average cosine distance between distinct ideas (pairs i<j, never i with itself).

    Uses sum_{i<j} cos_ij = (||sum_i x_i||^2 - sum_i ||x_i||^2) / 2 over unit rows,
    which is exact and O(n*d), so populations of any size fit in memory; rows are
    normalised ``block`` at a time so no n x n (or second n x d) array is built.
    Using the computed squared norms rather than n makes the identity exact for
    the rounded unit vectors. Range [0, 2]: 0 when all ideas point the same way.
    """
    arr = _vectors(X)
    block = _positive_int(block, "block")
    n = arr.shape[0]
    _need_pairs(n, "mean_pairwise_distance")
    total = np.zeros(arr.shape[1])
    sq_norms = 0.0
    for start in range(0, n, block):
        unit = _unit_rows(arr[start : start + block], offset=start)
        total += unit.sum(axis=0)
        sq_norms += float(np.einsum("ij,ij->", unit, unit))
    pairs = n * (n - 1) / 2
    mean_cos = (float(total @ total) - sq_norms) / 2 / pairs
    return _finite(min(2.0, max(0.0, 1.0 - mean_cos)), "mean_pairwise_distance")


def _pair_distances(unit: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    out = np.empty(len(i))
    step = max(1, _BLOCK_ELEMS // unit.shape[1])
    for s in range(0, len(i), step):
        a, b = unit[i[s : s + step]], unit[j[s : s + step]]
        out[s : s + step] = 1.0 - np.einsum("ij,ij->i", a, b)
    return np.clip(out, 0.0, 2.0, out=out)


def median_pairwise_distance(X: Any, *, max_pairs: int = 2_000_000, rng: np.random.Generator | None = None) -> float:
    """Median cosine distance between distinct ideas; robust to a few outlying ideas.

    A median needs the distances themselves, not a running sum, so it is exact
    (all i<j pairs, computed a block of rows at a time) only while there are at
    most ``max_pairs`` pairs. Beyond that it is the median of ``max_pairs`` pairs
    drawn independently and uniformly from the n(n-1)/2 distinct pairs (i != j
    always; a pair may be drawn twice), which needs ``rng`` to be reproducible.
    """
    unit = _normalised(X)
    max_pairs = _positive_int(max_pairs, "max_pairs")
    n = unit.shape[0]
    _need_pairs(n, "median_pairwise_distance")
    n_pairs = n * (n - 1) // 2
    if n_pairs <= max_pairs:
        dist = np.empty(n_pairs)
        rows = max(1, _BLOCK_ELEMS // n)
        filled = 0
        for i0 in range(0, n - 1, rows):
            i1 = min(i0 + rows, n - 1)
            sims = unit[i0:i1] @ unit[i0:].T  # row r is item i0+r against items i0..n-1
            upper = sims[np.triu_indices(i1 - i0, k=1, m=n - i0)]  # only j > i
            dist[filled : filled + upper.size] = 1.0 - upper
            filled += upper.size
        assert filled == n_pairs
        np.clip(dist, 0.0, 2.0, out=dist)
    else:
        rng = _generator(
            rng,
            f"when n(n-1)/2 = {n_pairs} pairs exceeds max_pairs={max_pairs}, "
            "because the median is then estimated from randomly sampled pairs",
        )
        i = rng.integers(0, n, size=max_pairs)
        j = rng.integers(0, n - 1, size=max_pairs)
        j += j >= i  # uniform over the n-1 items other than i
        dist = _pair_distances(unit, i, j)
    return _finite(np.median(dist), "median_pairwise_distance")


def centroid_distance(X: Any) -> float:
    """Mean cosine distance of each idea to the population's average direction.

    The mean of cos(x_i, c) over unit rows with centroid c equals ||c||, so this
    is 1 - ||c||: O(n*d), and continuous where the centroid vanishes (ideas that
    cancel out, e.g. two opposite vectors), where it is 1 rather than undefined.
    Range [0, 1]; a single idea, or identical ideas, give 0.
    """
    unit = _normalised(X)
    if unit.shape[0] == 1:
        return 0.0
    centroid = unit.mean(axis=0)
    return _finite(min(1.0, max(0.0, 1.0 - float(np.linalg.norm(centroid)))), "centroid_distance")


def homogenization(X: Any) -> float:
    """How alike ideas are: mean over i of i's mean cosine similarity to the others.

    Each item's own similarity (always 1) is removed from its row sum, so a
    population's score does not drift upward as it shrinks. Equals
    1 - mean_pairwise_distance(X); computed per item here, which is a separate
    route to the same number. Range [-1, 1].
    """
    unit = _normalised(X)
    n = unit.shape[0]
    _need_pairs(n, "homogenization")
    total = unit.sum(axis=0)
    own = np.einsum("ij,ij->i", unit, unit)
    per_item = (unit @ total - own) / (n - 1)
    return _finite(min(1.0, max(-1.0, float(per_item.mean()))), "homogenization")


def vendi_score(X: Any) -> float:
    """Effective number of distinct ideas (Friedman & Dieng 2022, cosine kernel).

    exp of the Shannon entropy of the eigenvalues of K/n, K_ij = cos(x_i, x_j):
    k orthogonal ideas score k, identical ideas 1. The nonzero eigenvalues of
    X^T X / n (d x d) equal those of X X^T / n (n x n), so when d < n the cost is
    O(n*d^2) and no n x n kernel exists. Eigenvalues below the usual
    numerical-rank tolerance are rounding noise and are dropped; the rest are
    renormalised to sum to 1 (they do up to rounding, since trace(K)/n = 1).
    """
    unit = _normalised(X)
    n, d = unit.shape
    gram = (unit.T @ unit) if d < n else (unit @ unit.T)
    eig = np.linalg.eigvalsh(gram / n)
    tol = max(float(eig.max()), 0.0) * gram.shape[0] * np.finfo(np.float64).eps
    eig = eig[eig > tol]
    p = eig / eig.sum()
    entropy = -float(np.sum(p * np.log(p)))  # only p > 0 remain: 0 log 0 = 0
    return _finite(max(1.0, math.exp(entropy)), "vendi_score")


# -------------------------------------------------------------------- text metrics


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Share of word n-grams that are distinct: 1 when no phrase repeats, near 0 when all do.

    Lowercased ``\\w+`` tokens; n-grams stay within one text, so gluing texts
    together cannot invent phrases. Texts too short for any n-gram add nothing;
    if none has one the ratio is 0/0 and an error.
    """
    items = _texts(texts)
    n = _positive_int(n, "n")
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in items:
        tokens = _TOKEN.findall(text.lower())
        grams = [tuple(tokens[k : k + n]) for k in range(len(tokens) - n + 1)]
        total += len(grams)
        seen.update(grams)
    if total == 0:
        raise ValueError(f"distinct_n: no text has {n} or more words, so there are no {n}-grams to count")
    return len(seen) / total


def compression_ratio(texts: Sequence[str]) -> float:
    """gzip size / raw size of the texts: LOWER means MORE repetitive (less diverse).

    Repeated phrasing compresses away, so the ratio falls as a population
    converges. Bytes are UTF-8 of the texts joined with "\\n"; gzip at level 9
    with mtime=0 so the same texts always give the same number. gzip adds a
    ~20-byte header, so very short inputs can exceed 1; compare like with like.
    """
    items = _texts(texts)
    raw = "\n".join(items).encode("utf-8")
    if not raw:
        raise ValueError("compression_ratio: the texts are all empty, so there are no bytes to compress")
    return len(gzip.compress(raw, compresslevel=9, mtime=0)) / len(raw)


# ---------------------------------------------------------------------- clustering


def _canonical(labels: np.ndarray) -> np.ndarray:
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse.ravel()]


def _agglomerate(unit: np.ndarray, distance_threshold: float, linkage: str) -> np.ndarray:
    if unit.shape[0] == 1:  # scikit-learn refuses a single sample; it is one cluster
        return np.zeros(1, dtype=np.int64)
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(
        n_clusters=None, distance_threshold=distance_threshold, metric="cosine", linkage=linkage
    )
    return model.fit_predict(unit)


def clusters(
    X: Any,
    *,
    distance_threshold: float = 0.5,
    linkage: str = "average",
    rng: np.random.Generator | None = None,
    sample_size: int = CLUSTER_SAMPLE,
) -> ClusterResult:
    """How many distinct schools of thought there are, and how evenly ideas spread over them.

    Agglomerative clustering on cosine distance, cut where merging would join
    groups at least ``distance_threshold`` apart, so the count is found rather
    than chosen. It needs every pairwise distance, so above ``sample_size``
    vectors a random sample of that size (drawn with ``rng``, which is then
    required) is clustered and each remaining vector joins the cluster whose
    mean direction is closest in cosine.
    """
    unit = _normalised(X)
    if linkage not in _LINKAGES:
        raise ValueError(f"linkage must be one of {_LINKAGES} (ward needs euclidean distance), got {linkage!r}")
    if isinstance(distance_threshold, bool) or not isinstance(distance_threshold, numbers.Real):
        raise ValueError(f"distance_threshold must be a number, got {distance_threshold!r}")
    if not (0 < distance_threshold and math.isfinite(distance_threshold)):
        raise ValueError(f"distance_threshold must be positive and finite, got {distance_threshold!r}")
    sample_size = _positive_int(sample_size, "sample_size")
    n = unit.shape[0]
    if n <= sample_size:
        labels = _agglomerate(unit, float(distance_threshold), linkage)
    else:
        rng = _generator(rng, f"when clustering more than sample_size={sample_size} vectors (got {n})")
        picked = rng.choice(n, size=sample_size, replace=False)
        sample_labels = _canonical(_agglomerate(unit[picked], float(distance_threshold), linkage))
        k = int(sample_labels.max()) + 1
        centroids = np.zeros((k, unit.shape[1]))
        np.add.at(centroids, sample_labels, unit[picked])
        norms = np.linalg.norm(centroids, axis=1)
        usable = norms > 0  # a cluster of exactly cancelling directions has no mean direction
        centroids[usable] /= norms[usable, None]
        labels = np.empty(n, dtype=np.int64)
        labels[picked] = sample_labels
        rest = np.setdiff1d(np.arange(n), picked, assume_unique=True)
        step = max(1, _BLOCK_ELEMS // k)
        for s in range(0, len(rest), step):
            idx = rest[s : s + step]
            sims = unit[idx] @ centroids.T
            sims[:, ~usable] = -np.inf
            labels[idx] = np.argmax(sims, axis=1)
    labels = _canonical(np.asarray(labels))
    counts = np.bincount(labels)
    p = counts / n
    entropy = -float(np.sum(p * np.log(p)))  # every count >= 1, so no 0 log 0
    return ClusterResult(labels=labels, count=len(counts), entropy=_finite(max(0.0, entropy), "cluster entropy"))


# ---------------------------------------------------------------------- resampling


def resample(metric: Callable[[Any], float], X_or_texts: Any, *, m: int, r: int, rng: np.random.Generator) -> Resampled:
    """Apply ``metric`` to ``r`` random subsets of ``m`` items, drawn without replacement.

    Pairwise diversity depends on how many items are compared, so populations of
    different sizes are only comparable at a common m. ``X_or_texts`` is a 2-D
    array (rows are items) or a sequence of strings; ``metric`` must return a
    number (e.g. ``lambda X: clusters(X).count``). ``r`` must be at least 2 so
    the spread across subsets is defined.
    """
    rng = _generator(rng, "so the subsets can be replayed")
    m = _positive_int(m, "m")
    r = _positive_int(r, "r")
    if r < 2:
        raise ValueError(f"r must be at least 2 so the spread across subsets is defined, got {r}")
    if isinstance(X_or_texts, np.ndarray):
        if X_or_texts.ndim == 0:
            raise ValueError("X_or_texts must be a 2-D array or a sequence of strings, got a scalar")
        items: Any = X_or_texts
        take = lambda idx: items[idx]  # noqa: E731
    elif isinstance(X_or_texts, (str, bytes)):
        raise TypeError("X_or_texts must be a sequence of strings, not a single string; wrap it: [text]")
    else:
        seq = list(X_or_texts)
        if seq and all(isinstance(t, str) for t in seq):
            items = seq
            take = lambda idx: [items[i] for i in idx]  # noqa: E731
        else:
            items = np.asarray(seq, dtype=np.float64) if seq else np.empty((0, 0))
            take = lambda idx: items[idx]  # noqa: E731
    size = len(items)
    if size == 0:
        raise ValueError("resample: input is empty: no items to draw subsets from")
    if size < m:
        raise ValueError(f"resample: input has {size} items, fewer than m={m}; cannot draw subsets of size m")
    values = np.empty(r)
    for k in range(r):
        idx = rng.choice(size, size=m, replace=False)
        result = metric(take(idx))
        try:
            values[k] = float(result)
        except TypeError:
            raise TypeError(
                f"metric must return a number, got {type(result).__name__}; "
                "wrap it, e.g. lambda X: clusters(X).count"
            ) from None
        if not math.isfinite(values[k]):
            raise ValueError(f"metric returned {values[k]} on subset {k}; refusing to average a non-finite value")
    return Resampled(mean=float(values.mean()), std=float(values.std(ddof=1)), values=values)
