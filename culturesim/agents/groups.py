"""Groups of agents and the model each agent speaks through.

A scenario's ``groups:`` name sets of agents (by ids, community, proportion or
personality; culturesim/agents/assignment.py makes them) and ``agents:`` single agents;
either may carry a partial ``llm`` block. An agent's model is the scenario's ``llm``,
overridden by its group's keys, overridden by its own. The :class:`Roster` is worked out
from the scenario and the network's communities alone, so the runner, a resume and
``culturesim validate`` all find the same one; the kinds hand each agent's block to the
door (``Door.route``), which opens one model per distinct block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from culturesim.agents.assignment import AssignmentError, personalities, select
from culturesim.personalities import registry
from culturesim.scenario import KeyPath, LLMSpec, did_you_mean

if TYPE_CHECKING:
    import networkx as nx


@dataclass(frozen=True)
class Roster:
    """Who is who, per agent id: personality, group (None: in none) and language model."""

    personalities: list[str]
    groups: list[str | None]
    llms: list[LLMSpec]

    def routes(self, door) -> list[str]:
        """Each agent's route on ``door`` (None: no door): one model per distinct block."""
        if door is None:
            return [""] * len(self.llms)
        keys: dict[int, str] = {}
        return [keys.setdefault(id(spec), door.route(spec)) for spec in self.llms]

    def models(self) -> list[str]:
        return [spec.model for spec in self.llms]


def population_size(scenario) -> int | None:
    """How many agents a scenario has, where it says (None: a kind without agents as such)."""
    size = getattr(scenario, "population_size", None)
    if isinstance(size, int):
        return size
    population = getattr(scenario, "population", None)
    return getattr(population, "size", None)


def static_communities(scenario) -> tuple[list[int] | None, str]:
    """Each agent's community as the scenario's network will label it, and why there are
    none when there are none. Raises NetworkError on bad network parameters."""
    from culturesim.networks import community_labels  # networkx: only for a scenario that asks for communities

    net = getattr(scenario, "network", None)
    n = population_size(scenario)
    if net is None or n is None:
        return None, f"the {scenario.kind} kind's network has no communities"
    labels = community_labels(net.topology, n, dict(net.params))
    return labels, _no_communities(net.topology)


def graph_communities(graph: nx.Graph, n: int, topology: str = "") -> tuple[list[int] | None, str]:
    """Each agent's community as the built (or recorded) network holds it."""
    labels = [graph.nodes[i].get("community") if i in graph else None for i in range(n)]
    if all(c is None for c in labels):
        return None, _no_communities(topology) if topology else "the network has no communities"
    return labels, ""


def _no_communities(topology: str) -> str:
    from culturesim.networks import COMMUNITY_TOPOLOGIES

    return (f"network.topology {topology!r} has no communities "
            f"(those with communities: {', '.join(COMMUNITY_TOPOLOGIES)})")


def roster(scenario, *, communities: Sequence[int | None] | None, no_communities: str = "the network has none",
           labels: Sequence[str] | None = None) -> Roster:
    """The scenario's roster; ``labels`` are the personalities where the kind assigns them
    itself (else ``population.assign`` and ``population.mix`` do). Raises AssignmentError."""
    n = population_size(scenario)
    if n is None:
        raise AssignmentError(("groups",), f"the {scenario.kind} kind has no population to group")
    if labels is None:
        labels = personalities(scenario.population, n, scenario.seed, communities=communities,
                               no_communities=no_communities)
    known = registry(getattr(scenario.population, "personalities", {}) or {})
    selectors = {}
    for name, group in scenario.groups.items():
        if not group.how():  # a group named after a personality is that personality's agents
            if name not in known:
                raise AssignmentError(("groups", name), f"group {name!r} does not exist: it names no personality"
                                      f"{did_you_mean(name, known)} and selects no agents; give it ids, "
                                      f"community, proportion or personality")
            group = group.model_copy(update={"personality": name})
        elif group.personality is not None and group.personality not in known:
            raise AssignmentError(("groups", name, "personality"), f"unknown personality {group.personality!r}"
                                  f"{did_you_mean(group.personality, known)}; known: {', '.join(sorted(known))}")
        selectors[name] = group
    groups = select(selectors, n, where=("groups",), rng=np.random.default_rng([scenario.seed, 0, 12]),
                    communities=communities, no_communities=no_communities, personalities=labels)
    for agent_id in scenario.agents:
        if agent_id >= n:
            raise AssignmentError(("agents", agent_id), f"no agent {agent_id}; agent ids run from 0 to {n - 1}")
    base = scenario.llm
    by_group = {name: _merged(base, spec.llm) for name, spec in scenario.groups.items()}
    llms = [by_group[g] if g is not None else base for g in groups]
    for agent_id, spec in scenario.agents.items():
        llms[agent_id] = _merged(llms[agent_id], spec.llm)
    return Roster(list(labels), groups, llms)


def _merged(base: LLMSpec, override) -> LLMSpec:
    """``base`` with the keys ``override`` gives (the same object when it gives none); a key
    given as null takes the value null (``api_base: null`` on a group: no server)."""
    keys = override.model_dump(exclude_unset=True) if override is not None else {}
    return LLMSpec.model_validate({**base.model_dump(), **keys}) if keys else base


def check(scenario) -> list[tuple[KeyPath, str]]:
    """What ``groups``, ``agents`` and ``population.assign`` cannot do, for the loader
    (one problem: the first set that cannot be made)."""
    groups, agents = getattr(scenario, "groups", None), getattr(scenario, "agents", None)
    if not (groups or agents or getattr(getattr(scenario, "population", None), "assign", None)):
        return []
    if getattr(scenario, "llm", None) is None or population_size(scenario) is None:
        key = "groups" if groups else "agents"
        return [((key,), f"the {scenario.kind} kind has no language-model agents: groups and per-agent llm "
                         f"keys apply to kinds with an llm block")]
    assign = getattr(getattr(scenario, "population", None), "assign", None) or {}
    communities, why = None, ""
    if any(sel.community is not None for sel in [*(groups or {}).values(), *assign.values()]):
        from culturesim.networks import NetworkError

        try:
            communities, why = static_communities(scenario)
        except NetworkError:
            return []  # the network's own check names the parameter when the run is built
    try:
        roster(scenario, communities=communities, no_communities=why)
    except AssignmentError as exc:
        return [(exc.path, exc.message)]
    return []


def kind_roster(scenario, graph: nx.Graph, labels: Sequence[str] | None = None) -> Roster:
    """The roster of a built model, from the network it lives on (communities as recorded)."""
    n = population_size(scenario)
    net = getattr(scenario, "network", None)
    communities, why = graph_communities(graph, n, net.topology if net is not None else "")
    return roster(scenario, communities=communities, no_communities=why, labels=labels)

