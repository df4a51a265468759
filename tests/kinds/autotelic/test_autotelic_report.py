"""Paper vs this run for autotelic runs: our figures on hand-made episode and repertoire tables
against values computed another way (scipy's linregress, numpy's polyfit on explicitly
resampled rows, Vendi scores in closed form), the comparison rows they give, and
`culturesim report` on a tiny run made by the runner in a real CookingWorld game with
ScriptedJudge (test_autotelic_model.py) standing in for the language model."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
from rich.console import Console
from scipy.stats import linregress
from test_autotelic_analysis import TableEmbedder, episodes, repertoire
from test_autotelic_model import ScriptedJudge

from culturesim.kinds.autotelic import paper_compare as pc
from culturesim.kinds.autotelic.paper import FIGURES, PAPER
from culturesim.kinds.autotelic.report import shown_steps, step_table

# three agents over four steps, two episodes each: (agent, step, oracle, llm reward, eval goals reached of 4)
ROWS = [
    (0, 1, False, False, 0), (0, 1, False, True, 1), (0, 2, True, True, 1), (0, 2, False, False, 2),
    (0, 3, True, True, 2), (0, 3, True, True, 3), (0, 4, True, True, 3), (0, 4, None, True, 4),
    (1, 1, False, True, 1), (1, 1, True, True, 0), (1, 2, False, False, 1), (1, 2, True, True, 2),
    (1, 3, True, False, 1), (1, 3, True, True, 2), (1, 4, True, None, 2), (1, 4, True, True, 3),
    (2, 1, True, True, 2), (2, 1, False, False, 1), (2, 2, False, True, 1), (2, 2, True, True, 1),
    (2, 3, False, False, 2), (2, 3, True, True, 1), (2, 4, True, True, 3), (2, 4, False, False, 1),
]
EPISODES = episodes([{"agent_id": a, "step": s, "oracle_success": o, "llm_reward": r,
                      "eval_achieved": [f"e{i}" for i in range(k)]} for a, s, o, r, k in ROWS])
# plus one episode with no goal (exploration): no success to judge, but its evaluation goals count
EPISODES = pl.concat([EPISODES, episodes([{"agent_id": 2, "step": 4, "goal": None, "source": "explore",
                                           "eval_achieved": ["e0", "e1", "e2", "e3"]}])])


def bootstrap_by_hand(rows: list[tuple[int, float, float]], seed: int, resamples: int) -> tuple[float, float]:
    """Percentile interval of the pooled slope, rows (agent, x, y), by resampling agents with the
    documented draws and refitting with numpy's polyfit on the concatenated rows."""
    agents = sorted({a for a, _, _ in rows})
    by_agent = {a: [(x, y) for b, x, y in rows if b == a] for a in agents}
    draws = np.random.default_rng(seed).integers(0, len(agents), size=(resamples, len(agents)))
    slopes = []
    for draw in draws:
        xy = np.array([p for i in draw for p in by_agent[agents[i]]])
        if np.ptp(xy[:, 0]) == 0:
            continue
        slopes.append(np.polyfit(xy[:, 0], xy[:, 1], 1)[0])
    return tuple(np.quantile(slopes, [0.025, 0.975]))


@pytest.mark.parametrize("column,index", [("oracle", 2), ("reward", 3)])
def test_success_slope_is_linregress_with_an_agent_bootstrap(column, index):
    pursued = EPISODES.filter(pl.col("goal").is_not_null()).with_columns(
        oracle=pl.col("oracle_success").cast(pl.Float64), reward=pl.col("llm_reward").cast(pl.Float64))
    slope, low, high, n, agents = pc.pooled_slope(pursued, column, seed=7, resamples=500)
    kept = [(r[0], float(r[1]), float(r[index])) for r in ROWS if r[index] is not None]
    fit = linregress([x for _, x, _ in kept], [y for _, _, y in kept])
    assert (n, agents) == (23, 3)
    assert slope == pytest.approx(fit.slope)
    assert (low, high) == pytest.approx(bootstrap_by_hand(kept, seed=7, resamples=500))
    assert low < slope < high


def test_eval_slope_counts_every_episode_as_a_share():
    ours = pc.our_figures(EPISODES, repertoire([(1, 0, "a", [], True)]), TableEmbedder({"a": [1.0]}), seed=3)
    row = ours.filter(pl.col("key") == "eval_slope").row(0, named=True)
    xs = [s for _, s, *_ in ROWS] + [4]
    ys = [k / 4 for *_, k in ROWS] + [1.0]
    assert row["value"] == pytest.approx(linregress(xs, ys).slope)
    # the same interval the by-hand bootstrap gives with the default number of resamples
    kept = [(a, float(s), k / 4) for a, s, _, _, k in ROWS] + [(2, 4.0, 1.0)]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(bootstrap_by_hand(kept, 3, pc.RESAMPLES))
    assert row["note"] == "25 episodes; bootstrap over 3 agents"


