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

The design, by contrast, could be read in the authors' own code (josh-ashkinaze/net_create):
:data:`AUTHORS_DESIGN` transcribes it with the file and commit of each number, and a test
holds this kind's defaults and ``scenarios/exposure_full.yaml`` to it. Their analysis code
(``scripts/analyze_experiment/clean_final.Rmd``) also shows how the paper's diversity slopes
were fitted: ``100 * median pairwise distance ~ nobs + condition * trial_no + (1 | item)`` on
trials after the sixth, where the seed ideas are used up. This kind's slope is the mean
pairwise distance of one trial's ideas across chains, with a random intercept per item, on
every trial, which is why its scale is not the paper's and only directions are compared
(``diversity_slope:*``). The report also fits the authors' model itself
(:mod:`.authors_slope`), and its slopes are compared with the same numbers on one scale
(``diversity_slope_authors:*``).

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

__all__ = ["AUTHORS_DESIGN", "FIGURES", "PAPER", "PaperFigure"]


NET_CREATE = "josh-ashkinaze/net_create"
WEB_PY = "website/web.py @17b9025f97c40e31c369c4db08069550593a6d2d"
CLEAN_FINAL = "scripts/analyze_experiment/clean_final.Rmd @d577223d83996b12874b93a20899865c57dc9d88"
GET_DATA = "2024-05-23/scripts/analyze_experiment/get_data.ipynb @ea91ce0bc7acafd519b1466de6014b9d123e1060"

# The experiment as the authors' code ran it: value, and where in their repository it is.
AUTHORS_DESIGN: dict[str, tuple[object, str]] = {
    # CONDITIONS in web.py: 'h' 6 human / 0 AI; 'f_l', 'f_u' 4 / 2 (labelled, not); 'm_l', 'm_u' 2 / 4.
    "examples": (6, f"{WEB_PY}: CONDITIONS, n_human + n_ai in every condition"),
    "ai_examples": ({"control": 0, "low_disclosed": 2, "low_undisclosed": 2, "high_disclosed": 4,
                     "high_undisclosed": 4}, f"{WEB_PY}: CONDITIONS n_ai of h, f_l, f_u, m_l, m_u"),
    "disclosed": ({"control": False, "low_disclosed": True, "low_undisclosed": False, "high_disclosed": True,
                   "high_undisclosed": False}, f"{WEB_PY}: CONDITIONS label"),
    "items": (("tire", "pants", "shoe", "table", "bottle"),
              "data/chosen_aut_items.csv @61f1e575c49505cd0d8ae26539a5d2985265eb4d"),
    "trials_per_chain": (20, f"{WEB_PY}: N_PER_WORLD"),
    "chains": (7, f"{GET_DATA}: cell 1, world <= 6 (worlds 0-6)"),
    "trials_per_participant": (5, f"{WEB_PY}: one trial per item, items in random order"),
    # Analysed sample (their notebook's output; the paper's abstract says "800+ participants").
    "participants": (844, f"{GET_DATA}: cell 21, 'Unique Participants'"),
    "responses": (3414, f"{GET_DATA}: cell 21, 'Total Responses' (after 36 profane ideas dropped)"),
}


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
    PaperFigure(key="diversity_slope_authors:control", measure="diversity over trials", contrast="control",
                statistic="slope of 100 x median distance per trial (authors' model)", direction="-", value=-0.39,
                p="0.03", same_scale=True, source=SUMMARY,
                where=("number: results, evolution of diversity (read in a summary of v3); model: "
                       f"{NET_CREATE} {CLEAN_FINAL}, lmer(100*median_pw_dist ~ nobs + condition*trial_no + "
                       "(1|item), trial_no > 6)")),
    PaperFigure(key="diversity_slope_authors:high", measure="diversity over trials", contrast="high exposure",
                statistic="slope of 100 x median distance per trial (authors' model)", direction="+",
                value_range=(0.53, 0.57), p="<0.03", same_scale=True, source=SUMMARY,
                where=("number: results, evolution of diversity (read in a summary of v3; a range over AI "
                       f"conditions); model: {NET_CREATE} {CLEAN_FINAL}, lmer(100*median_pw_dist ~ nobs + "
                       "condition*trial_no + (1|item), trial_no > 6)")),
    PaperFigure(key="disclosure_diff", measure="collective diversity", contrast="disclosed vs undisclosed",
                statistic="direction of the difference", direction="0",
                where="abstract: 'There were no main effects of disclosure'", source=ABSTRACT),
)
