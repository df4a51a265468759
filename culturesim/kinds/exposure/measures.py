"""Measure runs of the ``exposure`` kind: does seeing AI ideas change the ideas people write?

The run restates Ashkinaze et al. (2024), "How AI Ideas Affect the Creativity, Diversity,
and Evolution of Human Ideas": chains of participants answer the Alternate Uses Task
("What is a surprising use for a TIRE?") after seeing six examples, of which 0, 2 or 4
come from a fixed pool of AI ideas, with or without the source disclosed. The paper's
outcomes are measured here per condition:

- **diversity** of the participants' ideas (mean and median pairwise cosine distance, and
  the mean at a fixed subset size so conditions with unequal numbers of ideas compare
  fairly), per item and then averaged over items, because ideas for a tire and ideas for
  a shoe are far apart for reasons that have nothing to do with the condition;
- **diversity over trials**: how the spread of the ideas written at the same trial across
  the chains of one item x condition moves as chains evolve, its slope from a mixed model
  with a random intercept per item, the same slope as the authors fitted it (100 x the
  median pairwise distance, trials after the sixth: ``authors_slope.py``) so the paper's
  slope figures compare on one scale, and a rank effect size against the control condition;
- **originality**, when a judge model is given, prompted in the format of the Open
  Creativity Scoring (Ocsai) models (Organisciak et al. 2023), 1 to 5;
- **semantic distance** of each idea from its item (how far the use strays from the
  object), a standard automated originality proxy for the AUT;
- **adoption**: whether an idea sits closer to the AI examples its writer saw than to the
  human ones;
- **elaboration**: the number of words of an idea that are not stopwords (the paper's
  measure, ``elaboration.py``);
- **per-idea mixed models** (``mixed.py``), as the paper models responses: the slope over
  trials of elaboration and of each idea's distance from its item x condition centroid
  (the paper's diversity outcome), and the self-rated-creativity moderator (the slope of
  elaboration and of adoption on the participant's self-rating, per 10 points), each with a
  random intercept per participant (per chain when every participant wrote once).

Every function that can be is pure (frames and arrays in, frames out); randomness comes
only from seeded ``numpy.random.Generator`` objects. A number that cannot be computed is
a null with the reason in a ``notes`` column, never a NaN; input that makes the whole
report meaningless (no participant ideas, a run of another kind) is a ``ValueError``.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from analysis import diversity, stats
from analysis.embeddings import Embedder, embed_texts
from culturesim.kinds.exposure.authors_slope import SEEDS_EXHAUSTED, authors_slopes
from culturesim.llm.shape import canonical, parse
from culturesim.llm.types import Request
from culturesim.store import RunDir, write_parquet

__all__ = [
    "ExposureRun",
    "OCSAI_SYSTEM",
    "REFERENCE",
    "REPORT_SCHEMA",
    "adoption",
    "condition_diversity",
    "embed_exposure",
    "item_condition_diversity",
    "judge_creativity",
    "load_exposure",
    "ocsai_prompt",
    "parse_score",
    "print_report",
    "report_table",
    "semantic_distance",
    "trial_diversity",
]

# The condition every other one is compared with: participants who saw no AI ideas.
REFERENCE = "control"

OCSAI_SYSTEM = (
    "You are a creativity judge scoring responses to the Alternate Uses Task (AUT), a test of "
    "divergent thinking. Rate the originality of the response on a scale from 1 (not at all "
    "original) to 5 (highly original). Answer in JSON with one field, \"score\"."
)
# The judge's reply is JSON of this shape (decoded under its grammar where the backend can:
# culturesim/llm/shape.py): a score of 1 to 5 in halves, which is Ocsai's scale.
JUDGE_SCHEMA_JSON = {"type": "object", "additionalProperties": False, "required": ["score"],
                     "properties": {"score": {"enum": [1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5]}}}
# '{"score": 3.5}' is about 8 tokens; the grammar's optional spaces may add a few.
JUDGE_MAX_TOKENS = 16

REPORT_SCHEMA = {
    "condition": pl.String,
    "n_ideas": pl.Int64,
    "n_failed": pl.Int64,
    "n_items": pl.Int64,
    "diversity_mean": pl.Float64,
    "diversity_median": pl.Float64,
    "diversity_resampled": pl.Float64,
    "resample_m": pl.Int64,
    "slope": pl.Float64,
    "slope_se": pl.Float64,
    "authors_slope": pl.Float64,
    "authors_slope_se": pl.Float64,
    "delta_vs_control": pl.Float64,
    "diff_vs_control": pl.Float64,
    "diff_ci_low": pl.Float64,
    "diff_ci_high": pl.Float64,
    "originality_mean": pl.Float64,
    "n_judged": pl.Int64,
    "semantic_distance_mean": pl.Float64,
    "adoption_mean": pl.Float64,
    "ai_rank_mean": pl.Float64,
    "elaboration_mean": pl.Float64,
    "elaboration_slope": pl.Float64,
    "elaboration_slope_se": pl.Float64,
    "centroid_distance_mean": pl.Float64,
    "centroid_slope": pl.Float64,
    "centroid_slope_se": pl.Float64,
    "n_rated": pl.Int64,
    "self_rating_mean": pl.Float64,
    "rating_x_elaboration": pl.Float64,
    "rating_x_elaboration_se": pl.Float64,
    "rating_x_adoption": pl.Float64,
    "rating_x_adoption_se": pl.Float64,
    "random_effect": pl.String,
    "notes": pl.String,
}
# The moderator's slope is per this many points of the 0-100 self-rating.
RATING_STEP = 10.0
JUDGE_SCHEMA = {"idea_id": pl.String, "originality": pl.Float64, "judge_text": pl.String, "judge_error": pl.String}
ADOPTION_SCHEMA = {
    "idea_id": pl.String,
    "n_ai": pl.Int64,
    "n_human": pl.Int64,
    "sim_ai": pl.Float64,
    "sim_human": pl.Float64,
    "adoption": pl.Float64,
}
ITEM_DIVERSITY_SCHEMA = {
    "item": pl.String,
    "condition": pl.String,
    "n": pl.Int64,
    "diversity_mean": pl.Float64,
    "diversity_median": pl.Float64,
    "diversity_resampled": pl.Float64,
    "diversity_resampled_sd": pl.Float64,
    "m": pl.Int64,
    "notes": pl.String,
}
TRIAL_SCHEMA = {"item": pl.String, "condition": pl.String, "trial": pl.Int64, "n_chains": pl.Int64,
                "n_ideas": pl.Int64, "diversity": pl.Float64, "diversity_median": pl.Float64}


# ------------------------------------------------------------------------- the judge


def _ocsai_user(item: str, idea: str) -> str:
    return f"AUT Prompt: What is a surprising use for a {item.strip().upper()}?\nResponse: {idea}\nScore:"


def ocsai_prompt(item: str, idea: str, *, shots: Sequence[tuple[str, str, float | str]] = ()) -> list[dict]:
    """Chat messages asking a judge for the originality of one AUT response.

    The user turn follows the Ocsai fine-tuning format ("AUT Prompt: ...\\nResponse:
    ...\\nScore:"), with the question worded as participants saw it, so an Ocsai model
    scores exactly what it was trained on and a general chat model gets the same
    unambiguous slot to fill. The system turn states the 1-5 scale because a general
    model has not learnt it.

    ``shots`` (item, response, score) become earlier user/assistant turns in the same
    format. Ocsai models need none; a small general model may: SmolLM2-135M copies the
    prompt back zero-shot but answers with a number after one shot. The scores of the
    shots anchor the judge, so take them from human ratings, not from thin air.
    """
    messages = [{"role": "system", "content": OCSAI_SYSTEM}]
    for shot_item, shot_idea, shot_score in shots:
        messages.append({"role": "user", "content": _ocsai_user(shot_item, shot_idea)})
        messages.append({"role": "assistant", "content": json.dumps({"score": float(shot_score)})})
    messages.append({"role": "user", "content": _ocsai_user(item, idea)})
    return messages


def parse_score(text: str | None) -> float | None:
    """The score of a judge's JSON reply (``{"score": 3.5}``), or None if it does not fit the shape."""
    value = parse(text, canonical(JUDGE_SCHEMA_JSON))
    return float(value["score"]) if value is not None else None


def _judge_seed(seed: int, idea_id: str) -> int:
    """Per-idea seed: the same idea gets the same draw whichever other ideas are judged."""
    digest = hashlib.sha256(f"{seed}\x00{idea_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def judge_creativity(ideas: pl.DataFrame, llm: Any, *, seed: int = 0,
                     shots: Sequence[tuple[str, str, float | str]] = ()) -> pl.DataFrame:
    """Originality (1-5) of each idea by an LLM judge prompted in the Ocsai format.

    ``ideas`` has columns idea_id, item, text. All requests go out in one
    ``llm.generate`` call so the client can run them concurrently; sampling follows the
    judge's spec (temperature, top_p) with a short completion. A failed request or a
    reply without a usable score gives a null originality and says why in
    ``judge_error``; ``judge_text`` keeps the raw reply for inspection. ``shots``: see
    :func:`ocsai_prompt`.
    """
    missing = [c for c in ("idea_id", "item", "text") if c not in ideas.columns]
    if missing:
        raise ValueError(f"judge_creativity: ideas lacks column(s) {missing}; it has {ideas.columns}")
    if ideas["idea_id"].null_count() or ideas["idea_id"].is_duplicated().any():
        raise ValueError("judge_creativity: idea_id must be present and unique")
    rows = ideas.select("idea_id", "item", "text").to_dicts()
    spec = llm.spec
    requests, asked = [], []
    for k, row in enumerate(rows):
        if row["text"] is None or not str(row["text"]).strip() or row["item"] is None:
            continue
        requests.append(Request(
            schema=canonical(JUDGE_SCHEMA_JSON),
            messages=tuple(ocsai_prompt(row["item"], row["text"], shots=shots)),
            seed=_judge_seed(seed, row["idea_id"]),
            temperature=spec.temperature,
            top_p=spec.top_p,
            max_tokens=JUDGE_MAX_TOKENS,
            tag=row["idea_id"],
        ))
        asked.append(k)
    replies = dict(zip(asked, llm.generate(requests), strict=True)) if requests else {}
    out = []
    for k, row in enumerate(rows):
        reply = replies.get(k)
        if reply is None:
            out.append({"idea_id": row["idea_id"], "originality": None, "judge_text": None,
                        "judge_error": "no text to judge"})
        elif not reply.ok:
            out.append({"idea_id": row["idea_id"], "originality": None, "judge_text": None,
                        "judge_error": reply.error})
        else:
            score = parse_score(reply.text)
            error = None if score is not None else f"no score of the judge's shape in the reply {reply.text[:80]!r}"
            out.append({"idea_id": row["idea_id"], "originality": score, "judge_text": reply.text,
                        "judge_error": error})
    return pl.DataFrame(out, schema=JUDGE_SCHEMA)


# --------------------------------------------------------------------- vector measures


def _unit(vectors: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(vectors, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1)
    if not np.all(np.isfinite(arr)) or np.any(norms == 0):
        raise ValueError(f"{what}: zero or non-finite vectors have no direction, so no cosine")
    return arr / norms[:, None]


def semantic_distance(items: Sequence[str], ideas_X: np.ndarray, item_X: Mapping[str, np.ndarray]) -> np.ndarray:
    """1 - cosine between each idea and the embedding of its item's bare word ("tire").

    An idea that stays close to the object ("roll it") scores low, one that takes it
    somewhere else ("a gym for chickens") high; for the AUT this tracks human
    originality ratings (Beaty & Johnson 2021). ``items[i]`` is idea i's item and
    ``item_X`` maps each item to its vector. Range [0, 2].
    """
    items = list(items)
    X = _unit(ideas_X, "semantic_distance ideas_X")
    if X.shape[0] != len(items):
        raise ValueError(f"semantic_distance: {len(items)} items for {X.shape[0]} idea vectors")
    unknown = sorted(set(items) - set(item_X))
    if unknown:
        raise ValueError(f"semantic_distance: no vector for item(s) {unknown}")
    targets = np.vstack([_unit(item_X[i], f"semantic_distance item {i!r}") for i in items])
    return np.clip(1.0 - np.einsum("ij,ij->i", X, targets), 0.0, 2.0)


def adoption(examples: pl.DataFrame, X_by_id: Mapping[str, np.ndarray]) -> pl.DataFrame:
    """How much closer each idea is to the AI examples its writer saw than to the human ones.

    For each participant idea (``examples.idea_id``): the mean cosine similarity to the
    AI examples shown (sim_ai), the same for the human examples (sim_human), and
    adoption = sim_ai - sim_human. Positive means the idea borrowed more from the AI
    ideas. Only defined where both kinds were shown (never in the control condition), so
    elsewhere adoption is null, as is the similarity to a kind not shown. Every id must
    have a vector: an idea without one would otherwise drop out silently.
    """
    missing = [c for c in ("idea_id", "example_id", "example_source") if c not in examples.columns]
    if missing:
        raise ValueError(f"adoption: examples lacks column(s) {missing}; it has {examples.columns}")
    bad = set(examples["example_source"].unique().to_list()) - {"ai", "human"}
    if bad:
        raise ValueError(f"adoption: example_source must be 'ai' or 'human', got {sorted(map(str, bad))}")
    ids = set(examples["idea_id"].to_list()) | set(examples["example_id"].to_list())
    absent = sorted(i for i in ids if i not in X_by_id)
    if absent:
        shown = ", ".join(map(str, absent[:5])) + (f", ... ({len(absent)} in all)" if len(absent) > 5 else "")
        raise ValueError(f"adoption: no vector for id(s) {shown}")
    unit = {i: _unit(X_by_id[i], f"adoption vector {i!r}")[0] for i in ids}
    rows = []
    for (idea_id,), group in examples.group_by("idea_id", maintain_order=True):
        own = unit[idea_id]
        sims = {"ai": [], "human": []}
        for eid, src in zip(group["example_id"], group["example_source"], strict=True):
            sims[src].append(float(own @ unit[eid]))
        sim_ai = float(np.mean(sims["ai"])) if sims["ai"] else None
        sim_human = float(np.mean(sims["human"])) if sims["human"] else None
        rows.append({"idea_id": idea_id, "n_ai": len(sims["ai"]), "n_human": len(sims["human"]),
                     "sim_ai": sim_ai, "sim_human": sim_human,
                     "adoption": sim_ai - sim_human if sim_ai is not None and sim_human is not None else None})
    return pl.DataFrame(rows, schema=ADOPTION_SCHEMA)


def _check_meta(frame: pl.DataFrame, X: np.ndarray, columns: Sequence[str], what: str) -> np.ndarray:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: ideas lack column(s) {missing}; they have {frame.columns}")
    nulls = [c for c in columns if frame[c].null_count()]
    if nulls:
        raise ValueError(f"{what}: column(s) {nulls} contain nulls")
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != frame.height:
        raise ValueError(f"{what}: X must have one row per idea ({frame.height}), got shape {arr.shape}")
    if frame.height == 0:
        raise ValueError(f"{what}: no participant ideas")
    return arr


def item_condition_diversity(ideas_with_meta: pl.DataFrame, X: np.ndarray, *, m: int | None = None, r: int = 20,
                             rng: np.random.Generator) -> pl.DataFrame:
    """Diversity of the participants' ideas in each (item, condition), row i of X being idea i.

    Mean and median pairwise cosine distance (``analysis.diversity``), and the mean
    pairwise distance over ``r`` random subsets of ``m`` ideas: pairwise measures depend
    on how many ideas are compared, so conditions are only comparable at one m. By
    default m is the smallest group's size (every group can be subsampled to it; groups
    of a single idea, which have no pairs, are not counted). Groups
    are visited in sorted (item, condition) order and ``rng`` is used in that order, so
    a seed replays the table. A group too small for a measure gets a null and a note.
    """
    arr = _check_meta(ideas_with_meta, X, ("item", "condition"), "item_condition_diversity")
    frame = ideas_with_meta.select("item", "condition").with_row_index("_row")
    groups = sorted(frame.group_by("item", "condition"), key=lambda g: g[0])
    if m is None:
        # a group of one idea has no pairs at all; it must not drag every other group to m=1
        sizes = [g.height for _, g in groups if g.height >= 2]
        m = min(sizes) if sizes else 2
    elif isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 2:
        raise ValueError(f"m must be an integer of at least 2 (pairs need two ideas), got {m!r}")
    m = int(m)
    rows = []
    for (item, condition), group in groups:
        idx = group["_row"].to_numpy()
        n = idx.size
        row = {"item": item, "condition": condition, "n": n, "diversity_mean": None, "diversity_median": None,
               "diversity_resampled": None, "diversity_resampled_sd": None, "m": m, "notes": ""}
        notes = []
        if n < 2:
            notes.append(f"{n} idea: no pairs to measure")
        else:
            sub = arr[idx]
            row["diversity_mean"] = diversity.mean_pairwise_distance(sub)
            row["diversity_median"] = diversity.median_pairwise_distance(sub, rng=rng)
            if n < m:
                notes.append(f"{n} ideas, fewer than m={m}: not resampled")
            else:
                sampled = diversity.resample(diversity.mean_pairwise_distance, sub, m=m, r=r, rng=rng)
                row["diversity_resampled"] = sampled.mean
                row["diversity_resampled_sd"] = sampled.std
        row["notes"] = "; ".join(notes)
        rows.append(row)
    return pl.DataFrame(rows, schema=ITEM_DIVERSITY_SCHEMA)


def condition_diversity(ideas_with_meta: pl.DataFrame, X: np.ndarray, *, m: int | None = None, r: int = 20,
                        rng: np.random.Generator) -> pl.DataFrame:
    """Per condition: the (item, condition) diversities of :func:`item_condition_diversity`
    averaged over items (each item weighs the same whatever its number of ideas).

    Items where a measure is undefined are left out of that measure's average and named
    in ``notes``; a condition where no item has it gets a null.
    """
    per_item = item_condition_diversity(ideas_with_meta, X, m=m, r=r, rng=rng)
    measures = ("diversity_mean", "diversity_median", "diversity_resampled")
    rows = []
    for (condition,), group in sorted(per_item.group_by("condition"), key=lambda g: g[0]):
        row = {"condition": condition, "n_items": group.height, "n_ideas": int(group["n"].sum()),
               "m": int(group["m"][0])}
        notes = [f"{it}: {note}" for it, note in zip(group["item"], group["notes"], strict=True) if note]
        for measure in measures:
            values = group[measure].drop_nulls()
            row[measure] = float(values.mean()) if values.len() else None
        row["notes"] = "; ".join(notes)
        rows.append(row)
    schema = {"condition": pl.String, "n_items": pl.Int64, "n_ideas": pl.Int64, "m": pl.Int64,
              **{k: pl.Float64 for k in measures}, "notes": pl.String}
    return pl.DataFrame(rows, schema=schema).select("condition", "n_items", "n_ideas", *measures, "m", "notes")


def trial_diversity(ideas_with_meta: pl.DataFrame, X: np.ndarray) -> pl.DataFrame:
    """Mean pairwise distance of the ideas written at one trial across the chains of one
    item x condition: how far apart parallel chains are at each generation.

    Chains of a condition start from the same seed ideas; whether they drift apart or
    converge on the AI ideas shows in how this moves with the trial. A trial with fewer
    than two chains' ideas has no pairs and no row. ``n_ideas`` and ``diversity_median``
    (the median pairwise distance) are what the authors' slope model reads
    (``authors_slope.py``: their ``nobs`` and ``median_pw_dist``).
    """
    arr = _check_meta(ideas_with_meta, X, ("item", "condition", "trial", "chain"), "trial_diversity")
    frame = ideas_with_meta.select("item", "condition", "trial", "chain").with_row_index("_row")
    rows = []
    for (item, condition, trial), group in sorted(frame.group_by("item", "condition", "trial"), key=lambda g: g[0]):
        if group.height < 2:
            continue
        Xg = arr[group["_row"].to_numpy()]
        rows.append({"item": item, "condition": condition, "trial": int(trial),
                     "n_chains": group["chain"].n_unique(), "n_ideas": group.height,
                     "diversity": diversity.mean_pairwise_distance(Xg),
                     "diversity_median": diversity.median_pairwise_distance(Xg)})
    return pl.DataFrame(rows, schema=TRIAL_SCHEMA)


# ------------------------------------------------------------------------- a run folder


@dataclass(frozen=True)
class ExposureRun:
    """One exposure run's tables, joined the way the measures need them.

    ``participants``: one row per participant idea that exists (text, no error), with
    its agent's item, condition, chain and trial (chain position), the participant who
    wrote it, the participant's trial index, and its self-rating (null when none). ``failed``: participants whose reply
    gave no idea (they count in ``n_failed``, never in a measure). ``examples``: what
    each existing participant idea was shown. ``texts``: every idea with a text (pool,
    seeds, participants) by id, which the examples refer to.
    """

    run: RunDir
    manifest: dict
    participants: pl.DataFrame
    failed: pl.DataFrame
    examples: pl.DataFrame
    texts: dict[str, str]
    items: list[str]


def _read(run: RunDir, name: str) -> pl.DataFrame:
    path = run.path / f"{name}.parquet"
    if not path.is_file():
        raise ValueError(f"{run.path}: no {name}.parquet; is the exposure run finished?")
    return pl.read_parquet(path)


def load_exposure(run_dir: str | Path | RunDir) -> ExposureRun:
    """Read an exposure run folder, refusing folders of another kind or without participants."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    manifest = run.read_manifest()
    if manifest.get("kind") != "exposure":
        raise ValueError(f"{run.path}: a run of kind {manifest.get('kind')!r}, not 'exposure'")
    ideas = run.ideas()
    agents = _read(run, "agents")
    if "participant" not in agents.columns:  # runs from before participants did several trials
        agents = agents.with_columns(pl.col("agent_id").alias("participant"), pl.lit(1).alias("trial_index"))
    examples = _read(run, "examples")
    for name, frame, needed in (("agents", agents, ("agent_id", "item", "condition", "chain", "trial")),
                                ("examples", examples, ("idea_id", "example_id", "example_source", "rank"))):
        lacking = [c for c in needed if c not in frame.columns]
        if lacking:
            raise ValueError(f"{run.path}: {name}.parquet lacks column(s) {lacking}")
    attempts = ideas.filter(pl.col("agent_id").is_not_null() & (pl.col("operation") == "create"))
    if attempts.is_empty():
        raise ValueError(f"{run.path}: no participant ideas")
    meta = agents.select("agent_id", "participant", "trial_index", "item", "condition", "chain", "trial")
    joined = attempts.join(meta, on="agent_id", how="left").join(
        _self_ratings(ideas, agents, manifest), on="participant", how="left")
    orphans = joined.filter(pl.col("condition").is_null())
    if orphans.height:
        raise ValueError(f"{run.path}: {orphans.height} participant idea(s) have no row in agents.parquet")
    ok = pl.col("text").is_not_null() & (pl.col("text").str.strip_chars() != "") & pl.col("error").is_null()
    cols = ["idea_id", "agent_id", "participant", "trial_index", "item", "condition", "chain", "trial", "text",
            "self_rating"]
    participants = joined.filter(ok).select(cols).sort("item", "condition", "chain", "trial")
    failed = joined.filter(~ok).select("idea_id", "agent_id", "item", "condition", "error")
    if participants.is_empty():
        raise ValueError(f"{run.path}: no participant ideas (all {failed.height} attempts failed)")
    texts = {i: t for i, t, e in zip(ideas["idea_id"], ideas["text"], ideas["error"], strict=True)
             if t is not None and t.strip() and e is None}
    examples = examples.filter(pl.col("idea_id").is_in(participants["idea_id"].implode()))
    items = list((manifest.get("scenario") or {}).get("exposure", {}).get("items") or [])
    for item in participants["item"].unique(maintain_order=True).to_list():
        if item not in items:
            items.append(item)
    return ExposureRun(run=run, manifest=manifest, participants=participants, failed=failed, examples=examples,
                       texts=texts, items=items)


def _self_ratings(ideas: pl.DataFrame, agents: pl.DataFrame, manifest: dict) -> pl.DataFrame:
    """participant -> self_rating: the participants' answers (rows ``rate_self`` of
    ideas.parquet) or the values the scenario gave (``self_rating.source: personality``,
    recorded in agents.parquet). Runs with neither (older runs' agents carry a rating that
    was drawn at random and never asked; it is not read) give an empty frame."""
    from culturesim.kinds.exposure.model import parse_rating

    schema = {"participant": pl.Int64, "self_rating": pl.Float64}
    asked = ideas.filter((pl.col("operation") == "rate_self") & pl.col("error").is_null()
                         & pl.col("text").is_not_null())
    if asked.height:
        part_of = dict(zip(agents["agent_id"], agents["participant"], strict=True))
        pairs = [(part_of.get(a), parse_rating(t)) for a, t in zip(asked["agent_id"], asked["text"], strict=True)]
        kept = [(int(p), float(v)) for p, v in pairs if p is not None and v is not None]
        return pl.DataFrame({"participant": [p for p, _ in kept], "self_rating": [v for _, v in kept]}, schema=schema)
    source = ((manifest.get("scenario") or {}).get("exposure") or {}).get("self_rating", {}) or {}
    if source.get("source") == "personality" and "self_rating" in agents.columns:
        return agents.select(pl.col("participant").cast(pl.Int64), pl.col("self_rating").cast(pl.Float64)) \
            .unique("participant").drop_nulls()
    return pl.DataFrame(schema=schema)


def embed_exposure(data: ExposureRun, embedder: Embedder) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Vectors by idea id (every idea with a text) and by item (the bare item word).

    Everything is embedded in one call so corpus-fitted spaces (TF-IDF) put ideas,
    examples and items in the same space; cached embedders reuse the run's cache.
    """
    ids = list(data.texts)
    words = [item.strip() for item in data.items]
    X = embed_texts([data.texts[i] for i in ids] + words, embedder, cache_dir=data.run.path / "embeddings")
    X = np.asarray(X, dtype=np.float64)
    by_id = dict(zip(ids, X[: len(ids)], strict=True))
    by_item = dict(zip(data.items, X[len(ids):], strict=True))
    return by_id, by_item


def _has_direction(v: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(v)) and np.linalg.norm(v) > 0)


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _condition_order(conditions: list[str]) -> list[str]:
    """Each condition once (one may have both ideas and failures), the reference first."""
    rest = sorted({c for c in conditions if c != REFERENCE})
    return ([REFERENCE] if REFERENCE in conditions else []) + rest


