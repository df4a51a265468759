"""The exposure report (culturesim.kinds.exposure.measures) on hand-made run folders: values that agree
with the analysis.diversity functions applied by hand, exact adoption on orthogonal
vectors, honest nulls (never NaN) where a measure is undefined, and the LLM judge
against the echo stand-in and, once, the embedded model."""

from __future__ import annotations

import io
import itertools
import json
import math

import numpy as np
import polars as pl
import pytest
from rich.console import Console

from analysis import diversity, stats
from analysis.embeddings import make_embedder
from culturesim.kinds.exposure.measures import (
    JUDGE_SCHEMA_JSON,
    REPORT_SCHEMA,
    adoption,
    condition_diversity,
    embed_exposure,
    item_condition_diversity,
    judge_creativity,
    load_exposure,
    ocsai_prompt,
    parse_score,
    print_report,
    report_table,
    semantic_distance,
    trial_diversity,
)
from culturesim.llm.client import LLM
from culturesim.llm.shape import canonical
from culturesim.llm.types import Reply
from culturesim.scenario import LLMSpec
from culturesim.store import IDEAS_SCHEMA, RunDir

ITEMS = ["tire", "brick"]
CONDITIONS = {"control": (0, False), "low_disclosed": (2, True), "high_undisclosed": (4, False)}
CHAINS = 3
TRIALS = 4
N_EXAMPLES = 6
# distinct made-up words, so each idea's own words are its own in any bag-of-words space
_SYLLABLES = ["ka", "lo", "mi", "nu", "re", "ti", "vo", "sa", "pe", "du"]
WORDS = ["".join(p) for p in itertools.product(_SYLLABLES, repeat=3)]


def idea_text(item: str, condition: str, k: int, trial: int) -> str:
    """Control ideas share nothing but the frame; AI-exposed ones share the AI phrase,
    the more so the more AI examples their condition shows, and under high exposure
    more so at every trial (the shared phrase grows), so its chains converge. The
    number of an idea's own words varies a little, so diversity has some noise, and
    brick ideas share one more word than tire ideas, so items differ in level."""
    own = WORDS[3 * k : 3 * k + 3]
    text = _idea_text(item, condition, k, trial, own)
    return text[:-1] + " red clay." if item == "brick" else text


def _idea_text(item: str, condition: str, k: int, trial: int, own: list[str]) -> str:
    if condition == "control":
        return f"Use the {item} as a " + " ".join(own[: 2 + k % 2]) + "."
    if condition == "low_disclosed":
        return f"Use the {item} as a planter for garden flowers " + " ".join(own[: 1 + k % 2]) + "."
    return f"Use the {item} as a planter for garden {own[0]}" + " flowers" * trial + "."


def _idea_row(step, agent_id, idea_id, text, parents, source, operation, error=None):
    row = {k: None for k in IDEAS_SCHEMA}
    row.update(run_id="r", step=step, agent_id=agent_id, idea_id=idea_id, text=text, parent_ids=parents,
               operation=operation, source=source, error=error, cached=False, retries=0)
    return row


