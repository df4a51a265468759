"""Cultural evolution in a population of LLM agents on a network.

Restates and extends the designs of LLM-Culture (Perez et al. 2024): agents with
personalities create, transform or combine ideas they receive from their neighbours.

A step has three phases (docs/ARCHITECTURE.md, "The step"): every active agent composes its request from what
it can see, all requests of the step go to the model together, then every agent adopts
its reply. Asynchronous update keeps its meaning (each agent sees the newest ideas of
the neighbours updated before it, in a random order) while still batching: agents are
grouped into levels such that no agent reads from another of the same level.

All randomness of a step comes from generators seeded by (run seed, step, agent), never
from a stream carried across steps, so a model restored from the recorded ideas of
steps 1..t continues exactly as an uninterrupted run would.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import mesa
import networkx as nx
import numpy as np
from mesa.discrete_space import FixedAgent, Network

from culturesim.agents.groups import kind_roster
from culturesim.agents.memory import Memory
from culturesim.kinds.contract import Door, KindModel, StepRecord
from culturesim.kinds.culture import social
from culturesim.kinds.culture.schema import CultureScenario
from culturesim.llm.shape import canonical, parse
from culturesim.llm.types import Reply, Request
from culturesim.networks import population_graph
from culturesim.personalities import registry
from culturesim.population import idea_id, request_seed
from culturesim.scenario import template_fields


@dataclass(frozen=True)
class Idea:
    idea_id: str
    text: str
    agent_id: int
    step: int


@dataclass
class Pending:
    """A composed request and what it was made from, between phases 1 and 3."""

    agent: IdeaAgent
    operation: str
    parents: list[str]
    request: Request
    received: list[tuple[str, str]]  # (idea id, text) of the other agents' ideas shown


class IdeaAgent(FixedAgent):
    """An agent that holds one current idea and speaks with one personality."""

    def __init__(self, model: CultureModel, agent_id: int, personality: str, cell):
        super().__init__(model)
        self.agent_id = agent_id
        self.personality = personality
        self.cell = cell
        self.idea: Idea | None = None

    def compose(self, step: int) -> Pending:
        """Phase 1: what this agent asks the model, from what it sees now (no I/O)."""
        m: CultureModel = self.model
        spec = m.scenario.culture
        operation, chosen = self._social_information(step)
        shown = social.fit_budget([c.text for c in chosen], spec.social.max_chars)
        chosen = chosen[: len(shown)]
        template = m.override(self, operation) or getattr(spec.prompts, operation)
        user = template.format(
            ideas=social.render(shown, spec.ideas_format),
            n_ideas=len(shown),
            own_idea=self.idea.text if self.idea else "(you have no idea yet)",
            **m.memory.fields(self.agent_id, step),
        )
        parents = [c.idea_id for c in chosen]
        if "own_idea" in template_fields(template) and self.idea and self.idea.idea_id not in parents:
            parents.append(self.idea.idea_id)
        llm = m.roster.llms[self.agent_id]
        persona = m.personalities[self.personality]
        if spec.personality_in == "user":  # LLM-Culture's agent.py: personality + "\n" + prompt, no system
            messages = ({"role": "user", "content": persona + "\n" + user},)
        else:
            messages = ({"role": "system", "content": persona}, {"role": "user", "content": user})
        request = Request(
            messages=messages,
            seed=request_seed(m.scenario.seed, step, self.agent_id),
            temperature=llm.temperature,
            top_p=llm.top_p,
            max_tokens=llm.max_tokens,
            stop=tuple(llm.stop),
            tag=idea_id(step, self.agent_id),
            route=m.routes[self.agent_id],
        )
        if m.reply_schema is not None:
            request = dataclasses.replace(request, schema=m.reply_schema)
        received = [(c.idea_id, c.text) for c in chosen if c.agent_id != self.agent_id]
        return Pending(self, operation, parents, request, received)

    def _social_information(self, step: int) -> tuple[str, list[social.Candidate]]:
        """The operation this agent can perform now and the ideas it will be shown.

        With nothing heard and nothing held it can only create; with only its own idea
        it transforms that. Transform shows one heard idea, or with ``transform_shows: all``
        every one social lets through, for the model to choose among.
        """
        m: CultureModel = self.model
        spec = m.scenario.culture
        operation = m.override(self, "operation") or spec.operation
        heard = [
            social.Candidate(a.idea.idea_id, a.idea.text, a.agent_id)
            for a in (m.agent_by_id[s] for s in m.sources[self.agent_id])
            if a.idea is not None and a is not self
        ]
        own = social.Candidate(self.idea.idea_id, self.idea.text, self.agent_id) if self.idea else None
        if not heard:
            return ("create", []) if own is None else ("transform", [own])
        one = operation == "transform" and spec.transform_shows == "one"
        limit = 1 if one else (spec.social.k if spec.social.sample == "k" else None)
        rng = np.random.default_rng([m.scenario.seed, step, self.agent_id, 1])
        chosen = social.choose(heard, spec.social, rng, limit=limit, degree=m.degree, copies=m.copies)
        if spec.social.order == "ids":
            chosen.sort(key=lambda c: c.agent_id)
        if operation == "combine" and spec.social.include_own and own is not None:
            chosen = [own, *chosen]
        return operation, chosen

    def adopt(self, step: int, pending: Pending, reply: Reply) -> None:
        """Phase 3: take the reply as this agent's idea (a failure keeps the old one)."""
        m: CultureModel = self.model
        text = m.idea_text(reply)
        if text:
            self.idea = Idea(idea_id(step, self.agent_id), text, self.agent_id, step)
            m.memory.keep_own(self.agent_id, step, self.idea.idea_id, self.idea.text)
        m.memory.keep_received(self.agent_id, step, pending.received)
        m.record(step, self, pending, reply)


