"""The creativity index of LLM-Culture (Perez et al. 2024).

Their index of a story: split the lower-cased story on white space, give every word its word
vector, drop the words whose vector is zero (out of the vocabulary), and take the mean cosine
similarity over all ordered pairs of the remaining words, each word with itself included;
creativity is one minus that mean (1: words far apart in meaning, 0: one word repeated), and
a generation's value is the mean over its stories.

They used spaCy's ``en_core_web_lg`` word vectors, which are not on PyPI and cannot be
installed here; the vectors come from the embedder the run is measured with (MiniLM by
default: each distinct word embedded alone, and cached with the run's other embeddings), so
the index has their formula in another word space. A TF-IDF embedder has no word space (every
word is its own axis), so no index is computed with it.

The mean over all n x n pairs of unit vectors u_i is |sum of u_i|^2 / n^2, which is how it is
computed here: one pass over the words instead of n^2 cosines.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def story_words(text: str) -> list[str]:
    """The words of a story as LLM-Culture splits it: lower-cased, on white space."""
    return text.lower().split()


def creativity_indexes(texts: list[str], word_vectors: Callable[[list[str]], np.ndarray]) -> list[float | None]:
    """One minus the mean pairwise cosine of each story's word vectors; None for a story with no
    word that has a vector. ``word_vectors(words)`` returns one row per word."""
    vocabulary = sorted({w for t in texts for w in story_words(t)})
    if not vocabulary:
        return [None] * len(texts)
    V = np.asarray(word_vectors(vocabulary), dtype=np.float64)
    norms = np.linalg.norm(V, axis=1)
    index = {w: i for i, w in enumerate(vocabulary)}
    U = np.divide(V, norms[:, None], out=np.zeros_like(V), where=norms[:, None] > 0)
    found: list[float | None] = []
    for text in texts:
        rows = [index[w] for w in story_words(text) if norms[index[w]] > 0]
        if not rows:
            found.append(None)
            continue
        total = U[rows].sum(axis=0)
        mean_similarity = float(total @ total) / len(rows) ** 2
        found.append(1.0 - min(1.0, mean_similarity))
    return found
