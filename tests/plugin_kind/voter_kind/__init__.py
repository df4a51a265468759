"""The voter kind: opinions copied along the edges of a network (voter model or Moran process).

A plug-in kind, installed from its own distribution (``culturesim-voter-kind``) and found by
culturesim through the ``culturesim.kinds`` entry point of its pyproject.toml, exactly like a
built-in kind. It exists to show that a kind needs no change to culturesim: it is built only
from culturesim's public pieces (``culturesim.kinds``, ``culturesim.kinds.contract``,
``culturesim.scenario``, ``culturesim.networks``; ``app.kinds`` and ``app.sections`` for its
Run page section).

* :mod:`.schema` the scenario (``population``, ``network``, ``voter`` blocks; no ``llm``);
* :mod:`.model`  the seeded dynamics, one runner step = one synchronous sweep (voter) or one
  Moran generation (as many birth-death events as agents);
* :mod:`.tables` the ``opinions`` table, one row per agent per step;
* :mod:`.view`   the Run page's "Opinions" section (imported by the app only).

This module only describes the kind: the registry imports it to learn the dotted paths, and
nothing heavier (no mesa, no numpy, no dash) is imported until a run or the app asks.
"""

from culturesim.kinds import Kind

KIND = Kind(
    name="voter",
    description="voter model / neutral Moran process of discrete opinions on a network (plug-in example)",
    schema="voter_kind.schema:VoterScenario",
    model="voter_kind.model:VoterModel",
    tables="voter_kind.tables",
    view="voter_kind.view",
)