def test_slopes_without_variation_or_agents():
    flat = EPISODES.filter(pl.col("step") == 1).with_columns(oracle=pl.col("oracle_success").cast(pl.Float64))
    assert pc.pooled_slope(flat, "oracle")[:3] == (None, None, None)
    one = EPISODES.filter(pl.col("agent_id") == 0).with_columns(y=pl.col("llm_reward").cast(pl.Float64))
    slope, low, high, n, agents = pc.pooled_slope(one, "y")
    assert slope == pytest.approx(linregress([1, 1, 2, 2, 3, 3, 4, 4], [0, 1, 1, 0, 1, 1, 1, 1]).slope)
    assert (low, high, n, agents) == (None, None, 8, 1)


# a, b, d orthogonal; c equal to a. Mastered sets at steps 1 and 3:
#   agent 0: {a} -> {a, b, d}: Vendi 1 -> 3
#   agent 1: {} (an unmastered goal only) -> {a, c}: 0 -> 1 (two identical goals are one)
#   agent 2: {a, b} -> {a} (b no longer mastered): 2 -> 1
EMBED = TableEmbedder({"a": [1, 0, 0], "b": [0, 1, 0], "c": [1, 0, 0], "d": [0, 0, 1]})
REP = repertoire([
    (1, 0, "a", [], True), (1, 1, "b", [], False), (1, 2, "a", [], True), (1, 2, "b", [], True),
    (2, 0, "a", [], True),
    (3, 0, "a", [], True), (3, 0, "b", [], True), (3, 0, "d", [], True),
    (3, 1, "a", [], True), (3, 1, "c", [], True), (3, 2, "a", [], True), (3, 2, "b", [], False),
])


def test_vendi_gain_in_closed_form():
    from culturesim.kinds.autotelic.measures import goal_diversity

    changes = np.array([2.0, 1.0, -1.0])
    mean, low, high = pc.vendi_gain(goal_diversity(REP, EMBED), [0, 1, 2], 1, 3, seed=11, resamples=400)
    assert mean == pytest.approx(2 / 3)
    draws = np.random.default_rng(11).integers(0, 3, size=(400, 3))
    means = [changes[d].mean() for d in draws]
    assert (low, high) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))
    assert pc.vendi_gain(goal_diversity(REP, EMBED), [0], 1, 3) == (pytest.approx(2.0), None, None)


def test_our_figures_and_the_comparison_rows():
    ours = pc.our_figures(EPISODES, REP, EMBED, seed=0)
    assert ours["key"].to_list() == ["success_slope", "success_slope", "eval_slope", "vendi_gain"]
    # the repertoire has no row at step 4: every agent ends with nothing mastered, losing its step-1 Vendi
    vendi = ours.filter(pl.col("key") == "vendi_gain").row(0, named=True)
    assert vendi["label"] == "step 4 - step 1" and vendi["value"] == pytest.approx(-(1 + 0 + 2) / 3)
    assert vendi["note"] == "embedder table; bootstrap over 3 agents"
    comparison = pc.compare(ours)
    assert comparison.height == 4 and set(comparison["source"]) == {"abstract"}
    assert comparison["paper"].to_list() == ["increase"] * 4
    for r in comparison.iter_rows(named=True):
        # directions only: no difference or coverage; agreement from the interval, as the shared rule says
        assert r["difference"] is None and r["covers"] is None
        expected = "+" if r["ci_low"] > 0 else "-" if r["ci_high"] < 0 else "0"
        assert r["agrees"] == (None if expected == "0" else expected == "+")
    # the share of evaluation goals rises with an interval above 0: it agrees with the paper
    share = comparison.filter(pl.col("key") == "eval_slope").row(0, named=True)
    assert share["ci_low"] > 0 and share["agrees"] is True
    # Vendi falls (changes -1, 0, -2), but a resample of agents can draw the 0 alone, so the interval
    # reaches 0: the increase is neither shown nor refuted
    vendi_row = comparison.filter(pl.col("key") == "vendi_gain").row(0, named=True)
    assert vendi_row["ci_high"] == 0 and vendi_row["agrees"] is None and "our CI holds 0" in vendi_row["note"]


def test_a_run_of_one_step_says_what_it_cannot_compute():
    ours = pc.our_figures(EPISODES.filter(pl.col("step") == 1), REP, EMBED)
    assert ours["value"].to_list() == [None] * 4
    assert ours.filter(pl.col("key") == "vendi_gain")["note"].item() == \
        "not computed: the run has fewer than two steps"
    assert ours.filter(pl.col("label") == "oracle's verdict")["note"].item() == \
        "not computed: goals the oracle can read on fewer than two steps (6 episodes)"
    comparison = pc.compare(ours)
    assert comparison["agrees"].to_list() == [None] * 4


def test_printed_table_names_the_abstract():
    console = Console(width=200, record=True)
    pc.print_paper_comparison(pc.our_figures(EPISODES, REP, EMBED), console=console)
    text = console.export_text()
    assert "Paper vs this run" in text and PAPER in text
    for f in FIGURES:
        assert f.where in text
    assert "third-party" not in text  # abstract figures carry no mark


