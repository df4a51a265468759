"""Autotelic agents (after LMA3, Colas et al. 2023): agents on a network invent goals with
an LLM, pursue them in TextWorld CookingWorld games, judge their success and share goals.

This module only describes the kind; the registry imports it, nothing heavier.
"""

from culturesim.kinds.spec import Kind

KIND = Kind(
    name="autotelic",
    description="agents that invent, pursue, judge and share goals in a text world",
    schema="culturesim.kinds.autotelic.schema:AutotelicScenario",
    model="culturesim.kinds.autotelic.model:AutotelicModel",
    tables="culturesim.kinds.autotelic.tables",
    measures="culturesim.kinds.autotelic.measures",
    report="culturesim.kinds.autotelic.report:report",
    view="culturesim.kinds.autotelic.view",
    measured_operations=("imagine",),
)
