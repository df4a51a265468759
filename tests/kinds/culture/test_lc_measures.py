"""LLM-Culture's measures (culturesim.kinds.culture.measures), each against a value worked out
another way: by hand on three stories, from TextBlob's own lexicon file, or pair by pair."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from culturesim.kinds.culture.measures import creativity, run_metrics, similarity

DATA = Path(__file__).parents[2] / "data" / "llm-culture"


# ------------------------------------------------------------------ similarity matrix


def test_story_similarity_is_their_tfidf_cosine_worked_out_by_hand():
    texts = ["apple banana", "apple cherry", "cherry cherry"]
    S = similarity.story_similarity(texts)
    # smooth idf: ln((1 + n) / (1 + df)) + 1; apple and cherry are in 2 of 3 stories, banana in 1
    a, b = math.log(4 / 3) + 1, math.log(4 / 2) + 1
    s12 = a * a / (math.sqrt(a * a + b * b) * math.sqrt(2 * a * a))
    s23 = a / math.sqrt(2 * a * a)  # (a, 0, a)/|.| . (0, 0, 1)
    expected = np.array([[1, s12, 0], [s12, 1, s23], [0, s23, 1]])
    np.testing.assert_allclose(S, expected, atol=1e-12)
    order, G = similarity.generation_similarity(texts, [1, 1, 2])  # block means without the matrix
    assert order == [1, 2]
    np.testing.assert_allclose(G, [[(2 + 2 * s12) / 4, s23 / 2], [s23 / 2, 1]], atol=1e-12)
    assert G[0, 1] == pytest.approx(S[np.ix_([0, 1], [2])].mean())
    rows = {(r["step"], r["metric"]): r["value"] for r in similarity.similarity_rows(order, G)}
    assert rows[(1, "story_similarity_within")] == pytest.approx((2 + 2 * s12) / 4)
    assert rows[(2, "story_similarity_successive")] == pytest.approx(s23 / 2)
    assert rows[(2, "story_similarity_first")] == pytest.approx(s23 / 2)
    assert (1, "story_similarity_successive") not in rows


def test_stories_of_stop_words_only_have_no_similarity_rather_than_an_error():
    assert similarity.story_similarity(["the and", "of the"]).tolist() == [[0, 0], [0, 0]]
    assert similarity.generation_similarity(["the and", "of the"], [1, 2])[1].tolist() == [[0, 0], [0, 0]]


# ------------------------------------------------------------------ creativity index

VECTORS = {"a": [1.0, 0.0], "b": [0.0, 2.0], "c": [1.0, 1.0], "zz": [0.0, 0.0]}


def lookup(words):
    return np.array([VECTORS[w] for w in words])


def pairwise(words):
    """Their loop: every ordered pair of non-zero word vectors, self-pairs included."""
    vs = [np.array(VECTORS[w]) for w in words if np.mean(VECTORS[w]) != 0]
    sims = [v @ u / (np.linalg.norm(v) * np.linalg.norm(u)) for v in vs for u in vs]
    return 1 - float(np.mean(sims))


def test_creativity_is_one_minus_the_mean_pairwise_cosine_of_the_words():
    texts = ["a b", "A a", "a zz", "a b c c", "zz"]
    found = creativity.creativity_indexes(texts, lookup)
    assert found[0] == pytest.approx(0.5)  # (1 + 0 + 0 + 1) / 4 similar
    assert found[1] == pytest.approx(0.0)  # lower-cased: one word twice
    assert found[2] == pytest.approx(0.0)  # the zero vector is out of the vocabulary, as theirs
    assert found[3] == pytest.approx(pairwise(["a", "b", "c", "c"]))
    assert found[4] is None


# ------------------------------------------------------------------ positivity, subjectivity


def lexicon(word: str) -> tuple[float, float]:
    """The mean polarity and subjectivity of a word's senses, read from the lexicon file TextBlob ships."""
    textblob = pytest.importorskip("textblob")
    root = ET.parse(Path(textblob.__file__).parent / "en" / "en-sentiment.xml").getroot()
    senses = [w for w in root if w.get("form") == word]
    return (float(np.mean([float(w.get("polarity")) for w in senses])),
            float(np.mean([float(w.get("subjectivity")) for w in senses])))


