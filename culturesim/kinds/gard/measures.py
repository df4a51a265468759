"""Measures of GARD runs: compositional heredity, compotypes, the catalysis network, and the
multilevel Price decomposition with molecules as individuals and assemblies as groups.

Each ``*_over_*`` function takes a run (a folder path or ``culturesim.store.RunDir``) and
returns a polars frame an app page can plot directly:

* :func:`similarity_over_time` one row per split: cosine similarity H of the composition at
  split to its parent split's (Markovitch & Lancet's heredity measure), ``composome`` when
  H > 0.9;
* :func:`composomes_over_steps` per step: mean H and the share of composome splits;
* :func:`compotypes` k-means on the composome compositions (scikit-learn), k chosen by cosine
  silhouette as the reference ``tgs_acluster``; every split tagged with its compotype (-1: drift);
* :func:`mutual_catalysis` the reference's mutual-catalysis propensity of a beta matrix
  (``pmc_beta_v10``: ``sum(beta) / (N_G trace(beta))``; 1 for an unstructured network, above 1
  when catalysis of others outweighs self-catalysis) and :func:`network_summary` for a run;
* :func:`molecule_traits` per molecule type: ``others_vs_self`` (log10 of how much it catalyses
  the other types over how much it catalyses its own), ``catalytic_out``, ``catalysed_in``;
* :func:`price_step` / :func:`selection_over_steps` the Price terms of every step through
  :func:`analysis.price.price`, exactly as for idea runs.

The Price set-up (Markovitch, Witkowski & Virgo, "Chemical heredity as group selection at the
molecular level"): the parents of step ``s`` are the molecules of the population at the end of
step ``s - 1`` (step 0: the initial population), grouped by assembly; the children are the
molecules at the end of step ``s``. A child descends from the parent molecule its root names
(the molecule it persisted as, or the catalyst chain that brought it in), inside the assembly
its own assembly descends from; a molecule that joined uncatalysed is an innovation. Molecules
of one type in one assembly are exchangeable, so the children of that class are dealt out to its
parent molecules in turn (each child credited with weight 1 to one parent). Fitness is then a
molecule's number of descendants: an assembly that split and spread has fit molecules (between-
assembly selection), a molecule that catalysed the joining of many others is fit within its
assembly, and a child of another type than its catalyst parent is imperfect transmission.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from analysis.price import PriceTerms, permutation_null, price
from culturesim.kinds.gard.tables import TABLES
from culturesim.store import RunDir

COMPOSOME_THRESHOLD = 0.9
TRAITS = ("others_vs_self", "catalytic_out", "catalysed_in")
_TERMS = ("delta", "between", "within", "transmission", "innovation", "selection", "mean_fitness")


def _run(run: str | Path | RunDir) -> RunDir:
    return run if isinstance(run, RunDir) else RunDir(run)


def _table(run: RunDir, name: str) -> pl.DataFrame:
    return run.table_parts(name, TABLES[name])


# --------------------------------------------------------------------------- the network


def beta_matrix(run: str | Path | RunDir) -> np.ndarray:
    """The run's catalysis matrix ``beta[i, j]`` (how type j catalyses type i's joining)."""
    table = _table(_run(run), "beta")
    if table.is_empty():
        raise ValueError(f"{_run(run).path}: no beta table (is it a gard run with a first step?)")
    g = int(table["i"].max()) + 1
    beta = np.zeros((g, g))
    beta[table["i"].to_numpy(), table["j"].to_numpy()] = table["beta"].to_numpy()
    return beta


def mutual_catalysis(beta: np.ndarray) -> float:
    """Mutual-catalysis propensity ``sum(beta) / (N_G trace(beta))`` (Markovitch & Lancet 2012)."""
    beta = np.asarray(beta, dtype=float)
    if beta.ndim != 2 or beta.shape[0] != beta.shape[1]:
        raise ValueError(f"beta must be a square matrix, got shape {beta.shape}")
    return float(beta.sum() / (np.trace(beta) * beta.shape[0]))


def molecule_traits(beta: np.ndarray) -> pl.DataFrame:
    """Per type j: ``others_vs_self = log10(sum_{i!=j} beta_ij / beta_jj)``, ``catalytic_out =
    log10(sum_i beta_ij)`` and ``catalysed_in = log10(sum_k beta_jk)`` (logs: beta is lognormal)."""
    beta = np.asarray(beta, dtype=float)
    diag = np.diag(beta)
    out = beta.sum(axis=0)
    return pl.DataFrame({
        "type": np.arange(beta.shape[0], dtype=np.int32),
        "others_vs_self": np.log10((out - diag) / diag),
        "catalytic_out": np.log10(out),
        "catalysed_in": np.log10(beta.sum(axis=1)),
    })


def network_summary(run: str | Path | RunDir) -> pl.DataFrame:
    """One row: size of the network, its mutual-catalysis propensity, mean and median beta."""
    beta = beta_matrix(run)
    return pl.DataFrame({"n_types": [beta.shape[0]], "mutual_catalysis": [mutual_catalysis(beta)],
                         "mean_beta": [float(beta.mean())], "median_beta": [float(np.median(beta))]})


# --------------------------------------------------------------------------- compositions


def compositions(run: str | Path | RunDir) -> tuple[pl.DataFrame, np.ndarray]:
    """The splits (without their sparse lists) and their compositions as a dense matrix."""
    splits = _table(_run(run), "assemblies").sort("split_id")
    g = beta_matrix(run).shape[0]
    dense = np.zeros((splits.height, g))
    rows = np.repeat(np.arange(splits.height), splits["types"].list.len().to_numpy())
    dense[rows, splits["types"].explode().drop_nulls().to_numpy()] = splits["counts"].explode().drop_nulls().to_numpy()
    return splits.drop("types", "counts"), dense


def similarity_over_time(run: str | Path | RunDir, threshold: float = COMPOSOME_THRESHOLD) -> pl.DataFrame:
    """Per split: step, time, slot, generation, H to the parent split, and whether it is a composome."""
    splits = _table(_run(run), "assemblies").sort("split_id")
    columns = ("step", "split_id", "parent_id", "slot", "time", "generation", "similarity_to_parent")
    return splits.select(columns).with_columns(composome=pl.col("similarity_to_parent") > threshold)


def composomes_over_steps(run: str | Path | RunDir, threshold: float = COMPOSOME_THRESHOLD) -> pl.DataFrame:
    """Per step: splits, mean H to parent, and the share of splits that are composomes."""
    sim = similarity_over_time(run, threshold).filter(pl.col("similarity_to_parent").is_not_null())
    return sim.group_by("step").agg(
        splits=pl.len(), mean_similarity=pl.col("similarity_to_parent").mean(),
        composome_share=pl.col("composome").cast(pl.Float64).mean()).sort("step")


def compotypes(run: str | Path | RunDir, ks: range | list[int] = range(1, 11), threshold: float = COMPOSOME_THRESHOLD,
               seed: int = 0, max_samples: int = 2000,
               composition: tuple[pl.DataFrame, np.ndarray] | None = None) -> dict[str, Any]:
    """Compotypes: k-means clusters of the composome compositions, as the reference ``tgs_acluster``.

    Composomes are the splits whose H to their parent exceeds ``threshold``; their compositions
    are scaled to unit length (so Euclidean k-means follows cosine distance) and clustered for
    every k in ``ks``; the k with the best mean cosine silhouette wins (k = 1 scores the mean H
    between its members, as the reference does). At most ``max_samples`` composomes are clustered
    (a seeded sample; the rest stay untagged, -1) and silhouettes use up to 1,000 of them.
    Returns ``{"k", "scores", "tags", "centroids"}``:
    ``tags`` per split (compotype index, -1 for drift), ``centroids`` per compotype and type.
    ``composition``: the run's :func:`compositions`, when the caller has read them already.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    splits, dense = composition if composition is not None else compositions(run)
    sim = splits["similarity_to_parent"].fill_null(0.0).to_numpy()
    chosen = np.flatnonzero(sim > threshold)
    rng = np.random.default_rng(seed)
    if chosen.size > max_samples:
        chosen = np.sort(rng.choice(chosen, max_samples, replace=False))
    tags = np.full(splits.height, -1)
    empty = {"k": 0, "scores": pl.DataFrame(schema={"k": pl.Int64, "score": pl.Float64}),
             "tags": splits.select("split_id").with_columns(compotype=pl.lit(-1)),
             "centroids": pl.DataFrame(schema={"compotype": pl.Int64, "type": pl.Int64, "weight": pl.Float64})}
    if chosen.size == 0:
        return empty
    unit = dense[chosen] / np.linalg.norm(dense[chosen], axis=1, keepdims=True)
    scores, fits = [], {}
    for k in ks:
        if k > chosen.size or (k > 1 and k >= chosen.size):
            continue
        if k == 1:
            labels = np.zeros(chosen.size, dtype=int)
            score = float((unit @ unit.T).mean())
        else:
            labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(unit)
            if len(set(labels.tolist())) < 2:
                continue
            score = float(silhouette_score(unit, labels, metric="cosine", sample_size=min(chosen.size, 1000),
                                           random_state=seed))
        scores.append((k, score))
        fits[k] = labels
    best = max(scores, key=lambda ks_: ks_[1])[0]
    tags[chosen] = fits[best]
    centroids = np.stack([unit[fits[best] == c].mean(axis=0) for c in range(best)])
    cent_rows = [(c, t, float(centroids[c, t])) for c in range(best) for t in np.flatnonzero(centroids[c] > 0)]
    return {
        "k": best,
        "scores": pl.DataFrame(scores, schema={"k": pl.Int64, "score": pl.Float64}, orient="row"),
        "tags": splits.select("split_id", "step", "time").with_columns(compotype=pl.Series(tags)),
        "centroids": pl.DataFrame(cent_rows, schema={"compotype": pl.Int64, "type": pl.Int64, "weight": pl.Float64},
                                  orient="row"),
    }


