"""The claims of the study the autotelic kind restates, as data, so a report can print them
beside a run's own figures.

Colas, C., Teodorescu, L., Oudeyer, P.-Y., Yuan, X. & Côté, M.-A. (2023). "Augmenting
Autotelic Agents with Large Language Models". arXiv:2305.12487.

Why directions only: the abstract is the only part of the paper that could be read where
this toolkit was written, and it holds no numbers. Its claim is that "LMA3 agents learn to
master a large diversity of skills in a task-agnostic text-based environment", with a
language model as "1) a relabeler that describes the goals achieved in the agent's
trajectories, 2) a goal generator that suggests new high-level goals along with their
decomposition into subgoals the agent already masters, and 3) reward functions for each
of these goals". The architecture is what the model implements; the claim is what a run
can test. Every figure below is a direction ("+", increase) read from that sentence, with
``source="abstract"``; none has a value, so only directions are compared.

Why these figures: each is the closest thing the run's tables (episodes, repertoire) let
us compute to "learn to master" or "a large diversity of skills", and each can come out
the other way. Counts of goals known or mastered are left out on purpose: a repertoire
only grows, so such a count rises by construction and would confirm the paper whatever
the agents did.

- ``success_slope``: "learn to master". The slope over steps of whether the goal an agent
  pursued in an episode was reached, judged by the game's facts (the oracle) where it can
  read the goal, and, on its own row, by the language model's reward. An agent favours the
  goals it has not mastered yet and imagines harder ones from those it has, so this rate
  can stay flat or fall while the repertoire grows; a rise means the agents get better at
  what they set out to do.
- ``eval_slope``: "master ... skills in a ... text-based environment", judged by the
  environment alone. The slope over steps of the share of the held-out evaluation goals
  (the game's own facts: an ingredient taken, a door opened, food cooked) reached in one
  episode. Per episode, not accumulated over the run as coverage is, so it can fall.
- ``vendi_gain``: "a large diversity of skills". Per agent, the Vendi score (an effective
  number of distinct goals in the embedder's space) of its mastered goals at the run's
  last step minus at its first, averaged over agents. Mastery is competence over the last
  few pursuits, so it can be lost; a paraphrase of a mastered goal adds almost nothing and
  a near-duplicate lowers the score; so it need not rise. It is still the weakest of the
  three: agents start with nothing mastered (a goal needs pursuits before it has a
  competence), so any run that masters a few unlike goals shows a rise; a run that masters
  nothing shows none. The two slopes are the stricter tests.

How ours are computed and their intervals: :mod:`culturesim.kinds.autotelic.paper_compare`.
"""

from __future__ import annotations

from culturesim.kinds.paper_figures import PaperFigure

PAPER = ("Colas, Teodorescu, Oudeyer, Yuan & Côté (2023), Augmenting Autotelic Agents with Large "
         "Language Models (arXiv:2305.12487); abstract only")

ABSTRACT = "abstract"
MASTER = "abstract: 'we show that LMA3 agents learn to master a large diversity of skills'"
ENVIRONMENT = "abstract: 'learn to master ... skills in a task-agnostic text-based environment'"
DIVERSITY = "abstract: 'a large diversity of skills'"

__all__ = ["FIGURES", "PAPER", "PaperFigure"]


FIGURES: tuple[PaperFigure, ...] = (
    PaperFigure(key="success_slope", measure="success on the pursued goal", contrast="over the run",
                statistic="slope per step", direction="+", where=MASTER, source=ABSTRACT),
    PaperFigure(key="eval_slope", measure="evaluation goals reached per episode (game facts)",
                contrast="over the run", statistic="slope of the share per step", direction="+",
                where=ENVIRONMENT, source=ABSTRACT),
    PaperFigure(key="vendi_gain", measure="diversity of mastered goals (Vendi)", contrast="last vs first step",
                statistic="mean over agents of the change", direction="+", where=DIVERSITY, source=ABSTRACT),
)
