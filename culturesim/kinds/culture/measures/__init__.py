"""The measures of LLM-Culture (Perez et al. 2024), computed as their analysis code computes them.

One function per idea, each in its own module: positivity and subjectivity (``sentiment``),
the creativity index (``creativity``), word chains (``wordchains``) and the story-by-story
similarity matrix with its generation curves (``similarity``). :func:`run_metrics` is what
``culturesim analyze`` (``analysis.analyze.analyze_run``) calls for a culture run, our own or
one imported from their files, so both are measured by the same functions.

Metrics (per step unless said): ``positivity``, ``subjectivity``, ``creativity_index``,
``story_similarity_within``, ``story_similarity_successive``, ``story_similarity_first``,
``keywords``, ``keywords_carried``, and for the whole run ``longest_word_chain``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

METRICS = ("positivity", "subjectivity", "creativity_index", "story_similarity_within",
           "story_similarity_successive", "story_similarity_first", "keywords", "keywords_carried",
           "longest_word_chain")


def _step_means(steps: list[int], values: list[float | None], metric: str) -> list[dict]:
    frame = pl.DataFrame({"step": steps, "value": values}, schema={"step": pl.Int64, "value": pl.Float64})
    means = frame.drop_nulls("value").group_by("step").agg(pl.col("value").mean()).sort("step")
    return [{"step": s, "metric": metric, "value": float(v)} for s, v in means.iter_rows()]


def word_vectors_from(embedder, cache_dir: Path | None = None):
    """Word vectors for the creativity index from a run's embedder, or None when it has no word
    space (TF-IDF: each word its own axis)."""
    if embedder is None or not getattr(embedder, "cacheable", False):
        return None
    from analysis.embeddings import embed_texts

    return lambda words: embed_texts(words, embedder, cache_dir=cache_dir)


def run_metrics(ideas: pl.DataFrame, embedder=None, *, cache_dir: Path | None = None) -> list[dict]:
    """Rows (step, metric, value) of LLM-Culture's measures over a run's ideas (the population's,
    in step and agent order). Positivity and subjectivity need TextBlob, word chains NLTK (the
    analysis extra): without them those rows are left out, the rest is measured."""
    if ideas.is_empty():
        return []
    from culturesim.kinds.culture.measures import creativity, sentiment, similarity, wordchains

    ideas = ideas.sort("step", "agent_id")
    steps, texts = ideas["step"].to_list(), ideas["text"].to_list()
    rows: list[dict] = []
    try:
        scores = sentiment.polarity_subjectivity(texts)
    except ImportError:
        scores = None
    if scores is not None:
        rows += _step_means(steps, [p for p, _ in scores], "positivity")
        rows += _step_means(steps, [s for _, s in scores], "subjectivity")
    order, G = similarity.generation_similarity(texts, steps)
    rows += similarity.similarity_rows(order, G)
    vectors = word_vectors_from(embedder, cache_dir)
    if vectors is not None:
        rows += _step_means(steps, creativity.creativity_indexes(texts, vectors), "creativity_index")
    try:
        chains = wordchains.word_chains(steps, ideas["agent_id"].to_list(), texts)
    except ImportError:
        chains = None
    if chains is not None:
        rows += wordchains.chain_rows(chains)
    return [r for r in rows if r["value"] is None or np.isfinite(r["value"])]
