"""Schema of the ``autotelic`` kind: agents that invent, pursue and share goals in CookingWorld.

Restates LMA3 (Colas, Teodorescu, Oudeyer, Yuan and Côté 2023, "Augmenting Autotelic Agents with
Large Language Models") for a population: a language model relabels what an agent's trajectory
achieved, imagines new goals from the ones it masters and rewards the goal it pursued; agents on
a network send each other goals every few episodes. The ablations of LMA3 are switches here:
``goal_generator: false`` (relabelled goals only), ``chain_of_thought: false`` (answers without
reasoning first) and ``random_goals: true`` (known goals drawn uniformly, not by competence).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from culturesim.scenario import (
    KeyPath,
    LLMSpec,
    NetworkSpec,
    PathStr,
    PopulationSpec,
    ScenarioBase,
    Strict,
)

Weight = Annotated[float, Field(ge=0, le=1_000)]
Tokens = Annotated[int, Field(strict=True, ge=1, le=32768)] | None


class GameSpec(Strict):
    """The difficulty of the CookingWorld games (the flags of ``tw-make tw-cooking``)."""

    recipe: Annotated[int, Field(strict=True, ge=1, le=5)] = Field(2, description="ingredients in the recipe")
    take: Annotated[int, Field(strict=True, ge=0, le=5)] = Field(1, description="ingredients to find")
    go: Literal[1, 6, 9, 12] = Field(6, description="rooms")
    open: bool = True
    cook: bool = True
    cut: bool = True
    drop: bool = False
    count: Annotated[int, Field(strict=True, ge=1, le=100)] = Field(
        1, description="distinct games; episode k of every agent plays game k mod count")
    cache_dir: PathStr | None = Field(None, description="where generated games are kept "
                                  "(default: $CULTURESIM_CACHE_DIR or ~/.cache/culturesim/cookingworld)")


class SourcesSpec(Strict):
    """Where an episode's goal comes from, as weights over the sources available to the agent then."""

    own: Weight = 0.5
    social: Weight = 0.25
    imagine: Weight = 0.25

    @model_validator(mode="after")
    def _some_weight(self) -> SourcesSpec:
        if self.own + self.social + self.imagine <= 0:
            raise ValueError("the weights must not all be zero")
        return self


class MaxTokensSpec(Strict):
    """Per-call token caps; unset means llm.max_tokens. Chain-of-thought replies need more."""

    imagine: Tokens = None
    relabel: Tokens = None
    reward: Tokens = None


class AutotelicSpec(Strict):
    episodes_per_step: Annotated[int, Field(strict=True, ge=1, le=1000)] = 1
    max_actions: Annotated[int, Field(strict=True, ge=1, le=500)] = Field(
        12, description="commands per episode (max steps of an episode)")
    sources: SourcesSpec = Field(default_factory=SourcesSpec)
    share_every: Annotated[int, Field(strict=True, ge=1, le=100_000)] = Field(
        2, description="episodes between goal sharing (shared at the end of a step)")
    share_max: Annotated[int, Field(strict=True, ge=0, le=1000)] = Field(
        3, description="mastered goals an agent sends each time (most competent first)")
    transmission: Literal["text", "text+subgoals", "text+trajectory"] = "text+subgoals"
    goal_generator: bool = True
    chain_of_thought: bool = True
    random_goals: bool = False
    competence_window: Annotated[int, Field(strict=True, ge=1, le=1000)] = Field(
        4, description="competence is the success rate of a goal's last this-many pursuits")
    mastery: Annotated[float, Field(gt=0, le=1)] = Field(0.5, description="competence at which a goal is mastered")
    max_relabels: Annotated[int, Field(strict=True, ge=1, le=50)] = 5
    shown_goals: Annotated[int, Field(strict=True, ge=1, le=200)] = Field(
        8, description="goals shown to the goal generator (mastered and received, each)")
    observation_chars: Annotated[int, Field(strict=True, ge=20, le=10_000)] = Field(
        120, description="characters of the game's reply kept per command in the trajectory shown")
    skip_verbs: list[str] = Field(default_factory=lambda: ["look", "inventory", "examine"],
                                  description="commands exploration does not draw")
    max_tokens: MaxTokensSpec = Field(default_factory=MaxTokensSpec)


class AutotelicScenario(ScenarioBase):
    kind: Literal["autotelic"]
    steps: Annotated[int, Field(strict=True, ge=1, le=1_000_000)] = Field(
        description="steps; each agent plays autotelic.episodes_per_step episodes per step")
    population: PopulationSpec
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    llm: LLMSpec = Field(default_factory=LLMSpec)
    game: GameSpec = Field(default_factory=GameSpec)
    autotelic: AutotelicSpec = Field(default_factory=AutotelicSpec)

    def cross_checks(self) -> list[tuple[KeyPath, str]]:
        problems = self.population.unknown_personalities()
        if self.game.take > self.game.recipe:
            problems.append((("game", "take"), f"{self.game.take} ingredients to find but the recipe has "
                             f"only {self.game.recipe} (game.recipe)"))
        sources = self.autotelic.sources
        if not self.autotelic.goal_generator and sources.own + sources.social <= 0:
            problems.append((("autotelic", "sources"), "with goal_generator: false the goals come from own "
                             "and social; give one of them a weight above zero"))
        return problems
