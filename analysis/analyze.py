"""Measure whole runs: the metric set of `culturesim analyze`, written as metrics.parquet.

The table is tidy (run_id, step, metric, value, plus the run's condition columns) so
runs and conditions concatenate and plot without reshaping. A metric that is undefined
for a step (fewer than two ideas, say) is left out rather than written as NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from analysis import diversity, dynamics
from analysis.embeddings import Embedder, embed_texts
from culturesim.store import (  # noqa: F401 (runs_under: re-exported)
    IDEAS_SCHEMA,
    RunDir,
    RunError,
    list_runs,
    population_ideas,
    runs_under,
    write_parquet,
)


def read_table(path: Path) -> pl.DataFrame:
    """One Parquet file of a run; a truncated or foreign one is a one-line RunError naming it."""
    try:
        return pl.read_parquet(path, glob=False)
    except Exception as exc:  # noqa: BLE001 - truncated, foreign, unreadable: all "this file"
        first = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise RunError(f"{path}: unreadable Parquet ({first})") from None


def run_ideas(run: RunDir) -> pl.DataFrame:
    """All the run's ideas (the compacted table, else its step parts, as RunDir.table_files finds them),
    each file read by :func:`read_table`, so that a bad file is named."""
    files = run.table_files("ideas")
    if isinstance(files, Path):
        return read_table(files)
    if not files:
        return pl.DataFrame(schema=IDEAS_SCHEMA)
    return pl.concat([read_table(f) for f in files], how="vertical")


def valid_ideas(run: RunDir) -> pl.DataFrame:
    """The population's ideas (culturesim.store.population_ideas), in step and agent order."""
    return population_ideas(run_ideas(run)).sort("step", "agent_id")


def _defined(fn: Callable[[], float]) -> float | None:
    try:
        value = float(fn())
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def step_metrics(texts: list[str], X: np.ndarray, *, resample_m: int | None, repeats: int,
                 rng: np.random.Generator) -> dict[str, float]:
    """The diversity measures of one step's ideas (those not already in dynamics.per_step)."""
    found = {
        "centroid_distance": _defined(lambda: diversity.centroid_distance(X)),
        "vendi_score": _defined(lambda: diversity.vendi_score(X)),
        "homogenization": _defined(lambda: diversity.homogenization(X)),
        "distinct_2": _defined(lambda: diversity.distinct_n(texts, n=2)),
        "compression_ratio": _defined(lambda: diversity.compression_ratio(texts)),
    }
    if len(texts) >= 2:
        clusters = diversity.clusters(X, rng=rng)
        found["cluster_count"] = float(clusters.count)
        found["cluster_entropy"] = float(clusters.entropy)
    if resample_m and len(texts) >= resample_m:
        sampled = diversity.resample(diversity.mean_pairwise_distance, X, m=resample_m, r=repeats, rng=rng)
        found[f"diversity_m{resample_m}"] = sampled.mean
        found[f"diversity_m{resample_m}_sd"] = sampled.std
    return {k: v for k, v in found.items() if v is not None}


SPLITS = ("model", "personality")  # idea columns a run's metrics can also be split by (--by)


