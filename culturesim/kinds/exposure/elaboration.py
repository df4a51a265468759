"""Elaboration of Alternate Uses Task responses: how much detail an idea carries.

Ashkinaze et al. (2024) score elaboration from the words of a response that are not
stopwords: their analysis counts a response's non-stopword tokens, and their final models
weight each distinct token by its inverse book frequency (IBF) from a large reference
corpus. The IBF table is not shipped here, so :func:`elaboration` counts words by default
and takes a weights mapping (token -> weight) to give the weighted variant from any table
you supply. Two choices differ from their script on purpose: punctuation is not a word (a
tokenizer that keeps "." as a token counts it as a non-stopword), and the stop list is
scikit-learn's English list rather than spaCy's (a well-kept list already installed with
the analysis extra; both are general English function words).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["elaboration", "words"]

# A word: letters or digits, with an optional apostrophe suffix ("it's", "don't").
_WORD = re.compile(r"[a-z0-9]+(?:['\u2019][a-z]+)?")
_SUFFIX = re.compile(r"(n['\u2019]t|['\u2019](s|d|ll|m|re|ve))$")


def _stopwords() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def words(text: str | None) -> list[str]:
    """The lower-cased words of ``text``, contraction suffixes dropped ("don't" -> "do",
    "it's" -> "it"), since a contraction's suffix is a function word."""
    if not text:
        return []
    return [_SUFFIX.sub("", w) for w in _WORD.findall(text.lower())]


def elaboration(texts: Iterable[str | None], *, weights: Mapping[str, float] | None = None,
                stopwords: Iterable[str] | None = None) -> list[float | None]:
    """Elaboration of each text: its number of words that are not stopwords, or with
    ``weights`` the sum of the weights of its distinct words found in the mapping, stopwords
    included as in the paper's IBF-weighted score (their weights are small by construction).
    A missing text (None) gives None; an empty one 0."""
    stop = frozenset(stopwords) if stopwords is not None else _stopwords()
    out: list[float | None] = []
    for text in texts:
        if text is None:
            out.append(None)
            continue
        kept = [w for w in words(text) if w and w not in stop]
        if weights is None:
            out.append(float(len(kept)))
        else:
            out.append(float(sum(weights[w] for w in set(words(text)) if w in weights)))
    return out
