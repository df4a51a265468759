"""Positivity and subjectivity of each story, as LLM-Culture (Perez et al. 2024) measures them.

Their analysis scores every story with TextBlob's default analyser (the pattern lexicon that
ships inside the textblob package, so nothing is downloaded): ``TextBlob(story).polarity`` in
[-1, 1], plotted as "positivity", and ``TextBlob(story).subjectivity`` in [0, 1]; a generation's
value is the mean over its stories. Using the same analyser keeps our runs and imported runs
on their scale.
"""

from __future__ import annotations


def polarity_subjectivity(texts: list[str]) -> list[tuple[float, float]]:
    """(polarity, subjectivity) of each text, TextBlob's pattern analyser, as LLM-Culture calls it."""
    from textblob import TextBlob

    found = []
    for text in texts:
        blob = TextBlob(text)
        found.append((float(blob.polarity), float(blob.subjectivity)))
    return found