def _slopes(trials: pl.DataFrame) -> tuple[dict[str, dict], str]:
    """Per-condition slope of trial diversity, or no slopes and why."""
    if trials.height == 0:
        return {}, "slope: no trial has ideas from 2 or more chains"
    try:
        fitted = stats.mixed_slopes(trials, value="diversity", step="trial", condition="condition", group="item")
    except Exception as exc:  # noqa: BLE001 - a report row says why, rather than the report dying
        return {}, f"slope: mixed model not fitted ({type(exc).__name__}: {exc})"
    out = {}
    for row in fitted.iter_rows(named=True):
        out[row["condition"]] = {"slope": _finite_or_none(row["slope"]), "slope_se": _finite_or_none(row["se"]),
                                 "converged": row["converged"]}
    return out, ""


def centroid_distances(ideas_with_meta: pl.DataFrame, X: np.ndarray) -> np.ndarray:
    """1 - cosine between each idea and the mean of the unit vectors of its item x
    condition's ideas: the paper's per-response diversity (an idea far from the centroid of
    its group makes the group more diverse). NaN for an idea alone in its group."""
    arr = _unit(_check_meta(ideas_with_meta, X, ("item", "condition"), "centroid_distances"),
                "centroid_distances X")
    out = np.full(arr.shape[0], np.nan)
    frame = ideas_with_meta.select("item", "condition").with_row_index("_row")
    for _, group in frame.group_by("item", "condition"):
        idx = group["_row"].to_numpy()
        if idx.size < 2:
            continue
        centre = arr[idx].mean(axis=0)
        norm = np.linalg.norm(centre)
        if norm > 0:
            out[idx] = 1.0 - arr[idx] @ (centre / norm)
    return out


