"""The story-by-story similarity matrix of LLM-Culture (Perez et al. 2024) and what they read off it.

Their analysis puts every story of a run in one list, generation after generation, fits
``TfidfVectorizer(min_df=1, stop_words="english")`` on it, and takes ``tfidf @ tfidf.T``: the
cosine similarity of every pair of stories (TF-IDF rows are of unit length). A generation-by-
generation matrix is the mean of each block of that matrix, self-pairs included, and three
curves come from it:

- within-generation similarity: the diagonal (a generation's block, its 1s included);
- successive-generation similarity: block (t-1, t);
- similarity with the first generation: block (first, t).

The TF-IDF space is fitted on the run's own stories, as theirs is, so the numbers depend on
the whole run: they compare like with like only between runs measured the same way.
"""

from __future__ import annotations

import numpy as np


def tfidf_rows(texts: list[str]):
    """Their TF-IDF rows (sparse, unit length; all zero for a story of stop words only)."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        return TfidfVectorizer(min_df=1, stop_words="english").fit_transform(texts)
    except ValueError:  # no story has a word outside the stop list: no direction to compare
        return sparse.csr_matrix((len(texts), 1))


def story_similarity(texts: list[str]) -> np.ndarray:
    """Cosine similarity of every pair of stories in a TF-IDF space fitted on them (n x n)."""
    if not texts:
        return np.zeros((0, 0))
    X = tfidf_rows(texts)
    return np.asarray((X @ X.T).toarray())


def generation_similarity(texts: list[str], steps: list[int]) -> tuple[list[int], np.ndarray]:
    """The steps, in order, and the mean of each (step, step) block of the story matrix, self-pairs
    included. ``steps[i]`` is the step of ``texts[i]``; a step may hold any number of stories
    (their runs hold one per agent, a chain one per generation).

    The matrix is never built: the mean of block (A, B) of X X^T is (sum of A's rows) . (sum of
    B's rows) / (|A| |B|), so a run of many thousand stories costs one pass over its rows."""
    order = sorted(set(steps))
    if not texts:
        return order, np.zeros((0, 0))
    X = tfidf_rows(texts)
    labels = np.asarray(steps)
    sums = np.vstack([np.asarray(X[labels == s].sum(axis=0)).ravel() for s in order])
    counts = np.array([(labels == s).sum() for s in order], dtype=np.float64)
    return order, (sums @ sums.T) / np.outer(counts, counts)


def similarity_rows(order: list[int], G: np.ndarray) -> list[dict]:
    """The three curves of the generation matrix as metric rows (step, metric, value)."""
    rows = []
    for i, step in enumerate(order):
        rows.append({"step": step, "metric": "story_similarity_within", "value": float(G[i, i])})
        if i > 0:
            rows.append({"step": step, "metric": "story_similarity_successive", "value": float(G[i - 1, i])})
            rows.append({"step": step, "metric": "story_similarity_first", "value": float(G[0, i])})
    return rows
