"""Autotelic agents that invent, pursue and share goals in TextWorld's CookingWorld.

Restates LMA3 (Colas et al. 2023) for a population on a network. Each agent keeps a goal
repertoire: goal text, subgoals, the shortest trajectory known to achieve it, and competence
(its success rate over the last few pursuits). An episode is:

1. pick a goal: one of its own (goals it has not mastered are favoured), one a neighbour sent,
   or a new one imagined by the language model from the goals it has reached and received;
2. act: replay the trajectory of the goal, or else of its subgoals, then explore uniformly
   among the game's admissible commands with a seeded generator;
3. the language model relabels the trajectory (which goals did it reach? each becomes a known
   goal with that trajectory) and rewards the chosen goal (reached or not: its competence).

Every ``share_every`` episodes, agents send their most competent mastered goals to their
neighbours: the text, the text with its subgoals, or the text with a trajectory.

A step runs ``episodes_per_step`` episodes per agent in three phases (docs/ARCHITECTURE.md, "The step"): all imagine
requests go to the model in one call, every episode is played, then all relabel and reward
requests go in one call. All randomness comes from generators seeded by (run seed, step, agent,
episode), and the game is deterministic, so replaying the recorded replies of steps 1..t
rebuilds the exact state (``restore``).

The game's facts judge goals for evaluation only (the oracle, in cookingworld.py): whether
the chosen goal and the goals of a held-out evaluation set were reached. The agents and the
language model never see them.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import mesa
import networkx as nx
import numpy as np
from mesa.discrete_space import FixedAgent, Network

from culturesim.agents.groups import kind_roster
from culturesim.kinds.autotelic.cookingworld import (
    CookingGame,
    Episode,
    default_cache_dir,
    make_game,
    normalise_goal,
    tw_settings,
)
from culturesim.kinds.autotelic.schema import AutotelicScenario
from culturesim.kinds.autotelic.tables import TABLES
from culturesim.kinds.contract import Door, KindModel, StepRecord
from culturesim.llm.shape import canonical
from culturesim.llm.types import Reply, Request
from culturesim.networks import population_graph
from culturesim.personalities import registry

OPERATIONS = ("imagine", "relabel", "reward")


SYSTEM = ("You play a text adventure about cooking in a house. You set yourself goals and learn to reach "
          "them. Goals are short commands, like: open the fridge.")
IMAGINE = ("Goals you have reached:\n{reached}\n\nGoals other players told you about:\n{received}\n\n"
           "Invent one new goal for yourself in this game, a little harder than these, built from goals "
           "you have reached. {cot}Answer in JSON: \"goal\", a short command, and \"subgoals\", the goals "
           "to reach first.")
RELABEL = ("Here is what a player did in the game:\n{trajectory}\n\nWhich goals did the player reach? {cot}"
           "Answer in JSON: \"goals\", a list of at most {n} goals, each a short command.")
REWARD = ("The player's goal was: {goal}\nHere is what the player did:\n{trajectory}\n\n"
          "Did the player reach the goal? {cot}Answer in JSON: \"reached\", true or false.")
# With chain of thought the reply opens with its reasoning: "analysis" sorts before every other
# field, and a schema's fields are decoded in the order of its canonical (sorted) text.
COT = {
    "imagine": "First write \"analysis\": one sentence of reasoning. ",
    "relabel": "First write \"analysis\": one sentence about what changed in the game. ",
    "reward": "First write \"analysis\": one sentence of reasoning. ",
}
_ANALYSIS = {"analysis": {"type": "string"}}


# A goal is a command of the game, or two joined by "and": a verb, then up to six lowercase
# words, hyphens allowed ("put red hot pepper on bed", "open the frosted-glass door"). The
# grammar holds every goal string to this pattern, so a small model cannot fill a reply with
# punctuation, narration ("you have reached ...") or placeholders ("goal_new_challenge_1"),
# all of which clean_goal would drop. The verbs are the
# game's own (its parser and the oracle read them) and a few a player naturally sets goals with
# (find, explore, reach); a goal the oracle cannot read is kept (agents may invent goals beyond
# the game's facts), it is only not judged by the oracle. At most 15 words, clean_goal's limit.
GOAL_VERBS = ("take", "pick", "get", "grab", "collect", "open", "close", "go", "walk", "enter", "visit", "reach",
              "slice", "dice", "chop", "cut", "fry", "roast", "grill", "cook", "prepare", "make", "eat", "put",
              "place", "insert", "drop", "find", "examine", "look", "unlock", "lock", "explore", "drink", "use",
              "check", "search", "read", "clean", "serve", "inventory")
GOAL_CLAUSE = "(" + "|".join(GOAL_VERBS) + ")( [a-z]+(-[a-z]+)?){0,6}"
GOAL_PATTERN = f"^{GOAL_CLAUSE}( and {GOAL_CLAUSE})?$"


def reply_schema(operation: str, *, cot: bool, max_relabels: int = 5, max_subgoals: int = 4) -> dict:
    """The JSON shape of each call's reply (culturesim/llm/shape.py), decoded under its grammar
    on the embedded model. Lists are bounded so that a reply fits its token cap, and goals are
    held to :data:`GOAL_PATTERN`."""
    goal = {"type": "string", "pattern": GOAL_PATTERN}
    fields = {
        "imagine": {"goal": goal, "subgoals": {"type": "array", "items": goal, "maxItems": max_subgoals}},
        "relabel": {"goals": {"type": "array", "items": goal, "minItems": 1, "maxItems": max_relabels}},
        "reward": {"reached": {"type": "boolean"}},
    }[operation]
    properties = {**(_ANALYSIS if cot else {}), **fields}
    return {"type": "object", "additionalProperties": False, "required": sorted(properties),
            "properties": properties}


# --- replies -------------------------------------------------------------------------------------
_LABEL = re.compile(r"^(?:goals?|subgoals?|answer)\s*:\s*", re.IGNORECASE)
# A goal is a command and starts with a verb: replies that narrate ("you have reached ...", "the new
# goal is ...") or echo the format ("goal:", "none") are not goals.
_NOT_A_VERB = frozenset("""a an the this that these those it its i i'm i've my me we our you you're you've your
he she they there here his her their goal goals subgoal subgoals none new player answer thought analysis""".split())


def clean_goal(text: str) -> str | None:
    """A goal the repertoire can hold, or None: one to fifteen words (two commands of seven joined
    by "and", what :data:`GOAL_PATTERN` allows) with a letter, no template echo."""
    if re.fullmatch(r"\W*<[^>]*>\W*", text):  # the answer format echoed back
        return None
    goal = normalise_goal(_LABEL.sub("", normalise_goal(text)).replace("<", "").replace(">", ""))
    words = goal.split()
    if not 1 <= len(words) <= 15 or not re.search(r"[a-z]", goal) or words[0] in _NOT_A_VERB:
        return None
    return goal


def _json(text: str | None) -> dict | None:
    """The reply's JSON object, or None. The door has already checked it against the request's
    schema (a reply that did not fit arrives with ``error`` set and is not read)."""
    from culturesim.llm.shape import parse

    return parse(text, '{"type":"object"}')


def parse_goals(text: str, limit: int) -> list[str]:
    """The goals a relabel reply lists (``{"goals": [...]}``) that are commands, distinct, at most ``limit``."""
    value = _json(text)
    listed = value.get("goals") if value else None
    if not isinstance(listed, list):
        return []
    goals = [g for g in (clean_goal(str(item)) for item in listed) if g]
    return list(dict.fromkeys(goals))[:limit]


def parse_imagined(text: str) -> tuple[str | None, tuple[str, ...]]:
    """The goal and its subgoals from an imagine reply (``{"goal": ..., "subgoals": [...]}``)."""
    value = _json(text)
    if not value or not isinstance(value.get("goal"), str):
        return None, ()
    goal = clean_goal(value["goal"])
    listed = value.get("subgoals") if isinstance(value.get("subgoals"), list) else []
    subgoals = [s for s in (clean_goal(str(p)) for p in listed) if s and s != goal]
    return goal, tuple(dict.fromkeys(subgoals)) if goal else ()


def parse_reward(text: str) -> bool | None:
    """The reward reply's ``reached`` (true or false); None when the reply is not of that shape."""
    value = _json(text)
    reached = value.get("reached") if value else None
    return reached if isinstance(reached, bool) else None