def analyze_run(run: RunDir, embedder: Embedder, *, resample_m: int | None = None, repeats: int = 20,
                seed: int = 0, by: str | None = None,
                progress: Callable[[int, int], None] | None = None) -> pl.DataFrame:
    """All metrics of one run; also written to the run's metrics.parquet.

    ``progress(done, total)`` hears how far it is: the distinct texts embedded, then the
    steps measured (total = distinct texts + steps), for a bar or the app's "Measuring… n/m".

    With ``by`` (one of :data:`SPLITS`), the per-step measures are also taken within each
    value of that idea column (each model of a mixed population, say): those rows carry the
    value in a column named ``by``, the whole population's rows a null there."""
    if by is not None and by not in SPLITS:
        raise ValueError(f"--by {by!r}: metrics split by one of {', '.join(SPLITS)}")
    all_ideas = run_ideas(run)
    ideas = measured_ideas(run, population_ideas(all_ideas)).sort("step", "agent_id")
    rows: list[dict] = []
    if ideas.height:
        texts_all = ideas["text"].to_list()
        n_texts, n_steps = len(set(texts_all)), ideas["step"].n_unique()
        total = n_texts + n_steps
        tell = (lambda done, _of: progress(done, total)) if progress is not None else None
        X = embed_texts(texts_all, embedder, cache_dir=run.path / "embeddings", progress=tell)
        population = ideas
        # a text with no word in a TF-IDF vocabulary has no direction: count it, measure the rest
        keep = np.linalg.norm(X, axis=1) > 0
        if not keep.all():
            rows.append({"step": None, "metric": "unembeddable_ideas", "value": float((~keep).sum())})
            ideas, X = ideas.filter(pl.Series(keep)), X[keep]
        rng = np.random.default_rng(seed)
        for r in dynamics.per_step(ideas, X).iter_rows(named=True):
            rows.append({"step": r["step"], "metric": r["metric"], "value": float(r["value"])})
        steps = ideas["step"].to_numpy()
        for done, step in enumerate(np.unique(steps), start=1):
            mask = steps == step
            texts = ideas.filter(pl.col("step") == int(step))["text"].to_list()
            for metric, value in step_metrics(texts, X[mask], resample_m=resample_m, repeats=repeats,
                                              rng=rng).items():
                rows.append({"step": int(step), "metric": metric, "value": value})
            if progress is not None:
                progress(n_texts + done, total)
        traits = dynamics.text_traits(ideas).join(ideas.select("idea_id", "step"), on="idea_id")
        for r in traits.group_by("step").agg(pl.col("chars").mean(), pl.col("sentiment").mean()).iter_rows(named=True):
            rows.append({"step": r["step"], "metric": "mean_chars", "value": float(r["chars"])})
            rows.append({"step": r["step"], "metric": "mean_sentiment", "value": float(r["sentiment"])})
        for r in dynamics.surviving_lineages(all_ideas).iter_rows(named=True):
            rows.append({"step": r["step"], "metric": "surviving_lineages", "value": float(r["lineages"])})
        rows += kind_rows(run, population, embedder)
        if by is not None:
            split = split_rows(ideas, X, by, resample_m=resample_m, repeats=repeats, rng=rng)
    table = pl.DataFrame(rows, schema={"step": pl.Int64, "metric": pl.String, "value": pl.Float64})
    slope = _defined(lambda: dynamics.rate_of_change(table, "diversity"))
    if slope is not None:
        table = pl.concat([table, pl.DataFrame({"step": [None], "metric": ["diversity_slope"], "value": [slope]},
                                               schema=table.schema)])
    if by is not None:
        table = table.with_columns(pl.lit(None, dtype=pl.String).alias(by))
        if ideas.height:
            table = pl.concat([table, split.select(table.columns)])
    manifest = run.read_manifest()
    table = table.with_columns(
        pl.lit(run.run_id).alias("run_id"),
        pl.lit(manifest.get("name")).cast(pl.String).alias("name"),
        pl.lit(manifest.get("kind")).cast(pl.String).alias("kind"),
        pl.lit(embedder.name).alias("embedder"),
    ).select("run_id", "step", "metric", "value", "name", "kind", "embedder", *([by] if by else [])).sort(
        "step", "metric", nulls_last=True)
    table = with_conditions(table, run)
    write_parquet(run.path / "metrics.parquet", _merged(run.path / "metrics.parquet", table, embedder.name))
    return table


def _run_kind(run: RunDir):
    """The run's kind from the registry (so no kind is named here), or None when its manifest
    names none that can be loaded."""
    from culturesim.kinds import get_kind

    try:
        return get_kind(str(run.read_manifest().get("kind")))
    except (LookupError, ImportError, RuntimeError, TypeError, ValueError):
        return None


