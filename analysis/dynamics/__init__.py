"""How a population's ideas change over time: drift, convergence, lineages and attractors.

Everything here is a pure function of an ideas table (``culturesim.store.IDEAS_SCHEMA``,
one run at a time) and, where meaning is needed, embeddings ``X`` with one row per row
of the frame passed in, in the same order.

A row whose ``text`` is null or whose ``error`` is set is not an idea: the agent failed
that step and kept the idea it had (``IdeaAgent.adopt``), and no later prompt can name it
as a parent. Every function therefore drops such rows, together with the rows of ``X``
aligned with them, so that callers can pass the table exactly as it was read. Frames
without a ``text`` or ``error`` column (derived frames) are taken as all ideas.

Similarities are cosine similarities; they are computed from sums of unit vectors
(``mean_a,b cos(a, b) = mean(â) · mean(b̂)``), so no population-sized matrix is ever built.
Ill-posed scalar results raise ``ValueError`` with the reason instead of returning NaN;
empty tables give empty frames with the usual schema.

One module per family, as networkx splits an algorithm family; every public name is
imported here, so ``from analysis.dynamics import lineage`` is all a caller needs:

* :mod:`analysis.dynamics.change`: :func:`per_step`, :func:`mean_cross_similarity`,
  :func:`rate_of_change`: how far the population moves from step to step;
* :mod:`analysis.dynamics.attractor`: :class:`Attractor`, :func:`attractors`,
  :func:`chain_attractors`: where transmission pulls a scalar trait;
* :mod:`analysis.dynamics.genealogy`: :func:`lineage`, :func:`surviving_lineages`: who copied whom;
* :mod:`analysis.dynamics.traits`: :func:`text_traits`, :func:`fixed_axis`: scalar traits of each idea;
* :mod:`analysis.dynamics._common`: the row and embedding checks they share.
"""

from analysis.dynamics.attractor import Attractor, attractors, chain_attractors
from analysis.dynamics.change import PER_STEP_SCHEMA, mean_cross_similarity, per_step, rate_of_change
from analysis.dynamics.genealogy import LINEAGE_SCHEMA, SURVIVING_SCHEMA, lineage, surviving_lineages
from analysis.dynamics.traits import TRAITS_SCHEMA, fixed_axis, text_traits

__all__ = [
    "Attractor",
    "LINEAGE_SCHEMA",
    "PER_STEP_SCHEMA",
    "SURVIVING_SCHEMA",
    "TRAITS_SCHEMA",
    "attractors",
    "chain_attractors",
    "fixed_axis",
    "lineage",
    "mean_cross_similarity",
    "per_step",
    "rate_of_change",
    "surviving_lineages",
    "text_traits",
]
