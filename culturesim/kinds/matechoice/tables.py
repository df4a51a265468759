"""The matechoice kind's own per-step tables: one row per generation, and (when
``record.individuals`` is on) one per individual. Model, measures and view take the
schemas from here."""

import polars as pl

GENERATIONS_SCHEMA = {
    "step": pl.Int64,
    "best_train": pl.Float64,
    "median_train": pl.Float64,
    "best_test": pl.Float64,
    "median_test": pl.Float64,
    "success": pl.Boolean,
    "n_success": pl.Int64,
    "best_success": pl.Boolean,
    "unique_structures": pl.Int64,
    "mean_tree_edit_distance": pl.Float64,
    "unique_fitness": pl.Int64,
    "fitness_entropy": pl.Float64,
    "mean_output_distance": pl.Float64,
    "mean_fitness": pl.Float64,
    "mean_size": pl.Float64,
    "mean_depth": pl.Float64,
    "best_size": pl.Int64,
    "pref_mean_size": pl.Float64,
    "pref_mean_depth": pl.Float64,
    "pref_single_node_share": pl.Float64,
}

INDIVIDUALS_SCHEMA = {
    "step": pl.Int32,
    "individual_id": pl.Int64,  # step * population + slot
    "slot": pl.Int32,
    "parent1": pl.Int64,
    "parent2": pl.Int64,
    "elite": pl.Boolean,
    "fitness": pl.Float64,
    "test_error": pl.Float64,
    "size": pl.Int32,
    "depth": pl.Int32,
    "genome": pl.String,
    "preference": pl.String,
}

TABLES = {"generations": GENERATIONS_SCHEMA, "individuals": INDIVIDUALS_SCHEMA}
