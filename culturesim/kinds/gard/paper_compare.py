"""Paper vs this run for gard: per run, the network's mutual-catalysis propensity (pmc), its
composome diversity and (selection runs) its selection response; across runs, how those go
together, beside Markovitch & Lancet's abstract (:mod:`.paper`). The comparison and its
printing are every kind's: :mod:`culturesim.kinds.paper_figures`.

The paper's unit is a network: an ensemble of lognormal beta matrices, each simulated. Ours
is a run, so a folder of runs that differ in their network (a sweep over ``gard.beta_seed``
or ``gard.sigma``) is an ensemble. Per run:

* ``pmc``: :func:`.measures.mutual_catalysis` of the run's beta (the authors' ``pmc_beta_v10``);
* ``compotypes``: composome diversity, the number of compotypes that :func:`.measures.compotypes`
  finds (k-means on the composomes, k by cosine silhouette, as the authors' ``tgs_acluster``;
  0 when no split is a composome): the abstract's "diversity of composomes";
* ``selection_response`` (selection runs only): the share of the run's splits whose composition
  is within the composome threshold of the target (H > 0.9), minus that share in the neutral
  ``population`` run(s) under the same folder that have the very same beta matrix (their mean):
  the authors' ``biased_gard_v10`` compares the time spent in the target compotype with and
  without the bias on one network, and this is that contrast for a population. A selection
  run without such a twin has no response (said in the table).

Across runs: Spearman's rho between pmc and compotypes over the neutral runs (lineage and
population modes; a selection run's diversity is pulled toward its target), and between pmc
and the response over the selection runs that have one. Its 95% interval is Fisher's z with
Bonett & Wright's (2000) variance for Spearman's rho, ``(1 + rho^2 / 2) / (n - 3)``: closed
form, so the report is the same on every machine and needs no seed; with only a handful of
networks a bootstrap over runs would mostly resample ties. It needs n >= 4 and |rho| < 1
(atanh is infinite at 1); otherwise rho is printed alone. The mean response over networks
gets a Student t interval.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from culturesim.kinds import paper_figures
from culturesim.kinds.gard.measures import COMPOSOME_THRESHOLD, beta_matrix, compositions, compotypes, mutual_catalysis
from culturesim.kinds.gard.paper import AUTHORS_DEFAULTS, FIGURES, PAPER, PaperFigure
from culturesim.kinds.gard.tables import TABLES
from culturesim.kinds.paper_figures import OURS_SCHEMA, ours_frame, ours_row
from culturesim.store import RunDir

__all__ = ["OURS_SCHEMA", "RUN_SCHEMA", "compare", "our_figures", "print_paper_comparison", "run_table",
           "spearman_ci", "target_share"]

Z95 = 1.959963984540054
NEUTRAL = ("lineage", "population")
TOO_FEW = "not computed: needs ≥3 runs with different networks (sweep gard.beta_seed or gard.sigma)"

RUN_SCHEMA = {"run_id": pl.String, "mode": pl.String, "network": pl.String, "pmc": pl.Float64,
              "splits": pl.Int64, "composome_share": pl.Float64, "compotypes": pl.Int64,
              "target_share": pl.Float64, "neutral_share": pl.Float64, "selection_response": pl.Float64,
              "note": pl.String}


def spearman_ci(x: Sequence[float], y: Sequence[float]) -> tuple[float | None, float | None, float | None, str]:
    """``(rho, low, high, note)``: Spearman's rho of x and y with its Fisher-z 95% interval
    (module docstring). rho is None, with the reason in ``note``, for fewer than 3 distinct x
    or a constant y; the interval is None for n < 4 or |rho| = 1."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size != y.size:
        raise ValueError(f"x and y differ in length ({x.size} and {y.size})")
    if np.unique(x).size < 3:
        return None, None, None, TOO_FEW
    if np.unique(y).size < 2:
        return None, None, None, "not computed: the same value in every run"
    rho = float(stats.spearmanr(x, y).statistic)
    n = x.size
    if n < 4 or abs(rho) >= 1.0:
        return rho, None, None, f"n = {n}; no CI ({'n < 4' if n < 4 else '|rho| = 1'})"
    half = Z95 * np.sqrt((1.0 + rho**2 / 2.0) / (n - 3))
    z = np.arctanh(rho)
    return rho, float(np.tanh(z - half)), float(np.tanh(z + half)), f"n = {n}; Fisher z CI"


def target_share(dense: np.ndarray, target: np.ndarray, threshold: float = COMPOSOME_THRESHOLD) -> float | None:
    """The share of compositions (rows of ``dense``) with cosine H to ``target`` above ``threshold``."""
    if dense.shape[0] == 0:
        return None
    norms = np.linalg.norm(dense, axis=1) * np.linalg.norm(target)
    h = np.divide(dense @ target, norms, out=np.zeros(dense.shape[0]), where=norms > 0)
    return float((h > threshold).mean())


def _target(run: RunDir, n_types: int) -> np.ndarray | None:
    table = run.table_parts("target", TABLES["target"])
    if table.is_empty():
        return None
    target = np.zeros(n_types)
    target[table["type"].to_numpy()] = table["count"].to_numpy()
    return target