def _idea_models(ideas: pl.DataFrame, conditions: list[str]) -> tuple[dict[str, dict], list[str], str]:
    """The per-idea mixed models of the report: slopes over trials of elaboration and
    centroid distance, and the self-rating moderator of elaboration and adoption.

    ``ideas`` has per idea: condition, trial, participant, chain, elaboration,
    centroid_distance, adoption, self_rating. The random intercept is per participant when
    some participant wrote more than once, else per chain (a group of one observation
    cannot carry an intercept of its own). Returns per condition the values, the notes
    that apply to every condition, and the grouping used."""
    from culturesim.kinds.exposure.mixed import condition_slopes

    several = ideas.group_by("participant").len()["len"].max() or 0
    group = "participant" if several > 1 else "chain"
    out: dict[str, dict] = {c: {} for c in conditions}
    notes: list[str] = []

    def fit(frame: pl.DataFrame, value: str, x: str, what: str, slope_key: str, se_key: str,
            covariates: tuple[str, ...] = (), scale: float = 1.0) -> None:
        frame = frame.filter(pl.col(value).is_not_null() & pl.col(value).is_not_nan()
                             & pl.col(x).is_not_null())
        if frame.height == 0:
            notes.append(f"{what}: no data")
            return
        try:
            fitted = condition_slopes(frame, value=value, x=x, group=group, covariates=covariates)
        except Exception as exc:  # noqa: BLE001 - the report says why instead of dying
            notes.append(f"{what}: mixed model not fitted ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})")
            return
        if not fitted["converged"].all():
            notes.append(f"{what}: mixed model did not converge")
        for row in fitted.iter_rows(named=True):
            slope, se = _finite_or_none(row["slope"]), _finite_or_none(row["se"])
            out[row["condition"]][slope_key] = slope * scale if slope is not None else None
            out[row["condition"]][se_key] = se * scale if se is not None else None

    fit(ideas, "elaboration", "trial", "elaboration slope", "elaboration_slope", "elaboration_slope_se")
    fit(ideas, "centroid_distance", "trial", "centroid slope", "centroid_slope", "centroid_slope_se")
    rated = ideas.filter(pl.col("self_rating").is_not_null())
    if rated.is_empty():
        notes.append("moderator: no self-ratings (exposure.self_rating.source none, or no answer parsed)")
    else:
        fit(rated, "elaboration", "self_rating", "rating x elaboration", "rating_x_elaboration",
            "rating_x_elaboration_se", covariates=("trial",), scale=RATING_STEP)
        with_ai = rated.filter(pl.col("adoption").is_not_null())
        if with_ai.height:
            fit(with_ai, "adoption", "self_rating", "rating x adoption", "rating_x_adoption",
                "rating_x_adoption_se", covariates=("trial",), scale=RATING_STEP)
    return out, notes, group


