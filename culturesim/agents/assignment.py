"""Who is in which set: personalities and groups given by a list of agent ids, by community
of the network, or by a proportion of the population.

Lists and communities are fixed; proportions are then drawn, with the run's seed, among the
agents neither claimed, so a run and its resume (and a validation of the scenario) assign
the same agents. Sets never overlap, and a set that cannot be made (an id outside the
population, a community the network does not have, more agents than are left) is an
:class:`AssignmentError` naming the key at fault.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from culturesim.population import assign_personalities
from culturesim.scenario import KeyPath, Selector


class AssignmentError(ValueError):
    """An assignment that cannot be made; ``path`` is the scenario key at fault."""

    def __init__(self, path: KeyPath, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{'.'.join(str(p) for p in path)}: {message}")


def share(proportion: float, n: int) -> int:
    """Agents a proportion of ``n`` stands for: rounded to the nearest, halves up (0.25 of 6 is 2)."""
    return int(np.floor(proportion * n + 0.5))


def select(selectors: Mapping[str, Selector], n: int, *, where: KeyPath, rng: np.random.Generator,
           communities: Sequence[int | None] | None = None, no_communities: str = "the network has none",
           personalities: Sequence[str] | None = None) -> list[str | None]:
    """Each agent's set name (None: in no set).

    ``communities`` labels each agent's community (None: the network has none, and
    ``no_communities`` says why); ``personalities`` is what a ``personality:`` selector
    (groups only) reads. Proportions are drawn from ``rng`` in the selectors' order."""
    labels: list[str | None] = [None] * n
    if not selectors:
        return labels
    for name, sel in selectors.items():
        how = sel.how()
        if not how or how == ["proportion"]:
            continue
        key = how[0]
        members = _members(sel, key, n, (*where, name, key), communities, no_communities, personalities)
        for i in members:
            if labels[i] is not None:
                raise AssignmentError((*where, name, key), f"agent {i} is also in {labels[i]!r}; "
                                      f"an agent belongs to one of {'.'.join(map(str, where))} at most")
            labels[i] = name
    free = [i for i in range(n) if labels[i] is None]
    order = [free[k] for k in rng.permutation(len(free))]
    taken = 0
    for name, sel in selectors.items():
        if sel.how() != ["proportion"]:
            continue
        count = share(sel.proportion, n)
        path = (*where, name, "proportion")
        if count == 0:
            raise AssignmentError(path, f"{sel.proportion} of {n} agents is no agent; ask for at least {1 / n:.3g}")
        if taken + count > len(order):
            raise AssignmentError(path, f"asks for {count} agents but only {len(order) - taken} of {n} are left "
                                  f"after the ids, communities and proportions before it")
        for i in order[taken:taken + count]:
            labels[i] = name
        taken += count
    return labels


def _members(sel: Selector, key: str, n: int, path: KeyPath, communities, no_communities: str,
             personalities) -> list[int]:
    if key == "ids":
        outside = [i for i in sel.ids if i >= n]
        if outside:
            raise AssignmentError(path, f"no agent {outside[0]}; agent ids run from 0 to {n - 1}")
        if len(set(sel.ids)) != len(sel.ids):
            twice = next(i for i in sel.ids if sel.ids.count(i) > 1)
            raise AssignmentError(path, f"agent {twice} is listed twice")
        return list(sel.ids)
    if key == "community":
        if communities is None:
            raise AssignmentError(path, f"asks for a community but {no_communities}")
        wanted = [sel.community] if isinstance(sel.community, int) else list(sel.community)
        known = sorted({c for c in communities if c is not None})
        for c in wanted:
            if c not in known:
                raise AssignmentError(path, f"no community {c}; the network's communities are "
                                      f"{known[0]}..{known[-1]}" if known else f"no community {c}")
        return [i for i in range(n) if communities[i] in wanted]
    # personality (groups only)
    members = [i for i in range(n) if personalities is not None and personalities[i] == sel.personality]
    if not members:
        raise AssignmentError(path, f"no agent has personality {sel.personality!r}")
    return members


def personalities(population, n: int, seed: int, *, communities: Sequence[int | None] | None = None,
                  no_communities: str = "the network has none") -> list[str]:
    """Each agent's personality: ``population.assign`` first (ids, communities, then
    proportions), the others drawn from ``population.mix`` as before (exact counts, shuffled
    with the seed), so a scenario without ``assign`` keeps its old assignment."""
    rng = np.random.default_rng([seed, 0, 7])
    assign = getattr(population, "assign", None) or {}
    if not assign:
        return assign_personalities(population.mix, n, rng)
    labels = select(assign, n, where=("population", "assign"), rng=np.random.default_rng([seed, 0, 11]),
                    communities=communities, no_communities=no_communities)
    rest = [i for i, label in enumerate(labels) if label is None]
    for i, name in zip(rest, assign_personalities(population.mix, len(rest), rng) if rest else [], strict=True):
        labels[i] = name
    return labels  # type: ignore[return-value]
