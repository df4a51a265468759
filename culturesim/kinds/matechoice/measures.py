"""The mate-choice study table: success rates and final diversities per mating mode.

Reads one ``matechoice`` run, a folder of runs, or a sweep folder (``sweep.parquet``
indexes its runs by swept parameters). Runs are grouped by problem, mutation type and
mutation rate (and any other swept parameter except the mode); within a group, each
measure is compared across modes with a Kruskal-Wallis test and with pairwise two-sided
Mann-Whitney U tests whose p-values are Holm-corrected over the group's pairs (per
measure), as in Simoes et al. (2023). The unit of replication is the run.

Success is per run: whether any generation held an individual within the success
threshold on every training case. The other measures are those of the last generation.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats as sps

from analysis.stats import holm
from culturesim.store import RunDir, list_runs

MODES = ("tournament", "random", "pimp")
MEASURES = ("success", "best_train", "best_test", "unique_structures", "mean_tree_edit_distance",
            "unique_fitness", "fitness_entropy", "mean_output_distance", "mean_size", "mean_depth",
            "pref_mean_size", "pref_single_node_share")
_INDEX_COLUMNS = {"run_id", "cell", "replicate", "seed", "status", "error"}
_FIXED = {"matechoice.mode", "matechoice.problem.name", "matechoice.mutation", "matechoice.mutation_rate"}


def _runs(path: Path) -> tuple[list[tuple[RunDir, dict]], list[str]]:
    """The finished matechoice runs under ``path`` and the extra swept keys to group by."""
    if (path / "manifest.json").is_file():
        found = [(RunDir(path), RunDir(path).read_manifest())]
        extra: list[str] = []
    elif (path / "sweep.parquet").is_file():
        index = pl.read_parquet(path / "sweep.parquet")
        found = [(RunDir(path / r), RunDir(path / r).read_manifest()) for r in index["run_id"]
                 if RunDir(path / r).exists()]
        extra = [c for c in index.columns if c not in _INDEX_COLUMNS and c not in _FIXED]
    elif path.is_dir():
        found = list_runs(path)
        extra = []
    else:
        raise ValueError(f"{path}: no such run or sweep folder")
    found = [(r, m) for r, m in found if m.get("kind") == "matechoice" and m.get("status") == "done"]
    if not found:
        raise ValueError(f"{path}: no finished matechoice run here")
    return found, extra


def _lookup(scenario: dict, dotted: str) -> Any:
    node: Any = scenario
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return json.dumps(node, sort_keys=True) if isinstance(node, (list, dict)) else node


def run_table(path: str | Path) -> pl.DataFrame:
    """One row per finished run: its grouping parameters and its final measures."""
    found, extra = _runs(Path(path))
    rows = []
    for run, manifest in found:
        gens = pl.read_parquet(run.path / "generations.parquet").sort("step")
        last = gens.row(gens.height - 1, named=True)
        scenario = manifest["scenario"]
        spec = scenario["matechoice"]
        row = {"run_id": run.run_id, "problem": spec["problem"]["name"], "mutation": spec["mutation"],
               "mutation_rate": float(spec["mutation_rate"]), "mode": spec["mode"],
               **{key: _lookup(scenario, key) for key in extra}}
        row.update({m: last[m] for m in MEASURES if m != "success"})
        row["success"] = float(gens["success"].any())
        row["generations"] = int(last["step"])
        rows.append(row)
    return pl.DataFrame(rows, strict=False)


def _kruskal(samples: list[np.ndarray]) -> float | None:
    samples = [s for s in samples if s.size]
    if len(samples) < 2 or sum(s.size for s in samples) <= len(samples):
        return None
    if len(np.unique(np.concatenate(samples))) == 1:
        return 1.0  # every value equal: no evidence of a difference (scipy gives nan)
    return float(sps.kruskal(*samples).pvalue)


def _mann_whitney(a: np.ndarray, b: np.ndarray) -> float | None:
    if not a.size or not b.size:
        return None
    return float(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def report_table(path: str | Path) -> pl.DataFrame:
    """The study table of the runs under ``path`` (:func:`table_of_runs` of :func:`run_table`)."""
    return table_of_runs(run_table(path))


def group_keys(runs: pl.DataFrame) -> list[str]:
    """The columns of a :func:`run_table` that name a group (an instance): all but the run,
    the mode and the measures."""
    return [c for c in runs.columns if c not in {"run_id", "mode", "generations", *MEASURES}]


def table_of_runs(runs: pl.DataFrame) -> pl.DataFrame:
    """Long table: one row per group x measure x mode.

    Columns: the group keys (problem, mutation, mutation_rate, and any other swept key),
    ``measure``, ``mode``, ``n`` (runs with a value), ``mean``, ``median``, ``sd``,
    ``kruskal_p`` (across the group's modes; null with fewer than two modes or no
    replicates) and ``p_vs_<mode>`` for each mode: the Holm-corrected Mann-Whitney p
    against that mode (null against itself). For ``success`` the mean is the success rate.
    """
    keys = group_keys(runs)
    modes = [m for m in MODES if m in runs["mode"].unique().to_list()]
    modes += sorted(set(runs["mode"].unique().to_list()) - set(modes))
    out = []
    for group_key, group in runs.group_by(keys, maintain_order=True):
        group_values = dict(zip(keys, group_key, strict=True))
        for measure in MEASURES:
            samples = {}
            for mode in modes:
                col = group.filter(pl.col("mode") == mode)[measure].cast(pl.Float64, strict=False)
                samples[mode] = col.drop_nulls().filter(col.drop_nulls().is_finite()).to_numpy()
            present = [m for m in modes if samples[m].size]
            kw = _kruskal([samples[m] for m in present])
            pairs = list(itertools.combinations(present, 2))
            raw = [_mann_whitney(samples[a], samples[b]) for a, b in pairs]
            tested = [i for i, p in enumerate(raw) if p is not None and min(samples[pairs[i][0]].size,
                                                                               samples[pairs[i][1]].size) > 1]
            adjusted = dict(zip([pairs[i] for i in tested], holm([raw[i] for i in tested]), strict=True))
            for mode in modes:
                if mode not in group["mode"].to_list():
                    continue
                v = samples[mode]
                row = {**group_values, "measure": measure, "mode": mode, "n": int(v.size),
                       "mean": float(v.mean()) if v.size else None,
                       "median": float(np.median(v)) if v.size else None,
                       "sd": float(v.std(ddof=1)) if v.size > 1 else None, "kruskal_p": kw}
                for other in modes:
                    p = adjusted.get((mode, other), adjusted.get((other, mode)))
                    row[f"p_vs_{other}"] = None if p is None else float(p)
                out.append(row)
    schema = {**{k: runs.schema[k] for k in keys}, "measure": pl.String, "mode": pl.String, "n": pl.Int64,
              "mean": pl.Float64, "median": pl.Float64, "sd": pl.Float64, "kruskal_p": pl.Float64,
              **{f"p_vs_{m}": pl.Float64 for m in modes}}
    return pl.DataFrame(out, schema=schema)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def print_report(table: pl.DataFrame, console: Any = None) -> None:
    """One rich table per group: measures as rows, per mode the mean (median), then the
    Kruskal-Wallis p and the Holm-corrected pairwise p-values (* below 0.05)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    modes = [c.removeprefix("p_vs_") for c in table.columns if c.startswith("p_vs_")]
    keys = table.columns[: table.columns.index("measure")]
    for group_key, group in table.group_by(keys, maintain_order=True):
        title = ", ".join(f"{k}={v}" for k, v in zip(keys, group_key, strict=True))
        present = [m for m in modes if m in group["mode"].to_list()]
        n = {m: group.filter(pl.col("mode") == m)["n"].max() for m in present}
        out = Table(title=f"mate choice: {title}")
        out.add_column("measure", no_wrap=True)
        for m in present:
            out.add_column(f"{m} (n={n[m]})\nmean (median)", justify="right")
        out.add_column("Kruskal p", justify="right")
        pairs = list(itertools.combinations(present, 2))
        for a, b in pairs:
            out.add_column(f"{a} vs {b}\nHolm p", justify="right")
        for measure, rows in group.group_by("measure", maintain_order=True):
            by_mode = {r["mode"]: r for r in rows.iter_rows(named=True)}
            cells = []
            for m in present:
                r = by_mode.get(m)
                cells.append("-" if r is None else f"{_fmt(r['mean'])} ({_fmt(r['median'])})")
            kw = rows["kruskal_p"][0]
            cells.append(_fmt(kw, 2) + ("*" if kw is not None and kw < 0.05 else ""))
            for a, b in pairs:
                p = by_mode[a][f"p_vs_{b}"] if a in by_mode else None
                cells.append(_fmt(p, 2) + ("*" if p is not None and p < 0.05 else ""))
            out.add_row(measure[0] if isinstance(measure, tuple) else measure, *cells)
        console.print(out)
