"""AI-idea exposure (after Ashkinaze et al. 2024): chains of participants answer the
Alternate Uses Task after seeing examples, some written by an AI, with or without a label.

This module only describes the kind; the registry imports it, nothing heavier.
"""

from culturesim.kinds.spec import Kind

KIND = Kind(
    name="exposure",
    description="how seeing AI ideas changes a population's ideas (Alternate Uses Task)",
    schema="culturesim.kinds.exposure.schema:ExposureScenario",
    model="culturesim.kinds.exposure.model:ExposureModel",
    tables="culturesim.kinds.exposure.tables",
    measures="culturesim.kinds.exposure.measures",
    report="culturesim.kinds.exposure.report:report",
    view="culturesim.kinds.exposure.view",
    shows_ideas=True,
)