# --------------------------------------------------------------------------- Price


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _step_genealogy(genealogy: pl.DataFrame, step: int) -> dict[str, np.ndarray]:
    """One step's molecules and who descends from whom, as arrays (one entry per molecule or link).

    Parents are the molecules of step ``step - 1`` in (slot, type) order, ``k`` numbering the
    molecules of one class; children those of step ``step`` in (slot, type, root) order. The
    ``j``-th inherited child rooted in class (ancestor, root) descends from that class's molecule
    ``j mod held``: the classes' children are dealt out to its molecules in turn.
    """
    before = genealogy.filter(pl.col("step") == step - 1).group_by("slot", "type").agg(pl.col("count").sum())
    after = genealogy.filter(pl.col("step") == step).sort("slot", "type", "root")
    if before.is_empty() or after.is_empty():
        raise ValueError(f"genealogy: no molecules recorded at step {step - 1} or {step}")
    before = before.sort("slot", "type")
    b_slot, b_type, held = (before[c].to_numpy().astype(np.int64) for c in ("slot", "type", "count"))
    a_slot, a_anc, a_type, a_root, a_count = (after[c].to_numpy().astype(np.int64)
                                              for c in ("slot", "ancestor", "type", "root", "count"))

    def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # (class, k) of every molecule
        cls = np.repeat(np.arange(len(counts)), counts)
        return cls, np.arange(len(cls)) - np.repeat(np.cumsum(counts) - counts, counts)

    p_cls, p_k = expand(held)
    c_cls, c_k = expand(a_count)
    # the parent class each child class is rooted in: (ancestor, root) among the sorted (slot, type)
    width = int(max(b_type.max(), a_type.max(), a_root.max())) + 1
    keys = b_slot * width + b_type  # increasing, because before is sorted by (slot, type)
    wanted = a_anc * width + np.maximum(a_root, 0)
    pos = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    missing = (a_root >= 0) & (a_count > 0) & ((keys[pos] != wanted) | (held[pos] == 0))
    if missing.any():
        r = int(np.argmax(missing))
        raise ValueError(f"genealogy step {step}: slot {a_slot[r]} has molecules rooted in type {a_root[r]} of slot "
                         f"{a_anc[r]}, which held none at step {step - 1}")
    inherited = a_root[c_cls] >= 0
    child = np.flatnonzero(inherited)
    root_cls = pos[c_cls[child]]  # parent class of each inherited child, in child order
    order = np.argsort(root_cls, kind="stable")
    first = np.searchsorted(root_cls[order], root_cls[order], side="left")
    turn = np.empty(len(child), dtype=np.int64)
    turn[order] = np.arange(len(child)) - first  # how many earlier children share the class
    parent = (np.cumsum(held) - held)[root_cls] + turn % held[root_cls]
    return {"p_slot": b_slot[p_cls], "p_type": b_type[p_cls], "p_k": p_k,
            "c_slot": a_slot[c_cls], "c_type": a_type[c_cls], "c_root": a_root[c_cls], "c_k": c_k,
            "link_child": child, "link_parent": parent}


