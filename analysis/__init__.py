"""Measurements of finished or running runs (diversity, dynamics, selection).

Reads runs through ``culturesim.store``; see DESIGN.md for the layering. The metrics
themselves arrive with their own issue.
"""
