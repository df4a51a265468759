"""The GARD kind's own per-step tables (beside the core's ideas and prompts, which it leaves empty).

The model writes them, analysis and the app read them: both take the schemas from here,
never from the model."""

import polars as pl

ASSEMBLIES_SCHEMA = {
    "step": pl.Int64, "split_id": pl.Int64, "parent_id": pl.Int64, "slot": pl.Int64, "replaced": pl.Int64,
    "time": pl.Float64, "birth_time": pl.Float64, "generation": pl.Int64, "size": pl.Int64,
    "types": pl.List(pl.Int32), "counts": pl.List(pl.Int32), "similarity_to_parent": pl.Float64,
    "gain": pl.Float64,
}

GENEALOGY_SCHEMA = {"step": pl.Int64, "slot": pl.Int64, "ancestor": pl.Int64, "type": pl.Int32, "root": pl.Int32,
                    "count": pl.Int32}

TIMELINE_SCHEMA = {"step": pl.Int64, "time": pl.Float64, "splits": pl.Int64, "events": pl.Int64, "deaths": pl.Int64,
                   "mean_size": pl.Float64}

BETA_SCHEMA = {"i": pl.Int32, "j": pl.Int32, "beta": pl.Float64}

TARGET_SCHEMA = {"type": pl.Int32, "count": pl.Float64}

TABLES = {"assemblies": ASSEMBLIES_SCHEMA, "genealogy": GENEALOGY_SCHEMA, "timeline": TIMELINE_SCHEMA,
          "beta": BETA_SCHEMA, "target": TARGET_SCHEMA}
