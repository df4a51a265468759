"""The Price terms of an idea run between two of its steps, from the run's own ``parent_ids``.

Idea runs record which ideas each prompt showed, not a table of attributions; this adapter
turns a ``culturesim.store`` ideas table and a trait per idea into the three inputs of
:func:`analysis.price.price`, so the app and the analyses need no genealogy code of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import polars as pl

from analysis.price.decomposition import PriceTerms, price


def price_from_run(
    ideas: pl.DataFrame,
    trait: pl.DataFrame,
    groups: Mapping[Any, Any] | None,
    parent_step: int,
    child_step: int,
    *,
    innovation_form: str = "immigration",
) -> PriceTerms:
    """Price terms between two steps of an idea run (``culturesim.store`` ideas table).

    Only direct links count: a child's parents are the valid ideas of ``parent_step`` among its
    ``parent_ids``, each credited equally (``1/k`` as an exact Fraction), because the runs record
    which ideas were shown, not how much each contributed. A child whose listed parents all lie
    elsewhere is an innovation for this step. Failed ideas (``error`` set or ``text`` null) are
    neither parents nor children. Groups come from ``groups[agent_id]`` of the parent's author,
    i.e. frozen at the parent step (``None``: one group). ``innovation_form``: as in
    :func:`analysis.price.price` (default the immigration form of Kerr & Godfrey-Smith 2009).
    """
    for col in ("step", "agent_id", "idea_id", "parent_ids"):
        if col not in ideas.columns:
            raise ValueError(f"ideas: missing column {col!r}")
    for col in ("idea_id", "value"):
        if col not in trait.columns:
            raise ValueError(f"trait: missing column {col!r}")
    if child_step <= parent_step:
        raise ValueError(f"child_step ({child_step}) must come after parent_step ({parent_step})")

    values: dict[Any, Any] = {}
    for r, (iid, value) in enumerate(trait.select("idea_id", "value").rows()):
        if iid in values:
            raise ValueError(f"trait row {r}: duplicate idea_id {iid!r}")
        values[iid] = value

    valid = ideas
    if "error" in ideas.columns:
        valid = valid.filter(pl.col("error").is_null())
    if "text" in ideas.columns:
        valid = valid.filter(pl.col("text").is_not_null())

    def value_of(iid: Any) -> Any:
        if iid not in values:
            raise ValueError(f"trait: no value for idea {iid!r}")
        return values[iid]

    parents = []
    for iid, agent in valid.filter(pl.col("step") == parent_step).select("idea_id", "agent_id").rows():
        if groups is None:
            group = None
        elif agent in groups:
            group = groups[agent]
        else:
            raise ValueError(f"groups: no group for agent {agent!r} (author of parent idea {iid!r})")
        parents.append((iid, group, value_of(iid)))
    if not parents:
        raise ValueError(f"ideas: no valid ideas at parent_step={parent_step}")
    parent_set = {p[0] for p in parents}

    children, attributions = [], []
    rows = valid.filter(pl.col("step") == child_step).select("idea_id", "parent_ids").rows()
    if not rows:
        raise ValueError(f"ideas: no valid ideas at child_step={child_step}")
    for iid, pids in rows:
        children.append((iid, value_of(iid)))
        linked = list(dict.fromkeys(p for p in (pids or []) if p in parent_set))
        attributions.extend((iid, p, Fraction(1, len(linked))) for p in linked)
    return price(parents, children, attributions, innovation_form=innovation_form)
