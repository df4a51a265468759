"""The culture kind's Run-page sections for LLM-Culture's measures, on an imported run: what each
plot draws is checked against the measures computed straight from the file's stories."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dash")
pytest.importorskip("sklearn")

from conftest_app import section_csv, section_graph  # noqa: E402

from app.data import Results  # noqa: E402
from culturesim.kinds.culture.importer import import_llm_culture  # noqa: E402
from culturesim.kinds.culture.measures import similarity  # noqa: E402

DATA = Path(__file__).parents[2] / "data" / "llm-culture"


@pytest.fixture()
def res(tmp_path):
    import_llm_culture(DATA / "network_output0.json", tmp_path, run_id="net")
    return Results(tmp_path)


def section(title_start: str):
    import culturesim.kinds.culture.view  # noqa: F401 - registers the sections
    from app.kinds import sections_for

    return next(s for s in sections_for("culture") if s.title.startswith(title_start))


def test_the_matrix_section_draws_their_story_similarity(res):
    shown = section("LLM-Culture: story similarity").render(res, "net")
    z = np.array(section_graph(shown, "culture-lc-matrix").figure["data"][0]["z"], dtype=float)
    stories = [s for g in json.loads((DATA / "network_output0.json").read_text())["stories"] for s in g]
    np.testing.assert_allclose(z, similarity.story_similarity(stories), atol=1e-12)
    assert section_csv(shown, "culture-lc-matrix").height == 6


def test_the_curves_and_word_chains_sections_draw_their_measures(res):
    shown = section("LLM-Culture: positivity").render(res, "net")
    frame = section_csv(shown, "culture-lc-curves")
    stories = json.loads((DATA / "network_output0.json").read_text())["stories"]
    order, G = similarity.generation_similarity([s for g in stories for s in g], [1, 1, 1, 2, 2, 2])
    within = frame.filter(frame["metric"] == "story_similarity_within").sort("step")["value"].to_list()
    assert within == pytest.approx([G[0, 0], G[1, 1]])
    pytest.importorskip("nltk")
    chains = section_csv(section("LLM-Culture: word chains").render(res, "net"), "culture-lc-chains")
    assert {"knight", "owl", "robot"} <= set(chains["word"])
    assert set(chains.filter(chains["word"] == "knight")["step"]) == {1, 2}


def test_the_creativity_curve_comes_from_metrics_parquet_in_one_word_space(res, tmp_path):
    import polars as pl

    from culturesim.kinds.culture.view import curves_frame

    pl.DataFrame({"run_id": ["net"] * 4, "step": [1, 2, 1, 2], "metric": ["creativity_index"] * 4,
                  "value": [0.4, 0.5, 0.9, 0.9], "embedder": ["minilm", "minilm", "st:x", "st:x"]}
                 ).write_parquet(tmp_path / "net" / "metrics.parquet")
    frame = curves_frame(res, "net").filter(pl.col("metric") == "creativity_index")
    assert frame.sort("step")["value"].to_list() == [0.4, 0.5]


def test_a_run_too_large_to_measure_live_draws_its_curves_from_metrics_parquet(res, tmp_path, monkeypatch):
    import polars as pl

    from app.ui import Notice
    from culturesim.kinds.culture import view

    monkeypatch.setattr(view, "LIVE_LIMIT", 2)
    with pytest.raises(Notice, match="6 stories"):
        view.curves_frame(res, "net")
    pl.DataFrame({"run_id": ["net"] * 3, "step": [1, 2, None], "metric": ["positivity", "positivity", "keywords"],
                  "value": [0.1, 0.2, 9.0], "embedder": ["tfidf"] * 3}
                 ).write_parquet(tmp_path / "net" / "metrics.parquet")
    assert view.curves_frame(res, "net").rows() == [(1, "positivity", 0.1), (2, "positivity", 0.2)]
    with pytest.raises(Notice, match="at most 2"):
        view.chains_frame(res, "net")


def test_the_run_page_of_an_imported_run_shows_every_section_without_an_error(tmp_path):
    pytest.importorskip("nltk")
    from conftest_app import walk
    from dash import html

    from app import create_app
    from app.kinds import sections_for
    from app.pages import run as run_page

    import_llm_culture(DATA / "chain_output0.json", tmp_path, run_id="chain")
    app = create_app(tmp_path)
    with app.server.test_request_context():
        page = run_page.render("chain")
        titles = [c.children for c in walk(page) if isinstance(c, html.H4)]
        assert titles == [s.title for s in sections_for("culture")]
        assert "LLM-Culture: word chains" in titles
        assert not [c for c in walk(page) if getattr(c, "className", None) == "cs-error"]