# --- the repertoire ------------------------------------------------------------------------------
def goal_id(text: str) -> str:
    return "g" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]


def call_seed(run_seed: int, step: int, agent_id: int, episode: int, operation: str) -> int:
    """A 32-bit seed per (run, step, agent, episode, operation): an agent calls the model
    several times a step, and each call must be reproducible on its own."""
    return int(np.random.SeedSequence([run_seed, step, agent_id, episode, OPERATIONS.index(operation)])
               .generate_state(1)[0])


@dataclass
class Goal:
    text: str
    subgoals: tuple[str, ...]
    source: str
    origin: str
    first_step: int
    from_agent: int | None = None
    trajectory: tuple[str, ...] | None = None
    outcomes: list[bool] = field(default_factory=list)

    @property
    def goal_id(self) -> str:
        return goal_id(self.text)

    def competence(self, window: int) -> float | None:
        recent = self.outcomes[-window:]
        return sum(recent) / len(recent) if recent else None

    def remember(self, actions: tuple[str, ...]) -> None:
        """Keep the shortest trajectory that reached the goal: the cheapest to replay."""
        if actions and (self.trajectory is None or len(actions) < len(self.trajectory)):
            self.trajectory = actions


@dataclass(frozen=True)
class Message:
    """A goal as sent to a neighbour: what travels depends on the transmission condition."""

    text: str
    subgoals: tuple[str, ...]
    trajectory: tuple[str, ...] | None
    origin: str
    sender: int


