"""Schema of the ``exposure`` kind: AI-idea exposure worlds (Ashkinaze et al. 2024).

Participants write Alternate Uses Task ideas after seeing examples, some written by
earlier participants of their chain and some drawn from a fixed pool of AI ideas. The
defaults are the paper's design: five items, five conditions (control 0 AI of 6; low 2
and high 4 AI, each disclosed and undisclosed), seven chains per item and condition.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from culturesim.personalities import registry
from culturesim.scenario import (
    KeyPath,
    LLMSpec,
    PathStr,
    ScenarioBase,
    Strict,
    check_template,
    did_you_mean,
)

Count = Annotated[int, Field(strict=True, ge=0, le=100)]

# Short human seed ideas per item, written for this toolkit (the paper's own seeds are
# not redistributable); a scenario replaces them under exposure.seed_ideas.
SEED_IDEAS: dict[str, list[str]] = {
    "tire": ["Use it as a planter for flowers.", "Make a swing by hanging it from a tree.",
             "Cut it into sandal soles.", "Stack a few to build a garden wall.",
             "Use it as a dog bed with a cushion inside.", "Paint it and make a target for ball games."],
    "pants": ["Tie the legs and use them as a bag.", "Stuff them to make a scarecrow.",
              "Cut them into cleaning rags.", "Use them as a windsock on a pole.",
              "Turn the pockets into small plant pouches.", "Make a pillow cover from the fabric."],
    "shoe": ["Use it as a small flower pot.", "Keep coins hidden in the toe.",
             "Use it as a doorstop.", "Hammer a nail with the heel.",
             "Hang it on a wall as a key holder.", "Use it to measure distance by steps."],
    "table": ["Turn it upside down to make a sandbox.", "Use it as a shelter during a storm.",
              "Use the tabletop as a whiteboard.", "Make it a stage for a puppet show.",
              "Use it as a headboard for a bed.", "Cut the legs off and make a floor desk."],
    "bottle": ["Make a bird feeder from it.", "Use it as a rolling pin.",
               "Fill it with sand to make a doorstop.", "Cut it into a funnel.",
               "Use it as a vase for a single flower.", "Freeze water in it to make an ice pack."],
}

PARTICIPANT_PROMPT = (
    "What is a surprising use for a {item}?\n{header}Here are ideas others wrote:\n{examples}\n\n"
    "Rank these ideas from most to least creative, and write one new idea of your own.\n"
    "Answer in JSON with two fields: \"idea\", your new idea in one sentence, and \"ranking\", "
    "the numbers of the ideas above, each once, most creative first."
)
DISCLOSURE_HEADER = "Some of the ideas below were written by other people and some by an A.I. (ChatGPT).\n"
# The paper's question before the trials (a slider from 0 to 100), asked of each participant once.
SELF_RATING_PROMPT = (
    "Before you start: guess how creative you are compared to other people. Complete the sentence "
    "\"I am more creative than __% of humans\". Answer in JSON with one field, \"percent\", a number "
    "from 0 to 100 in steps of 5."
)


class ConditionSpec(Strict):
    ai: Count = 0
    disclosed: bool = False


def default_conditions() -> dict[str, ConditionSpec]:
    return {
        "control": ConditionSpec(ai=0),
        "low_disclosed": ConditionSpec(ai=2, disclosed=True),
        "low_undisclosed": ConditionSpec(ai=2),
        "high_disclosed": ConditionSpec(ai=4, disclosed=True),
        "high_undisclosed": ConditionSpec(ai=4),
    }


class PoolColumns(Strict):
    """Which CSV columns hold the item and the idea text (the paper's pool file names them
    ``aut_item`` and ``response``)."""

    item: Annotated[str, Field(min_length=1)] = "item"
    text: Annotated[str, Field(min_length=1)] = "idea"


class AIPoolSpec(Strict):
    """The fixed pool of AI ideas per item: made once at the start, never changed."""

    size: Annotated[int, Field(strict=True, ge=1, le=100_000)] = 20
    file: PathStr | None = Field(None, description="CSV of AI ideas (columns item, idea, or aut_item, response, "
                                                   "or as named in columns); replaces generation")
    path: PathStr | None = Field(None, description="the same as file (the name the paper's pool file goes by)")
    columns: PoolColumns | None = Field(None, description="the file's item and text columns, when not "
                                                          "item/idea or aut_item/response")
    llm: LLMSpec = Field(default_factory=lambda: LLMSpec(temperature=0.8, max_tokens=48))
    persona: str = "You are ChatGPT, a helpful and creative AI assistant."
    prompt: str = "What is a surprising use for a {item}? Answer with one creative idea in one sentence."

    @model_validator(mode="after")
    def _one_file(self) -> AIPoolSpec:
        if self.file and self.path and self.file != self.path:
            raise ValueError("give the pool file once: ai_pool.file or ai_pool.path, not both")
        if self.columns is not None and not (self.file or self.path):
            raise ValueError("ai_pool.columns names the columns of ai_pool.file, which is not given")
        return self

    @property
    def source_file(self) -> str | None:
        return self.file or self.path


class SelfRatingSpec(Strict):
    """Where each participant's self-rated creativity (the paper's moderator) comes from.

    ``ask`` (default): the participant answers the paper's question ("I am more creative
    than __% of humans", 0-100) once, before its first trial, in a conversation of its own
    with its persona; the trials do not repeat it. ``personality``: the scenario gives the
    value per personality (``by_personality``) and the persona states it. ``none``: no rating,
    and no moderator in the report."""

    source: Literal["ask", "personality", "none"] = "ask"
    prompt: str = SELF_RATING_PROMPT
    by_personality: dict[str, Annotated[int, Field(strict=True, ge=0, le=100)]] = Field(default_factory=dict)
    max_tokens: Annotated[int, Field(strict=True, ge=4, le=256)] = 16


class ExposureSpec(Strict):
    items: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: ["tire", "pants", "shoe", "table", "bottle"], min_length=1)
    conditions: dict[str, ConditionSpec] = Field(default_factory=default_conditions, min_length=1)
    chains: Annotated[int, Field(strict=True, ge=1, le=10_000)] = 7
    examples: Annotated[int, Field(strict=True, ge=1, le=50)] = 6
    seed_ideas: dict[str, list[Annotated[str, Field(min_length=1)]]] = Field(default_factory=dict)
    ai_pool: AIPoolSpec = Field(default_factory=AIPoolSpec)
    trials_per_participant: Annotated[int, Field(strict=True, ge=1, le=100)] = Field(
        1, description="trials each participant does, one per item, items in a random order (the paper: "
                       "every item); 1: each participant writes once")
    self_rating: SelfRatingSpec = Field(default_factory=SelfRatingSpec)
    prompt: str = PARTICIPANT_PROMPT
    disclosure_header: str = DISCLOSURE_HEADER

    @model_validator(mode="after")
    def _templates(self) -> ExposureSpec:
        check_template(self.prompt, {"item", "header", "examples"})
        check_template(self.ai_pool.prompt, {"item"})
        return self


class ExposurePopulation(Strict):
    mix: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=lambda: {"neutral": 1.0}, min_length=1)
    personalities: dict[str, str] = Field(default_factory=dict)


class ExposureScenario(ScenarioBase):
    kind: Literal["exposure"]
    steps: Annotated[int, Field(strict=True, ge=1, le=100_000)] = Field(
        description="participants per chain (trials)")
    population: ExposurePopulation = Field(default_factory=ExposurePopulation)
    llm: LLMSpec = Field(default_factory=LLMSpec)
    exposure: ExposureSpec = Field(default_factory=ExposureSpec)

    def seeds_for(self, item: str) -> list[str]:
        return self.exposure.seed_ideas.get(item) or SEED_IDEAS.get(item, [])

    def cross_checks(self) -> list[tuple[KeyPath, str]]:
        known = registry(self.population.personalities)
        problems: list[tuple[KeyPath, str]] = []
        for name in self.population.mix:
            if name not in known:
                problems.append((("population", "mix", name), f"unknown personality {name!r}"
                                 f"{did_you_mean(name, known)}; known: {', '.join(sorted(known))}"))
        spec = self.exposure
        for name, condition in spec.conditions.items():
            if condition.ai > spec.examples:
                problems.append((("exposure", "conditions", name, "ai"),
                                 f"{condition.ai} AI examples but only {spec.examples} examples in all"))
        for item in spec.items:
            if not self.seeds_for(item):
                problems.append((("exposure", "items"), f"no seed ideas for item {item!r}: add them under "
                                 f"exposure.seed_ideas.{item} (built-in seeds exist for {', '.join(SEED_IDEAS)})"))
        k = spec.trials_per_participant
        if k > len(spec.items):
            problems.append((("exposure", "trials_per_participant"), f"{k} trials per participant but only "
                             f"{len(spec.items)} item(s): each trial is a different item"))
        elif self.steps % k:
            problems.append((("exposure", "trials_per_participant"), f"steps ({self.steps}) must be a multiple "
                             f"of trials_per_participant ({k}): participants join chains in cohorts of {k} steps"))
        rating = spec.self_rating
        if rating.source == "personality":
            lacking = sorted(set(self.population.mix) - set(rating.by_personality))
            if lacking:
                problems.append((("exposure", "self_rating", "by_personality"),
                                 f"no self-rating for personality(ies) {lacking} of population.mix"))
        for item in spec.seed_ideas:
            if item not in spec.items:
                problems.append((("exposure", "seed_ideas", item), f"{item!r} is not one of exposure.items"
                                 f"{did_you_mean(item, spec.items)}"))
        return problems

    @property
    def n_participants(self) -> int:
        """Participants, each doing ``trials_per_participant`` trials (one per slot of a chain)."""
        return self.population_size // self.exposure.trials_per_participant

    @property
    def population_size(self) -> int:
        spec = self.exposure
        return len(spec.items) * len(spec.conditions) * spec.chains * self.steps

