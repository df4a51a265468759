"""Schema of the ``gard`` kind: GARD protocell assemblies (Segrè & Lancet; Markovitch & Lancet 2012).

The defaults are the reference code's (``tgs_parameters_v10``): 100 molecule types, split at
100 molecules, ``k_f = 0.01``, ``k_b = 1e-4``, ``rho_i = 1/N_G``, ``ln beta ~ Normal(-4, 4)``.
A runner step is a fixed number of splits (see ``GardSpec.splits_per_step``), so a run's
length, its files and its resume points are counted in splits, the model's own clock.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from culturesim.scenario import KeyPath, ScenarioBase, Strict

PositiveInt = Annotated[int, Field(strict=True, ge=1)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class SelectionSpec(Strict):
    """Selection toward a target composition (the reference's population selection GARD)."""

    target: list[NonNegative] | dict[int, NonNegative] | Literal["auto"] = Field(
        "auto", description="counts per molecule type (a list of n_types, or {type: count}); 'auto': the "
                            "densest composome of a preliminary neutral lineage of burn_in splits")
    factor: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] = Field(
        1.1, description="a daughter's catalysis among its own types is scaled by factor * H(daughter, target)")
    burn_in: Annotated[int, Field(strict=True, ge=2, le=100_000)] = 200


class GardSpec(Strict):
    mode: Literal["lineage", "population", "selection"] = Field(
        "lineage", description="lineage: independent lineages, one daughter kept; population: Moran, a daughter "
                               "replaces a random other assembly; selection: population biased toward a target")
    assemblies: Annotated[int, Field(strict=True, ge=1, le=100_000)] = Field(
        1, description="lineages run side by side (lineage mode) or the population size (Moran modes)")
    n_types: Annotated[int, Field(strict=True, ge=1, le=2_000)] = Field(100, description="N_G, molecule types")
    n_max: Annotated[int, Field(strict=True, ge=2, le=100_000)] = Field(100, description="N_max, the split size")
    k_f: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 0.01
    k_b: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1e-4
    rho: list[NonNegative] | None = Field(None, description="environmental concentrations; default 1/n_types each")
    mu: Annotated[float, Field(allow_inf_nan=False, ge=-50, le=50)] = -4.0
    sigma: Annotated[float, Field(ge=0, le=20, allow_inf_nan=False)] = 4.0
    beta: Literal["lognormal"] | NonNegative = Field(
        "lognormal", description="lognormal (ln beta ~ Normal(mu, sigma)) or one number for a uniform beta")
    beta_seed: Annotated[int, Field(strict=True, ge=0, lt=2**63)] | None = Field(
        None, description="seed of the beta network alone; default: derived from the run seed")
    splits_per_step: PositiveInt | None = Field(
        None, description="one runner step = this many splits in Moran modes (default: the population size, one "
                          "generation), or this many splits of every lineage in lineage mode (default 1)")
    track_genealogy: bool = Field(True, description="record molecule ancestry for the Price decomposition")
    selection: SelectionSpec = Field(default_factory=SelectionSpec)


class GardScenario(ScenarioBase):
    kind: Literal["gard"]
    steps: Annotated[int, Field(strict=True, ge=1, le=1_000_000)] = Field(description="runner steps (see gard)")
    gard: GardSpec = Field(default_factory=GardSpec)

    @property
    def splits_per_step(self) -> int:
        spec = self.gard
        if spec.splits_per_step is not None:
            return spec.splits_per_step
        return 1 if spec.mode == "lineage" else spec.assemblies

    def cross_checks(self) -> list[tuple[KeyPath, str]]:
        spec = self.gard
        problems: list[tuple[KeyPath, str]] = []
        if spec.rho is not None:
            if len(spec.rho) != spec.n_types:
                problems.append((("gard", "rho"), f"{len(spec.rho)} values but n_types is {spec.n_types}"))
            elif sum(spec.rho) <= 0:
                problems.append((("gard", "rho"), "concentrations must not all be zero"))
        if spec.mode != "lineage" and spec.assemblies < 2:
            problems.append((("gard", "assemblies"), f"the {spec.mode} mode needs at least 2 assemblies "
                             f"(a splitting assembly's daughter replaces another)"))
        target = spec.selection.target
        if isinstance(target, list) and len(target) != spec.n_types:
            problems.append((("gard", "selection", "target"), f"{len(target)} counts but n_types is {spec.n_types}"))
        elif isinstance(target, dict):
            bad = [k for k in target if not 0 <= k < spec.n_types]
            if bad:
                problems.append((("gard", "selection", "target"), f"type(s) {bad} outside 0..{spec.n_types - 1}"))
        if target != "auto" and spec.mode == "selection" and not any(
                target.values() if isinstance(target, dict) else target):
            problems.append((("gard", "selection", "target"), "the target composition is all zeros"))
        return problems