def price_inputs(genealogy: pl.DataFrame, step: int, trait: np.ndarray) -> tuple[list, list, list]:
    """Parents, children and attributions (rows for :func:`analysis.price.price`) of one step.

    ``genealogy`` holds the rows of steps ``step - 1`` and ``step``; ``trait[type]`` is the
    molecules' trait (ints or Fractions give an exact decomposition). Ids: parents
    ``(slot, type, k)``, children ``("c", slot, type, root, k)``.
    """
    s = {k: v.tolist() for k, v in _step_genealogy(genealogy, step).items()}
    ztype = {t: _scalar(trait[t]) for t in set(s["p_type"]) | set(s["c_type"])}
    pids = list(zip(s["p_slot"], s["p_type"], s["p_k"], strict=True))
    parents = list(zip(pids, s["p_slot"], map(ztype.__getitem__, s["p_type"]), strict=True))
    cids = list(zip(itertools.repeat("c"), s["c_slot"], s["c_type"], s["c_root"], s["c_k"]))
    children = list(zip(cids, map(ztype.__getitem__, s["c_type"]), strict=True))
    attributions = [(cids[c], pids[p], 1) for c, p in zip(s["link_child"], s["link_parent"], strict=True)]
    return parents, children, attributions


def _price_frames(s: dict[str, np.ndarray], z: np.ndarray) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The same genealogy as :func:`price_inputs`, with row numbers for ids: price() indexes those in numpy."""
    n_p, n_c = len(s["p_type"]), len(s["c_type"])
    parents = pl.DataFrame({"id": np.arange(n_p), "group": s["p_slot"], "trait": z[s["p_type"]]})
    children = pl.DataFrame({"id": np.arange(n_c), "trait": z[s["c_type"]]})
    attributions = pl.DataFrame({"child": s["link_child"], "parent": s["link_parent"],
                                 "weight": np.ones(len(s["link_child"]), dtype=np.int64)})
    return parents, children, attributions


def price_step(run: str | Path | RunDir, step: int, trait: str = "others_vs_self") -> PriceTerms:
    """The multilevel Price terms of one step for one molecule trait (see the module docstring)."""
    z = _trait_values(run, trait)
    genealogy = _table(_run(run), "genealogy").filter(pl.col("step").is_in([step - 1, step]))
    return price(*_price_frames(_step_genealogy(genealogy, step), z))


def _trait_values(run: str | Path | RunDir, trait: str) -> np.ndarray:
    if trait not in TRAITS:
        raise ValueError(f"unknown trait {trait!r}; known: {', '.join(TRAITS)}")
    return molecule_traits(beta_matrix(run))[trait].to_numpy()


def selection_over_steps(run: str | Path | RunDir, traits: tuple[str, ...] | list[str] = TRAITS,
                         steps: list[int] | None = None, null: int = 0, seed: int = 0,
                         innovation_form: str = "immigration") -> pl.DataFrame:
    """Price terms per step and trait: delta = between + within + transmission + innovation.

    One row per (step, trait) with the terms, the residual of the identity, the counts, and with
    ``null > 0`` permutation z-scores of the between- and within-assembly terms (fitness
    shuffled among the step's molecules; :func:`analysis.price.permutation_null`).
    ``innovation_form``: as in :func:`analysis.price.price` (the two forms differ when molecules
    joined from the environment, and agree when every molecule has a parent); recorded in an
    ``innovation_form`` column.
    """
    run = _run(run)
    genealogy = _table(run, "genealogy")
    if genealogy.is_empty():
        raise ValueError(f"{run.path}: no genealogy recorded (run with gard.track_genealogy: true)")
    recorded = sorted(set(genealogy["step"].unique().to_list()))
    available = [s for s in recorded if s >= 1 and s - 1 in recorded]
    steps = available if steps is None else [s for s in steps if s in available]
    beta = beta_matrix(run)
    values = {t: molecule_traits(beta)[t].to_numpy() for t in traits if t in TRAITS}
    unknown = [t for t in traits if t not in TRAITS]
    if unknown:
        raise ValueError(f"unknown trait(s) {unknown}; known: {', '.join(TRAITS)}")
    rng = np.random.default_rng(seed)
    rows = []
    for step in steps:
        # who descends from whom is the same for every trait: only the trait column changes
        structure = _step_genealogy(genealogy.filter(pl.col("step").is_in([step - 1, step])), step)
        for trait, z in values.items():
            inputs = _price_frames(structure, np.asarray(z, dtype=float))
            terms = price(*inputs, innovation_form=innovation_form)
            row = {"step": step, "trait": trait, **{k: float(getattr(terms, k)) for k in _TERMS},
                   "residual": float(terms.check()), "n_parents": terms.n_parents, "n_children": terms.n_children,
                   "n_innovations": terms.n_innovations, "innovation_form": terms.innovation_form}
            if null:
                test = permutation_null(*inputs, n=null, rng=rng, innovation_form=innovation_form)
                row["between_z"] = test["between"]["z"]
                row["within_z"] = test["within"]["z"]
            rows.append(row)
    schema = {"step": pl.Int64, "trait": pl.String, **{k: pl.Float64 for k in _TERMS}, "residual": pl.Float64,
              "n_parents": pl.Int64, "n_children": pl.Int64, "n_innovations": pl.Int64, "innovation_form": pl.String}
    if null:
        schema |= {"between_z": pl.Float64, "within_z": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def timeline(run: str | Path | RunDir) -> pl.DataFrame:
    """Per step: model time at the step's last split, splits, events, deaths, mean assembly size."""
    return _table(_run(run), "timeline").sort("step")