def _deltas(trials: pl.DataFrame, conditions: list[str], rng: np.random.Generator,
            n_boot: int) -> dict[str, dict]:
    """Cliff's delta and a bootstrap CI of the mean difference of trial diversity vs control.

    Trial diversities of one item x condition are a series, not independent draws, so
    the interval describes the spread of these values rather than licensing a test;
    no p-value is reported for that reason.
    """
    out: dict[str, dict] = {}
    base = trials.filter(pl.col("condition") == REFERENCE)
    for condition in conditions:
        if condition == REFERENCE:
            out[condition] = {"note": "delta: reference"}
            continue
        if base.is_empty():
            out[condition] = {"note": f"delta: no {REFERENCE!r} trial diversities to compare with"}
            continue
        pair = trials.filter(pl.col("condition").is_in([REFERENCE, condition]))
        try:
            found = stats.compare_conditions(pair, value="diversity", condition="condition", baseline=REFERENCE,
                                             group=None, rng=rng, n_boot=n_boot, n_permutations=n_boot)
        except ValueError as exc:
            out[condition] = {"note": f"delta: not computed ({exc})"}
            continue
        row = found.row(0, named=True)
        out[condition] = {"delta_vs_control": _finite_or_none(row["cliffs_delta"]),
                          "diff_vs_control": _finite_or_none(row["diff"]),
                          "diff_ci_low": _finite_or_none(row["ci_low"]),
                          "diff_ci_high": _finite_or_none(row["ci_high"])}
    return out