def test_positivity_and_subjectivity_are_step_means_of_the_lexicon_values():
    pytest.importorskip("textblob")
    ideas = pl.DataFrame({"step": [1, 1, 2], "agent_id": [0, 1, 0], "text": ["good", "terrible", "wonderful"]})
    rows = {(r["step"], r["metric"]): r["value"] for r in run_metrics(ideas)}
    (pg, sg), (pt, st), (pw, sw) = lexicon("good"), lexicon("terrible"), lexicon("wonderful")
    assert rows[(1, "positivity")] == pytest.approx((pg + pt) / 2, abs=1e-9)
    assert rows[(1, "subjectivity")] == pytest.approx((sg + st) / 2, abs=1e-9)
    assert rows[(2, "positivity")] == pytest.approx(pw, abs=1e-9)
    assert rows[(2, "subjectivity")] == pytest.approx(sw, abs=1e-9)
    assert pg > 0 > pt  # the values are not all zero: the test can fail


# ------------------------------------------------------------------ word chains


def test_keywords_and_stems_worked_out_by_hand():
    wordchains = pytest.importorskip("culturesim.kinds.culture.measures.wordchains")
    pytest.importorskip("nltk")
    assert wordchains.keywords("b x b c. The c b!") == ["b", "c", "x"]  # counts 3, 2, 1; "The" a stop word
    assert wordchains.keywords("Dogs were running; dogs run.") == ["Dogs", "running", "dogs", "run"]
    assert [wordchains.stem(w) for w in ["Dogs", "dogs", "running", "run"]] == ["dog", "dog", "run", "run"]
    chains = wordchains.word_chains([1, 1, 2], [0, 1, 0],
                                    ["The dogs were running. Dogs run!", "A cat sat.", "The cat runs."])
    got = {(r["word"], r["step"], r["agent_id"]): r["count"] for r in chains.iter_rows(named=True)}
    assert got == {("dog", 1, 0): 2, ("run", 1, 0): 2, ("cat", 1, 1): 1, ("sat", 1, 1): 1,
                   ("cat", 2, 0): 1, ("run", 2, 0): 1}
    rows = {(r["step"], r["metric"]): r["value"] for r in wordchains.chain_rows(chains)}
    assert rows == {(1, "keywords"): 4.0, (2, "keywords"): 2.0, (2, "keywords_carried"): 1.0,
                    (None, "longest_word_chain"): 2.0}


# ------------------------------------------------------------------ the same functions on an imported run


def test_analyze_measures_an_imported_chain_with_the_same_functions(tmp_path):
    pytest.importorskip("sklearn")
    from analysis.analyze import analyze_run
    from analysis.embeddings import make_embedder
    from culturesim.kinds.culture.importer import import_llm_culture

    run = import_llm_culture(DATA / "chain_output0.json", tmp_path / "runs")
    table = analyze_run(run, make_embedder("tfidf"))
    stories = [g[0] for g in json.loads((DATA / "chain_output0.json").read_text())["stories"] if g]
    S = similarity.story_similarity(stories)  # one story per step: each block is one cell
    got = {(r["step"], r["metric"]): r["value"] for r in table.iter_rows(named=True)}
    assert got[(2, "story_similarity_successive")] == pytest.approx(S[0, 1])
    assert got[(3, "story_similarity_first")] == pytest.approx(S[0, 2])
    assert got[(3, "story_similarity_within")] == pytest.approx(1.0)
    assert not any(m == "creativity_index" for _, m in got)  # TF-IDF has no word space
    try:
        from textblob import TextBlob
    except ImportError:
        return
    assert got[(3, "positivity")] == pytest.approx(TextBlob(stories[2]).polarity)
    assert got[(1, "positivity")] > got[(3, "positivity")]  # "happy" fox, then a "sad" one


def test_analyze_measures_our_own_culture_run_with_the_same_functions(tmp_path):
    pytest.importorskip("sklearn")
    from analysis.analyze import analyze_run, valid_ideas
    from analysis.embeddings import make_embedder
    from culturesim import runner
    from culturesim import scenario as sc

    quick = Path(__file__).parents[3] / "scenarios" / "quickstart.yaml"
    loaded = sc.load(quick, ["llm.model=echo/x", "steps=3", "population.size=4", "output.run_id=ours"])
    run = runner.start(loaded, out=tmp_path, base_dir=quick.parent, show_progress=False)
    table = analyze_run(run, make_embedder("tfidf"))
    ideas = valid_ideas(run)
    got = {(r["step"], r["metric"]): r["value"] for r in table.iter_rows(named=True)}
    order, G = similarity.generation_similarity(ideas["text"].to_list(), ideas["step"].to_list())
    assert order == [1, 2, 3]
    assert got[(3, "story_similarity_successive")] == pytest.approx(G[1, 2])
    assert got[(2, "story_similarity_first")] == pytest.approx(G[0, 1])
    expected = {(r["step"], r["metric"]): r["value"] for r in run_metrics(ideas)}
    assert {k: v for k, v in got.items() if k in expected} == pytest.approx(expected)
