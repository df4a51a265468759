"""Measurements of finished or running runs, as plain functions over numpy and polars.

embeddings (texts to cached vectors), diversity, dynamics (per-step change, attractors,
lineage, text traits), stats (effect sizes and tests), price (Price equation), exposure
(the AI-exposure study's measures) and analyze (the metric set of `culturesim analyze`).
Runs are read through ``culturesim.store``; nothing here imports the app.
"""