def _mean_by_condition(frame: pl.DataFrame, value: str) -> dict[str, float | None]:
    if frame.is_empty():
        return {}
    agg = frame.filter(pl.col(value).is_not_null() & pl.col(value).is_finite()).group_by("condition").agg(
        pl.col(value).mean())
    return {c: _finite_or_none(v) for c, v in zip(agg["condition"], agg[value], strict=True)}


def report_table(run_dir: str | Path | RunDir, *, embedder: Embedder, judge_llm: Any = None, seed: int = 0,
                 m: int | None = None, r: int = 20, n_boot: int = 2000,
                 judge_shots: Sequence[tuple[str, str, float | str]] = ()) -> pl.DataFrame:
    """One row per condition of an exposure run; also written to ``<run>/report.parquet``.

    Columns: n_ideas (participant ideas that exist), n_failed, n_items; diversity_mean /
    _median / _resampled (at subset size resample_m, by default the smallest item x
    condition group) averaged over items; slope of trial diversity (mixed model, random
    intercept per item) with its se; authors_slope and authors_slope_se, the slope of 100 x
    the median trial distance in the authors' model (trials after the sixth, ``nobs``
    covariate: :func:`.authors_slope.authors_slopes`); delta_vs_control (Cliff's delta of trial
    diversities vs control) with the difference of means and its bootstrap CI;
    originality_mean and n_judged when ``judge_llm`` is given; semantic_distance_mean;
    adoption_mean (AI-vs-human similarity; null where no AI examples were shown);
    ai_rank_mean (mean creativity rank participants gave AI examples, 1 = most creative,
    3.5 expected by chance with 6 examples); elaboration_mean (non-stopword words) and
    centroid_distance_mean (each idea's distance from its item x condition centroid), with
    their slopes over trials (per-idea mixed models, random intercept per ``random_effect``:
    participant, or chain when every participant wrote once); n_rated and
    self_rating_mean (participants' self-rated creativity, 0-100); rating_x_elaboration and
    rating_x_adoption, the moderator: the slope of each outcome per 10 self-rating points
    (model ``y ~ rating * condition + trial * condition``); notes (why any value is null).
    ``m``, ``r``: resampling subset size and repeats; ``n_boot``: bootstrap resamples;
    ``judge_shots``: see :func:`ocsai_prompt`. All randomness derives from ``seed``.
    """
    data = load_exposure(run_dir)
    by_id, by_item = embed_exposure(data, embedder)
    parts = data.participants
    conditions = _condition_order(parts["condition"].unique().to_list() + data.failed["condition"].unique().to_list())
    notes: dict[str, list[str]] = {c: [] for c in conditions}
    div_rng, delta_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))

    # Vector measures need a direction; a text the embedder maps to zero (TF-IDF of words
    # it dropped) has none and is left out of them, visibly.
    directed = parts.filter(pl.Series([_has_direction(by_id[i]) for i in parts["idea_id"]]))
    if directed.is_empty():
        raise ValueError(f"{data.run.path}: no participant idea has a usable embedding")
    for (condition,), group in parts.join(directed.select("idea_id"), on="idea_id", how="anti").group_by("condition"):
        notes[condition].append(f"{group.height} idea(s) with a zero embedding left out of vector measures")
    X = np.vstack([by_id[i] for i in directed["idea_id"]])

    div = condition_diversity(directed, X, m=m, r=r, rng=div_rng)
    div_by = {row["condition"]: row for row in div.iter_rows(named=True)}
    trials = trial_diversity(directed, X)
    slopes, slope_note = _slopes(trials)
    authors, authors_note = authors_slopes(trials, reference=REFERENCE)
    deltas = _deltas(trials, conditions, delta_rng, n_boot)

    sem_means: dict[str, float | None] = {}
    bad_items = sorted(i for i in directed["item"].unique().to_list() if not _has_direction(by_item[i]))
    if bad_items:
        for c in conditions:
            notes[c].append(f"semantic distance: item(s) {bad_items} have a zero embedding and are left out")
    sem_ideas = directed.filter(~pl.col("item").is_in(bad_items))
    if sem_ideas.height:
        distances = semantic_distance(sem_ideas["item"].to_list(),
                                      np.vstack([by_id[i] for i in sem_ideas["idea_id"]]), by_item)
        sem = sem_ideas.select("condition").with_columns(pl.Series("semantic_distance", distances))
        sem_means = _mean_by_condition(sem, "semantic_distance")

    usable = {i: v for i, v in by_id.items() if _has_direction(v)}
    shown = data.examples
    kept = shown.filter(pl.col("idea_id").is_in(list(usable)) & pl.col("example_id").is_in(list(usable)))
    adopt = adoption(kept, usable) if kept.height else pl.DataFrame(schema=ADOPTION_SCHEMA)
    cond_of = parts.select("idea_id", "condition")
    adopt_means = _mean_by_condition(adopt.join(cond_of, on="idea_id"), "adoption")
    ranks = shown.filter(pl.col("example_source") == "ai").join(cond_of, on="idea_id").with_columns(
        pl.col("rank").cast(pl.Float64))
    rank_means = _mean_by_condition(ranks, "rank")
    shown_ai = set(ranks["condition"].to_list())

    from culturesim.kinds.exposure.elaboration import elaboration

    per_idea = directed.select("idea_id", "condition", "trial", "participant", "chain", "self_rating").with_columns(
        pl.Series("elaboration", elaboration(directed["text"].to_list()), dtype=pl.Float64),
        pl.Series("centroid_distance", centroid_distances(directed, X), dtype=pl.Float64),
    ).join(adopt.select("idea_id", "adoption"), on="idea_id", how="left")
    elab_means = _mean_by_condition(per_idea, "elaboration")
    centroid_means = _mean_by_condition(per_idea.filter(pl.col("centroid_distance").is_not_nan()),
                                        "centroid_distance")
    rating_means = _mean_by_condition(per_idea.filter(pl.col("self_rating").is_not_null()), "self_rating")
    rated_counts = dict(per_idea.filter(pl.col("self_rating").is_not_null()).group_by("condition")
                        .agg(pl.col("participant").n_unique()).iter_rows())
    models, model_notes, random_effect = _idea_models(per_idea, conditions)

    judged_means: dict[str, float | None] = {}
    judged_counts: dict[str, int] = {}
    if judge_llm is not None:
        judged = judge_creativity(parts.select("idea_id", "item", "text"), judge_llm, seed=seed, shots=judge_shots)
        judged = judged.join(cond_of, on="idea_id")
        judged_means = _mean_by_condition(judged, "originality")
        for (condition,), group in judged.group_by("condition"):
            judged_counts[condition] = int(group["originality"].is_not_null().sum())
            unscored = group.height - judged_counts[condition]
            if unscored:
                notes[condition].append(f"originality: {unscored} of {group.height} ideas got no score")

    rows = []
    for condition in conditions:
        d = div_by.get(condition, {})
        note = notes[condition]
        if d.get("notes"):
            note.append(f"diversity: {d['notes']}")
        n_ideas = parts.filter(pl.col("condition") == condition).height
        if n_ideas == 0:
            note.append("no participant ideas in this condition")
        s = slopes.get(condition)
        if s is None:
            note.append(slope_note or "slope: no trial diversities for this condition")
            s = {}
        elif s["slope"] is None or s["slope_se"] is None:
            note.append("slope: the mixed model gave a non-finite slope or se")
        elif not s["converged"]:
            note.append("slope: mixed model did not converge")
        a = authors.get(condition)
        if a is None:
            note.append(authors_note or f"authors' slope: no trial after the {SEEDS_EXHAUSTED}th in this condition")
            a = {}
        elif a["slope"] is None or a["slope_se"] is None:
            note.append("authors' slope: the mixed model gave a non-finite slope or se")
        elif not a["converged"]:
            note.append("authors' slope: mixed model did not converge")
        delta = deltas.get(condition, {})
        if "note" in delta:
            note.append(delta["note"])
        if adopt_means.get(condition) is None:
            note.append("adoption: no idea saw both AI and human examples")
        if rank_means.get(condition) is None and condition in shown_ai:
            note.append("ai rank: no participant's ranking could be parsed")
        n_failed = data.failed.filter(pl.col("condition") == condition).height
        if n_failed:
            note.append(f"{n_failed} participant(s) wrote no idea")
        rows.append({
            "condition": condition,
            "n_ideas": n_ideas,
            "n_failed": n_failed,
            "n_items": parts.filter(pl.col("condition") == condition)["item"].n_unique(),
            "diversity_mean": d.get("diversity_mean"),
            "diversity_median": d.get("diversity_median"),
            "diversity_resampled": d.get("diversity_resampled"),
            "resample_m": d.get("m"),
            "slope": s.get("slope"),
            "slope_se": s.get("slope_se"),
            "authors_slope": a.get("slope"),
            "authors_slope_se": a.get("slope_se"),
            "delta_vs_control": delta.get("delta_vs_control"),
            "diff_vs_control": delta.get("diff_vs_control"),
            "diff_ci_low": delta.get("diff_ci_low"),
            "diff_ci_high": delta.get("diff_ci_high"),
            "originality_mean": judged_means.get(condition),
            "n_judged": judged_counts.get(condition, 0) if judge_llm is not None else None,
            "semantic_distance_mean": sem_means.get(condition),
            "adoption_mean": adopt_means.get(condition),
            "ai_rank_mean": rank_means.get(condition),
            "elaboration_mean": elab_means.get(condition),
            "centroid_distance_mean": centroid_means.get(condition),
            "n_rated": rated_counts.get(condition, 0),
            "self_rating_mean": rating_means.get(condition),
            **{key: models[condition].get(key) for key in (
                "elaboration_slope", "elaboration_slope_se", "centroid_slope", "centroid_slope_se",
                "rating_x_elaboration", "rating_x_elaboration_se", "rating_x_adoption", "rating_x_adoption_se")},
            "random_effect": random_effect,
            "notes": "; ".join(note + model_notes),
        })
    table = pl.DataFrame(rows, schema=REPORT_SCHEMA).with_columns(
        pl.lit(embedder.name).alias("embedder"),
        pl.lit(judge_llm.spec.model if judge_llm is not None else None, dtype=pl.String).alias("judge_model"),
    )
    write_parquet(data.run.path / "report.parquet", table)
    return table


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _with_se(value: float | None, se: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:+.3g}" + (f" ({se:.2g})" if se is not None else "")