def make_run(tmp_path, *, fail=(), kind="exposure", name="run", trials=TRIALS):
    """2 items x 3 conditions x 3 chains x ``trials`` trials (4); ``fail``: agent ids whose reply failed."""
    ideas, agents, examples = [], [], []
    for item in ITEMS:
        for k in range(N_EXAMPLES):
            ideas.append(_idea_row(0, None, f"ai-{item}-{k}", f"Use the {item} as a planter for garden flowers "
                                   f"and herbs number {k}.", [], "ai", "pool"))
            ideas.append(_idea_row(0, None, f"seed-{item}-{k}", f"A {item} can be a {WORDS[900 + k]} thing.",
                                   [], "seed", "seed"))
    chain = 0
    k = 0
    rng = np.random.default_rng(5)
    for item in ITEMS:
        for condition, (n_ai, disclosed) in CONDITIONS.items():
            for _ in range(CHAINS):
                history = [f"seed-{item}-{j}" for j in range(N_EXAMPLES)]
                for trial in range(1, trials + 1):
                    agent_id = chain * trials + trial - 1
                    idea_id = f"s{trial}-a{agent_id}"
                    shown = [(e, "human") for e in history[-(N_EXAMPLES - n_ai):]] + [
                        (f"ai-{item}-{j}", "ai") for j in range(n_ai)]
                    failed = agent_id in fail
                    text = None if failed else idea_text(item, condition, k, trial)
                    ideas.append(_idea_row(trial, agent_id, idea_id, text, [e for e, _ in shown], "llm", "create",
                                           error="APIError: boom" if failed else None))
                    agents.append({"agent_id": agent_id, "item": item, "condition": condition, "chain": chain,
                                   "trial": trial, "n_ai": n_ai, "disclosed": disclosed, "persona": "neutral",
                                   "self_rating": 3})
                    ranks = rng.permutation(N_EXAMPLES) + 1
                    for pos, ((eid, src), rank) in enumerate(zip(shown, ranks, strict=True), 1):
                        examples.append({"idea_id": idea_id, "position": pos, "example_id": eid,
                                         "example_source": src, "rank": None if trial == 2 else int(rank)})
                    if not failed:
                        history.append(idea_id)
                    k += 1
                chain += 1
    run = RunDir(tmp_path / name)
    run.path.mkdir(parents=True)
    run.write_manifest({"run_id": name, "kind": kind, "status": "complete",
                        "scenario": {"kind": kind, "exposure": {"items": ITEMS}, "llm": {"model": "echo/x"}}})
    run.write_table("ideas", pl.DataFrame(ideas, schema=IDEAS_SCHEMA))
    run.write_table("agents", pl.DataFrame(agents, schema={
        "agent_id": pl.Int64, "item": pl.String, "condition": pl.String, "chain": pl.Int64, "trial": pl.Int64,
        "n_ai": pl.Int64, "disclosed": pl.Boolean, "persona": pl.String, "self_rating": pl.Int64}))
    run.write_table("examples", pl.DataFrame(examples, schema={
        "idea_id": pl.String, "position": pl.Int64, "example_id": pl.String, "example_source": pl.String,
        "rank": pl.Int64}))
    return run


@pytest.fixture()
def run(tmp_path):
    return make_run(tmp_path)


def meta_frame() -> pl.DataFrame:
    rows = [{"item": item, "condition": c, "chain": ch, "trial": t}
            for item in ITEMS for c in CONDITIONS for ch in range(CHAINS) for t in range(1, TRIALS + 1)]
    return pl.DataFrame(rows)


# ------------------------------------------------------------------------- the judge


@pytest.mark.parametrize("text,score", [
    ('{"score": 4}', 4.0), ('{"score": 3.5}', 3.5), (' {"score":1}\n', 1.0), ('{"score": 6}', None),
    ('{"score": 4.25}', None), ('{"score": "4"}', None), ('{"score": 4, "why": "x"}', None),
    ('{"rating": 4}', None), ("4", None), ("Score: 3.5", None), ("", None), (None, None),
])
def test_parse_score(text, score):
    assert parse_score(text) == score


def test_ocsai_prompt_shape():
    messages = ocsai_prompt("tire", "A swing for goats.")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "originality" in messages[0]["content"] and "1" in messages[0]["content"] and "5" in messages[0]["content"]
    assert messages[1]["content"] == ("AUT Prompt: What is a surprising use for a TIRE?\n"
                                      "Response: A swing for goats.\nScore:")


def test_ocsai_prompt_shots_come_first_as_turns():
    messages = ocsai_prompt("tire", "A swing.", shots=[("shoe", "A pot.", 2), ("brick", "A boat anchor.", 3.5)])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[1]["content"].startswith("AUT Prompt: What is a surprising use for a SHOE?\nResponse: A pot.")
    # the shots answer in the judge's JSON shape, as the judge must
    assert [messages[2]["content"], messages[4]["content"]] == ['{"score": 2.0}', '{"score": 3.5}']
    assert messages[-1] == ocsai_prompt("tire", "A swing.")[-1]


