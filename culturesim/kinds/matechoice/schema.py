"""Schema of the ``matechoice`` kind: GP symbolic regression with evolved mate preferences.

Restates the design of Simoes, Lourenco and Machado, "All You Need Is Sex for Diversity"
(EuroGP 2023) and "On the Dynamics of Mating Preferences in Genetic Programming" (2025):
each individual carries a solution tree and an ideal-mate tree; under PIMP the first
parent picks, among ``candidates`` others, the one nearest its ideal. ``steps`` is the
number of generations bred after the random initial population (generation 0).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from culturesim.kinds.matechoice.gp.primitives import FUNCTIONS
from culturesim.scenario import KeyPath, NetworkSpec, PathStr, ScenarioBase, Strict, did_you_mean

Rate = Annotated[float, Field(ge=0, le=1)]
Depth = Annotated[int, Field(strict=True, ge=0, le=100)]


class ConstantsSpec(Strict):
    """Ephemeral random constants: normal draws N(a, b), uniform U[a, b]; none for no constants."""

    kind: Literal["none", "normal", "uniform"]
    a: float = 0.0
    b: float = 1.0

    @model_validator(mode="after")
    def _sane(self) -> ConstantsSpec:
        if self.kind == "normal" and self.b <= 0:
            raise ValueError("b (the standard deviation) must be > 0 for normal constants")
        if self.kind == "uniform" and self.b < self.a:
            raise ValueError("b must be >= a for uniform constants")
        return self


class CSVSpec(Strict):
    path: Annotated[PathStr, Field(min_length=1)]
    target: Annotated[str, Field(min_length=1)]
    inputs: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None, description="input columns; default every column but the target")
    test_path: PathStr | None = Field(None, description="a CSV of test cases with the same columns")
    test_fraction: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.0, description="without test_path: share of rows held out (0: test on the training rows)")


class ProblemSpec(Strict):
    name: Literal["koza1", "nguyen7", "keijzer6", "pagie1", "csv"] = "keijzer6"
    csv: CSVSpec | None = None
    functions: list[str] | None = Field(None, description="default: the problem's standard function set")
    constants: ConstantsSpec | None = Field(None, description="default: the problem's standard constants")
    data_seed: Annotated[int, Field(strict=True, ge=0, lt=2**63)] | None = Field(
        None, description="seed of random data points; default: the run seed (each replicate its own data)")
    success_threshold: Annotated[float, Field(gt=0)] = Field(
        0.01, description="success: every training case within this of its target")

    @model_validator(mode="after")
    def _csv_block(self) -> ProblemSpec:
        if self.name == "csv" and self.csv is None:
            raise ValueError("name csv needs a csv block: {path: data.csv, target: y}")
        if self.name != "csv" and self.csv is not None:
            raise ValueError(f"a csv block is only read with name: csv (name is {self.name!r})")
        return self


class MateChoiceSpec(Strict):
    population: Annotated[int, Field(strict=True, ge=2, le=1_000_000)] = 500
    mode: Literal["tournament", "random", "pimp"] = "pimp"
    tournament_size: Annotated[int, Field(strict=True, ge=1, le=1000)] = 7
    candidates: Annotated[int, Field(strict=True, ge=1, le=1000)] = Field(
        5, description="PIMP: how many candidates the first parent looks at")
    candidate_pool: Literal["random", "tournament"] = Field(
        "random", description="PIMP: candidates are random members of the pool, or tournament winners")
    distance: Literal["semantic", "structural"] = Field(
        "semantic", description="PIMP: RMSE of outputs on the training inputs, or tree edit distance")
    crossover_rate: Rate = 0.9
    mutation_rate: Rate = 0.1
    mutation: Literal["subtree", "point", "both"] = "subtree"
    preference_crossover_rate: Rate | None = Field(None, description="default: crossover_rate")
    preference_mutation_rate: Rate | None = Field(None, description="default: mutation_rate")
    preference_mutation: Literal["subtree", "point", "both"] | None = Field(None, description="default: mutation")
    elitism: Annotated[int, Field(strict=True, ge=0)] = 1
    max_depth: Depth = 17
    init_depth: tuple[Depth, Depth] = (2, 6)
    mutation_depth: tuple[Depth, Depth] = (0, 2)
    problem: ProblemSpec = Field(default_factory=ProblemSpec)
    record_individuals: bool = Field(True, description="write the individuals table (large for long runs)")
    diversity_sample: Annotated[int, Field(strict=True, ge=2, le=10_000)] = Field(
        30, description="individuals sampled (seeded) for the mean pairwise tree edit distance")


class MateChoiceScenario(ScenarioBase):
    kind: Literal["matechoice"]
    steps: Annotated[int, Field(strict=True, ge=1, le=1_000_000)] = Field(
        description="generations bred after the initial population")
    matechoice: MateChoiceSpec = Field(default_factory=MateChoiceSpec)
    network: NetworkSpec | None = Field(None, description="mates only among neighbours; none: panmictic")

    def cross_checks(self) -> list[tuple[KeyPath, str]]:
        spec = self.matechoice
        problems: list[tuple[KeyPath, str]] = []
        for i, name in enumerate(spec.problem.functions or []):
            if name not in FUNCTIONS:
                problems.append((("matechoice", "problem", "functions", i), f"unknown function {name!r}"
                                 f"{did_you_mean(name, FUNCTIONS)}; known: {', '.join(FUNCTIONS)}"))
        if spec.problem.functions is not None and not spec.problem.functions:
            problems.append((("matechoice", "problem", "functions"), "name at least one function"))
        if spec.problem.functions and len(set(spec.problem.functions)) != len(spec.problem.functions):
            problems.append((("matechoice", "problem", "functions"), "a function is listed twice"))
        if spec.elitism >= spec.population:
            problems.append((("matechoice", "elitism"), f"{spec.elitism} elites leave no room for offspring in "
                             f"a population of {spec.population}"))
        for key in ("init_depth", "mutation_depth"):
            lo, hi = getattr(spec, key)
            if lo > hi:
                problems.append((("matechoice", key), f"[{lo}, {hi}]: the minimum exceeds the maximum"))
        if spec.init_depth[1] > spec.max_depth:
            problems.append((("matechoice", "init_depth"), f"maximum {spec.init_depth[1]} exceeds max_depth "
                             f"{spec.max_depth}"))
        return problems