class CultureModel(KindModel, mesa.Model):
    def __init__(self, scenario: CultureScenario, graph: nx.Graph, llm: Door | None, run_id: str = "",
                 *, base_dir: Path | None = None):
        super().__init__(rng=scenario.seed)
        self.scenario = scenario
        self.llm = llm
        self.run_id = run_id
        self.graph = graph
        schema = scenario.culture.reply_schema
        self.reply_schema = canonical(schema) if schema is not None else None  # what each request asks for
        self.space = Network(graph, capacity=1, random=self.random)
        self.personalities = registry(scenario.population.personalities)
        n = scenario.population.size
        if graph.number_of_nodes() != n:
            raise ValueError(f"network has {graph.number_of_nodes()} nodes but population.size is {n}")
        self.roster = kind_roster(scenario, graph)  # personality, group and model of each agent
        self.routes = self.roster.routes(llm)
        labels = self.roster.personalities
        cells = {cell.coordinate: cell for cell in self.space.all_cells}
        self.agent_by_id: dict[int, IdeaAgent] = {
            i: IdeaAgent(self, i, labels[i], cells[i]) for i in range(n)
        }
        # Who reads whom: an edge u -> v means v sees u's idea.
        reads = graph.predecessors if graph.is_directed() else graph.neighbors
        self.sources = {i: sorted(reads(i)) for i in range(n)}
        self.degree = {i: len(self.sources[i]) for i in range(n)}
        self.copies = {i: 0 for i in range(n)}  # times an agent's ideas were shown to others
        self.first_step = 0 if scenario.culture.seed_ideas else 1
        self.depth = self._depths() if scenario.culture.update == "chain" else {}
        if self.depth:
            longest = max(self.depth.values())
            last = scenario.steps - self.first_step
            if last > longest:
                raise ValueError(
                    f"update: chain activates one position per step, but the longest chain has "
                    f"{longest + 1} agents; use steps <= {longest + self.first_step}"
                )
        self.memory = Memory(scenario.memory)  # what each agent remembers (off unless memory: asks)
        self._out = StepRecord()  # what the step in progress has produced

    @classmethod
    def build_graph(cls, scenario: CultureScenario, base_dir: Path | None = None) -> nx.Graph:
        return population_graph(scenario, base_dir)

    def _depths(self) -> dict[int, int]:
        """Position of each agent along its chain: BFS distance from the component's first node."""
        undirected = self.graph.to_undirected(as_view=True)
        depth: dict[int, int] = {}
        for component in nx.connected_components(undirected):
            root = min(component)
            depth.update(nx.single_source_shortest_path_length(undirected, root))
        return depth

    def override(self, agent: IdeaAgent, what: str) -> str | None:
        """An agent's own setting, else its personality group's: the operation, or the
        prompt template of an operation. None means the scenario's default."""
        culture = self.scenario.culture
        for spec in (culture.agents.get(agent.agent_id), culture.groups.get(agent.personality)):
            if spec is None:
                continue
            value = spec.operation if what == "operation" else getattr(spec.prompts, what)
            if value:
                return value
        return None

    # --- the step ---------------------------------------------------------------------
    def active_levels(self, step: int) -> list[list[IdeaAgent]]:
        """Which agents act this step, as batches that may be sent together."""
        agents = [self.agent_by_id[i] for i in range(len(self.agent_by_id))]
        update = self.scenario.culture.update
        if update == "chain":
            position = step - self.first_step
            return [[a for a in agents if self.depth[a.agent_id] == position]]
        if update == "synchronous":
            return [agents]
        order = np.random.default_rng([self.scenario.seed, step, 2]).permutation(len(agents))
        rank = {int(agent_id): r for r, agent_id in enumerate(order)}
        level: dict[int, int] = {}
        for agent_id in (int(i) for i in order):
            earlier = [level[s] for s in self.sources[agent_id] if s in level and rank[s] < rank[agent_id]]
            level[agent_id] = 1 + max(earlier, default=-1)
        batches: list[list[IdeaAgent]] = [[] for _ in range(max(level.values()) + 1)]
        for agent_id in (int(i) for i in order):
            batches[level[agent_id]].append(self.agent_by_id[agent_id])
        return batches

    def planned_requests(self, first: int, last: int) -> int:
        """How many model requests steps first..last will make (for progress and ETA)."""
        steps = [s for s in range(first, last + 1) if s > 0]
        if self.scenario.culture.update != "chain":
            return len(steps) * len(self.agent_by_id)
        positions = {s - self.first_step for s in steps}
        return sum(1 for d in self.depth.values() if d in positions)

    def seed_step(self) -> None:
        """Step 0: hand out the scenario's seed ideas (to chain heads in chain mode)."""
        seeds = self.scenario.culture.seed_ideas
        heads = [a for a in self.agent_by_id.values() if not self.depth or self.depth[a.agent_id] == 0]
        for k, agent in enumerate(heads):
            text = seeds[k % len(seeds)]
            agent.idea = Idea(idea_id(0, agent.agent_id), text, agent.agent_id, 0)
            self.memory.keep_own(agent.agent_id, 0, agent.idea.idea_id, text)
            self._out.ideas.append(self._row(0, agent, "seed", [], None, source="seed", text=text))

    def step(self) -> StepRecord:
        step = self.first_step + self.steps - 1  # mesa has already counted this call
        self._out = StepRecord()
        if step == 0:
            self.seed_step()
            return self._out
        for batch in self.active_levels(step):
            composed = [agent.compose(step) for agent in batch]
            replies = self.llm.generate([p.request for p in composed])
            for pending, reply in zip(composed, replies, strict=True):
                pending.agent.adopt(step, pending, reply)
        return self._out

    def idea_text(self, reply: Reply) -> str | None:
        """The idea a reply holds: its text, or with culture.reply_schema the reply_field of its
        JSON (the retry layer has already checked the shape; a reply that did not fit has ``error``)."""
        if not reply.ok or not reply.text:
            return None
        if self.reply_schema is None:
            return reply.text
        value = parse(reply.text, self.reply_schema)
        field = " ".join(str(value.get(self.scenario.culture.reply_field, "")).split()) if value else ""
        return field or None

    def record(self, step: int, agent: IdeaAgent, pending: Pending, reply: Reply) -> None:
        text = self.idea_text(reply)
        row = self._row(step, agent, pending.operation, pending.parents, reply, source="llm", text=text)
        if reply.ok and reply.text and text is None:
            row["error"] = f"the reply held no {self.scenario.culture.reply_field}"
        self._out.ideas.append(row)
        messages = list(pending.request.messages)
        if self.reply_schema is not None and reply.text:  # the whole JSON reply; the ideas table has the idea
            messages.append({"role": "assistant", "content": reply.text})
        self._out.prompts.append({
            "run_id": self.run_id, "step": step, "agent_id": agent.agent_id, "idea_id": row["idea_id"],
            "messages": json.dumps(messages, ensure_ascii=False),
        })
        self._count_copies(pending.parents, agent.agent_id)

    def _count_copies(self, parents: list[str], reader: int) -> None:
        for parent in parents:
            holder = int(parent.rsplit("-a", 1)[1])
            if holder != reader:
                self.copies[holder] += 1

    def _row(self, step, agent, operation, parents, reply: Reply | None, *, source, text) -> dict:
        return {
            "run_id": self.run_id,
            "step": step,
            "agent_id": agent.agent_id,
            "idea_id": idea_id(step, agent.agent_id),
            "text": text,
            "parent_ids": parents,
            "operation": operation,
            "source": source,
            "personality": agent.personality,
            "model": reply.model if reply else None,
            "seed": reply.seed if reply else None,
            "prompt_tokens": reply.prompt_tokens if reply else 0,
            "completion_tokens": reply.completion_tokens if reply else 0,
            "latency_s": reply.latency_s if reply else 0.0,
            "cached": reply.cached if reply else False,
            "retries": reply.retries if reply else 0,
            "error": reply.error if reply else None,
        }

    # --- resume -----------------------------------------------------------------------
    def restore(self, rows: list[dict]) -> None:
        """Rebuild state from recorded idea rows of completed steps (in step order)."""
        last = self.first_step - 1
        for row in sorted(rows, key=lambda r: (r["step"], r["agent_id"])):
            agent = self.agent_by_id[row["agent_id"]]
            if row["text"] is not None and row["error"] is None:
                agent.idea = Idea(row["idea_id"], row["text"], agent.agent_id, row["step"])
            if row["source"] != "seed":
                self._count_copies(list(row["parent_ids"] or []), agent.agent_id)
            last = max(last, row["step"])
        self.memory.restore(rows)
        # mesa's own step counter must agree with where we are
        self.steps = last - self.first_step + 1

    @property
    def next_step(self) -> int:
        return self.first_step + self.steps

    def agents_table(self) -> list[dict]:
        return [
            {
                "agent_id": a.agent_id,
                "personality": a.personality,
                "community": self.graph.nodes[a.agent_id].get("community"),
                "in_degree": self.degree[a.agent_id],
                "chain_position": self.depth.get(a.agent_id),
                "group": self.roster.groups[a.agent_id],
                "model": self.roster.llms[a.agent_id].model,
            }
            for a in self.agent_by_id.values()
        ]