class Recorder:
    """A stand-in LLM that records what it is asked and answers from a script."""

    def __init__(self, answers):
        self.spec = LLMSpec(model="fake/judge", temperature=0.3, top_p=0.9)
        self.answers = answers
        self.calls = []

    def generate(self, requests):
        self.calls.append(list(requests))
        return [Reply(text=a, model="fake/judge") if a is not None else Reply(text=None, model="fake/judge",
                                                                               error="Timeout: slow")
                for a, _ in zip(self.answers, requests, strict=False)]


def test_judge_sends_one_batch_with_stable_seeds_and_parses():
    ideas = pl.DataFrame({"idea_id": ["a", "b", "c", "d"], "item": ["tire", "tire", "brick", "brick"],
                          "text": ["Swing.", "Planter.", None, "Doorstop."]})
    llm = Recorder(['{"score": 3.5}', "seven", None])
    out = judge_creativity(ideas, llm, seed=7)
    assert len(llm.calls) == 1 and len(llm.calls[0]) == 3  # the idea without text is not sent
    reqs = llm.calls[0]
    assert {r.temperature for r in reqs} == {0.3} and {r.top_p for r in reqs} == {0.9}
    assert all(r.max_tokens <= 16 for r in reqs) and [r.tag for r in reqs] == ["a", "b", "d"]
    assert {r.schema for r in reqs} == {canonical(JUDGE_SCHEMA_JSON)}  # the judge asks for its JSON shape
    assert reqs[0].messages == tuple(ocsai_prompt("tire", "Swing."))
    assert out["idea_id"].to_list() == ["a", "b", "c", "d"]
    assert out["originality"].to_list() == [3.5, None, None, None]
    errors = out["judge_error"].to_list()
    assert errors[0] is None and "no score" in errors[1] and errors[2] == "no text to judge" and "Timeout" in errors[3]
    # seeds depend on (seed, idea_id) only: judging a subset or reordering keeps them
    again = Recorder(["1"])
    judge_creativity(ideas.slice(3, 1), again, seed=7)
    assert again.calls[0][0].seed == reqs[2].seed
    other = Recorder(["1"] * 3)
    judge_creativity(ideas, other, seed=8)
    assert [r.seed for r in other.calls[0]] != [r.seed for r in reqs]


def test_judge_with_echo_stand_in_scores_every_idea_in_its_shape():
    ideas = pl.DataFrame({"idea_id": ["a", "b"], "item": ["tire", "brick"], "text": ["A swing.", "A doorstop."]})
    llm = LLM(LLMSpec(model="echo/judge", cache=False))
    out = judge_creativity(ideas, llm)
    # echo answers a schema request with JSON of that shape (a score drawn from the enum)
    assert out["originality"].null_count() == 0 and out["judge_error"].null_count() == 2
    assert all(json.loads(t)["score"] == s for t, s in zip(out["judge_text"], out["originality"], strict=True))
    assert judge_creativity(ideas.clear(), llm).height == 0


def test_judge_reply_out_of_shape_is_asked_again_then_says_why():
    ideas = pl.DataFrame({"idea_id": ["a"], "item": ["tire"], "text": ["A swing."]})
    llm = LLM(LLMSpec(model="echo/misshape-1", cache=False, retries=2))  # never answers in the shape
    out = judge_creativity(ideas, llm)
    assert out["originality"].to_list() == [None] and "does not match the schema" in out["judge_error"][0]


def test_judge_rejects_duplicate_ids():
    ideas = pl.DataFrame({"idea_id": ["a", "a"], "item": ["tire", "tire"], "text": ["x", "y"]})
    with pytest.raises(ValueError, match="unique"):
        judge_creativity(ideas, Recorder(["1", "2"]))