def test_shown_steps_and_step_table():
    assert shown_steps(list(range(1, 6)), 12) == [1, 2, 3, 4, 5]
    assert shown_steps(list(range(1, 102)), 5) == [1, 26, 51, 76, 101]  # indices 0, 25, 50, 75, 100
    tidy = pl.DataFrame({"step": [1, 1, 2, 2], "metric": ["vendi", "known", "vendi", "known"],
                         "value": [1.0, 2.0, 1.5, 3.0]})
    assert step_table(tidy).rows() == [(1, 2, 1.0), (2, 3, 1.5)]  # counts as whole numbers, columns in order


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A three-step run of three agents in a real generated game, the judge scripted."""
    import litellm
    from litellm.llms.custom_llm import CustomLLM

    from culturesim import runner
    from culturesim import scenario as sc
    from culturesim.llm import client

    judge = ScriptedJudge()

    class Scripted(CustomLLM):
        def completion(self, model, messages, *args, **kwargs):
            return litellm.ModelResponse(model="apjudge/x", choices=[
                {"message": {"role": "assistant", "content": judge.answer(messages[-1]["content"])},
                 "finish_reason": "stop"}])

        async def acompletion(self, *args, **kwargs):
            return self.completion(*args, **kwargs)

    client.litellm_module()
    client.register_provider("apjudge", Scripted())
    base = tmp_path_factory.mktemp("autopaper")
    s = sc.validate_data({
        "kind": "autotelic", "name": "t", "seed": 5, "steps": 3, "population": {"size": 3},
        "network": {"topology": "ring", "params": {"k": 1}}, "llm": {"model": "apjudge/x", "cache": False},
        "game": {"cache_dir": str(base / "games"), "recipe": 2, "take": 1, "go": 6},
        "autotelic": {"max_actions": 10, "episodes_per_step": 2, "share_every": 2},
        "output": {"run_id": "tiny"}}, "test")
    run = runner.start(s, out=base / "results", show_progress=False)
    assert run.read_manifest()["status"] == "done"
    return run.path


def test_report_on_a_tiny_run_prints_the_paper_table(tiny_run):
    # a wide terminal, so that no cell wraps in the middle of what is looked for
    report = subprocess.run([sys.executable, "-m", "culturesim.cli", "report", str(tiny_run), "--embedder", "tfidf"],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "400"})
    assert report.returncode == 0, report.stderr
    out = report.stdout
    assert "tiny: the population per step (embedder tfidf)" in out
    assert "Paper vs this run" in out and "arXiv:2305.12487" in out
    for text in ("we show that LMA3 agents learn to master a large diversity of skills", "oracle's verdict",
                 "language model's reward", "step 3 - step 1", "bootstrap over 3 agents"):
        assert text in out, text
    # the numbers printed are those our_figures computes from the run's files
    from analysis.embeddings import TfidfEmbedder
    from culturesim.kinds.autotelic.measures import load_autotelic

    ours = pc.our_figures(*load_autotelic(tiny_run), TfidfEmbedder())
    for value in ours["value"].drop_nulls().to_list():
        assert f"{value:+.3f}" in out


def test_report_with_a_bad_embedder_fails_in_one_line(tiny_run):
    report = subprocess.run([sys.executable, "-m", "culturesim.cli", "report", str(tiny_run), "--embedder", "nope"],
                            capture_output=True, text=True, timeout=600)
    assert report.returncode == 2
    assert len(report.stderr.strip().splitlines()) == 1 and "unknown embedder 'nope'" in report.stderr


def test_report_on_a_run_with_no_step_yet(tiny_run, tmp_path):
    """A run that has started but recorded no step: the table is empty and every figure says why."""
    import shutil

    empty = tmp_path / "empty"
    shutil.copytree(tiny_run, empty)
    for table in ("ideas", "prompts", "episodes", "repertoire"):
        (empty / f"{table}.parquet").unlink()
    for folder in ("steps", "prompts", "episodes", "repertoire"):
        shutil.rmtree(empty / folder)
    report = subprocess.run([sys.executable, "-m", "culturesim.cli", "report", str(empty), "--embedder", "tfidf"],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "400"})
    assert report.returncode == 0, report.stderr
    assert "Paper vs this run" in report.stdout
    assert report.stdout.count("not computed:") == 4


def test_generic_measures_read_the_imagined_goals_only(tiny_run):
    """An agent writes a relabel and a reward per episode beside the goals it imagines; the
    diversity measures read only the imagined goals (Kind.measured_operations), so a run is
    measured instead of refused for several ideas per agent and step."""
    from analysis.analyze import analyze_run
    from analysis.embeddings import TfidfEmbedder
    from culturesim.store import RunDir

    ideas = pl.read_parquet(tiny_run / "ideas.parquet")
    assert {"relabel", "reward"} <= set(ideas["operation"])  # what would clash per agent and step
    imagined = ideas.filter((pl.col("operation") == "imagine") & pl.col("text").is_not_null()
                            & pl.col("error").is_null())
    assert imagined.height > 0
    table = analyze_run(RunDir(tiny_run), TfidfEmbedder())
    counted = {r["step"]: r["value"] for r in table.filter(pl.col("metric") == "n_ideas").iter_rows(named=True)}
    assert counted == {step: float(n) for step, n in imagined.group_by("step").len().iter_rows()}