def run_table(runs: Sequence[RunDir], seed: int = 0) -> pl.DataFrame:
    """One row per gard run (:data:`RUN_SCHEMA`; the measures in the module docstring).

    ``network`` is a short digest of the beta matrix, so runs sharing one network show it;
    ``seed`` seeds the k-means of the compotypes. A run with no step finished yet (no network
    recorded, as in a sweep still running) has a row saying so and no figures; a folder with
    only such runs is a ValueError."""
    info, waiting = [], []
    for run in runs:
        mode = (run.read_manifest().get("scenario") or {}).get("gard", {}).get("mode", "lineage")
        try:
            beta = beta_matrix(run)
        except ValueError:
            waiting.append({"run_id": run.run_id, "mode": mode, "note": "no step finished yet: left out"})
            continue
        splits, dense = compositions(run)
        info.append({"run": run, "mode": mode, "beta": beta, "dense": dense, "splits": splits,
                     "network": hashlib.sha1(np.ascontiguousarray(beta).tobytes()).hexdigest()[:8]})
    rows = []
    for r in info:
        sim = r["splits"]["similarity_to_parent"].drop_nulls()
        found = compotypes(r["run"], ks=list(AUTHORS_DEFAULTS["ks"]), seed=seed, composition=(r["splits"], r["dense"]))
        row = {"run_id": r["run"].run_id, "mode": r["mode"], "network": r["network"],
               "pmc": mutual_catalysis(r["beta"]), "splits": r["splits"].height,
               "composome_share": float((sim > COMPOSOME_THRESHOLD).mean()) if sim.len() else None,
               "compotypes": found["k"], "target_share": None, "neutral_share": None, "selection_response": None,
               "note": ""}
        if r["mode"] == "selection":
            target = _target(r["run"], r["beta"].shape[0])
            twins = [t for t in info if t["mode"] == "population" and t["beta"].shape == r["beta"].shape
                     and np.array_equal(t["beta"], r["beta"])]
            if target is None:
                row["note"] = "no target recorded"
            else:
                row["target_share"] = target_share(r["dense"], target)
                shares = [s for s in (target_share(t["dense"], target) for t in twins) if s is not None]
                if not shares:
                    row["note"] = "no population run with this network here: no response"
                elif row["target_share"] is not None:
                    row["neutral_share"] = float(np.mean(shares))
                    row["selection_response"] = row["target_share"] - row["neutral_share"]
                    row["note"] = f"vs {len(shares)} population run(s)"
        rows.append(row)
    if not rows:
        raise ValueError(f"no gard run with a finished step among {', '.join(w['run_id'] for w in waiting)}")
    return pl.DataFrame(rows + waiting, schema=RUN_SCHEMA)


def our_figures(table: pl.DataFrame) -> pl.DataFrame:
    """Our figures, keyed as :data:`.paper.FIGURES`, from a :func:`run_table`."""
    table = table.filter(pl.col("pmc").is_not_null())
    neutral = table.filter(pl.col("mode").is_in(NEUTRAL))
    rho, low, high, note = spearman_ci(neutral["pmc"].to_list(), neutral["compotypes"].to_list())
    rows = [ours_row("composomes_vs_pmc", f"{neutral.height} neutral run(s)", rho, low, high, note)]
    selected = table.filter(pl.col("selection_response").is_not_null())
    responses = selected["selection_response"].to_numpy()
    label = f"{selected.height} selection run(s)"
    if responses.size == 0:
        why = ("no selection run here (gard.mode: selection)" if table.filter(pl.col("mode") == "selection").is_empty()
               else "no selection run has a population run with the same network here")
        rows.append(ours_row("selection_response", None, note=f"not computed: {why}"))
        rows.append(ours_row("selection_response_vs_pmc", None, note=f"not computed: {why}"))
        return ours_frame(rows)
    mean = float(responses.mean())
    if responses.size >= 2 and responses.std(ddof=1) > 0:
        half = stats.t.ppf(0.975, responses.size - 1) * responses.std(ddof=1) / np.sqrt(responses.size)
        rows.append(ours_row("selection_response", label, mean, mean - half, mean + half,
                             f"{int((responses > 0).sum())} of {responses.size} positive; t CI"))
    else:
        rows.append(ours_row("selection_response", label, mean,
                             note=f"{int((responses > 0).sum())} of {responses.size} positive; no CI"))
    rho, low, high, note = spearman_ci(selected["pmc"].to_list(), responses.tolist())
    rows.append(ours_row("selection_response_vs_pmc", label, rho, low, high, note))
    return ours_frame(rows)


def compare(ours: pl.DataFrame, figures: Sequence[PaperFigure] = FIGURES) -> pl.DataFrame:
    """Our figures against the paper's (:func:`culturesim.kinds.paper_figures.compare`)."""
    return paper_figures.compare(ours, figures)


def print_paper_comparison(table: pl.DataFrame, console: Any = None) -> pl.DataFrame:
    """The report's hook: our figures from the run table, compared and printed."""
    return paper_figures.show(our_figures(table), FIGURES, PAPER, console=console)