@pytest.mark.timeout(300)
def test_real_model_judge_smollm2():
    """The one test with a real model: the embedded SmolLM2 judges three ideas (~1 s each), under
    the grammar of the judge's JSON shape, so every idea gets a score."""
    ideas = pl.DataFrame({"idea_id": ["a", "b", "c"], "item": ["tire", "tire", "brick"],
                          "text": ["Use it as a swing.", "Grind it into rubber mulch for a playground.",
                                   "Carve it into a tiny chess set."]})
    llm = LLM(LLMSpec(model="local/smollm2", cache=False, temperature=0.0))
    # zero-shot this 135M model copies the prompt back ("AUT Prompt: What is a ..."); one
    # shot in the Ocsai format teaches it to answer with a number
    out = judge_creativity(ideas, llm, seed=1, shots=[("shoe", "Plant a tiny cactus garden inside it.", 4)])
    scores = out["originality"].to_list()
    assert all(s is not None and 1 <= s <= 5 for s in scores), out.to_dicts()
    for s, e in zip(scores, out["judge_error"].to_list(), strict=True):
        assert (s is None) == (e is not None)


# --------------------------------------------------------------------- vector measures


def test_adoption_by_hand_on_orthogonal_vectors():
    e = np.eye(4)
    X = {"p1": e[0], "ai1": e[0], "ai2": e[1], "h1": e[2], "h2": (e[0] + e[2]) / math.sqrt(2),
         "p2": e[3], "h3": e[3]}
    examples = pl.DataFrame({
        "idea_id": ["p1"] * 4 + ["p2"] * 2,
        "example_id": ["ai1", "h1", "ai2", "h2", "h1", "h3"],
        "example_source": ["ai", "human", "ai", "human", "human", "human"],
    })
    out = adoption(examples, X)
    p1, p2 = out.row(0, named=True), out.row(1, named=True)
    assert p1["idea_id"] == "p1" and p1["n_ai"] == 2 and p1["n_human"] == 2
    assert p1["sim_ai"] == pytest.approx(0.5)
    assert p1["sim_human"] == pytest.approx((0 + 1 / math.sqrt(2)) / 2)
    assert p1["adoption"] == pytest.approx(0.5 - 1 / (2 * math.sqrt(2)))
    # p2 saw only human examples (control): no AI similarity, no adoption
    assert p2["sim_ai"] is None and p2["adoption"] is None and p2["sim_human"] == pytest.approx(0.5)
    # vectors at another scale give the same cosines
    scaled = adoption(examples, {k: 3 * v for k, v in X.items()})
    assert scaled["adoption"][0] == pytest.approx(p1["adoption"])


def test_adoption_refuses_missing_vectors_and_unknown_sources():
    examples = pl.DataFrame({"idea_id": ["p"], "example_id": ["x"], "example_source": ["ai"]})
    with pytest.raises(ValueError, match="no vector for id"):
        adoption(examples, {"p": np.ones(2)})
    with pytest.raises(ValueError, match="example_source"):
        adoption(examples.with_columns(pl.lit("bot").alias("example_source")), {"p": np.ones(2), "x": np.ones(2)})


def test_semantic_distance_by_hand():
    e = np.eye(3)
    X = np.vstack([e[0], (e[0] + e[1]) / math.sqrt(2), e[2] * 5])
    got = semantic_distance(["tire", "tire", "brick"], X, {"tire": e[0], "brick": e[1]})
    assert got == pytest.approx([0.0, 1 - 1 / math.sqrt(2), 1.0])
    with pytest.raises(ValueError, match="no vector for item"):
        semantic_distance(["shoe"], e[:1], {"tire": e[0]})


