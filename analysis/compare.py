"""Compare the conditions of a sweep: effect sizes of a per-run summary, and mixed-model slopes.

One place computes what both the app's Compare page and ``culturesim compare`` show, so the
browser and the terminal give the same numbers for the same sweep:

- **effects**: each run summarised by one number (a metric at its last step, its mean over
  steps, or a run-level metric); for each swept parameter, every value against the baseline
  value by :func:`analysis.stats.compare_conditions` (difference of means with bootstrap CI,
  Cliff's delta, permutation p, Holm-adjusted), pooling over the other parameters of a grid;
- **slopes**: the metric's change per step in each condition from a mixed model with a random
  intercept per run (:func:`analysis.stats.mixed_slopes`), with a Wald 95% CI, and each
  condition's slope difference from the baseline's, with its CI, p and Holm-adjusted p
  (``diff_p_holm``: the conditions of one parameter against its baseline are one family of
  tests, as in the effects table's ``p_holm``).

The baseline is one ``parameter=value``; the parameters it does not name keep their first value
(in natural order: numbers as numbers) as baseline. Resampling draws from a fixed seed, so the
same sweep gives the same table every time, in the app and the CLI alike.

The functions take frames (the sweep's index and its runs' metrics) so the app can read them
through its own guarded reader; :func:`read_sweep` reads them from a folder for the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats as sps

SUMMARIES = {"last": "value at the last step", "mean": "mean over steps", "run": "run-level value (no step)"}
N_RESAMPLES = 2000
SEED = 0
# sweep.parquet's own columns; every other column is a swept parameter
INDEX_COLUMNS = ("run_id", "cell", "replicate", "seed", "status", "error")
METRICS_SCHEMA = {"run_id": pl.String, "step": pl.Int64, "metric": pl.String, "value": pl.Float64,
                  "embedder": pl.String}


class CompareError(ValueError):
    """Input that cannot be compared, said in one line the user can act on."""


@dataclass(frozen=True)
class Tables:
    """What a comparison shows: the per-run values, effect sizes and slopes, and the baseline used."""

    per_run: pl.DataFrame
    effects: pl.DataFrame
    slopes: pl.DataFrame
    baselines: dict[str, str]


# ------------------------------------------------------------------------------ conditions

def swept_columns(index: pl.DataFrame) -> list[str]:
    return [c for c in index.columns if c not in INDEX_COLUMNS]


def levels(index: pl.DataFrame, param: str) -> list[str]:
    """A parameter's values in natural order (numbers as numbers), as strings."""
    uniq = index[param].drop_nulls().unique().to_list()
    try:
        return [str(v) for v in sorted(uniq)]
    except TypeError:
        return sorted(str(v) for v in uniq)


def conditions(index: pl.DataFrame) -> list[str]:
    """Every "parameter=value" a baseline can be, parameters in index order."""
    return [f"{p}={v}" for p in swept_columns(index) for v in levels(index, p)]


def baselines_for(index: pl.DataFrame, baseline: str | None) -> dict[str, str]:
    """parameter -> baseline value: the one ``baseline`` names, the first value for the others."""
    chosen = {p: levels(index, p)[0] for p in swept_columns(index) if levels(index, p)}
    if baseline:
        key, sep, value = baseline.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in chosen:
            raise CompareError(f"baseline {baseline!r} must be key=value with key a swept parameter "
                               f"({', '.join(chosen) or 'none'})")
        if value not in levels(index, key):
            raise CompareError(f"baseline {baseline!r} matches no condition; {key} takes "
                               f"{', '.join(levels(index, key))}")
        chosen[key] = value
    return chosen


# ------------------------------------------------------------------------------ tables

def per_run(index: pl.DataFrame, metrics: pl.DataFrame, metric: str, summary: str = "last") -> pl.DataFrame:
    """run_id, the swept parameters, value: one row per measured run."""
    if summary not in SUMMARIES:
        raise CompareError(f"summary {summary!r} is not one of {', '.join(SUMMARIES)}")
    part = metrics.filter(pl.col("metric") == metric)
    if summary == "run":
        part = part.filter(pl.col("step").is_null())
    else:
        part = part.filter(pl.col("step").is_not_null())
        if summary == "last":
            part = part.filter(pl.col("step") == pl.col("step").max().over("run_id"))
    values = part.group_by("run_id").agg(pl.col("value").mean())
    if values.is_empty():
        raise CompareError(f"no {SUMMARIES[summary]} for metric {metric!r}")
    return index.select("run_id", *swept_columns(index)).join(values, on="run_id", how="inner").sort("run_id")


