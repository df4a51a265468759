"""The study the culture kind restates, and why it has no headline figures to print beside ours.

Perez, J., Léger, C., Ovando-Tellez, M., Foulon, C., Dussauld, J., Oudeyer, P.-Y. &
Moulin-Frier, C. (2024). "Cultural evolution in populations of Large Language Models".
arXiv:2403.08882.

``FIGURES`` is empty on purpose. The paper presents a framework, not a headline result: its
abstract states no figure ("We here present a framework for simulating cultural evolution
in populations of LLMs, allowing the manipulation of variables known to be important in
cultural evolution, such as network structure, personality, and the way social information
is aggregated and transformed"), and its body (results, figures, tables) could not be read
where this toolkit was written, so there is no number or direction of theirs to transcribe.
The comparison this kind offers instead is against the authors' own output files
(LLM-Culture's ``output*.json``, or runs imported from them with ``culturesim import
llm-culture``): ``culturesim report RUNS --reference THEIRS`` measures both with the same
functions (LLM-Culture's measures, ``culturesim.kinds.culture.measures``) and prints them
side by side, which is what the report's "Paper vs this run" line points to.
"""

from __future__ import annotations

from culturesim.kinds.paper_figures import PaperFigure

PAPER = ("Perez, Léger, Ovando-Tellez, Foulon, Dussauld, Oudeyer & Moulin-Frier (2024), Cultural evolution "
         "in populations of Large Language Models (arXiv:2403.08882)")

FIGURES: tuple[PaperFigure, ...] = ()

__all__ = ["FIGURES", "PAPER"]