@dataclass
class Plan:
    """One episode of one agent across the three phases."""

    agent: AutotelicAgent
    episode: int
    game: int
    source: str
    goal: Goal | None = None
    played: Episode | None = None
    relabeled: list[str] = field(default_factory=list)
    relabel_status: str = "none"
    llm_reward: bool | None = None
    reward_status: str = "none"

    def tag(self, step: int, operation: str) -> str:
        return f"s{step}-a{self.agent.agent_id}-e{self.episode}-{operation}"


class AutotelicAgent(FixedAgent):
    def __init__(self, model: AutotelicModel, agent_id: int, personality: str, cell):
        super().__init__(model)
        self.agent_id = agent_id
        self.personality = personality
        self.cell = cell
        self.repertoire: dict[str, Goal] = {}  # by goal text
        self.inbox: dict[str, Message] = {}  # goals received, not yet pursued

    def competence(self, goal: Goal) -> float | None:
        return goal.competence(self.model.scenario.autotelic.competence_window)

    def mastered(self, goal: Goal) -> bool:
        c = self.competence(goal)
        return c is not None and c >= self.model.scenario.autotelic.mastery

    def choose(self, step: int, episode: int, game: int) -> Plan:
        """Phase 1 for one episode: the goal's source, and the goal itself unless it is to be imagined."""
        spec = self.model.scenario.autotelic
        rng = np.random.default_rng([self.model.scenario.seed, step, self.agent_id, episode, 10])
        weights = {"own": spec.sources.own if self.repertoire else 0.0,
                   "social": spec.sources.social if self.inbox else 0.0,
                   "imagine": spec.sources.imagine if spec.goal_generator else 0.0}
        total = sum(weights.values())
        if total <= 0:
            return Plan(self, episode, game, "explore")
        names = list(weights)
        source = names[int(rng.choice(len(names), p=np.array([weights[n] for n in names]) / total))]
        plan = Plan(self, episode, game, source)
        if source == "own":
            goals = sorted(self.repertoire.values(), key=lambda g: g.goal_id)
            if spec.random_goals:
                w = np.ones(len(goals))
            else:  # favour what is not mastered yet: untried goals and those with low competence
                w = np.array([1.0 if (c := self.competence(g)) is None else max(0.05, 1.0 - c) for g in goals])
            plan.goal = goals[int(rng.choice(len(goals), p=w / w.sum()))]
        elif source == "social":
            key = sorted(self.inbox)[int(rng.integers(len(self.inbox)))]
            message = self.inbox.pop(key)
            plan.goal = self.repertoire.setdefault(key, Goal(
                key, message.subgoals, "social", message.origin, step, message.sender, message.trajectory))
        return plan

    def plan_actions(self, goal: Goal | None) -> list[str]:
        """The goal's own trajectory if known, else its subgoals' trajectories in order."""
        if goal is None:
            return []
        if goal.trajectory:
            return list(goal.trajectory)
        actions: list[str] = []
        for sub in goal.subgoals:
            known = self.repertoire.get(sub)
            if known and known.trajectory:
                actions.extend(known.trajectory)
        return actions

    def reached(self) -> list[Goal]:
        """Goals with a known trajectory (reached at least once), most competent first."""
        goals = [g for g in self.repertoire.values() if g.trajectory]
        return sorted(goals, key=lambda g: (-(self.competence(g) or 0.0), g.first_step, g.goal_id))

    def learn(self, text: str, actions: tuple[str, ...], origin: str, step: int) -> None:
        """A relabelled goal: new ones join the repertoire; known ones may get a shorter trajectory."""
        goal = self.repertoire.get(text)
        if goal is None:
            goal = self.repertoire[text] = Goal(text, (), "relabel", origin, step)
            self.inbox.pop(text, None)
        goal.remember(actions)

    def outgoing(self, transmission: str, limit: int) -> list[Message]:
        mastered = [g for g in self.repertoire.values() if self.mastered(g)]
        mastered.sort(key=lambda g: (-(self.competence(g) or 0.0), -len(g.outcomes), g.goal_id))
        return [Message(g.text, g.subgoals if transmission == "text+subgoals" else (),
                        g.trajectory if transmission == "text+trajectory" else None, g.origin, self.agent_id)
                for g in mastered[:limit]]

    def receive(self, message: Message) -> None:
        if message.text not in self.repertoire and message.text not in self.inbox:
            self.inbox[message.text] = message