def test_condition_diversity_matches_the_functions_applied_by_hand():
    meta = meta_frame()
    X = np.random.default_rng(0).normal(size=(meta.height, 8))
    m, r = 5, 6
    per_item = item_condition_diversity(meta, X, m=m, r=r, rng=np.random.default_rng(3))
    table = condition_diversity(meta, X, m=m, r=r, rng=np.random.default_rng(3))
    assert table["condition"].to_list() == sorted(CONDITIONS)
    hand_rng = np.random.default_rng(3)
    hand: dict[str, list[tuple[float, float, float]]] = {}
    for item, condition in sorted(itertools.product(ITEMS, CONDITIONS)):  # the documented order
        idx = ((meta["item"] == item) & (meta["condition"] == condition)).to_numpy()
        sub = X[idx]
        mean = diversity.mean_pairwise_distance(sub)
        median = diversity.median_pairwise_distance(sub, rng=hand_rng)
        sampled = diversity.resample(diversity.mean_pairwise_distance, sub, m=m, r=r, rng=hand_rng)
        row = per_item.filter((pl.col("item") == item) & (pl.col("condition") == condition)).row(0, named=True)
        assert row["n"] == CHAINS * TRIALS and row["m"] == m
        assert row["diversity_mean"] == pytest.approx(mean, abs=1e-12)
        assert row["diversity_median"] == pytest.approx(median, abs=1e-12)
        assert row["diversity_resampled"] == pytest.approx(sampled.mean, abs=1e-12)
        assert row["diversity_resampled_sd"] == pytest.approx(sampled.std, abs=1e-12)
        hand.setdefault(condition, []).append((mean, median, sampled.mean))
    for row in table.iter_rows(named=True):
        values = np.array(hand[row["condition"]])
        assert row["n_items"] == 2 and row["n_ideas"] == 2 * CHAINS * TRIALS and row["notes"] == ""
        assert row["diversity_mean"] == pytest.approx(values[:, 0].mean(), abs=1e-12)
        assert row["diversity_median"] == pytest.approx(values[:, 1].mean(), abs=1e-12)
        assert row["diversity_resampled"] == pytest.approx(values[:, 2].mean(), abs=1e-12)


def test_condition_diversity_default_m_is_the_smallest_group_and_small_groups_are_noted():
    meta = meta_frame().with_row_index("i")
    keep = ~((pl.col("item") == "tire") & (pl.col("condition") == "control") & (pl.col("chain") > 0))  # 4 left
    keep &= ~((pl.col("item") == "brick") & (pl.col("condition") == "control") & (pl.col("trial") > 1)
              & (pl.col("chain") == 0))
    lone = (pl.col("item") == "brick") & (pl.col("condition") == "high_undisclosed") & (pl.col("chain") == 2) & (
        pl.col("trial") == 4)
    trimmed = meta.filter(keep)
    X = np.random.default_rng(1).normal(size=(trimmed.height, 5))
    per_item = item_condition_diversity(trimmed, X, r=4, rng=np.random.default_rng(0))
    assert set(per_item["m"]) == {4}
    tc = per_item.filter((pl.col("item") == "tire") & (pl.col("condition") == "control")).row(0, named=True)
    assert tc["n"] == 4
    # at m = n every subset is the whole group
    assert tc["diversity_resampled"] == pytest.approx(tc["diversity_mean"], abs=1e-12)
    single = meta.filter(lone)
    one = item_condition_diversity(single, np.ones((1, 3)), rng=np.random.default_rng(0))
    assert one["diversity_mean"][0] is None and "no pairs" in one["notes"][0]
    too_big = condition_diversity(trimmed, X, m=8, r=4, rng=np.random.default_rng(0))
    control = too_big.filter(pl.col("condition") == "control").row(0, named=True)
    assert control["diversity_resampled"] is not None  # from brick, which has 9 >= 8
    assert "tire: 4 ideas, fewer than m=8" in control["notes"]
    with pytest.raises(ValueError, match="no participant ideas"):
        condition_diversity(meta.clear(), np.zeros((0, 3)), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="one row per idea"):
        condition_diversity(meta, X, rng=np.random.default_rng(0))