def effect_sizes(frame: pl.DataFrame, baselines: dict[str, str]) -> pl.DataFrame:
    """compare_conditions for each swept parameter against its baseline value."""
    from analysis.stats import compare_conditions

    rows = []
    for param in [c for c in frame.columns if c not in ("run_id", "value")]:
        sub = frame.select("run_id", pl.col(param).cast(pl.String).alias("condition"), "value").drop_nulls()
        if sub["condition"].n_unique() < 2:
            continue
        baseline = baselines[param]
        try:
            table = compare_conditions(sub, value="value", condition="condition", baseline=baseline,
                                       group="run_id", rng=np.random.default_rng(SEED), n_boot=N_RESAMPLES,
                                       n_permutations=N_RESAMPLES)
        except ValueError as exc:
            rows.append(pl.DataFrame({"parameter": [param], "baseline": [baseline], "note": [str(exc)]}))
            continue
        rows.append(table.with_columns(pl.lit(param).alias("parameter"), pl.lit(baseline).alias("baseline"),
                                       pl.lit(None, pl.String).alias("note")))
    return _first(rows, ["parameter", "baseline", "condition"])


def slopes(index: pl.DataFrame, metrics: pl.DataFrame, metric: str, baselines: dict[str, str],
           confidence: float = 0.95) -> pl.DataFrame:
    """Per swept parameter: each condition's slope over steps (random intercept per run), its
    difference from the baseline's slope, both with Wald CIs, from one fit per parameter."""
    from analysis.stats import mixed_slopes

    steps = metrics.filter((pl.col("metric") == metric) & pl.col("step").is_not_null()
                           & pl.col("value").is_finite())
    steps = steps.group_by("run_id", "step").agg(pl.col("value").mean())
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    rows = []
    for param in swept_columns(index):
        sub = (index.select("run_id", pl.col(param).cast(pl.String).alias("condition"))
               .join(steps, on="run_id", how="inner").drop_nulls())
        if sub["condition"].n_unique() < 2:
            continue
        baseline = baselines[param]
        try:
            fit = mixed_slopes(sub, value="value", step="step", condition="condition", group="run_id",
                               baseline=baseline if baseline in sub["condition"].to_list() else None)
        except (ValueError, np.linalg.LinAlgError) as exc:
            rows.append(pl.DataFrame({"parameter": [param], "baseline": [baseline], "note": [str(exc)]}))
            continue
        if "slope_diff" not in fit.columns:
            fit = fit.with_columns(*(pl.lit(None, pl.Float64).alias(c)
                                     for c in ("slope_diff", "diff_se", "diff_z", "diff_p")))
        fit = fit.with_columns(pl.Series("diff_p_holm", _holm_where_finite(fit["diff_p"]), pl.Float64))
        order = {v: i for i, v in enumerate(levels(index, param))}
        fit = fit.with_columns(
            pl.lit(param).alias("parameter"), pl.lit(baseline).alias("baseline"),
            (pl.col("slope") - z * pl.col("se")).alias("ci_low"), (pl.col("slope") + z * pl.col("se")).alias("ci_high"),
            (pl.col("slope_diff") - z * pl.col("diff_se")).alias("diff_ci_low"),
            (pl.col("slope_diff") + z * pl.col("diff_se")).alias("diff_ci_high"),
            pl.lit(None, pl.String).alias("note"),
        ).sort(pl.col("condition").replace_strict(order, default=len(order), return_dtype=pl.Int64))
        rows.append(fit.select("parameter", "baseline", "condition", "slope", "se", "ci_low", "ci_high", "p_value",
                               "slope_diff", "diff_ci_low", "diff_ci_high", "diff_p", "diff_p_holm",
                               pl.col("n_groups").alias("n_runs"), "n_obs", "converged", "note"))
    return _first(rows, ["parameter", "baseline", "condition"])


def _holm_where_finite(p: pl.Series) -> list[float | None]:
    """Holm over the p-values that exist: the baseline's own row has none (null), and a slope
    difference with zero standard error has none (NaN); both stay out of the family and keep
    their value, so one undefined test does not void the others."""
    from analysis.stats import holm

    values = p.cast(pl.Float64).to_list()
    tested = [i for i, v in enumerate(values) if v is not None and np.isfinite(v)]
    adjusted = holm([values[i] for i in tested])
    out = list(values)
    for i, a in zip(tested, adjusted, strict=True):
        out[i] = float(a)
    return out


