"""Speed of the measurement kit: embedding throughput and the full metric set at scale.

1. MiniLM embedding throughput (texts/s) on idea-like sentences, against
   sentence-transformers called directly on the same texts (ratio = our wrapper's cost).
2. The full per-step metric set of `culturesim analyze` (diversity, vendi, centroid,
   homogenization, distinct-2, compression, clusters, similarity to start / previous,
   self-similarity, copies, depth, surviving lineages) for runs of 10,000 and 100,000 ideas over 10 steps, on
   precomputed 384-d vectors, so it times the metrics and not the embedder.

    python bench/analysis_speed.py [--sizes 10000 100000] [--embed 2000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

from analysis import dynamics
from analysis.analyze import step_metrics
from analysis.embeddings import make_embedder, minilm_path

WORDS = ("fox river lantern sailor clock tower lemon tree storm harbour child map bridge winter song "
         "garden stone letter moon baker").split()


def sentences(n: int, rng: np.random.Generator) -> list[str]:
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(8, 20)))).capitalize() + "." for _ in range(n)]


def synthetic_run(n: int, steps: int, rng: np.random.Generator) -> tuple[pl.DataFrame, np.ndarray]:
    agents = n // steps
    rows = []
    for step in range(1, steps + 1):
        for a in range(agents):
            parents = [] if step == 1 else [f"s{step - 1}-a{(a + k) % agents}" for k in (-1, 0, 1)]
            rows.append({"step": step, "agent_id": a, "idea_id": f"s{step}-a{a}", "text": "x",
                         "parent_ids": parents, "error": None})
    ideas = pl.DataFrame(rows)
    X = rng.normal(size=(ideas.height, 384)).astype(np.float32)
    return ideas, X


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--embed", type=int, default=2000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)

    texts = sentences(args.embed, rng)
    embedder = make_embedder("minilm")
    embedder.embed(texts[:32])  # load once, outside the timing
    from sentence_transformers import SentenceTransformer

    raw_model = SentenceTransformer(str(minilm_path()), device="cpu")
    raw_model.encode(texts[:32])

    def best_rate(fn) -> float:
        times = []
        for _ in range(2):  # alternating rounds, best of each: 2 noisy cores
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return args.embed / min(times)

    ours = best_rate(lambda: embedder.embed(texts))
    raw = best_rate(lambda: raw_model.encode(texts, batch_size=64))
    print(f"embedding: {ours:.0f} texts/s through analysis.embeddings, {raw:.0f} texts/s raw "
          f"sentence-transformers; ratio {ours / raw:.3f}")

    for n in args.sizes:
        ideas, X = synthetic_run(n, 10, rng)
        start = time.perf_counter()
        dynamics.per_step(ideas, X)
        t_dyn = time.perf_counter() - start
        start = time.perf_counter()
        steps = ideas["step"].to_numpy()
        for step in np.unique(steps):
            mask = steps == step
            step_metrics(["a fox and a sailor"] * int(mask.sum()), X[mask], resample_m=None, repeats=0, rng=rng)
        t_div = time.perf_counter() - start
        start = time.perf_counter()
        dynamics.lineage(ideas, descendants=False, root_ids=False)  # what analyze needs
        dynamics.surviving_lineages(ideas)
        t_lin = time.perf_counter() - start
        total = t_dyn + t_div + t_lin
        print(f"{n:>7} ideas / 10 steps: full metric set {total:.2f} s "
              f"(dynamics {t_dyn:.2f}, diversity+clusters {t_div:.2f}, lineage {t_lin:.2f}); "
              f"{n / total:.0f} ideas/s")


if __name__ == "__main__":
    main()
