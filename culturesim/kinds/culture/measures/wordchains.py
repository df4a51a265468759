"""Word chains of LLM-Culture (Perez et al. 2024): which keywords each story carries on.

Their analysis takes the 30 most frequent words of every story (NLTK's ``word_tokenize``,
words that are alphanumeric and not in NLTK's English stop list, counted case-sensitively,
ties in order of first appearance), reduces each to a stem (WordNet's lemma as a verb, then
Porter's stemmer, which lower-cases) and draws, for every stem, the stories it appears in.

NLTK's tokenizer, stop list and lemmatizer read data files that NLTK downloads at run time,
which we never do. What is used here, and how it differs:

- sentences: NLTK's Punkt when its data is installed, else a split after ``.``, ``!`` or ``?``
  followed by white space (Punkt would not split after "Mr." and the like);
- words: NLTK's own word tokenizer on each sentence (it needs no data);
- stop words: NLTK's English list (the classic 179 words), written below;
- lemmas: WordNet's when its data is installed, else none: Porter's stemmer alone (irregular
  verbs such as "ran" then keep their own stem).

:func:`fidelity` says which of these were in force.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache

import polars as pl

KEYWORDS = 30  # LLM-Culture's num_keywords

# NLTK's English stop words (nltk_data corpora/stopwords/english, the classic 179)
STOP_WORDS = frozenset("""
i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves he him
his himself she she's her hers herself it it's its itself they them their theirs themselves what which who
whom this that that'll these those am is are was were be been being have has had having do does did doing a
an the and but if or because as until while of at by for with about against between into through during
before after above below to from up down in out on off over under again further then once here there when
where why how all any both each few more most other some such no nor not only own same so than too very s t
can will just don don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't
doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't
shan shan't shouldn shouldn't wasn wasn't weren weren't won won't wouldn wouldn't
""".split())

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@cache
def _punkt():
    """NLTK's sentence splitter if its data is installed, else None (never a download)."""
    import nltk

    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
    except LookupError:
        return None
    return nltk.sent_tokenize


@cache
def _lemmatizer():
    """WordNet's lemmatizer if its data is installed, else None (never a download)."""
    from nltk.stem import WordNetLemmatizer

    lemmatizer = WordNetLemmatizer()
    try:
        lemmatizer.lemmatize("ran", pos="v")
    except LookupError:
        return None
    return lemmatizer


@cache
def _stemmer():
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


def fidelity() -> str:
    """Which of NLTK's data-backed steps are LLM-Culture's own here, in a few words."""
    parts = ["Punkt sentences" if _punkt() else "sentences split at . ! ?",
             "WordNet lemmas" if _lemmatizer() else "no WordNet lemmas (Porter stems only)"]
    return ", ".join(parts)


def tokens(text: str) -> list[str]:
    """NLTK's word tokens of ``text``, sentence by sentence."""
    from nltk.tokenize import word_tokenize

    split = _punkt()
    sentences = split(text) if split else _SENTENCE_END.split(text)
    return [t for s in sentences for t in word_tokenize(s, preserve_line=True)]


def keywords(text: str, n: int = KEYWORDS) -> list[str]:
    """The ``n`` most frequent alphanumeric, non-stop-word tokens (case kept; ties: first seen first)."""
    kept = [w for w in tokens(text) if w.lower() not in STOP_WORDS and w.isalnum()]
    return [w for w, _ in Counter(kept).most_common(n)]


def stem(word: str) -> str:
    """WordNet's verb lemma (when its data is there), then Porter's stem, as LLM-Culture reduces a keyword."""
    lemmatizer = _lemmatizer()
    return _stemmer().stem(lemmatizer.lemmatize(word, pos="v") if lemmatizer else word)


def word_chains(steps: list[int], agents: list[int], texts: list[str]) -> pl.DataFrame:
    """One row per (stem, story): the step and agent of the story and how many of its keywords
    reduce to that stem. This is the data of their word-chain figure."""
    rows = []
    for step, agent, text in zip(steps, agents, texts, strict=True):
        for word, count in Counter(stem(w) for w in keywords(text)).items():
            rows.append({"word": word, "step": step, "agent_id": agent, "count": count})
    return pl.DataFrame(rows, schema={"word": pl.String, "step": pl.Int64, "agent_id": pl.Int64, "count": pl.Int64})


def chain_rows(chains: pl.DataFrame) -> list[dict]:
    """Per step: the distinct stems among its stories' keywords (``keywords``) and the share of
    them present in the step before (``keywords_carried``); for the run, the longest run of
    consecutive steps one stem stays present (``longest_word_chain``)."""
    if chains.is_empty():
        return []
    by_step = {s: set(words) for s, words in chains.group_by("step").agg(pl.col("word").unique()).iter_rows()}
    order = sorted(by_step)
    rows = []
    for i, step in enumerate(order):
        words = by_step[step]
        rows.append({"step": step, "metric": "keywords", "value": float(len(words))})
        if i > 0 and order[i - 1] == step - 1 and words:
            carried = len(words & by_step[order[i - 1]]) / len(words)
            rows.append({"step": step, "metric": "keywords_carried", "value": float(carried)})
    longest = 0
    for word_steps in chains.group_by("word").agg(pl.col("step").unique().sort())["step"].to_list():
        run = 1
        for a, b in zip(word_steps, word_steps[1:], strict=False):
            run = run + 1 if b == a + 1 else 1
            longest = max(longest, run)
        longest = max(longest, 1)
    rows.append({"step": None, "metric": "longest_word_chain", "value": float(longest)})
    return rows