def per_idea_table(table: pl.DataFrame) -> Any:
    """The report's per-idea outcomes and mixed models as a rich table: elaboration and
    centroid distance with their slopes over trials, self-ratings and the moderator."""
    from rich.table import Table

    effect = table["random_effect"].drop_nulls()
    out = Table(title="Per idea: mixed models, random intercept per "
                      f"{effect[0] if effect.len() else '?'} (se); moderator per {RATING_STEP:g} self-rating points")
    out.add_column("condition", no_wrap=True)
    for header in ("elaboration", "slope", "centroid dist.", "slope", "rated", "self-rating",
                   "rating x elaboration", "rating x adoption"):
        out.add_column(header, justify="right")
    for row in table.iter_rows(named=True):
        out.add_row(row["condition"], _fmt(row["elaboration_mean"], 2),
                    _with_se(row["elaboration_slope"], row["elaboration_slope_se"]),
                    _fmt(row["centroid_distance_mean"]), _with_se(row["centroid_slope"], row["centroid_slope_se"]),
                    _fmt(row["n_rated"]), _fmt(row["self_rating_mean"], 1),
                    _with_se(row["rating_x_elaboration"], row["rating_x_elaboration_se"]),
                    _with_se(row["rating_x_adoption"], row["rating_x_adoption_se"]))
    return out


