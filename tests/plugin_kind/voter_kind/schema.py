"""Schema of the ``voter`` kind: who holds which opinion at the start, on which network, and how
opinions spread.

It is a :class:`culturesim.scenario.ScenarioBase` like every kind's, so culturesim's loader gives
its keys the same treatment as a built-in kind's: an unknown or misspelt key is an error that
names the file, the key path and its line, and ``--set`` and sweeps reach every key here. There is
no ``llm`` block: the kind uses no language model, and the model says so (``uses_llm = False``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from culturesim.scenario import NetworkSpec, ScenarioBase, Strict


class VoterPopulation(Strict):
    """Only a size: the agents are the network's nodes 0..size-1 (culturesim.networks)."""

    size: Annotated[int, Field(strict=True, ge=1, le=1_000_000)]


class VoterSpec(Strict):
    opinions: Annotated[int, Field(strict=True, ge=2, le=1000)] = Field(
        2, description="number of distinct opinions, 0..opinions-1")
    initial: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = Field(
        None, description="share of the population holding each opinion at the start (normalised); "
                          "default: equal shares. Counts are exact (largest remainder), their places random")
    rule: Literal["voter", "moran"] = Field(
        "voter", description="voter: every step, every agent at once copies a random neighbour's opinion; "
                             "moran: every step, as many births as agents, each a random agent's opinion "
                             "taken over by one of its random neighbours (neutral Moran, birth-death)")


class VoterScenario(ScenarioBase):
    kind: Literal["voter"]
    steps: Annotated[int, Field(strict=True, ge=1, le=1_000_000)] = Field(
        description="voter: synchronous updates of every agent; moran: generations of `size` births")
    population: VoterPopulation
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    voter: VoterSpec = Field(default_factory=VoterSpec)

    def cross_checks(self) -> list[tuple[tuple[str, ...], str]]:
        """Checks across keys, each naming the key at fault (culturesim adds file and line)."""
        initial = self.voter.initial
        if initial is None:
            return []
        if len(initial) != self.voter.opinions:
            return [(("voter", "initial"), f"{len(initial)} shares but opinions is {self.voter.opinions}")]
        if sum(initial) <= 0:
            return [(("voter", "initial"), "shares must not all be zero")]
        return []
