"""Per-generation measures of a GP population: error, success, diversity, tree shape.

Genotypic diversity counts distinct trees and averages the tree edit distance over the
pairs of a seeded sample; phenotypic diversity counts distinct fitness values, their
Shannon entropy (natural log, each distinct value a class, as in Rosca 1995 with the
finest classes), and averages the RMSE between outputs over all pairs of individuals.
Fitness values are compared after rounding to 10 decimals, so two trees that compute
the same function by different float paths count once.
"""

from __future__ import annotations

import numpy as np

from culturesim.kinds.matechoice.gp.distance import StructuralDistance, mean_pairwise_semantic
from culturesim.kinds.matechoice.gp.tree import Tree


def fitness_classes(fitness: np.ndarray) -> np.ndarray:
    """Counts of each distinct (rounded) fitness value; inf is one class."""
    _, counts = np.unique(np.round(fitness, 10), return_counts=True)
    return counts


def entropy(counts: np.ndarray) -> float:
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def shape(trees: list[Tree] | None) -> dict[str, float | None]:
    if not trees:
        return {"size": None, "depth": None, "single": None}
    sizes = np.array([t.size for t in trees])
    return {"size": float(sizes.mean()), "depth": float(np.mean([t.depth for t in trees])),
            "single": float(np.mean(sizes == 1))}


def generation_row(generation: int, genomes: list[Tree], preferences: list[Tree] | None, fitness: np.ndarray,
                   test_error: np.ndarray, outputs: np.ndarray, success: np.ndarray, sample: np.ndarray,
                   structural: StructuralDistance) -> dict:
    """One row of the ``generations`` table (see the kind's tables.py, GENERATIONS_SCHEMA)."""
    best = int(np.argmin(fitness))
    counts = fitness_classes(fitness)
    g, p = shape(genomes), shape(preferences)
    finite = fitness[np.isfinite(fitness)]
    return {
        "step": generation,
        "best_train": float(fitness[best]),
        "median_train": float(np.median(fitness)),
        "best_test": float(test_error[best]),
        "median_test": float(np.median(test_error)),
        "success": bool(success.any()),
        "n_success": int(success.sum()),
        "best_success": bool(success[best]),
        "unique_structures": len({t.key for t in genomes}),
        "mean_tree_edit_distance": structural.mean_pairwise([genomes[i] for i in sample]),
        "unique_fitness": int(len(counts)),
        "fitness_entropy": entropy(counts),
        "mean_output_distance": mean_pairwise_semantic(outputs),
        "mean_fitness": float(finite.mean()) if finite.size else None,
        "mean_size": g["size"],
        "mean_depth": g["depth"],
        "best_size": genomes[best].size,
        "pref_mean_size": p["size"],
        "pref_mean_depth": p["depth"],
        "pref_single_node_share": p["single"],
    }