def _first(rows: list[pl.DataFrame], first: list[str]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame()
    out = pl.concat(rows, how="diagonal_relaxed")
    return out.select([c for c in first if c in out.columns] + [c for c in out.columns if c not in first])


def compare_tables(index: pl.DataFrame, metrics: pl.DataFrame, metric: str, *, summary: str = "last",
                   baseline: str | None = None) -> Tables:
    """The comparison of a sweep from its index and its runs' metrics (one embedder's)."""
    if not swept_columns(index):
        raise CompareError("this sweep varies no parameter (replicates only): nothing to compare")
    if metrics.is_empty():
        raise CompareError("no run of this sweep is measured yet")
    names = sorted(set(metrics["metric"].to_list()))
    if metric not in names:
        raise CompareError(f"unknown metric {metric!r}; measured: {', '.join(names)}")
    chosen = baselines_for(index, baseline)
    frame = per_run(index, metrics, metric, summary)
    return Tables(per_run=frame, effects=effect_sizes(frame, chosen), slopes=slopes(index, metrics, metric, chosen),
                  baselines=chosen)


def default_metric(names: list[str]) -> str:
    return "diversity" if "diversity" in names else sorted(names)[0]


def default_embedder(names: list[str]) -> str:
    return "minilm" if "minilm" in names else sorted(names)[0]


# ------------------------------------------------------------------------------ from a folder

def is_sweep_dir(path: Path) -> bool:
    return (path / "sweep.json").is_file() or (path / "sweep.parquet").is_file()


def read_sweep(path: str | Path) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """A sweep folder's index, its measured runs' whole-population metrics, and its unmeasured runs."""
    from analysis.analyze import whole_population

    folder = Path(path)
    if not folder.is_dir() or not is_sweep_dir(folder):
        raise CompareError(f"{folder}: not a sweep folder (no sweep.json or sweep.parquet; "
                           "make one with culturesim sweep)")
    runs = sorted(p.name for p in folder.iterdir() if (p / "manifest.json").is_file())
    index_path = folder / "sweep.parquet"
    index = pl.read_parquet(index_path) if index_path.is_file() else pl.DataFrame({"run_id": runs})
    index = index.filter(pl.col("run_id").is_in(runs))
    frames, unmeasured = [], []
    for rid in index["run_id"].to_list():
        metrics_path = folder / rid / "metrics.parquet"
        if not metrics_path.is_file():
            unmeasured.append(rid)
            continue
        frames.append(normalised(whole_population(pl.read_parquet(metrics_path)), rid))
    metrics = pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame(schema=METRICS_SCHEMA)
    return index, metrics, unmeasured


def normalised(m: pl.DataFrame, run_id: str) -> pl.DataFrame:
    """One run's metrics.parquet in the columns compared: run_id, step, metric, value, embedder."""
    return m.select(pl.lit(run_id).alias("run_id"), pl.col("step").cast(pl.Int64), "metric",
                    pl.col("value").cast(pl.Float64),
                    (pl.col("embedder") if "embedder" in m.columns else pl.lit("?")).cast(pl.String).alias("embedder"))


def compare_sweep(path: str | Path, metric: str | None = None, *, summary: str = "last", embedder: str | None = None,
                  baseline: str | None = None) -> tuple[Tables, list[str], str, str]:
    """:func:`compare_tables` on a sweep folder: the tables, the unmeasured runs left out, and
    the metric and embedder used (the defaults when not given: diversity, MiniLM where measured)."""
    index, metrics, unmeasured = read_sweep(path)
    if metrics.is_empty():
        raise CompareError(f"{path}: the runs of this sweep are not measured yet: run culturesim analyze {path}")
    embedders = sorted(set(metrics["embedder"].to_list()))
    embedder = embedder or default_embedder(embedders)
    if embedder not in embedders:
        raise CompareError(f"{path}: no run measured with embedder {embedder!r}; measured: {', '.join(embedders)}")
    metrics = metrics.filter(pl.col("embedder") == embedder)
    metric = metric or default_metric(sorted(set(metrics["metric"].to_list())))
    return compare_tables(index, metrics, metric, summary=summary, baseline=baseline), unmeasured, metric, embedder
