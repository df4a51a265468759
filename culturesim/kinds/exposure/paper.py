"""The headline figures of the study the exposure kind restates, as data, so a report can
print them beside a run's own.

Ashkinaze, J., Mendelsohn, J., Qiwei, L., Budak, C. & Gilbert, E. (2025). "How AI Ideas
Affect the Creativity, Diversity, and Evolution of Human Ideas: Evidence From a Large,
Dynamic Experiment". Collective Intelligence Conference (CI 2025), San Diego.
doi:10.1145/3715928.3737481; arXiv:2401.13481 (v3).

Why some figures are directions only: the paper's own text could be read here only as
far as its abstract. The abstract states directions ("high AI exposure (but not low AI
exposure) did not affect the creativity of individual ideas but did increase the average
amount and rate of change of collective idea diversity ... There were no main effects of
disclosure"); those are recorded with ``source="abstract"`` and no value. The
numbers (a Cliff's delta, an F test, slopes) were read only in a third-party summary of
v3, not checked against the paper's results section: they carry
``source="summary"`` and should be checked
against the paper's results before anyone quotes them.

Conditions are named as in this kind's scenarios: ``control`` (0 AI examples of 6),
``low_*`` (2) and ``high_*`` (4), each ``_disclosed`` or ``_undisclosed``. A contrast that
names an exposure level (``high``) pools that level's two disclosure conditions.
"""

from __future__ import annotations

from culturesim.kinds.paper_figures import PaperFigure

PAPER = ("Ashkinaze et al. (2025), How AI Ideas Affect the Creativity, Diversity, and Evolution of "
         "Human Ideas, CI 2025 (arXiv:2401.13481v3)")

ABSTRACT = "abstract"
SUMMARY = "summary"

__all__ = ["FIGURES", "PAPER", "PaperFigure"]


FIGURES: tuple[PaperFigure, ...] = (
    PaperFigure(key="diversity_delta:high", measure="collective diversity", contrast="high exposure vs control",
                statistic="Cliff's delta", direction="+", value=0.31, p="0.001", same_scale=True,
                where="results, collective diversity (read in a summary of v3)", source=SUMMARY),
    PaperFigure(key="diversity_diff:high", measure="collective diversity", contrast="high exposure vs control",
                statistic="direction of the difference", direction="+",
                where="abstract: 'did increase the average amount ... of collective idea diversity'",
                source=ABSTRACT),
    PaperFigure(key="diversity_diff:low", measure="collective diversity", contrast="low exposure vs control",
                statistic="direction of the difference", direction="0",
                where="abstract: 'high AI exposure (but not low AI exposure)'", source=ABSTRACT),
    PaperFigure(key="creativity_diff:high", measure="creativity of individual ideas",
                contrast="high exposure vs control", statistic="direction of the difference", direction="0",
                where="abstract: 'did not affect the creativity of individual ideas'", source=ABSTRACT),
    PaperFigure(key="creativity_F", measure="creativity of individual ideas", contrast="all conditions",
                statistic="F(4, 19.86) of condition", direction="0", value=0.12, p="0.97",
                where="results, creativity (read in a summary of v3)", source=SUMMARY),
    PaperFigure(key="diversity_slope:control", measure="diversity over trials", contrast="control",
                statistic="slope beta (their scale)", direction="-", value=-0.39, p="0.03",
                where="results, evolution of diversity (read in a summary of v3)", source=SUMMARY),
    PaperFigure(key="diversity_slope:high", measure="diversity over trials", contrast="high exposure",
                statistic="slope beta (their scale)", direction="+", value_range=(0.53, 0.57), p="<0.03",
                where="results, evolution of diversity (read in a summary of v3; a range over AI conditions)",
                source=SUMMARY),
    PaperFigure(key="disclosure_diff", measure="collective diversity", contrast="disclosed vs undisclosed",
                statistic="direction of the difference", direction="0",
                where="abstract: 'There were no main effects of disclosure'", source=ABSTRACT),
)
