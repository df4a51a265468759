"""The headline claims of the study the gard kind restates, as data, so a report can print
them beside a run's own; and the authors' model defaults, so a test can hold ours to them.

Markovitch, O. & Lancet, D. (2012). "Excess Mutual Catalysis Is Required for Effective
Evolvability". Artificial Life 18(3):243-266. doi:10.1162/artl_a_00064.

Why directions only: where this toolkit was written, only the paper's abstract could be
read, not its body. The abstract says which way things go across an ensemble of catalysis
networks ("only networks with high mutual catalysis propensity (pmc) allowed for an augmented
diversity of composomes"; "appreciable selection response was observed for a large portion
of the networks simulated"; "stronger selection response was seen for high pmc values") but
gives no number of networks, no composome counts and no response sizes. Each claim is
therefore a :class:`PaperFigure` with ``source="abstract"``, a direction and no value: a
report can say whether our runs move the same way, never how far from the paper's figure.

The model's parameters come from the authors' own code instead (GARDv10, MATLAB):
repository ModelingOriginsofLife/GARD at commit 86dff6320d5ae91b4e831471079ff46749b14df9,
file ``tgs_parameters_v10.m``; its README says the defaults there are the publication's
except the number of generations ("p.GEN=5000"; the code's ``p.gen`` is 500). They are
transcribed in :data:`AUTHORS_DEFAULTS`, keyed by our ``gard.*`` scenario keys, so a test can
check that a scenario without a ``gard`` block runs the published chemistry.
"""

from __future__ import annotations

from culturesim.kinds.paper_figures import PaperFigure

PAPER = ("Markovitch & Lancet (2012), Excess Mutual Catalysis Is Required for Effective Evolvability, "
         "Artificial Life 18(3):243-266 (doi:10.1162/artl_a_00064)")

ABSTRACT = "abstract"

# Where the defaults below were read (the authors' code, not the paper's text).
AUTHORS_CODE = ("ModelingOriginsofLife/GARD", "tgs_parameters_v10.m", "86dff6320d5ae91b4e831471079ff46749b14df9")

# tgs_parameters_v10.m, by our gard.* key. n_max: Nmax = ceil(NG * splitsize) with splitsize 1.0;
# n_min: an assembly restarts after a split at floor(Nmax / 2) (tgs_agard_v10.m); rho: [] there,
# set to ones(NG, 1) / NG (None in our schema means that same uniform 1 / n_types);
# composome_threshold: hthresh, "the cutoff for drift/nondrift"; ks: the k tried by k-means.
AUTHORS_DEFAULTS: dict[str, object] = {
    "n_types": 100,      # p.NG = 100
    "n_max": 100,        # p.splitsize = 1.0 -> Nmax = 100
    "n_min": 50,         # floor(Nmax / 2)
    "mu": -4.0,          # p.mu = -4
    "sigma": 4.0,        # p.sigma = 4
    "k_f": 1e-2,         # p.Kf = 10^-2
    "k_b": 1e-4,         # p.Kb = 10^-4
    "rho": None,         # p.rho = [] -> uniform 1 / NG
    "composome_threshold": 0.9,  # p.hthresh = 0.9
    "ks": tuple(range(1, 11)),   # p.ks = [1:10]
}

__all__ = ["AUTHORS_CODE", "AUTHORS_DEFAULTS", "FIGURES", "PAPER", "PaperFigure"]


FIGURES: tuple[PaperFigure, ...] = (
    PaperFigure(key="composomes_vs_pmc", measure="composome diversity (compotypes)",
                contrast="across networks (runs) by pmc", statistic="Spearman rho", direction="+",
                where="abstract: 'only networks with high mutual catalysis propensity (pmc) allowed for an "
                      "augmented diversity of composomes'", source=ABSTRACT),
    PaperFigure(key="selection_response", measure="selection response (share of splits near the target)",
                contrast="selected vs neutral run, same network", statistic="mean over networks",
                direction="+",
                where="abstract: 'appreciable selection response was observed for a large portion of the "
                      "networks simulated'", source=ABSTRACT),
    PaperFigure(key="selection_response_vs_pmc", measure="selection response",
                contrast="across networks (runs) by pmc", statistic="Spearman rho", direction="+",
                where="abstract: 'stronger selection response was seen for high pmc values'", source=ABSTRACT),
)
