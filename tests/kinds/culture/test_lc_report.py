"""culturesim report on culture runs: LLM-Culture's measures, and a reference's beside them."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from culturesim.cli import main
from culturesim.kinds.culture.importer import import_llm_culture
from culturesim.kinds.culture.measures import similarity

DATA = Path(__file__).parents[2] / "data" / "llm-culture"


def test_report_prints_our_measures_beside_the_reference_file(tmp_path, capsys):
    pytest.importorskip("sklearn")
    ours = import_llm_culture(DATA / "network_output0.json", tmp_path / "runs")
    code = main(["report", str(ours.path), "--embedder", "tfidf", "--reference", str(DATA / "chain_output0.json")])
    out = capsys.readouterr().out
    assert code == 0, out
    line = next(x for x in out.splitlines() if "story_similarity_first" in x)
    cells = [c.strip() for c in line.split("│") if c.strip()]
    # ours: generation 1 against generation 2 of the network run (mean of the 3 x 3 block)
    texts = ours.ideas().sort("step", "agent_id")["text"].to_list()
    ours_first = similarity.story_similarity(texts)[:3, 3:].mean()
    # the reference (the chain): story 1 against story 3 at its last step, story 1 against 2 at its first
    stories = pl.read_json(DATA / "chain_output0.json")["stories"][0].to_list()
    S = similarity.story_similarity([g[0] for g in stories if g])
    assert cells[1:] == [f"{ours_first:.3f}", f"{ours_first:.3f}", f"{S[0, 1]:.3f}", f"{S[0, 2]:.3f}"]
    assert "reference first (1)" in out


def test_a_missing_reference_is_one_line_and_exit_2(tmp_path, capsys):
    ours = import_llm_culture(DATA / "network_output0.json", tmp_path / "runs")
    code = main(["report", str(ours.path), "--embedder", "tfidf", "--reference", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--reference" in err and "no such run" in err


def test_report_says_the_paper_has_no_figure_and_points_to_the_reference(tmp_path, capsys, monkeypatch):
    pytest.importorskip("sklearn")
    from culturesim.kinds.culture.paper import FIGURES

    assert FIGURES == ()  # the abstract states no result; the line below is all "Paper vs this run" can say
    monkeypatch.setenv("COLUMNS", "400")  # one line, unwrapped
    ours = import_llm_culture(DATA / "network_output0.json", tmp_path / "runs")
    assert main(["report", str(ours.path), "--embedder", "tfidf"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("Paper vs this run"))
    assert out.index("story_similarity_first") < out.index("Paper vs this run")
    assert "arXiv:2403.08882" in line and "states no figure" in line and "--reference" in line
    assert "table above is that comparison" not in line
    reference = str(DATA / "chain_output0.json")
    assert main(["report", str(ours.path), "--embedder", "tfidf", "--reference", reference]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("Paper vs this run"))
    assert f"The table above is that comparison: its reference columns are {reference}" in line


def test_plot_draws_ours_beside_the_reference(tmp_path, capsys):
    """--plot: one panel per measure; its curves are the story-similarity values worked out
    here from the similarity matrix, for our run and for the reference chain."""
    pytest.importorskip("sklearn")
    from culturesim.kinds.culture import report as culture_report

    ours = import_llm_culture(DATA / "network_output0.json", tmp_path / "runs")
    html = tmp_path / "beside.html"
    drawn = {}
    real = culture_report.plot_beside

    def keep(*args, **kwargs):
        drawn["fig"] = real(*args, **kwargs)
        return drawn["fig"]

    culture_report.plot_beside = keep
    try:
        code = main(["report", str(ours.path), "--embedder", "tfidf", "--reference", str(DATA / "chain_output0.json"),
                     "--plot", str(html)])
    finally:
        culture_report.plot_beside = real
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"plot: {html}" in out and html.stat().st_size > 100_000  # self-contained: plotly.js inside
    text = html.read_text()
    assert "Plotly.newPlot" in text and "story_similarity_first" in text
    fig = drawn["fig"]
    curves = {(t.name, fig.layout.annotations[i // 2].text): t for i, t in enumerate(fig.data)}
    first = curves[("this run", "story_similarity_first")]
    texts = ours.ideas().sort("step", "agent_id")["text"].to_list()
    assert list(first.y) == pytest.approx([similarity.story_similarity(texts)[:3, 3:].mean()])
    stories = pl.read_json(DATA / "chain_output0.json")["stories"][0].to_list()
    S = similarity.story_similarity([g[0] for g in stories if g])
    theirs = curves[("reference", "story_similarity_first")]
    assert list(theirs.y) == pytest.approx([S[0, k] for k in range(1, len(theirs.y) + 1)])


def test_plot_refuses_a_file_that_is_not_html(tmp_path, capsys):
    ours = import_llm_culture(DATA / "network_output0.json", tmp_path / "runs")
    code = main(["report", str(ours.path), "--embedder", "tfidf", "--plot", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--plot" in err