def test_trial_diversity_rows_and_values():
    meta = meta_frame()
    X = np.random.default_rng(2).normal(size=(meta.height, 6))
    out = trial_diversity(meta, X)
    assert out.height == len(ITEMS) * len(CONDITIONS) * TRIALS
    assert set(out["n_chains"]) == {CHAINS}
    row = out.filter((pl.col("item") == "brick") & (pl.col("condition") == "low_disclosed")
                     & (pl.col("trial") == 3)).row(0, named=True)
    idx = ((meta["item"] == "brick") & (meta["condition"] == "low_disclosed") & (meta["trial"] == 3)).to_numpy()
    assert row["diversity"] == pytest.approx(diversity.mean_pairwise_distance(X[idx]), abs=1e-12)
    # the median pairwise distance by hand: all pairs of the trial's ideas
    unit = X[idx] / np.linalg.norm(X[idx], axis=1, keepdims=True)
    pairs = [1 - unit[i] @ unit[j] for i in range(len(unit)) for j in range(i + 1, len(unit))]
    assert row["diversity_median"] == pytest.approx(float(np.median(pairs)), abs=1e-12)
    assert row["n_ideas"] == int(idx.sum()) == CHAINS
    # leave one chain at (tire, control, trial 2): no pairs, no row; two chains still make one
    drop_two = (pl.col("item") == "tire") & (pl.col("condition") == "control") & (pl.col("trial") == 2) & (
        pl.col("chain") > 0)
    drop_one = (pl.col("item") == "tire") & (pl.col("condition") == "control") & (pl.col("trial") == 3) & (
        pl.col("chain") == 0)
    mask = (~(meta.select(drop_two | drop_one).to_series())).to_numpy()
    fewer = trial_diversity(meta.filter(pl.Series(mask)), X[mask])
    assert fewer.height == out.height - 1
    assert fewer.filter((pl.col("item") == "tire") & (pl.col("condition") == "control")
                        & (pl.col("trial") == 3))["n_chains"].to_list() == [2]


# ------------------------------------------------------------------------- run folders


def _no_nan(table: pl.DataFrame) -> bool:
    return all(not table[c].is_nan().any() for c, t in table.schema.items() if t == pl.Float64)


def test_report_fits_the_authors_slope_on_trials_after_the_sixth(tmp_path):
    """With 9 trials the report's authors_slope is the authors' model fitted to trials 7-9 of
    the run's own trial diversities, written out here as a statsmodels formula: control's
    slope is the trial coefficient, another condition's adds its interaction. Three failed
    participants make the count of ideas (nobs) vary, so it stays in the model."""
    import statsmodels.formula.api as smf

    run = make_run(tmp_path, trials=9, fail=(7, 34, 61))  # trial 8 of the first chain of three item x conditions
    embedder = make_embedder("tfidf")
    table = report_table(run.path, embedder=embedder, seed=0, n_boot=200)
    by = {r["condition"]: r for r in table.iter_rows(named=True)}
    data = load_exposure(run.path)
    by_id, _ = embed_exposure(data, embedder)
    trials = trial_diversity(data.participants, np.vstack([by_id[i] for i in data.participants["idea_id"]]))
    df = trials.filter(pl.col("trial") > 6).to_pandas()
    assert df["n_ideas"].nunique() > 1
    df["y"] = 100 * df["diversity_median"]
    fit = smf.mixedlm("y ~ n_ideas + C(condition, Treatment(reference='control')) * trial", df,
                      groups=df["item"]).fit(reml=True)
    cov = fit.cov_params()
    assert by["control"]["authors_slope"] == pytest.approx(fit.fe_params["trial"], rel=1e-4, abs=1e-6)
    assert by["control"]["authors_slope_se"] == pytest.approx(math.sqrt(cov.loc["trial", "trial"]), rel=1e-3)
    inter = "C(condition, Treatment(reference='control'))[T.high_undisclosed]:trial"
    high = by["high_undisclosed"]
    assert high["authors_slope"] == pytest.approx(fit.fe_params["trial"] + fit.fe_params[inter], rel=1e-4, abs=1e-6)
    var = cov.loc["trial", "trial"] + cov.loc[inter, inter] + 2 * cov.loc["trial", inter]
    assert high["authors_slope_se"] == pytest.approx(math.sqrt(var), rel=1e-3)
    out = io.StringIO()
    print_report(table, Console(file=out, width=300))
    assert "authors' slope" in out.getvalue() and f"{high['authors_slope']:+.3g}" in out.getvalue()


