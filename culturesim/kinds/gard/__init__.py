"""GARD: the Graded Autocatalysis Replication Domain model of protocell assemblies.

Segrè & Lancet's model as in the reference code of Markovitch & Lancet (2012, Artificial
Life 18:3): an assembly is a composition ``n`` over ``N_G`` molecule types that grows by
catalysed joining, ``dn_i/dt = (k_f rho_i N - k_b n_i)(1 + sum_j beta_ij n_j / N)``, and at
``N_max`` splits into two random halves. Kept apart from the Mesa model so the dynamics can
be tested and benchmarked without a run folder:

* :mod:`.network`  the lognormal catalysis matrix beta, and the selection bias on it;
* :mod:`.engine`   a population of assemblies advanced by exact stochastic (Gillespie) events,
  vectorised across assemblies with per-assembly clocks, with molecule genealogy;
* :mod:`.split`    fission into two random halves (multivariate hypergeometric);
* :mod:`.world`    the three modes (lineage, population, selection) on top of the engine;
* :mod:`.reference` a plain per-event Gillespie loop, the yardstick for tests and bench.

This module only describes the kind; the registry imports it, nothing heavier.
"""

from culturesim.kinds.spec import Kind

KIND = Kind(
    name="gard",
    description="GARD protocell assemblies and multilevel selection (Price equation)",
    schema="culturesim.kinds.gard.schema:GardScenario",
    model="culturesim.kinds.gard.model:GardModel",
    tables="culturesim.kinds.gard.tables",
    measures="culturesim.kinds.gard.measures",
    report="culturesim.kinds.gard.report:report",
    view="culturesim.kinds.gard.view",
)