def measured_ideas(run: RunDir, ideas: pl.DataFrame) -> pl.DataFrame:
    """The ideas the generic measures read: those of the operations the run's kind declares
    (``Kind.measured_operations``), or all of them."""
    kind = _run_kind(run)
    operations = kind.measured_operations if kind is not None else None
    if operations is None or "operation" not in ideas.columns:
        return ideas
    return ideas.filter(pl.col("operation").is_in(list(operations)))


def kind_rows(run: RunDir, ideas: pl.DataFrame, embedder: Embedder) -> list[dict]:
    """The measures the run's kind adds to this set: ``run_metrics(ideas, embedder, cache_dir=...)``
    of its ``measures`` module, when it has one (asked of the registry, so no kind is named here).
    Rows (step, metric, value); a kind that cannot be loaded adds nothing."""
    kind = _run_kind(run)
    try:
        measures = kind.load_measures() if kind is not None else None
    except (LookupError, ImportError, RuntimeError, TypeError, ValueError):
        return []
    compute = getattr(measures, "run_metrics", None)
    if compute is None:
        return []
    return [{"step": r["step"], "metric": r["metric"], "value": float(r["value"])}
            for r in compute(ideas, embedder, cache_dir=run.path / "embeddings")]


def split_rows(ideas: pl.DataFrame, X: np.ndarray, by: str, *, resample_m: int | None, repeats: int,
               rng: np.random.Generator) -> pl.DataFrame:
    """The per-step measures within each value of the ideas' ``by`` column (step, metric,
    value, ``by``): the same measures as the whole population's, on that part of it."""
    rows: list[dict] = []
    values = ideas[by].cast(pl.String).fill_null("(none)").to_numpy()
    for value in sorted(set(values)):
        mask = values == value
        part, Xp = ideas.filter(pl.Series(mask)), X[mask]
        for r in dynamics.per_step(part, Xp).iter_rows(named=True):
            rows.append({"step": r["step"], "metric": r["metric"], "value": float(r["value"]), by: value})
        steps = part["step"].to_numpy()
        for step in np.unique(steps):
            texts = part.filter(pl.col("step") == int(step))["text"].to_list()
            for metric, v in step_metrics(texts, Xp[steps == step], resample_m=resample_m, repeats=repeats,
                                          rng=rng).items():
                rows.append({"step": int(step), "metric": metric, "value": v, by: value})
    return pl.DataFrame(rows, schema={"step": pl.Int64, "metric": pl.String, "value": pl.Float64, by: pl.String})


def whole_population(table: pl.DataFrame) -> pl.DataFrame:
    """The rows that measure the whole population (not one model or personality of it)."""
    for column in SPLITS:
        if column in table.columns:
            table = table.filter(pl.col(column).is_null())
    return table


def with_conditions(table: pl.DataFrame, run: RunDir) -> pl.DataFrame:
    """Add the run's swept parameter values (from its sweep's index) as columns, so a
    sweep's metrics group by condition without a join."""
    index_path = run.path.parent / "sweep.parquet"
    if not index_path.is_file():
        return table
    index = read_table(index_path).filter(pl.col("run_id") == run.run_id)
    if index.is_empty():
        return table
    params = index.drop("run_id", "status", "error", "seed")
    return table.with_columns(pl.lit(params[c][0]).alias(c) for c in params.columns)


def _merged(path: Path, table: pl.DataFrame, embedder: str) -> pl.DataFrame:
    """Replace this embedder's rows and keep the others': measuring a run in a second
    space (TF-IDF next to MiniLM, say) must not erase the first. An existing file that cannot be read
    (truncated by a crash, say) holds nothing to keep: it is replaced, never a reason to stop re-analysis."""
    if not path.is_file():
        return table
    try:
        kept = read_table(path)
    except RunError:
        return table
    if "embedder" not in kept.columns:  # not a metrics table of ours: nothing to keep either
        return table
    kept = kept.filter(pl.col("embedder") != embedder)
    return pl.concat([kept, table], how="diagonal_relaxed") if kept.height else table