def print_report(table: pl.DataFrame, console: Any = None) -> None:
    """The report as a rich table: the numbers people read first, nulls as a dash; the
    notes (why a value is missing) follow in full, one line per condition, since a
    table column would cut them."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    m = table["resample_m"].drop_nulls()
    out = Table(title="AI exposure report")
    out.add_column("condition", no_wrap=True)
    for header in ("n", "failed", "diversity", "median", f"at m={m[0] if m.len() else '?'}", "slope (se)",
                   "authors' slope (se)",
                   "Cliff δ vs control", "diff [95% CI]", "originality", "sem. dist.", "adoption", "AI rank"):
        out.add_column(header, justify="right")
    for row in table.iter_rows(named=True):
        slope = _with_se(row["slope"], row["slope_se"])
        authors = _with_se(row.get("authors_slope"), row.get("authors_slope_se"))
        diff = ("-" if row["diff_vs_control"] is None else
                f"{row['diff_vs_control']:+.3f} [{_fmt(row['diff_ci_low'])}, {_fmt(row['diff_ci_high'])}]")
        out.add_row(row["condition"], _fmt(row["n_ideas"]), _fmt(row["n_failed"]), _fmt(row["diversity_mean"]),
                    _fmt(row["diversity_median"]), _fmt(row["diversity_resampled"]), slope, authors,
                    _fmt(row["delta_vs_control"], 2), diff, _fmt(row["originality_mean"], 2),
                    _fmt(row["semantic_distance_mean"]), _fmt(row["adoption_mean"]), _fmt(row["ai_rank_mean"], 2))
    console.print(out)
    if "elaboration_mean" in table.columns:
        console.print(per_idea_table(table))
    for row in table.iter_rows(named=True):
        if row["notes"]:
            console.print(f"[bold]{row['condition']}[/bold]: {row['notes']}", highlight=False, soft_wrap=True)
    if "embedder" in table.columns and table.height:
        judge = table["judge_model"][0] if "judge_model" in table.columns else None
        console.print(f"embedder: {table['embedder'][0]}" + (f"; judge: {judge}" if judge else ""))