def test_report_table_on_a_run_folder(run):
    embedder = make_embedder("tfidf")
    table = report_table(run.path, embedder=embedder, seed=0)
    assert list(table.columns) == [*REPORT_SCHEMA, "embedder", "judge_model"]
    assert table["condition"].to_list() == ["control", "high_undisclosed", "low_disclosed"]
    assert _no_nan(table)
    assert pl.read_parquet(run.path / "report.parquet").equals(table)
    assert table["n_ideas"].to_list() == [24, 24, 24] and set(table["n_failed"]) == {0}
    assert set(table["n_items"]) == {2} and set(table["resample_m"]) == {CHAINS * TRIALS}
    by = {r["condition"]: r for r in table.iter_rows(named=True)}
    control, low, high = by["control"], by["low_disclosed"], by["high_undisclosed"]
    # the control's own delta is not a comparison: null, said so
    assert control["delta_vs_control"] is None and control["diff_ci_low"] is None
    assert "reference" in control["notes"]
    # the texts were written so diversity falls with AI exposure
    assert control["diversity_mean"] > low["diversity_mean"] > high["diversity_mean"]
    assert high["delta_vs_control"] == pytest.approx(-1.0) and low["delta_vs_control"] == pytest.approx(-1.0)
    assert high["diff_ci_low"] <= high["diff_vs_control"] <= high["diff_ci_high"] < 0
    # at m = group size every subset is the whole group, so resampled equals the mean
    for row in table.iter_rows(named=True):
        assert row["diversity_resampled"] == pytest.approx(row["diversity_mean"], abs=1e-9)
        assert row["slope"] is not None and row["slope_se"] is not None
        assert row["authors_slope"] is None and "no trial after the 6th" in row["notes"]
        assert 0 <= row["semantic_distance_mean"] <= 1
        assert row["originality_mean"] is None and row["n_judged"] is None
        assert 1 <= row["ai_rank_mean"] <= 6 if row["condition"] != "control" else row["ai_rank_mean"] is None
    # adoption: none in control (no AI shown), and the AI-phrased ideas lean to the AI examples
    assert control["adoption_mean"] is None and "adoption: no idea saw both" in control["notes"]
    assert high["adoption_mean"] > 0 and low["adoption_mean"] > 0
    # the same numbers as the functions applied to the run's own vectors
    data = load_exposure(run.path)
    by_id, _ = embed_exposure(data, embedder)
    X = np.vstack([by_id[i] for i in data.participants["idea_id"]])
    div = condition_diversity(data.participants, X, rng=np.random.default_rng(0))
    for row in div.iter_rows(named=True):
        assert by[row["condition"]]["diversity_mean"] == pytest.approx(row["diversity_mean"], abs=1e-9)
        assert by[row["condition"]]["diversity_median"] == pytest.approx(row["diversity_median"], abs=1e-9)
    trials = trial_diversity(data.participants, X)
    slopes = stats.mixed_slopes(trials, value="diversity", step="trial", condition="condition", group="item")
    for row in slopes.iter_rows(named=True):
        assert row["converged"]
        assert by[row["condition"]]["slope"] == pytest.approx(row["slope"], abs=1e-9)
        assert by[row["condition"]]["slope_se"] == pytest.approx(row["se"], abs=1e-9)
    control_values = trials.filter(pl.col("condition") == "control")["diversity"].to_numpy()
    for condition in ("low_disclosed", "high_undisclosed"):
        values = trials.filter(pl.col("condition") == condition)["diversity"].to_numpy()
        assert by[condition]["delta_vs_control"] == pytest.approx(stats.cliffs_delta(values, control_values))
        assert by[condition]["diff_vs_control"] == pytest.approx(values.mean() - control_values.mean())
    # high exposure converges over trials (the texts were written so), the control does not
    assert high["slope"] < 0 and high["slope"] < control["slope"]
    assert not any("converge" in n for n in table["notes"])
    # a seed replays the report exactly
    assert report_table(run.path, embedder=embedder, seed=0).equals(table)


def test_report_counts_failed_participants_and_notes_them(tmp_path):
    run = make_run(tmp_path, fail=(0, 5))  # agents 0 and 5: tire, control, chains 0 and 1
    table = report_table(run.path, embedder=make_embedder("tfidf"))
    control = table.filter(pl.col("condition") == "control").row(0, named=True)
    assert control["n_ideas"] == 22 and control["n_failed"] == 2
    assert "2 participant(s) wrote no idea" in control["notes"]
    assert set(table["resample_m"]) == {10}  # the tire-control group lost two ideas
    assert _no_nan(table)


