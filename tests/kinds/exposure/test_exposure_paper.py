"""Paper vs this run (culturesim.kinds.exposure.paper_compare): the comparison on figures
made by hand, with differences, coverage and directions worked out by hand; our figures
read off a hand-made report table; and `culturesim report` on a tiny echo-backend run
printing the table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from scipy.stats import norm

from culturesim.kinds.exposure.measures import REPORT_SCHEMA
from culturesim.kinds.exposure.paper import FIGURES, PaperFigure
from culturesim.kinds.exposure.paper_compare import OURS_SCHEMA, compare, level, our_figures

QUICK = Path(__file__).resolve().parents[3] / "scenarios" / "exposure_quick.yaml"

HAND = (
    PaperFigure(key="delta", measure="m", contrast="c", statistic="Cliff's delta", direction="+", value=0.31,
                where="w", source="paper", same_scale=True),
    PaperFigure(key="null", measure="m", contrast="c", statistic="direction", direction="0", where="w", source="paper"),
    PaperFigure(key="slope", measure="m", contrast="c", statistic="beta", direction="-", value=-0.39, where="w",
                source="paper"),
    PaperFigure(key="missing", measure="m", contrast="c", statistic="F", direction="0", value=0.12, where="w",
                source="paper"),
)


def ours_by_hand() -> pl.DataFrame:
    rows = [
        ("delta", "a", 0.5, 0.2, 0.6, ""),    # 0.5 - 0.31 = 0.19; 0.31 in [0.2, 0.6]; CI above 0: "+"
        ("delta", "b", 0.1, -0.1, 0.2, ""),   # 0.1 - 0.31 = -0.21; 0.31 not in [-0.1, 0.2]; CI holds 0: "0"
        ("delta", "c", -0.2, None, None, ""),  # -0.51; no CI; sign "-"
        ("null", "a", 0.05, -0.02, 0.1, ""),  # 0 in CI: covers, agrees
        ("null", "b", 0.3, 0.1, 0.5, ""),     # 0 not in CI: not covered, disagrees
        ("null", "c", 0.3, None, None, ""),   # no CI: a null cannot be judged
        ("slope", "a", -0.01, -0.02, -0.001, ""),  # other scale: no difference, no coverage; CI below 0
    ]
    return pl.DataFrame([dict(zip(OURS_SCHEMA, r, strict=True)) for r in rows], schema=OURS_SCHEMA)


def test_compare_against_hand_worked_rows():
    got = compare(ours_by_hand(), HAND)
    assert got.height == 8
    rows = {(r["key"], r["ours_label"]): r for r in got.iter_rows(named=True)}
    expected = {  # (difference, covers, agrees)
        ("delta", "a"): (0.19, True, True),
        ("delta", "b"): (-0.21, False, None),  # CI holds 0: the increase is not shown, nor refuted
        ("delta", "c"): (-0.51, None, False),
        ("null", "a"): (None, True, True),
        ("null", "b"): (None, False, False),
        ("null", "c"): (None, None, None),
        ("slope", "a"): (None, None, True),
    }
    for key, (difference, covers, agrees) in expected.items():
        row = rows[key]
        if difference is None:
            assert row["difference"] is None, key
        else:
            assert row["difference"] == pytest.approx(difference), key
        assert (row["covers"], row["agrees"]) == (covers, agrees), key
    assert "scales differ" in rows[("slope", "a")]["note"]
    assert "our CI holds 0" in rows[("delta", "b")]["note"]
    missing = rows[("missing", None)]
    assert missing["ours"] is None and missing["covers"] is None and "not computed" in missing["note"]
    assert rows[("delta", "a")]["paper"] == "+0.31"


def report_table_by_hand() -> pl.DataFrame:
    base = {k: None for k in REPORT_SCHEMA}
    rows = []
    for condition, div, slope, se, a_slope, a_se, delta, diff, lo, hi, orig in [
        ("control", 0.50, -0.02, 0.01, -0.35, 0.05, None, None, None, None, 3.0),
        ("low_disclosed", 0.52, 0.00, 0.01, 0.10, None, 0.10, 0.02, -0.01, 0.05, 3.1),
        ("low_undisclosed", 0.51, 0.01, None, None, None, 0.05, 0.01, -0.02, 0.04, 2.9),
        ("high_disclosed", 0.60, 0.03, 0.01, 0.60, 0.10, 0.40, 0.10, 0.05, 0.15, 3.2),
        ("high_undisclosed", 0.58, None, None, None, None, 0.35, 0.08, 0.03, 0.13, None),
    ]:
        rows.append(base | {"condition": condition, "diversity_mean": div, "slope": slope, "slope_se": se,
                            "authors_slope": a_slope, "authors_slope_se": a_se,
                            "delta_vs_control": delta, "diff_vs_control": diff, "diff_ci_low": lo,
                            "diff_ci_high": hi, "originality_mean": orig})
    return pl.DataFrame(rows, schema=REPORT_SCHEMA)


def test_our_figures_read_off_a_report_table():
    ours = our_figures(report_table_by_hand())
    get = {(r["key"], r["label"]): r for r in ours.iter_rows(named=True)}
    assert get[("diversity_delta:high", "high_undisclosed")]["value"] == 0.35
    d = get[("diversity_diff:high", "high_disclosed")]
    assert (d["value"], d["ci_low"], d["ci_high"]) == (0.10, 0.05, 0.15)
    s = get[("diversity_slope:control", "control")]
    z = norm.ppf(0.975)
    assert s["ci_low"] == pytest.approx(-0.02 - z * 0.01) and s["ci_high"] == pytest.approx(-0.02 + z * 0.01)
    no_se = get[("diversity_slope:low", "low_undisclosed")]
    assert no_se["value"] == 0.01 and no_se["ci_low"] is None
    assert get[("diversity_slope:high", "high_undisclosed")]["value"] is None
    assert get[("creativity_diff:high", "high_disclosed")]["value"] == pytest.approx(0.2)
    assert get[("creativity_diff:high", "high_undisclosed")]["value"] is None
    # disclosed mean (0.52 + 0.60) / 2 = 0.56, undisclosed (0.51 + 0.58) / 2 = 0.545
    assert get[("disclosure_diff", "disclosed - undisclosed")]["value"] == pytest.approx(0.015)
    # every paper figure finds ours, and only the F test (which the report never fits) has no value
    got = compare(ours)
    assert set(got["key"]) == {f.key for f in FIGURES}
    assert got.filter(pl.col("ours").is_null())["key"].unique().sort().to_list() == [
        "creativity_F", "creativity_diff:high", "diversity_slope:high", "diversity_slope_authors:high"]
    high = got.filter(pl.col("key") == "diversity_diff:high")
    assert high["agrees"].to_list() == [True, True]  # both CIs lie above 0, as the paper's increase


def test_levels_and_bad_direction():
    assert [level(c) for c in ("control", "high_disclosed", "low_undisclosed")] == ["control", "high", "low"]
    with pytest.raises(ValueError, match="direction"):
        PaperFigure(key="k", measure="m", contrast="c", statistic="s", direction="up", where="w", source="paper")


def test_report_on_a_tiny_echo_run_prints_the_paper_table(tmp_path):
    shrink = ["llm.model=echo/x", "exposure.ai_pool.llm.model=echo/x", "exposure.chains=2", "steps=2",
              "exposure.ai_pool.size=5", "output.run_id=tiny"]
    run = subprocess.run([sys.executable, "-m", "culturesim.cli", "run", str(QUICK), "--out", str(tmp_path), "-q",
                          *sum((["--set", s] for s in shrink), [])], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    report = subprocess.run([sys.executable, "-m", "culturesim.cli", "report", str(tmp_path / "tiny"),
                             "--embedder", "tfidf"], capture_output=True, text=True, timeout=600)
    assert report.returncode == 0, report.stderr
    out = report.stdout
    assert "Paper vs this run" in out
    for text in ("Cliff's delta", "+0.31", "high_disclosed", "no effect", "fits no F test", "third-party summary", "[1] results, collective diversity"):
        assert text in out, text


def test_figure_refuses_unknown_source_and_valueless_level():
    with pytest.raises(ValueError, match="source"):
        PaperFigure(key="k", measure="m", contrast="c", statistic="s", direction="+", where="w", source="blog")
    with pytest.raises(ValueError, match="needs a value"):
        PaperFigure(key="k", measure="m", contrast="c", statistic="s", direction="", where="w", source="paper")


def test_defaults_and_full_scenario_follow_the_authors_design():
    """The kind's defaults and exposure_full.yaml are the design the authors' code ran
    (AUTHORS_DESIGN, transcribed from net_create with file and commit); one deliberate
    difference stays visible: their participants each did one trial per *condition* too."""
    from culturesim import scenario as sc
    from culturesim.kinds.exposure.paper import AUTHORS_DESIGN
    from culturesim.kinds.exposure.schema import ExposureSpec

    design = {key: value for key, (value, _where) in AUTHORS_DESIGN.items()}
    spec = ExposureSpec()
    assert spec.examples == design["examples"]
    assert {c: v.ai for c, v in spec.conditions.items()} == design["ai_examples"]
    assert {c: v.disclosed for c, v in spec.conditions.items()} == design["disclosed"]
    assert tuple(spec.items) == design["items"]
    assert spec.chains == design["chains"]
    full = sc.load(Path(__file__).resolve().parents[3] / "scenarios" / "exposure_full.yaml")
    assert full.steps == design["trials_per_chain"]
    assert full.exposure.trials_per_participant == design["trials_per_participant"]
    assert full.exposure.chains == design["chains"] and tuple(full.exposure.items) == design["items"]
    assert all(where for _value, where in AUTHORS_DESIGN.values())


def test_the_authors_slope_compares_on_one_scale():
    """Our fit of the authors' model is set beside their slopes as numbers, not only
    directions: control -0.35 (se 0.05) against their -0.39 differs by +0.04 and its 95% CI
    [-0.448, -0.252] holds -0.39; a range (0.53 to 0.57) gives no single value to subtract."""
    ours = our_figures(report_table_by_hand())
    get = {(r["key"], r["label"]): r for r in ours.iter_rows(named=True)}
    z = norm.ppf(0.975)
    control = get[("diversity_slope_authors:control", "control")]
    assert (control["ci_low"], control["ci_high"]) == (pytest.approx(-0.35 - z * 0.05), pytest.approx(-0.35 + z * 0.05))
    assert get[("diversity_slope_authors:low", "low_disclosed")]["ci_low"] is None  # no se: no CI
    assert get[("diversity_slope_authors:low", "low_undisclosed")]["value"] is None
    got = compare(ours)
    rows = {(r["key"], r["ours_label"]): r for r in got.iter_rows(named=True)}
    c = rows[("diversity_slope_authors:control", "control")]
    assert c["difference"] == pytest.approx(0.04) and c["covers"] is True and c["agrees"] is True
    assert "scales differ" not in c["note"]
    h = rows[("diversity_slope_authors:high", "high_disclosed")]
    # 0.60 +- 1.96 * 0.10 = [0.404, 0.796] meets their 0.53 to 0.57: covered; a range has no single difference
    assert h["difference"] is None and h["covers"] is True and h["agrees"] is True
    assert h["paper"] == "+0.53 to +0.57 (p <0.03)"
    assert rows[("diversity_slope_authors:high", "high_undisclosed")]["ours"] is None
    # the direction-only rows stay beside them
    d = rows[("diversity_slope:control", "control")]
    assert d["difference"] is None and "scales differ" in d["note"]
    # a hand-made figure on one scale, to see difference and coverage where the CI misses it
    tight = PaperFigure(key="diversity_slope_authors:control", measure="m", contrast="c", statistic="s",
                        direction="-", value=-0.50, where="w", source="paper", same_scale=True)
    t = compare(ours, (tight,)).row(0, named=True)
    assert t["difference"] == pytest.approx(0.15) and t["covers"] is False and t["agrees"] is True
    where = {f.key: f.where for f in FIGURES}
    for key in ("diversity_slope_authors:control", "diversity_slope_authors:high"):
        assert "clean_final.Rmd" in where[key] and "d577223d83996b12874b93a20899865c57dc9d88" in where[key]
        assert "summary" in where[key]
