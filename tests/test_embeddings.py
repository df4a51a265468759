"""Embedders and the per-run embedding cache."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from conftest import llama_server

from analysis.embeddings import embed_texts, make_embedder, minilm_path

SENTENCES = ["A cat sleeps on the warm windowsill.", "A kitten naps in the sunny window.",
             "The central bank raised interest rates again.", "A cat sleeps on the warm windowsill."]


@pytest.fixture(scope="module")
def minilm():
    return make_embedder("minilm")


def test_minilm_is_offline_unit_length_and_semantic(minilm):
    X = minilm.embed(SENTENCES)
    assert X.shape == (4, 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    S = X @ X.T
    assert S[0, 1] > 0.6 > S[0, 2]  # paraphrase close, unrelated far
    np.testing.assert_allclose(X[0], X[3], atol=1e-6)


def test_minilm_matches_sentence_transformers_called_directly(minilm):
    from sentence_transformers import SentenceTransformer

    direct = SentenceTransformer(str(minilm_path()), device="cpu").encode(SENTENCES[:3])
    direct /= np.linalg.norm(direct, axis=1, keepdims=True)
    np.testing.assert_allclose(minilm.embed(SENTENCES[:3]), direct, atol=1e-5)


def test_tfidf_matches_sklearn_cosine():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    X = make_embedder("tfidf").embed(SENTENCES)
    expected = cosine_similarity(TfidfVectorizer().fit_transform(SENTENCES))
    np.testing.assert_allclose(X @ X.T, expected, atol=1e-6)


class Counting:
    """A deterministic stand-in embedder that counts what it was asked to embed."""

    name = "counting/v1"
    cacheable = True

    def __init__(self):
        self.seen = []

    def embed(self, texts):
        self.seen.extend(texts)
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest(), dtype=np.uint8)[:8].astype(np.float32) + 1
                for t in texts]
        return np.stack([r / np.linalg.norm(r) for r in rows])


def test_cache_embeds_each_distinct_text_once_across_calls(tmp_path):
    embedder = Counting()
    first = embed_texts(SENTENCES, embedder, cache_dir=tmp_path)
    assert embedder.seen == SENTENCES[:3]  # the duplicate is embedded once
    again = embed_texts(SENTENCES[::-1] + ["new text"], embedder, cache_dir=tmp_path)
    assert embedder.seen == SENTENCES[:3] + ["new text"]
    np.testing.assert_array_equal(again[:4], first[::-1])
    assert (tmp_path / "counting_v1.parquet").is_file()


def test_uncacheable_embedder_writes_no_cache(tmp_path):
    embed_texts(SENTENCES, make_embedder("tfidf"), cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("spec", ["bert", "st:", "litellm:"])
def test_unknown_embedder_spec_is_a_clear_error(spec):
    with pytest.raises(ValueError, match="unknown embedder"):
        make_embedder(spec)


def test_openai_compatible_embeddings_endpoint(tmp_path):
    """llama-cpp-python's server in embedding mode, reached through litellm."""
    with llama_server(tmp_path / "server.log", "--embedding") as base:
        embedder = make_embedder(f"litellm:openai/smollm2@{base}")
        X = embed_texts(SENTENCES, embedder, cache_dir=tmp_path / "cache")
    assert X.shape[0] == 4 and X.shape[1] > 100
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(X[0], X[3], atol=1e-5)
    assert not np.allclose(X[0], X[2])
