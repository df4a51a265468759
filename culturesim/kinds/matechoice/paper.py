"""The headline figures of the study the matechoice kind restates, as data, so a report can
print them beside a run's own.

Simões, J. M., Lourenço, N. & Machado, P. (2023). "All You Need Is Sex for Diversity".
Genetic Programming, EuroGP 2023, LNCS 13986, doi:10.1007/978-3-031-29573-7_18;
arXiv:2303.17441.

Why every figure is a direction or a count from the abstract: only the abstract could be
read where this toolkit was written; the results (per-instance success rates, diversity
values, the tests and their p-values) and the parameter table could not. The abstract
says self-adaptive mating preferences (PIMP) "are able to create a more diverse set of
solutions when compared to the traditional approach and a random mate approach (with
statistically significant differences) and have a higher success rate in three of the
six instances tested", the instances being "three symbolic regression problems and
different mutation rates". So the records are: diversity higher than tournament ("the
traditional approach") and than random mate choice, each a direction with no value or
p (the abstract gives "statistically significant", not a p); and a count, 3 of 6
instances, where PIMP's success rate is higher. "Higher" is read as higher than both
other methods, since the sentence compares PIMP with both; the abstract does not say so
in as many words.

Which of our diversity measures is "a more diverse set of solutions": the abstract opens
on "maintaining genetic diversity", i.e. diversity of the programs themselves, so the
measure is a genotypic one; of our two (``unique_structures``, ``mean_tree_edit_distance``,
see the kind's gp/measures.py) it is the mean tree edit distance between individuals,
because it says how far apart the solutions are, where a count of distinct trees counts
two trees differing in one constant as fully distinct and saturates at the population
size. The paper's own diversity measure could not be read; the report's table prints the
other measures (phenotypic ones included) for whoever wants to check another reading.
"""

from __future__ import annotations

from culturesim.kinds.paper_figures import PaperFigure

PAPER = ("Simões, Lourenço & Machado (2023), All You Need Is Sex for Diversity, EuroGP 2023, "
         "LNCS 13986 (arXiv:2303.17441)")

ABSTRACT = "abstract"

# The report-table measure that stands for "a more diverse set of solutions" (see above).
DIVERSITY = "mean_tree_edit_distance"
# The paper's instances: three problems x two mutation rates ("three of the six instances").
PAPER_INSTANCES = 6

__all__ = ["DIVERSITY", "FIGURES", "PAPER", "PAPER_INSTANCES", "PaperFigure"]

_DIVERSITY_MEASURE = "final diversity (mean tree edit distance)"

FIGURES: tuple[PaperFigure, ...] = (
    PaperFigure(key="diversity_diff:tournament", measure=_DIVERSITY_MEASURE, contrast="PIMP vs tournament",
                statistic="difference of means (paper: significant)", direction="+",
                where="abstract: 'a more diverse set of solutions when compared to the traditional approach'",
                source=ABSTRACT),
    PaperFigure(key="diversity_diff:random", measure=_DIVERSITY_MEASURE, contrast="PIMP vs random mate choice",
                statistic="difference of means (paper: significant)", direction="+",
                where="abstract: '... and a random mate approach (with statistically significant differences)'",
                source=ABSTRACT),
    PaperFigure(key="success_instances", measure="success rate", contrast="PIMP vs tournament and random",
                statistic="instances with PIMP's rate above both", direction="", value=3,
                same_scale=True,
                where="abstract: 'a higher success rate in three of the six instances tested'", source=ABSTRACT),
)
