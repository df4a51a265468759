"""What an agent remembers: its own last ideas, and the ideas it received over the last steps.

A scenario's ``memory: {own: K, received: K}`` block (0, the default, is off) gives each agent
two memories that prompt templates can show:

- ``{history}``: the agent's last ``own`` ideas, oldest first; the newest is the idea it holds
  now (the one ``{own_idea}`` shows), so ``own: 1`` shows just that idea again.
- ``{received_history}``: the other agents' ideas it was shown in the ``received`` steps
  before this one (steps t-K .. t-1 for step t), oldest first, each idea once. What
  an agent is shown in the current step is ``{ideas}``, not memory.

A template may use a placeholder only when its memory is on (``placeholder_problems``): a
placeholder that could only ever render empty is a mistake the loader names, not a silent
blank. Before there is anything to remember it renders as :data:`EMPTY_HISTORY` or
:data:`EMPTY_RECEIVED`, so the prompt still reads as a sentence.

The memory is a function of the recorded idea rows (``store.IDEAS_SCHEMA``): an agent's own
ideas are its successful rows, what it received are the ``parent_ids`` of its rows held by
other agents. So :meth:`Memory.restore` rebuilds it exactly from the completed steps of a
killed run, and a resumed run shows the very prompts an uninterrupted one shows. Memory is
context, not lineage: ideas shown from memory are not added to ``parent_ids`` (the prompts
table keeps what was shown).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from culturesim.scenario import KeyPath, Strict

EMPTY_HISTORY = "(no earlier ideas yet)"
EMPTY_RECEIVED = "(nothing received yet)"

# placeholder -> the memory key that must be above 0 for a template to use it
PLACEHOLDERS = {"history": "own", "received_history": "received"}


class MemorySpec(Strict):
    """``memory:`` in a scenario: how much each agent remembers (0 = nothing)."""

    own: Annotated[int, Field(strict=True, ge=0, le=10_000)] = Field(
        0, description="the agent's last K own ideas, shown as {history}")
    received: Annotated[int, Field(strict=True, ge=0, le=10_000)] = Field(
        0, description="ideas received from others over the last K steps, shown as {received_history}")

    @property
    def on(self) -> bool:
        return self.own > 0 or self.received > 0


def placeholder_problems(spec: MemorySpec, templates: Iterable[tuple[KeyPath, str | None]],
                         fields_of) -> list[tuple[KeyPath, str]]:
    """Templates that use a memory placeholder whose memory is off, and memory that no
    template shows. ``fields_of(template)`` gives a template's placeholders."""
    problems: list[tuple[KeyPath, str]] = []
    used: set[str] = set()
    for path, template in templates:
        if not template:
            continue
        for name in sorted(fields_of(template) & PLACEHOLDERS.keys()):
            used.add(name)
            key = PLACEHOLDERS[name]
            if getattr(spec, key) == 0:
                problems.append((path, f"uses {{{name}}} but memory.{key} is 0 (off); "
                                       f"set memory.{key} to the number of ideas or steps to remember"))
    for name, key in PLACEHOLDERS.items():
        if getattr(spec, key) > 0 and name not in used:
            problems.append((("memory", key), f"memory.{key} is {getattr(spec, key)} but no prompt template "
                                              f"shows {{{name}}}; add it to a template or set memory.{key}: 0"))
    return problems


@dataclass(frozen=True)
class Remembered:
    step: int
    idea_id: str
    text: str


def render(items: list[Remembered], empty: str) -> str:
    """A numbered list, one idea a line, as ``{ideas}`` shows several ideas."""
    if not items:
        return empty
    return "\n".join(f"{i}. {item.text}" for i, item in enumerate(items, 1))


class Memory:
    """Every agent's memories in one place; kinds call :meth:`keep_own` when an agent adopts
    an idea and :meth:`keep_received` with the other agents' ideas it was shown."""

    def __init__(self, spec: MemorySpec):
        self.spec = spec
        self._own: dict[int, deque[Remembered]] = {}
        self._received: dict[int, list[Remembered]] = {}

    def keep_own(self, agent_id: int, step: int, idea_id: str, text: str) -> None:
        if self.spec.own:
            self._own.setdefault(agent_id, deque(maxlen=self.spec.own)).append(Remembered(step, idea_id, text))

    def keep_received(self, agent_id: int, step: int, ideas: Iterable[tuple[str, str]]) -> None:
        """``ideas``: (idea id, text) of the other agents' ideas shown to the agent at ``step``."""
        if not self.spec.received:
            return
        kept = self._received.setdefault(agent_id, [])
        # the next step that can still show an idea of this step is step + 1; it looks back to
        # step + 1 - K, so anything older can go
        oldest = step + 1 - self.spec.received
        kept[:] = [r for r in kept if r.step >= oldest]
        kept.extend(Remembered(step, idea_id, text) for idea_id, text in ideas)

    def history(self, agent_id: int) -> list[Remembered]:
        return list(self._own.get(agent_id, ()))

    def received(self, agent_id: int, step: int) -> list[Remembered]:
        """What the agent received in steps step-K .. step-1, oldest first, each idea once."""
        first = step - self.spec.received
        seen: set[str] = set()
        out = []
        for item in self._received.get(agent_id, ()):
            if first <= item.step < step and item.idea_id not in seen:
                seen.add(item.idea_id)
                out.append(item)
        return out

    def fields(self, agent_id: int, step: int) -> dict[str, str]:
        """The values of ``{history}`` and ``{received_history}`` for a prompt at ``step``."""
        return {"history": render(self.history(agent_id), EMPTY_HISTORY),
                "received_history": render(self.received(agent_id, step), EMPTY_RECEIVED)}

    def restore(self, rows: list[dict]) -> None:
        """Rebuild every memory from the idea rows of the completed steps, as the live run
        built it: own ideas from successful rows (seed ideas included), received ideas from
        the ``parent_ids`` held by other agents."""
        if not self.spec.on:
            return
        by_id = {row["idea_id"]: row for row in rows}
        for row in sorted(rows, key=lambda r: (r["step"], r["agent_id"])):
            agent = row["agent_id"]
            if row["text"] and row["error"] is None:
                self.keep_own(agent, row["step"], row["idea_id"], row["text"])
            if row["source"] == "seed":
                continue
            others = [by_id[p] for p in (row["parent_ids"] or []) if p in by_id and by_id[p]["agent_id"] != agent]
            self.keep_received(agent, row["step"], [(p["idea_id"], p["text"]) for p in others])
