"""Mate choice in genetic programming (after Simões et al.): symbolic regression where
individuals carry an evolved ideal-mate preference, against tournament and random mating.

This module only describes the kind; the registry imports it, nothing heavier.
"""

from culturesim.kinds.spec import Kind

KIND = Kind(
    name="matechoice",
    description="GP symbolic regression with evolved mate preferences",
    schema="culturesim.kinds.matechoice.schema:MateChoiceScenario",
    model="culturesim.kinds.matechoice.model:MateChoiceModel",
    tables="culturesim.kinds.matechoice.tables",
    measures="culturesim.kinds.matechoice.measures",
    report="culturesim.kinds.matechoice.report:report",
    view="culturesim.kinds.matechoice.view",
)