class AutotelicModel(KindModel, mesa.Model):
    def __init__(self, scenario: AutotelicScenario, graph: nx.Graph, llm: Door | None, run_id: str = "",
                 *, base_dir: Path | None = None):
        super().__init__(rng=scenario.seed)
        self.scenario = scenario
        self.llm = llm
        self.run_id = run_id
        self.graph = graph
        n = scenario.population.size
        if graph.number_of_nodes() != n:
            raise ValueError(f"network has {graph.number_of_nodes()} nodes but population.size is {n}")
        self.space = Network(graph, capacity=1, random=self.random)
        self.personalities = registry(scenario.population.personalities)
        self.roster = kind_roster(scenario, graph)  # personality, group and model of each agent
        self.routes = self.roster.routes(llm)
        labels = self.roster.personalities
        cells = {cell.coordinate: cell for cell in self.space.all_cells}
        self.agent_by_id = {i: AutotelicAgent(self, i, labels[i], cells[i]) for i in range(n)}
        # who hears whom: an edge u -> v means v receives u's goals
        sends = graph.successors if graph.is_directed() else graph.neighbors
        self.audience = {i: sorted(j for j in sends(i) if j != i) for i in range(n)}
        self.games = self._load_games(base_dir)
        self.eval_goals = [g.oracle.evaluation_goals() for g in self.games]
        self.first_step = 1
        self._out = StepRecord()  # what the step in progress has produced

    @classmethod
    def build_graph(cls, scenario: AutotelicScenario, base_dir: Path | None = None) -> nx.Graph:
        return population_graph(scenario, base_dir)

    def tables(self) -> dict[str, dict]:
        return TABLES

    def _load_games(self, base_dir: Path | None) -> list[CookingGame]:
        spec = self.scenario.game
        if spec.cache_dir:
            cache = Path(spec.cache_dir).expanduser()
            cache = cache if cache.is_absolute() else (base_dir or Path.cwd()) / cache
        else:
            cache = default_cache_dir()
        settings = tw_settings(recipe=spec.recipe, take=spec.take, go=spec.go, open=spec.open, cook=spec.cook,
                               cut=spec.cut, drop=spec.drop)
        seeds = np.random.SeedSequence([self.scenario.seed, 5]).generate_state(spec.count)
        return [CookingGame(make_game(settings, int(s) % 2**31, cache)) for s in seeds]

    def game_label(self, index: int) -> str:
        return f"{index}:{self.games[index].sha256[:12]}"

    @property
    def next_step(self) -> int:
        return self.first_step + self.steps

    def planned_requests(self, first: int, last: int) -> int:
        """An upper bound: a relabel and a reward per episode, and an imagined goal at most."""
        spec = self.scenario.autotelic
        per_episode = 2 + (1 if spec.goal_generator and spec.sources.imagine > 0 else 0)
        return max(0, last - first + 1) * len(self.agent_by_id) * spec.episodes_per_step * per_episode

    def agents_table(self) -> list[dict]:
        return [{"agent_id": a.agent_id, "personality": a.personality,
                 "community": self.graph.nodes[a.agent_id].get("community"),
                 "audience": len(self.audience[a.agent_id]), "group": self.roster.groups[a.agent_id],
                 "model": self.roster.llms[a.agent_id].model} for a in self.agent_by_id.values()]

    # --- requests ---------------------------------------------------------------------------
    def _request(self, plan: Plan, step: int, operation: str, user: str) -> Request:
        llm = self.roster.llms[plan.agent.agent_id]
        spec = self.scenario.autotelic
        cap = getattr(spec.max_tokens, operation) or llm.max_tokens
        system = f"{self.personalities[plan.agent.personality]} {SYSTEM}".strip()
        shape = reply_schema(operation, cot=spec.chain_of_thought, max_relabels=spec.max_relabels)
        return Request(messages=({"role": "system", "content": system}, {"role": "user", "content": user}),
                       seed=call_seed(self.scenario.seed, step, plan.agent.agent_id, plan.episode, operation),
                       temperature=llm.temperature, top_p=llm.top_p, max_tokens=cap, stop=tuple(llm.stop),
                       tag=plan.tag(step, operation), route=self.routes[plan.agent.agent_id],
                       schema=canonical(shape))

    def _cot(self, operation: str) -> str:
        return COT[operation] if self.scenario.autotelic.chain_of_thought else ""

    def imagine_request(self, plan: Plan, step: int) -> tuple[Request, list[str]]:
        spec = self.scenario.autotelic
        reached = plan.agent.reached()[: spec.shown_goals]
        received = [plan.agent.inbox[k] for k in sorted(plan.agent.inbox)][: spec.shown_goals]
        listing = lambda texts: "\n".join(f"- {t}" for t in texts) or "(none yet)"  # noqa: E731
        user = IMAGINE.format(reached=listing([g.text for g in reached]), received=listing([m.text for m in received]),
                              cot=self._cot("imagine"))
        parents = list(dict.fromkeys([g.origin for g in reached] + [m.origin for m in received]))
        return self._request(plan, step, "imagine", user), parents

    def trajectory_text(self, played: Episode) -> str:
        cut = self.scenario.autotelic.observation_chars
        lines = []
        for command, reply in zip(played.actions, played.feedback, strict=True):
            shown = reply if len(reply) <= cut else reply[:cut].rsplit(" ", 1)[0] + " ..."
            lines.append(f"> {command}\n{shown}")
        return "\n".join(lines) or "(the player did nothing)"

    # --- the step ---------------------------------------------------------------------------
    def step(self) -> StepRecord:
        step = self.first_step + self.steps - 1  # mesa has already counted this call
        spec = self.scenario.autotelic
        self._out = StepRecord()
        eps = spec.episodes_per_step
        plans = []
        for agent_id in sorted(self.agent_by_id):
            for e in range(eps):
                episode = (step - 1) * eps + e + 1
                plans.append(self.agent_by_id[agent_id].choose(step, episode, (episode - 1) % len(self.games)))
        # phase 1: every imagined goal of the step in one call
        imagining = [(p, *self.imagine_request(p, step)) for p in plans if p.source == "imagine"]
        replies = self.llm.generate([r for _, r, _ in imagining]) if imagining else []
        for (plan, request, parents), reply in zip(imagining, replies, strict=True):
            self.record(step, plan, "imagine", request, reply, parents)
            text, subgoals = parse_imagined(reply.text) if reply.ok and reply.text else (None, ())
            if text:
                plan.goal = plan.agent.repertoire.setdefault(
                    text, Goal(text, subgoals, "imagine", plan.tag(step, "imagine"), step))
                plan.agent.inbox.pop(text, None)
        # phase 2: play every episode
        for plan in plans:
            rng = np.random.default_rng([self.scenario.seed, step, plan.agent.agent_id, plan.episode, 11])
            plan.played = self.games[plan.game].play(plan.agent.plan_actions(plan.goal), rng, spec.max_actions,
                                                     tuple(spec.skip_verbs))
        # phase 3: every relabel and reward of the step in one call
        calls = []
        for plan in plans:
            trajectory = self.trajectory_text(plan.played)
            user = RELABEL.format(trajectory=trajectory, cot=self._cot("relabel"), n=spec.max_relabels)
            calls.append((plan, "relabel", self._request(plan, step, "relabel", user)))
            if plan.goal is not None:
                user = REWARD.format(goal=plan.goal.text, trajectory=trajectory, cot=self._cot("reward"))
                calls.append((plan, "reward", self._request(plan, step, "reward", user)))
        replies = self.llm.generate([r for _, _, r in calls]) if calls else []
        for (plan, operation, request), reply in zip(calls, replies, strict=True):
            parents = [plan.goal.origin] if plan.goal else []
            self.record(step, plan, operation, request, reply, parents)
            if operation == "relabel":
                self._adopt_relabel(plan, reply, step)
            else:
                self._adopt_reward(plan, reply)
        self._out.tables["episodes"] = [self._episode_row(step, plan) for plan in plans]
        done = step * eps
        if done // spec.share_every > (done - eps) // spec.share_every:
            self.share()
        self._out.tables["repertoire"] = self._repertoire_rows(step)
        return self._out

    def _adopt_relabel(self, plan: Plan, reply: Reply, step: int) -> None:
        if not reply.ok or not reply.text:
            plan.relabel_status = "failed"
            return
        plan.relabeled = parse_goals(reply.text, self.scenario.autotelic.max_relabels)
        plan.relabel_status = "ok" if plan.relabeled else "unparsable"
        for text in plan.relabeled:
            plan.agent.learn(text, plan.played.actions, plan.tag(step, "relabel"), step)

    def _adopt_reward(self, plan: Plan, reply: Reply) -> None:
        if not reply.ok or not reply.text:
            plan.reward_status = "failed"
            return
        plan.llm_reward = parse_reward(reply.text)
        plan.reward_status = "unparsable" if plan.llm_reward is None else "ok"
        if plan.llm_reward is not None:
            plan.goal.outcomes.append(plan.llm_reward)
            if plan.llm_reward:
                plan.goal.remember(plan.played.actions)

    def share(self) -> None:
        """Every agent sends its most competent mastered goals to its audience, all at once."""
        spec = self.scenario.autotelic
        outgoing = {i: a.outgoing(spec.transmission, spec.share_max) for i, a in self.agent_by_id.items()}
        for sender, messages in outgoing.items():
            for receiver in self.audience[sender]:
                for message in messages:
                    self.agent_by_id[receiver].receive(message)

    # --- records ----------------------------------------------------------------------------
    def record(self, step: int, plan: Plan, operation: str, request: Request, reply: Reply,
               parents: list[str]) -> None:
        idea_id = plan.tag(step, operation)
        self._out.ideas.append({
            "run_id": self.run_id, "step": step, "agent_id": plan.agent.agent_id, "idea_id": idea_id,
            "text": reply.text if reply.ok else None, "parent_ids": parents, "operation": operation,
            "source": "llm", "personality": plan.agent.personality, "model": reply.model,
            "seed": reply.seed if reply.seed is not None else request.seed, "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens, "latency_s": reply.latency_s, "cached": reply.cached,
            "retries": reply.retries, "error": reply.error,
        })
        messages = [*request.messages, {"role": "assistant", "content": reply.text}] if reply.text else list(
            request.messages)
        self._out.prompts.append({"run_id": self.run_id, "step": step, "agent_id": plan.agent.agent_id,
                                     "idea_id": idea_id, "messages": json.dumps(messages, ensure_ascii=False)})

    def _episode_row(self, step: int, plan: Plan) -> dict:
        game = self.games[plan.game]
        played = plan.played
        goal = plan.goal
        return {
            "run_id": self.run_id, "step": step, "agent_id": plan.agent.agent_id, "episode": plan.episode,
            "game": self.game_label(plan.game), "goal": goal.text if goal else None,
            "goal_id": goal.goal_id if goal else None, "source": plan.source,
            "subgoals": list(goal.subgoals) if goal else [], "actions": list(played.actions),
            "replayed": played.replayed, "relabeled": plan.relabeled, "relabel_status": plan.relabel_status,
            "llm_reward": plan.llm_reward, "reward_status": plan.reward_status,
            "oracle_success": game.oracle.judge(goal.text, played.gained) if goal else None,
            "eval_achieved": [g for g in self.eval_goals[plan.game] if game.oracle.judge(g, played.gained)],
            "eval_total": len(self.eval_goals[plan.game]), "won": played.won, "lost": played.lost,
        }

    def _repertoire_rows(self, step: int) -> list[dict]:
        window = self.scenario.autotelic.competence_window
        rows = []
        for agent in self.agent_by_id.values():
            for goal in sorted(agent.repertoire.values(), key=lambda g: g.goal_id):
                rows.append({
                    "run_id": self.run_id, "step": step, "agent_id": agent.agent_id, "goal_id": goal.goal_id,
                    "goal": goal.text, "subgoals": list(goal.subgoals), "source": goal.source,
                    "origin": goal.origin, "from_agent": goal.from_agent, "first_step": goal.first_step,
                    "attempts": len(goal.outcomes), "successes": sum(goal.outcomes),
                    "competence": goal.competence(window), "mastered": agent.mastered(goal),
                    "trajectory_len": len(goal.trajectory) if goal.trajectory else None,
                })
        return rows

    # --- resume -----------------------------------------------------------------------------
    def restore(self, rows: list[dict]) -> None:
        """Re-simulate the recorded steps, answering each request with its recorded reply: the
        games and every choice are seeded, so the state equals that of the uninterrupted run."""
        recorded = {r["idea_id"]: r for r in rows}
        last = max((r["step"] for r in rows), default=self.first_step - 1)

        def replay(requests: list[Request]) -> list[Reply]:
            missing = [r.tag for r in requests if r.tag not in recorded]
            if missing:
                raise RuntimeError(f"cannot restore: no recorded reply for {missing[:3]} (the run's scenario "
                                   f"or games differ from those that recorded it)")
            return [Reply(text=recorded[r.tag]["text"], model=recorded[r.tag]["model"] or "",
                          error=recorded[r.tag]["error"], cached=True) for r in requests]

        live, self.llm = self.llm, Door.of(replay)
        try:
            while self.next_step <= last:
                self.step()
        finally:
            self.llm = live
