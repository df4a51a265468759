"""``culturesim report`` for exposure runs: per condition the diversity, its slope over
trials, the difference from the control condition, and creativity as judged by a model;
then the paper's headline figures beside ours (paper_compare)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from culturesim import scenario as sc
from culturesim.kinds.exposure.measures import JUDGE_MAX_TOKENS, print_report, report_table
from culturesim.kinds.exposure.paper_compare import print_paper_comparison
from culturesim.kinds.spec import ReportOptions
from culturesim.llm.client import LLM
from culturesim.store import RunDir


def report(path: Path, runs: list[RunDir], options: ReportOptions) -> None:
    from analysis.embeddings import make_embedder

    embedder = make_embedder(options.embedder)
    for run in runs:
        spec = sc.validate_data(run.read_manifest()["scenario"], str(run.manifest_path)).llm
        judge = None
        if options.judge != "none":
            overrides = {"temperature": 0.0, "max_tokens": JUDGE_MAX_TOKENS}
            if options.judge:
                overrides.update(model=options.judge, api_base=options.judge_api_base)
            judge = LLM(spec.model_copy(update=overrides), cache_path=run.path.parent / ".cache" / "llm.sqlite")
        table = report_table(run.path, embedder=embedder, judge_llm=judge, seed=options.seed)
        console = Console(width=max(160, Console().width))
        console.print(run.run_id)
        print_report(table, console=console)
        print_paper_comparison(table, console=console)
