"""Cultural evolution in populations of LLM agents (LLM-Culture, Perez et al. 2024).

Agents with personalities on a network create, transform or combine the stories they hear
from their neighbours, with social-learning biases; every idea keeps its parents.

This module only describes the kind; the registry imports it, nothing heavier.
"""

from culturesim.kinds.spec import Kind

KIND = Kind(
    name="culture",
    description="LLM populations on a network that create, transform and combine ideas",
    schema="culturesim.kinds.culture.schema:CultureScenario",
    model="culturesim.kinds.culture.model:CultureModel",
    tables="culturesim.kinds.culture.tables",
    measures="culturesim.kinds.culture.measures",
    report="culturesim.kinds.culture.report:report",
    view="culturesim.kinds.culture.view",
    importers={"llm-culture": "culturesim.kinds.culture.importer:import_llm_culture"},
    shows_ideas=True,
    prompt_presets="culturesim.kinds.culture.prompts:PRESETS",
)
