"""AI-idea exposure worlds: chains of LLM participants writing Alternate Uses Task ideas
after seeing examples from their chain and from a fixed pool of AI ideas.

Restates the dynamic design of Ashkinaze, Mendelsohn, Qiwei, Budak and Gilbert (2024).
Every item × condition has several independent chains; at trial t every chain's t-th
participant sees the most recent human ideas of its own chain (the item's seed ideas
at first) plus, depending on the condition, ideas drawn fresh for it from the item's
AI pool, labelled by source when the condition discloses them. It ranks the examples by
creativity and writes one idea. All chains advance together, so a trial is one batch.

A participant may do several trials (``exposure.trials_per_participant``), one per item
in an order of its own, as in the paper. Each chain position is a slot (an agent id, a
node of the chains network) and a participant fills one slot in a chain of each of its
items, at consecutive steps. Participants of one condition and chain number join in
cohorts of ``len(items)`` for ``trials_per_participant`` steps; the cohort's orders are the
rows of a random Latin square (rows and columns permuted with the run's seeded
generator), so every participant's order is a uniformly random sequence of distinct
items and every chain still gets exactly one writer per step. A participant keeps one
condition (the paper also drew the condition per trial) and does not see its earlier
trials: each trial is a fresh conversation with the same persona.

Step 0 makes the AI pool (once, with its own model), records the seed ideas, and asks
each participant its self-rated creativity when ``exposure.self_rating.source`` is
``ask``; the pool never changes afterwards. Randomness per participant comes from generators seeded
by (run seed, step, agent), so a resumed run continues exactly.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import mesa
import networkx as nx
import numpy as np
import polars as pl

from culturesim.agents.groups import kind_roster
from culturesim.kinds.contract import Door, KindModel, StepRecord
from culturesim.kinds.exposure.schema import ExposureScenario
from culturesim.kinds.exposure.tables import TABLES
from culturesim.llm.shape import MISMATCH, canonical, parse, with_schema
from culturesim.llm.types import Reply, Request
from culturesim.personalities import registry
from culturesim.population import assign_personalities, request_seed


@dataclass(frozen=True)
class Chain:
    index: int
    item: str
    condition: str
    n_ai: int
    disclosed: bool


# Up to this many examples the schema lists every ranking (n! of them: 720 at 6), so the
# grammar itself holds a reply to a permutation; beyond it the list would be too long to
# compile, and the schema falls back to numbers in 1..n with ``uniqueItems``, which the
# grammar cannot enforce (the retry layer re-asks a ranking that repeats a number).
PERMUTATION_ENUM_MAX = 6


def reply_schema(n_examples: int) -> dict:
    """The shape of a participant's reply: its idea (not empty: unheld, the embedded model left
    it empty in 1 of 80 replies), and a ranking that is a permutation of the example positions
    1..n (most creative first).

    JSON Schema has no keyword for "a permutation", and llama.cpp's converter cannot enforce
    ``uniqueItems``: with numbers merely held to 1..n the embedded model repeated a number in
    4 of 20 replies on every retry. Listing the permutations as an ``enum`` is plain JSON Schema
    that every constrained decoder (llama.cpp, vLLM) turns into a grammar, so for n up to
    :data:`PERMUTATION_ENUM_MAX` every reply decoded under it ranks all examples exactly once."""
    positions = list(range(1, n_examples + 1))
    if n_examples <= PERMUTATION_ENUM_MAX:
        ranking = {"enum": [list(p) for p in itertools.permutations(positions)]}
    else:
        ranking = {"type": "array", "items": {"type": "integer", "enum": positions},
                   "minItems": n_examples, "maxItems": n_examples, "uniqueItems": True}
    return {"type": "object", "additionalProperties": False, "required": ["idea", "ranking"],
            "properties": {"idea": {"type": "string", "minLength": 1}, "ranking": ranking}}


def parse_reply(text: str, n_examples: int) -> tuple[str, list[int] | None]:
    """The idea and the ranking (example positions, most creative first) from a JSON reply.

    A ranking counts only if it is a permutation of 1..n. A reply whose ranking breaks the
    shape (the grammar cannot forbid a repeated number, so the retry layer may give up on it)
    still gives its idea: the participant wrote one, only the ranking is missing."""
    value = parse(text, canonical(reply_schema(n_examples))) or parse(text, canonical(IDEA_ONLY))
    if value is None:
        return "", None
    raw = value.get("ranking")
    ranking = [int(x) for x in raw] if isinstance(raw, list) and all(type(x) is int for x in raw) else None
    idea = " ".join(str(value["idea"]).split())
    return idea, ranking if ranking is not None and sorted(ranking) == list(range(1, n_examples + 1)) else None


IDEA_ONLY = {"type": "object", "required": ["idea"], "properties": {"idea": {"type": "string", "minLength": 1}}}

# The self-rating question's answer: the paper's slider (0-100), in steps of 5 so that a
# grammar can hold it to the scale as an enum on every backend.
RATING_VALUES = list(range(0, 101, 5))
RATING_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["percent"],
                 "properties": {"percent": {"type": "integer", "enum": RATING_VALUES}}}


def parse_rating(text: str | None) -> int | None:
    """The percent of a self-rating reply (``{"percent": 70}``), or None if it does not fit."""
    value = parse(text, canonical(RATING_SCHEMA))
    return int(value["percent"]) if value is not None else None


# Column names tried in order when the scenario names none: this toolkit's, then the
# paper's pool file (net_create's ai_responses.csv: aut_item, response).
POOL_COLUMNS = (("item", "idea"), ("aut_item", "response"))


def read_pool_file(path: Path, items: list[str], columns: tuple[str, str] | None = None) -> dict[str, list[str]]:
    """A CSV of AI ideas per item (the paper's pool has 300 ideas per item).

    ``columns`` (item column, text column) as the scenario names them; without it the
    file must have columns item and idea, or the paper's aut_item and response. Every
    problem is a ValueError of one line naming the file."""
    if not path.is_file():
        raise ValueError(f"exposure.ai_pool.file: {path} does not exist")
    try:
        table = pl.read_csv(path, infer_schema_length=0)
    except Exception as exc:  # noqa: BLE001 - polars raises several kinds for bad CSV
        reason = " ".join(str(exc).split())[:200]
        raise ValueError(f"exposure.ai_pool.file: {path} is not a readable CSV ({reason})") from None
    if columns is None:
        found = next((pair for pair in POOL_COLUMNS if set(pair) <= set(table.columns)), None)
        if found is None:
            raise ValueError(f"exposure.ai_pool.file: {path} lacks columns item, idea (or aut_item, response); "
                             f"it has {table.columns}; name yours under exposure.ai_pool.columns")
        columns = found
    item_col, text_col = columns
    missing = [c for c in (item_col, text_col) if c not in table.columns]
    if missing:
        raise ValueError(f"exposure.ai_pool.file: {path} lacks column(s) {missing}; it has {table.columns}")
    table = table.filter(pl.col(text_col).is_not_null() & (pl.col(text_col).str.strip_chars() != "")
                         & pl.col(item_col).is_not_null())
    pools = {item: table.filter(pl.col(item_col).str.strip_chars().str.to_lowercase() == item.lower())[text_col]
             .to_list() for item in items}
    empty = [item for item, ideas in pools.items() if not ideas]
    if empty:
        raise ValueError(f"exposure.ai_pool.file: {path} has no ideas for item(s) {empty}")
    return pools


def trial_plan(scenario: ExposureScenario) -> list[tuple[int, int]]:
    """(participant, trial index from 1) of every slot, in agent-id order.

    A slot is one chain position: chain ``c`` (items outermost, then conditions, then chain
    numbers) at trial ``t`` is agent ``c * steps + t - 1``. With one trial per participant
    the slot is the participant. With K > 1, the participants of condition ``ci`` and chain
    number ``k`` join in cohorts of ``n = len(items)`` for K consecutive steps; member ``m``
    of a cohort answers, at its trial ``j`` (0-based), item ``sigma[(rho[m] + j) % n]`` with
    ``sigma`` and ``rho`` permutations drawn for the cohort from the run's seeded
    generator: a random Latin square, so each member's K items are distinct, in a
    uniformly random order, and the n members cover the n items' chains at every step.
    """
    spec = scenario.exposure
    steps, k_trials = scenario.steps, spec.trials_per_participant
    n_items, n_cond, n_chains = len(spec.items), len(spec.conditions), spec.chains
    if k_trials == 1:
        return [(slot, 1) for slot in range(scenario.population_size)]
    rng = np.random.default_rng([scenario.seed, 0, 9])
    cohorts = steps // k_trials
    squares = {(ci, k, q): (rng.permutation(n_items), rng.permutation(n_items))
               for ci in range(n_cond) for k in range(n_chains) for q in range(cohorts)}
    plan = []
    for i in range(n_items):
        for ci in range(n_cond):
            for k in range(n_chains):
                for t in range(1, steps + 1):
                    q, j = divmod(t - 1, k_trials)
                    sigma, rho = squares[(ci, k, q)]
                    pos = int(np.flatnonzero(sigma == i)[0])
                    m = int(np.flatnonzero(rho == (pos - j) % n_items)[0])
                    plan.append((((ci * n_chains + k) * cohorts + q) * n_items + m, j + 1))
    return plan


class Participant(mesa.Agent):
    """One slot of one chain, filled at its trial by a participant (who may fill one slot
    in a chain of each of several items)."""

    def __init__(self, model: ExposureModel, agent_id: int, chain: Chain, trial: int, persona: str,
                 self_rating: int | None, participant: int, trial_index: int):
        super().__init__(model)
        self.agent_id = agent_id
        self.chain = chain
        self.trial = trial
        self.persona = persona
        self.self_rating = self_rating  # given by the scenario (source: personality), else None
        self.participant = participant
        self.trial_index = trial_index


class ExposureModel(KindModel, mesa.Model):
    def __init__(self, scenario: ExposureScenario, graph: nx.DiGraph, llm: Door | None, run_id: str = "",
                 *, base_dir: Path | None = None):
        super().__init__(rng=scenario.seed)
        self.scenario = scenario
        self.llm = llm
        self.base_dir = base_dir
        self.run_id = run_id
        self.graph = graph
        spec = scenario.exposure
        self.chains = [
            Chain(i, item, name, cond.ai, cond.disclosed)
            for i, (item, (name, cond)) in enumerate(
                (item, c) for item in spec.items for c in spec.conditions.items() for _ in range(spec.chains))
        ]
        self.personalities = registry(scenario.population.personalities)
        plan = trial_plan(scenario)
        people = assign_personalities(scenario.population.mix, scenario.n_participants,
                                      np.random.default_rng([scenario.seed, 0, 7]))
        labels = [people[p] for p, _ in plan]  # a participant keeps its persona in every trial
        self.roster = kind_roster(scenario, graph, labels)  # group and model of each slot
        self.routes = self.roster.routes(llm)
        rating = spec.self_rating
        given = rating.by_personality if rating.source == "personality" else {}
        self.participants = {
            self.agent_id(chain, t): Participant(self, self.agent_id(chain, t), chain, t, labels[k],
                                                 given.get(labels[k]), *plan[k])
            for k, (chain, t) in enumerate((c, t) for c in self.chains for t in range(1, scenario.steps + 1))
        }
        # each participant's first slot: where its self-rating is asked and recorded
        self.first_slot: dict[int, Participant] = {}
        for slot in self.participants.values():
            if slot.trial_index == 1:
                self.first_slot[slot.participant] = slot
        self.first_step = 0
        self.pool: dict[str, list[tuple[str, str]]] = {item: [] for item in spec.items}
        self.history: dict[int, list[tuple[str, str]]] = {c.index: [] for c in self.chains}  # human ideas
        self._out = StepRecord(tables={"examples": []})  # what the step in progress has produced
        self.pool_file: dict[str, list[str]] | None = None
        if spec.ai_pool.source_file:  # read now, so a bad file is refused before the run exists
            path = Path(spec.ai_pool.source_file)
            columns = (spec.ai_pool.columns.item, spec.ai_pool.columns.text) if spec.ai_pool.columns else None
            self.pool_file = read_pool_file(path if path.is_absolute() else (base_dir or Path.cwd()) / path,
                                            spec.items, columns)

    def agent_id(self, chain: Chain, trial: int) -> int:
        return chain.index * self.scenario.steps + (trial - 1)

    @classmethod
    def build_graph(cls, scenario: ExposureScenario, base_dir: Path | None = None) -> nx.DiGraph:
        """Each chain is a path: participant t reads participant t-1's world."""
        spec = scenario.exposure
        worlds = len(spec.items) * len(spec.conditions) * spec.chains
        graph = nx.DiGraph()
        graph.add_nodes_from(range(worlds * scenario.steps))
        for w in range(worlds):
            for t in range(1, scenario.steps):
                graph.add_edge(w * scenario.steps + t - 1, w * scenario.steps + t)
        return graph

    @classmethod
    def network_summary(cls, scenario: ExposureScenario, graph: nx.Graph) -> str:
        return f"chains network with {graph.number_of_edges()} edges"

    def tables(self) -> dict[str, dict]:
        return TABLES

    @property
    def next_step(self) -> int:
        return self.first_step + self.steps

    def planned_requests(self, first: int, last: int) -> int:
        spec = self.scenario.exposure
        pool = 0 if spec.ai_pool.source_file else spec.ai_pool.size * len(self.pool)
        pool += len(self.first_slot) if spec.self_rating.source == "ask" else 0
        return sum(pool if s == 0 else len(self.chains) for s in range(first, last + 1))

    # --- step 0: the pool and the seeds ---------------------------------------------
    def _pool_step(self) -> None:
        spec = self.scenario.exposure
        ideas = self._out.ideas
        if self.pool_file is not None:
            for item, texts in self.pool_file.items():
                for k, text in enumerate(texts):
                    ideas.append(self._row(0, None, f"ai-{item}-{k}", text, [], "ai", "pool", None))
        else:
            pool_llm = self.llm.open(spec.ai_pool.llm)
            requests, keys = [], []
            for i, item in enumerate(spec.items):
                for k in range(spec.ai_pool.size):
                    requests.append(Request(
                        messages=({"role": "system", "content": spec.ai_pool.persona},
                                  {"role": "user", "content": spec.ai_pool.prompt.format(item=item)}),
                        seed=request_seed(self.scenario.seed, 0, 1_000_000 + i * 100_000 + k),
                        temperature=spec.ai_pool.llm.temperature, top_p=spec.ai_pool.llm.top_p,
                        max_tokens=spec.ai_pool.llm.max_tokens, stop=tuple(spec.ai_pool.llm.stop),
                        tag=f"ai-{item}-{k}"))
                    keys.append((item, k))
            for (item, k), req, reply in zip(keys, requests, pool_llm.generate(requests), strict=True):
                text = " ".join(reply.text.split()) if reply.ok and reply.text else None
                ideas.append(self._row(0, None, f"ai-{item}-{k}", text, [], "ai", "pool", reply))
                self._out.prompts.append(self._prompt_row(0, None, f"ai-{item}-{k}", req, reply))
        for item in spec.items:
            for k, text in enumerate(self.scenario.seeds_for(item)):
                ideas.append(self._row(0, None, f"seed-{item}-{k}", text, [], "seed", "seed", None))
        if spec.self_rating.source == "ask":
            self._ask_ratings()
        self._absorb(ideas)
        short = [item for item, pool in self.pool.items() if len(pool) < max(c.n_ai for c in self.chains)]
        if short:
            raise RuntimeError(f"the AI pool has too few ideas for item(s) {short} (the pool model failed?)")

    def _ask_ratings(self) -> None:
        """Each participant answers the paper's self-rating question once, with its persona,
        on its own model, before any trial."""
        spec = self.scenario.exposure.self_rating
        requests = []
        for participant, slot in sorted(self.first_slot.items()):
            llm = self.roster.llms[slot.agent_id]
            requests.append(with_schema(Request(
                messages=({"role": "system", "content": self.personalities[slot.persona]},
                          {"role": "user", "content": spec.prompt}),
                seed=request_seed(self.scenario.seed, 0, 2_000_000 + participant), temperature=llm.temperature,
                top_p=llm.top_p, max_tokens=spec.max_tokens, stop=tuple(llm.stop), tag=f"rate-p{participant}",
                route=self.routes[slot.agent_id]), RATING_SCHEMA))
        for request, reply in zip(requests, self.llm.generate(requests), strict=True):
            participant = int(request.tag[len("rate-p"):])
            slot = self.first_slot[participant]
            value = parse_rating(reply.text) if reply.ok and reply.text else None
            row = self._row(0, slot.agent_id, request.tag, reply.text or None, [], "self", "rate_self", reply)
            if row["error"] is None and value is None:
                row["error"] = "the reply held no rating"
            self._out.ideas.append(row)
            self._out.prompts.append(self._prompt_row(0, slot.agent_id, request.tag, request, reply))

    def _absorb(self, rows: list[dict]) -> None:
        """Fold recorded rows into the state: pool, seeds and each chain's human ideas."""
        for row in rows:
            if row["text"] is None or row["error"] is not None:
                continue
            if row["source"] == "self":  # a self-rating, not an idea: the measures read it, the trials do not
                continue
            if row["source"] == "ai":  # idea ids are ai-<item>-<k>; an item may hold dashes
                self.pool[row["idea_id"][3:].rsplit("-", 1)[0]].append((row["idea_id"], row["text"]))
            elif row["source"] == "seed":
                item = row["idea_id"][5:].rsplit("-", 1)[0]
                for chain in self.chains:
                    if chain.item == item:
                        self.history[chain.index].append((row["idea_id"], row["text"]))
            else:
                chain = self.participants[row["agent_id"]].chain
                self.history[chain.index].append((row["idea_id"], row["text"]))

    # --- trials ---------------------------------------------------------------------
    def compose(self, p: Participant, step: int) -> tuple[Request, list[tuple[str, str, str]]]:
        """The examples this participant sees, in the order shown, and its request."""
        spec = self.scenario.exposure
        rng = np.random.default_rng([self.scenario.seed, step, p.agent_id, 3])
        human = [(i, t, "human") for i, t in self.history[p.chain.index][-(spec.examples - p.chain.n_ai):]]
        pool = self.pool[p.chain.item]
        drawn = rng.choice(len(pool), size=p.chain.n_ai, replace=False) if p.chain.n_ai else []
        shown = human + [(*pool[int(k)], "ai") for k in drawn]
        shown = [shown[int(k)] for k in rng.permutation(len(shown))]
        label = {"human": " (Source: Human)", "ai": " (Source: A.I)"}
        lines = [f"{n}. {text}{label[src] if p.chain.disclosed else ''}" for n, (_, text, src) in enumerate(shown, 1)]
        user = spec.prompt.format(item=p.chain.item.upper(), examples="\n".join(lines),
                                  header=spec.disclosure_header if p.chain.disclosed else "")
        persona = self.personalities[p.persona]
        if p.self_rating is not None:  # given by the scenario: the participant knows it of itself
            persona += f" You consider yourself more creative than {p.self_rating}% of humans."
        llm = self.roster.llms[p.agent_id]
        request = Request(
            messages=({"role": "system", "content": persona}, {"role": "user", "content": user}),
            seed=request_seed(self.scenario.seed, step, p.agent_id), temperature=llm.temperature,
            top_p=llm.top_p, max_tokens=llm.max_tokens, stop=tuple(llm.stop), tag=f"s{step}-a{p.agent_id}",
            route=self.routes[p.agent_id])
        return with_schema(request, reply_schema(len(shown))), shown

    def step(self) -> StepRecord:
        step = self.first_step + self.steps - 1
        self._out = StepRecord(tables={"examples": []})
        if step == 0:
            self._pool_step()
            return self._out
        active = [p for p in self.participants.values() if p.trial == step]
        composed = [(p, *self.compose(p, step)) for p in active]
        replies = self.llm.generate([request for _, request, _ in composed])
        for (p, request, shown), reply in zip(composed, replies, strict=True):
            idea_id = f"s{step}-a{p.agent_id}"
            readable = reply.text and (reply.ok or reply.error == MISMATCH)  # a bad ranking keeps the idea
            text, ranking = parse_reply(reply.text, len(shown)) if readable else (None, None)
            error = None if text else (reply.error or "the reply held no idea")
            row = self._row(step, p.agent_id, idea_id, text, [e[0] for e in shown], "llm", "create", reply)
            row["error"] = error
            self._out.ideas.append(row)
            self._out.prompts.append(self._prompt_row(step, p.agent_id, idea_id, request, reply))
            rank_of = {pos: r for r, pos in enumerate(ranking, 1)} if ranking else {}
            self._out.tables["examples"].extend(
                {"idea_id": idea_id, "position": n, "example_id": eid, "example_source": src,
                 "rank": rank_of.get(n)}
                for n, (eid, _, src) in enumerate(shown, 1))
        self._absorb(self._out.ideas)
        return self._out

    def _row(self, step, agent_id, idea_id, text, parents, source, operation, reply: Reply | None) -> dict:
        return {
            "run_id": self.run_id, "step": step, "agent_id": agent_id, "idea_id": idea_id, "text": text,
            "parent_ids": parents, "operation": operation, "source": source,
            "personality": self.participants[agent_id].persona if agent_id is not None else None,
            "model": reply.model if reply else None, "seed": reply.seed if reply else None,
            "prompt_tokens": reply.prompt_tokens if reply else 0,
            "completion_tokens": reply.completion_tokens if reply else 0,
            "latency_s": reply.latency_s if reply else 0.0, "cached": reply.cached if reply else False,
            "retries": reply.retries if reply else 0,
            "error": (reply.error if reply and not reply.ok else None) if reply else None,
        }

    def _prompt_row(self, step, agent_id, idea_id, request: Request, reply: Reply) -> dict:
        """The messages sent, and the raw reply (its idea and ranking were parsed from it)."""
        messages = [*request.messages, {"role": "assistant", "content": reply.text}] if reply.text else list(
            request.messages)
        return {"run_id": self.run_id, "step": step, "agent_id": agent_id, "idea_id": idea_id,
                "messages": json.dumps(messages, ensure_ascii=False)}

    # --- resume ---------------------------------------------------------------------
    def restore(self, rows: list[dict]) -> None:
        last = -1
        for step in sorted({r["step"] for r in rows}):
            self._absorb([r for r in rows if r["step"] == step])
            last = step
        self.steps = last + 1

    def agents_table(self) -> list[dict]:
        return [
            {"agent_id": p.agent_id, "participant": p.participant, "trial_index": p.trial_index,
             "item": p.chain.item, "condition": p.chain.condition, "chain": p.chain.index,
             "trial": p.trial, "n_ai": p.chain.n_ai, "disclosed": p.chain.disclosed, "persona": p.persona,
             "self_rating": p.self_rating, "community": None, "group": self.roster.groups[p.agent_id],
             "model": self.roster.llms[p.agent_id].model}
            for p in self.participants.values()
        ]
