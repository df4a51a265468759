"""TextWorld CookingWorld games for autotelic agents: generate them, play them, judge goals by their facts.

Games are generated offline by TextWorld's ``tw-cooking`` challenge, once per (settings, seed), into a
cache folder keyed by both: every agent of a run, every cell of a sweep and every resume plays the same
file. Generation runs in a subprocess with ``PYTHONHASHSEED=0`` because TextWorld iterates over sets
while writing the game, so in-process generation gives a different file (same world, other bytes)
in every interpreter.

An agent sees only what a player sees: the game's text and its admissible commands. The game's facts
(its logical state) are read here for one purpose, the :class:`Oracle` that checks goals for
evaluation; nothing derived from them is ever shown to a language model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# One fact as the oracle sees it: (predicate, argument names...), e.g. ("in", "red potato", "I").
Fact = tuple[str, ...]

_MAKE = """
import json, sys, textworld
from textworld.challenges.tw_cooking import cooking
settings, seed, out = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
options = textworld.GameOptions()
options.seeds = seed
options.path = out
options.file_ext = ".z8"
textworld.generator.compile_game(cooking.make(settings, options), options)
"""


class GameError(RuntimeError):
    """A game that could not be generated or loaded."""


def default_cache_dir() -> Path:
    root = os.environ.get("CULTURESIM_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(root) / "culturesim" / "cookingworld"


def tw_settings(*, recipe: int, take: int, go: int, open: bool, cook: bool, cut: bool, drop: bool) -> dict:
    """The settings dict of ``tw-make tw-cooking`` (what its command-line flags fill in)."""
    return {"recipe": recipe, "take": take, "go": go, "open": open, "cook": cook, "cut": cut, "drop": drop,
            "recipe_seed": 0, "split": None}


def game_key(settings: dict, seed: int) -> str:
    import textworld

    blob = json.dumps({"settings": settings, "seed": seed, "textworld": textworld.__version__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def make_game(settings: dict, seed: int, cache_dir: Path) -> Path:
    """The game file for these settings and seed, generated on first use (about 5 s)."""
    folder = cache_dir / game_key(settings, seed)
    path = folder / "game.z8"
    if path.is_file():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{folder.name}."))
    try:
        done = subprocess.run([sys.executable, "-c", _MAKE, json.dumps(settings), str(seed), str(tmp / "game.z8")],
                              env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True, text=True, timeout=900)
        if done.returncode != 0 or not (tmp / "game.z8").is_file():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise GameError(f"tw-cooking could not make a game with {settings} seed {seed}: {' | '.join(tail)}")
        try:
            os.rename(tmp, folder)  # atomic: a concurrent maker of the same game wins or loses whole
        except OSError:
            if not path.is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


_PROMPT_TAIL = re.compile(r"\n\s*>.*\Z", re.DOTALL)  # the command prompt and the status line after it
_SCORE = re.compile(r"Your score has just gone (?:up|down) by \w+ points?\.|\*\*\* The End \*\*\*|"
                    r"You scored \d+ out of a possible \d+.*?(?:\.|$)", re.IGNORECASE)


def clean(feedback: str) -> str:
    """The game's text as a reader takes it in: no prompt, no score (the game's own reward), one line."""
    text = _PROMPT_TAIL.sub("", "\n" + feedback)
    text = _SCORE.sub("", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class Episode:
    """One played episode: what the player did and read, and (for the oracle only) what became true."""

    actions: tuple[str, ...]
    feedback: tuple[str, ...]
    replayed: int  # how many of the actions came from the plan (replayed trajectories)
    gained: frozenset[Fact]  # facts that became true at some step of the episode
    won: bool
    lost: bool


def _facts(props: Iterable) -> set[Fact]:
    return {(p.name, *(a.name for a in p.arguments)) for p in props}


class CookingGame:
    """A generated game, reset for every episode: all players play copies of the same world."""

    def __init__(self, path: Path):
        import textworld

        self.path = Path(path)
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()
        infos = textworld.EnvInfos(admissible_commands=True, facts=True, won=True, lost=True)
        try:
            self.env = textworld.start(str(self.path), request_infos=infos)
            state = self.env.reset()
        except Exception as exc:  # noqa: BLE001 - TextWorld raises several kinds for a bad file
            raise GameError(f"{self.path}: not a playable TextWorld game ({exc})") from None
        self.initial_facts = _facts(state.facts)
        self.entities = {a.name: a.type for p in state.facts for a in p.arguments}
        self.oracle = Oracle(self.entities, self.initial_facts)

    def play(self, plan: list[str], rng: np.random.Generator, max_actions: int,
             skip_verbs: tuple[str, ...] = ()) -> Episode:
        """Replay ``plan`` (skipping commands the game does not admit at that moment), then explore
        uniformly among the admissible commands until ``max_actions`` were taken or the game ends."""
        state = self.env.reset()
        before = _facts(state.facts)
        gained: set[Fact] = set()
        actions: list[str] = []
        feedback: list[str] = []
        queue = list(plan)
        replayed = 0
        done = False
        while len(actions) < max_actions and not done:
            admissible = list(state.admissible_commands or [])
            if not admissible:
                break
            while queue and queue[0] not in admissible:
                queue.pop(0)
            if queue:
                command = queue.pop(0)
                replayed += 1
            else:
                allowed = [c for c in admissible if c.split(" ", 1)[0] not in skip_verbs] or admissible
                command = allowed[int(rng.integers(len(allowed)))]
            state, _, done = self.env.step(command)
            now = _facts(state.facts)
            gained |= now - before
            before = now
            actions.append(command)
            feedback.append(clean(state.feedback))
        return Episode(tuple(actions), tuple(feedback), replayed, frozenset(gained),
                       bool(state.won), bool(state.lost))


# --- the oracle ------------------------------------------------------------------------------------
_ARTICLE = re.compile(r"^(?:the|a|an|some|your|my)\s+")
_CLAUSE_SPLIT = re.compile(r"\s*(?:,|;|\band then\b|\bthen\b|\band\b)\s*")
_CUTS = {"slice": "sliced", "dice": "diced", "chop": "chopped"}
_COOKS = {"fry": "fried", "roast": "roasted", "grill": "grilled"}
_TOOL = r"(?:\s+(?:with|using|in|on|from)\s+.+)?"
_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("take", re.compile(r"^(?:take|pick up|get|grab|collect)\s+(?P<x>.+?)(?:\s+from\s+.+)?$")),
    ("open", re.compile(r"^open\s+(?P<x>.+)$")),
    ("close", re.compile(r"^close\s+(?P<x>.+)$")),
    ("go", re.compile(r"^(?:go to|go into|walk to|enter|visit|reach)\s+(?P<x>.+)$")),
    ("cut", re.compile(rf"^(?P<v>slice|dice|chop|cut)\s+(?P<x>.+?){_TOOL}$")),
    ("cook", re.compile(rf"^(?P<v>fry|roast|grill|cook)\s+(?P<x>.+?){_TOOL}$")),
    ("prepare", re.compile(r"^(?:prepare|make)\s+(?P<x>.+)$")),
    ("eat", re.compile(r"^eat\s+(?P<x>.+)$")),
    ("put", re.compile(r"^(?:put|place|insert)\s+(?P<x>.+?)\s+(?P<p>on|onto|in|into|inside)\s+(?P<y>.+)$")),
]


def normalise_goal(text: str) -> str:
    """A goal as one lowercase line without list marks, quotes or end punctuation."""
    text = re.sub(r"^\s*(?:(?:[-*•]+|\d+[.)])\s*)+", "", text.strip())
    text = text.strip().strip("\"'`").strip()
    text = re.sub(r"[.!?:;,]+$", "", text)
    return " ".join(text.lower().split())


class Oracle:
    """Checks a goal's text against the facts an episode made true, where the text can be read.

    A goal is a conjunction of clauses ("take the knife and slice the red potato"); each clause is
    one verb of the game with the names of its objects. A clause is achieved when one of the facts it
    stands for became true during the episode (a fact already true at the start does not count: a
    player who never moved did not "go to the kitchen"). A goal the oracle cannot read (an unknown
    verb, an object the game does not have or names ambiguously) is not judgeable: None.
    """

    def __init__(self, entities: dict[str, str], initial: set[Fact]):
        self.entities = entities
        self.initial = initial
        # goals are read in lowercase; facts keep the game's spelling ("BBQ")
        self.names = {n.lower(): n for n, t in entities.items() if t not in ("P", "I", "RECIPE", "ingredient")}

    def entity(self, phrase: str) -> str | None:
        """The game's name for an object phrase: exact, or the one name it ends ("potato" is ambiguous
        when the game has a red and a yellow one)."""
        phrase = _ARTICLE.sub("", phrase.strip())
        if phrase in self.names:
            return self.names[phrase]
        matches = [n for low, n in self.names.items() if low.endswith(" " + phrase)]
        return matches[0] if len(matches) == 1 else None

    def clause(self, text: str) -> list[Fact] | None:
        """The facts any one of which achieves this clause, or None if it cannot be read."""
        for kind, pattern in _PATTERNS:
            found = pattern.match(text)
            if not found:
                continue
            x = self.entity(found.group("x"))
            if x is None:
                return None
            if kind == "take":
                return [("in", x, "I")]
            if kind == "open":
                return [("open", x)]
            if kind == "close":
                return [("closed", x)]
            if kind == "go":
                return [("at", "P", x)] if self.entities[x] == "r" else None
            if kind == "cut":
                verb = found.group("v")
                return [(_CUTS[verb], x)] if verb in _CUTS else [(p, x) for p in _CUTS.values()]
            if kind == "cook":
                verb = found.group("v")
                if x == "meal":
                    return [("in", "meal", "I")]
                return [(_COOKS[verb], x)] if verb in _COOKS else [("cooked", x)]
            if kind == "prepare":
                return [("in", "meal", "I")] if x == "meal" else None
            if kind == "eat":
                return [("consumed", x)]
            if kind == "put":
                y = self.entity(found.group("y"))
                if y is None:
                    return None
                return [("on", x, y)] if found.group("p") in ("on", "onto") else [("in", x, y)]
        return None

    def clauses(self, goal: str) -> list[list[Fact]] | None:
        parts = [p for p in _CLAUSE_SPLIT.split(normalise_goal(goal)) if p]
        read = [self.clause(p) for p in parts]
        return read if read and all(r is not None for r in read) else None

    def judge(self, goal: str, gained: frozenset[Fact] | set[Fact]) -> bool | None:
        """Whether the episode achieved the goal; None where the oracle cannot read the goal."""
        read = self.clauses(goal)
        if read is None:
            return None
        return all(any(fact in gained for fact in alternatives) for alternatives in read)

    def evaluation_goals(self) -> list[str]:
        """A held-out set of goals this game allows, written from its facts and never shown to agents:
        go to each room, open each closed thing, take each portable thing not held, cut and cook each
        ingredient in the ways the game offers, prepare and eat the meal."""
        kinds = self.entities
        goals = [f"go to the {n.lower()}" for n in sorted(n for n, t in kinds.items() if t == "r")]
        goals += [f"open the {x.lower()}" for (p, x, *_) in sorted(self.initial) if p == "closed"]
        goals += [f"take the {n.lower()}" for n in sorted(n for n, t in kinds.items() if t in ("f", "o"))
                  if ("in", n, "I") not in self.initial]
        cookers = {"stove": "fry", "oven": "roast", "bbq": "grill"}
        for (p, x, *_) in sorted(self.initial):
            if p == "uncut":
                goals += [f"{verb} the {x.lower()}" for verb in _CUTS]
            if p == "needs_cooking":
                goals += [f"{verb} the {x.lower()}" for t, verb in cookers.items() if t in kinds.values()]
        goals += ["prepare the meal", "eat the meal"]
        assert all(self.clauses(g) is not None for g in goals), "every evaluation goal must be judgeable"
        return goals
