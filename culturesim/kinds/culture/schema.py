"""The culture kind's scenario: who speaks how, what they see of their neighbours, and the
prompts behind create, transform and combine."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from culturesim.agents.memory import MemorySpec, placeholder_problems
from culturesim.kinds.culture import llm_culture_presets as presets
from culturesim.llm.shape import SchemaError, check_schema
from culturesim.personalities import registry
from culturesim.scenario import (
    KeyPath,
    LLMSpec,
    NetworkSpec,
    PopulationSpec,
    ScenarioBase,
    Strict,
    check_template,
    did_you_mean,
    template_fields,
)


class SocialSpec(Strict):
    """What an agent sees of its neighbours, and with which transmission biases."""

    sample: Literal["all", "k"] = "all"
    k: Annotated[int, Field(strict=True, ge=1, le=10_000)] = 3
    bias: Literal["none", "content", "prestige", "conformity"] = "none"
    prestige: Literal["degree", "copying"] = "degree"
    strength: Annotated[float, Field(ge=0, le=100)] = 1.0
    content_keywords: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    similarity_threshold: Annotated[float, Field(gt=0, le=1)] = 0.3
    include_own: bool = True
    order: Literal["drawn", "ids"] = Field(
        "drawn", description="the order ideas are shown in: as drawn (by the bias, with the seed; the "
                             "favoured first), or by the holder's agent id (LLM-Culture lists its "
                             "neighbours so on complete and ring networks)")
    max_chars: Annotated[int, Field(strict=True, ge=50, le=1_000_000)] = 2000


PLACEHOLDERS = {
    "create": set(),
    # {history} and {received_history} only with memory on (checked in cross_checks)
    "transform": {"ideas", "own_idea", "n_ideas", "history", "received_history"},
    "combine": {"ideas", "own_idea", "n_ideas", "history", "received_history"},
}


class PromptsSpec(Strict):
    create: str = "Write a short, original story in two or three sentences."
    transform: str = (
        "Here is a story you heard:\n{ideas}\n\nRetell it as a new short story of two or three "
        "sentences. Write only the story."
    )
    combine: str = (
        "Here are stories told by people around you:\n{ideas}\n\nCombine them into one new short "
        "story of two or three sentences. Write only the story."
    )

    @field_validator("create", "transform", "combine")
    @classmethod
    def _placeholders_known(cls, value: str, info) -> str:
        return check_template(value, PLACEHOLDERS[info.field_name])


class PromptsOverride(Strict):
    create: str | None = None
    transform: str | None = None
    combine: str | None = None

    @field_validator("create", "transform", "combine")
    @classmethod
    def _placeholders_known(cls, value: str | None, info) -> str | None:
        return None if value is None else check_template(value, PLACEHOLDERS[info.field_name])


class GroupSpec(Strict):
    """Per-personality overrides, so mixed populations can do different things."""

    operation: Literal["transform", "combine"] | None = None
    prompts: PromptsOverride = Field(default_factory=PromptsOverride)


class PresetsSpec(Strict):
    """Texts taken by name from a published library instead of written out (today LLM-Culture's,
    culturesim/kinds/culture/llm_culture_presets.py): verbatim, and recorded in the resolved
    scenario. A preset replaces any text given for the same operation or personality."""

    library: Literal["llm_culture"] = Field(
        "llm_culture", description="whose texts: llm_culture (Perez et al. 2024, flowersteam/LLM-Culture)")
    prompts: dict[Literal["create", "transform", "combine"], Annotated[str, Field(min_length=1)]] = Field(
        default_factory=dict,
        description="operation -> preset name: create from their prompt_init (e.g. 'story teller'), "
                    "transform and combine from their prompt_update (e.g. CombineTwo); the stories "
                    "follow the update text directly, as {ideas}")
    personalities: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="their personalities to add to population.personalities under their own names "
                    "(e.g. Empty, Creative, NotCreative, 'Secular society')")


class CultureSpec(Strict):
    update: Literal["synchronous", "asynchronous", "chain"] = "synchronous"
    operation: Literal["transform", "combine"] = "combine"
    seed_ideas: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    prompts: PromptsSpec = Field(default_factory=PromptsSpec)
    social: SocialSpec = Field(default_factory=SocialSpec)
    groups: dict[str, GroupSpec] = Field(default_factory=dict, description="overrides per personality")
    agents: dict[int, GroupSpec] = Field(default_factory=dict, description="overrides per agent id (win over groups)")
    reply_schema: dict[str, Any] | None = Field(
        None, description="a JSON Schema (an object) every reply must satisfy; the idea is its reply_field")
    reply_field: str | None = Field(None, description="the reply_schema property that holds the idea text")
    personality_in: Literal["system", "user"] = Field(
        "system", description="where the personality goes: the system message (default), or the head "
                              "of the user message, joined by a newline, with no system message "
                              "(as LLM-Culture's code does)")
    ideas_format: Literal["numbered", "python_list"] = Field(
        "numbered", description="how {ideas} shows several ideas: numbered lines '1. ...' (one idea "
                                "bare), or python_list: str(['0: ...', '1: ...']) always, as "
                                "LLM-Culture's code appends them")
    transform_shows: Literal["one", "all"] = Field(
        "one", description="what transform shows: one received idea chosen by social (default), "
                           "or all that social lets through, the model choosing among them "
                           "(as LLM-Culture's update prompts ask)")
    presets: PresetsSpec | None = Field(
        None, description="prompts and personalities taken verbatim by name from a library (llm_culture)")





def reply_shape_problems(spec: CultureSpec) -> list[tuple[KeyPath, str]]:
    """culture.reply_schema must be a valid JSON Schema of an object whose reply_field is a
    required string property (the idea); each problem names the key inside the schema."""
    here = ("culture", "reply_schema")
    if spec.reply_schema is None:
        return [(("culture", "reply_field"), "reply_field is set but there is no reply_schema")] \
            if spec.reply_field is not None else []
    try:
        check_schema(spec.reply_schema)
    except SchemaError as exc:
        return [((*here, *exc.path), str(exc))]
    props = spec.reply_schema.get("properties") or {}
    field = spec.reply_field
    if field is None:
        return [(here, f"reply_schema needs reply_field: the property that holds the idea "
                       f"(one of {sorted(props)})" if props else "reply_schema has no properties to hold the idea")]
    if field not in props:
        return [(("culture", "reply_field"), f"{field!r} is not a property of reply_schema"
                 f"{did_you_mean(field, list(props))}; properties: {sorted(props)}")]
    if props[field].get("type") != "string":
        return [((*here, "properties", field), f"the idea property {field!r} must have \"type\": \"string\"")]
    if field not in (spec.reply_schema.get("required") or []):
        return [(here, f"reply_schema must list {field!r} under \"required\"")]
    return []


def preset_problems(chosen: PresetsSpec | None) -> list[tuple[KeyPath, str]]:
    """Preset names the library does not have, each with its key and the names it has."""
    if chosen is None:
        return []
    here = ("culture", "presets")
    problems = []
    for operation, name in chosen.prompts.items():
        table = presets.PROMPTS_BY_OPERATION[operation]
        if name not in table:
            problems.append(((*here, "prompts", operation), f"no {chosen.library} prompt {name!r} for "
                             f"{operation}{did_you_mean(name, table)}; known: {', '.join(table)}"))
    for i, name in enumerate(chosen.personalities):
        if name not in presets.PERSONALITIES:
            problems.append(((*here, "personalities", i), f"no {chosen.library} personality {name!r}"
                             f"{did_you_mean(name, presets.PERSONALITIES)}; known: "
                             f"{', '.join(presets.PERSONALITIES)}"))
    return problems


class CultureScenario(ScenarioBase):
    kind: Literal["culture"]
    steps: Annotated[int, Field(strict=True, ge=1, le=1_000_000)]
    population: PopulationSpec
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    llm: LLMSpec = Field(default_factory=LLMSpec)
    culture: CultureSpec = Field(default_factory=CultureSpec)
    memory: MemorySpec = Field(default_factory=MemorySpec)

    @model_validator(mode="after")
    def _apply_presets(self) -> CultureScenario:
        """Write the named presets' texts into culture.prompts and population.personalities,
        so everything downstream (and the manifest) sees the verbatim text. Unknown names are
        left for cross_checks, which names their key."""
        chosen = self.culture.presets
        if chosen is None:
            return self
        for operation, name in chosen.prompts.items():
            if name in presets.PROMPTS_BY_OPERATION[operation]:
                setattr(self.culture.prompts, operation, presets.template(operation, name))
        found = {n: presets.PERSONALITIES[n].text for n in chosen.personalities if n in presets.PERSONALITIES}
        if found:
            self.population.personalities = {**self.population.personalities, **found}
        return self

    def templates(self) -> list[tuple[KeyPath, str | None]]:
        """Every prompt template of the scenario, with its key path."""
        found: list[tuple[KeyPath, str | None]] = []
        c = self.culture
        blocks = [(("culture", "prompts"), c.prompts)]
        blocks += [(("culture", "groups", name, "prompts"), g.prompts) for name, g in c.groups.items()]
        blocks += [(("culture", "agents", str(i), "prompts"), a.prompts) for i, a in c.agents.items()]
        for where, prompts in blocks:
            found += [((*where, op), getattr(prompts, op)) for op in PLACEHOLDERS]
        return found

    def cross_checks(self) -> list[tuple[KeyPath, str]]:
        """Checks that span blocks; done after validation so each names its own key."""
        known = registry(self.population.personalities)
        listing = ", ".join(sorted(known))
        problems = self.population.unknown_personalities()
        for name in self.culture.groups:
            if name not in known:
                problems.append((("culture", "groups", name), f"{name!r} is not a personality"
                                 f"{did_you_mean(name, known)}; known: {listing}"))
        problems.extend(reply_shape_problems(self.culture))
        problems.extend(preset_problems(self.culture.presets))
        for agent_id in self.culture.agents:
            if not 0 <= agent_id < self.population.size:
                problems.append((("culture", "agents", str(agent_id)), f"no agent {agent_id}; agent ids "
                                 f"run from 0 to population.size - 1 = {self.population.size - 1}"))
        problems += placeholder_problems(self.memory, self.templates(), template_fields)
        return problems