def test_report_keeps_a_condition_whose_participants_all_failed_and_ideas_without_direction(tmp_path):
    agents_low = [chain * TRIALS + t for chain in (3, 4, 5, 12, 13, 14) for t in range(TRIALS)]  # low_disclosed
    run = make_run(tmp_path, fail=tuple(agents_low))
    ideas = pl.read_parquet(run.path / "ideas.parquet").with_columns(  # TF-IDF has no word for "?"
        pl.when(pl.col("idea_id") == "s1-a0").then(pl.lit("?")).otherwise(pl.col("text")).alias("text"))
    run.write_table("ideas", ideas)
    table = report_table(run.path, embedder=make_embedder("tfidf"))
    assert table["condition"].to_list() == ["control", "high_undisclosed", "low_disclosed"] and _no_nan(table)
    low = table.filter(pl.col("condition") == "low_disclosed").row(0, named=True)
    assert low["n_ideas"] == 0 and low["n_failed"] == 24
    assert all(low[c] is None for c in ("diversity_mean", "slope", "delta_vs_control", "adoption_mean"))
    assert "no participant ideas in this condition" in low["notes"] and "delta: not computed" in low["notes"]
    control = table.filter(pl.col("condition") == "control").row(0, named=True)
    assert control["n_ideas"] == 24  # the "?" idea exists, but has no direction to measure
    assert "1 idea(s) with a zero embedding left out of vector measures" in control["notes"]
    assert control["resample_m"] == 11 and control["diversity_mean"] is not None


def test_report_with_the_echo_judge_reports_unscored_ideas(run):
    judge = LLM(LLMSpec(model="echo/misshape-1", cache=False, retries=0))  # never answers in the shape
    table = report_table(run.path, embedder=make_embedder("tfidf"), judge_llm=judge)
    assert table["originality_mean"].null_count() == table.height
    assert set(table["n_judged"]) == {0} and set(table["judge_model"]) == {"echo/misshape-1"}
    assert all("originality: 24 of 24 ideas got no score" in n for n in table["notes"])
    shaped = report_table(run.path, embedder=make_embedder("tfidf"),
                          judge_llm=LLM(LLMSpec(model="echo/judge", cache=False)))
    assert set(shaped["n_judged"]) == {24} and shaped["originality_mean"].null_count() == 0


def test_report_refuses_what_it_cannot_measure(tmp_path):
    with pytest.raises(ValueError, match="not 'exposure'"):
        report_table(make_run(tmp_path, kind="culture", name="c").path, embedder=make_embedder("tfidf"))
    every = tuple(range(len(ITEMS) * len(CONDITIONS) * CHAINS * TRIALS))
    with pytest.raises(ValueError, match="no participant ideas"):
        report_table(make_run(tmp_path, fail=every, name="f").path, embedder=make_embedder("tfidf"))
    with pytest.raises(ValueError, match="no agents.parquet"):
        broken = make_run(tmp_path, name="b")
        (broken.path / "agents.parquet").unlink()
        load_exposure(broken.path)


def test_report_with_one_item_has_no_slope_and_says_why(tmp_path):
    run = make_run(tmp_path)
    keep = pl.col("item").is_null() | (pl.col("item") == "tire")
    agents = pl.read_parquet(run.path / "agents.parquet").filter(keep)
    ideas = pl.read_parquet(run.path / "ideas.parquet")
    ideas = ideas.filter(pl.col("agent_id").is_null() | pl.col("agent_id").is_in(agents["agent_id"].implode()))
    run.write_table("agents", agents)
    run.write_table("ideas", ideas)
    table = report_table(run.path, embedder=make_embedder("tfidf"))
    assert table["slope"].null_count() == table.height
    assert all("slope: mixed model not fitted" in n for n in table["notes"])
    assert set(table["n_items"]) == {1} and _no_nan(table)


def test_print_report(run):
    table = report_table(run.path, embedder=make_embedder("tfidf"))
    console = Console(file=io.StringIO(), width=250, record=True)
    print_report(table, console=console)
    text = console.export_text()
    assert "high_undisclosed" in text and "reference" in text and "embedder: tfidf" in text
