"""The exposure kind's own per-step table: which examples (AI or human ideas) each
participant was shown. Model, measures and view take the schema from here."""

import polars as pl

EXAMPLES_SCHEMA = {
    "idea_id": pl.String,
    "position": pl.Int64,
    "example_id": pl.String,
    "example_source": pl.String,
    "rank": pl.Int64,
}

TABLES = {"examples": EXAMPLES_SCHEMA}
