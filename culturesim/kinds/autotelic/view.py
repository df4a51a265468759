"""What the app shows for ``autotelic`` runs (LMA3-style agents that invent and share goals in
TextWorld): five Run page sections over the run's ``repertoire`` and ``episodes`` tables
(tables.py beside this module).

Every measure is this kind's measures.py, called on the tables the app has read through
``Results.table`` (containment, caching, per-step parts while the run goes on): goals known and
mastered, goal diversity (with the TF-IDF embedder: fast, and no model to load in a page),
repertoire overlap, evaluation coverage and the language model's rewards against the game's
oracle. The one thing analysis has no function for, the agent-by-agent Jaccard matrix behind its
mean overlap, is :func:`pairwise_overlap` here; its mean over pairs is analysis' ``mean_jaccard``.

Plots (with their PNG/SVG switch and CSV link), caching and the drawing helpers are
app/sections.py's. The Run page re-renders its sections every few seconds, so what a user chooses
must live in the browser and survive a re-render: the step of the overlap heatmap is a tab
(``dcc.Tabs`` switch without a callback and keep the chosen tab through ``persistence``), and the
goals table is an AG Grid (app/grid.py) with its own filter, sort and CSV export button, its filter
and column order kept through ``persistence``. Goal texts are a language
model's output: they reach the browser only as table cells, which React renders as text (no
Markdown presentation), never in a hover label or HTML.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import polars as pl
from dash import dcc, html
from plotly.subplots import make_subplots

from app.grid import export_button, grid, grid_id
from app.kinds import register_sections
from app.sections import cached_section, csv_link, evenly, finite, layout, section_plot, whole_steps
from app.ui import Notice, note_box, table

# the repertoire's ``source`` (how a goal entered it) and the episode's (where the pursued goal came from)
GOAL_SOURCES = {"relabel": "own", "social": "neighbour", "imagine": "imagined"}
EPISODE_SOURCES = {"own": "own", "social": "neighbour", "imagine": "imagined", "explore": "explore (no goal)"}
GOAL_SETS = {"mastered": "mastered goals", "known": "all known goals"}
AGENT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
                "#17becf", "#7f7f7f")
MAX_TABS = 12  # heatmap steps offered (evenly spaced, the last included): the page carries each one
MAX_CELLS = 120_000  # heatmap cells over all tabs; fewer tabs for a large population
GOALS_GRID = "at-goals"
MAX_ROWS = 5000  # goals table rows (the last step's repertoire), sent with every re-render


# ------------------------------------------------------------------------------ reading


def repertoire(res, rel: str) -> pl.DataFrame:
    from culturesim.kinds.autotelic.tables import REPERTOIRE_SCHEMA

    frame = res.table(rel, "repertoire", REPERTOIRE_SCHEMA)
    if frame.is_empty():
        raise Notice("No repertoire recorded yet (the first step has not finished).")
    return frame


def episodes(res, rel: str) -> pl.DataFrame:
    from culturesim.kinds.autotelic.tables import EPISODES_SCHEMA

    frame = res.table(rel, "episodes", EPISODES_SCHEMA)
    if frame.is_empty():
        raise Notice("No episode recorded yet (the first step has not finished).")
    return frame


def agent_ids(res, rel: str) -> list[int]:
    """The run's agents (agents.parquet), as culturesim.kinds.autotelic.measures.summary takes them."""
    return sorted(res.agents(rel)["agent_id"].to_list())


def who(frame: pl.DataFrame) -> pl.DataFrame:
    """A label per row: analysis marks the population's rows with a null agent_id."""
    return frame.with_columns(pl.when(pl.col("agent_id").is_null()).then(pl.lit("population"))
                              .otherwise(pl.lit("agent ") + pl.col("agent_id").cast(pl.String)).alias("who"))


# ------------------------------------------------------------------------------ frames (what is drawn)


def goals_frame(res, rel: str) -> pl.DataFrame:
    """culturesim.kinds.autotelic.measures.mastered_goals, with a ``who`` label."""
    from culturesim.kinds.autotelic.measures import mastered_goals

    return who(mastered_goals(repertoire(res, rel)))


def diversity_frame(res, rel: str) -> pl.DataFrame:
    """culturesim.kinds.autotelic.measures.goal_diversity (TF-IDF) of mastered goals and of all known goals."""
    from analysis.embeddings import TfidfEmbedder
    from culturesim.kinds.autotelic.measures import goal_diversity

    rep = repertoire(res, rel)
    parts = [goal_diversity(rep, TfidfEmbedder(), mastered_only=kind == "mastered")
             .with_columns(goal_set=pl.lit(kind)) for kind in GOAL_SETS]
    return who(pl.concat(parts))


def overlap_frame(res, rel: str) -> pl.DataFrame:
    """measures.repertoire_overlap (all pairs, and neighbouring pairs of the network) per step."""
    from culturesim.kinds.autotelic.measures import repertoire_overlap

    rep, agents, edges = repertoire(res, rel), agent_ids(res, rel), res.edges(rel)
    return pl.concat([repertoire_overlap(rep, agents, edges=edges, mastered_only=kind == "mastered")
                      .with_columns(goal_set=pl.lit(kind)) for kind in GOAL_SETS])


def pairwise_overlap(rep: pl.DataFrame, agents: list[int], steps: list[int], *,
                     mastered_only: bool = True) -> pl.DataFrame:
    """Jaccard similarity of every ordered pair of agents' goal sets at each of ``steps``: one row
    per (step, agent_a, agent_b), the diagonal included; null where both sets are empty (as in
    culturesim.kinds.autotelic.measures.repertoire_overlap, whose mean over the pairs a < b this is)."""
    chosen = rep.filter(pl.col("mastered")) if mastered_only else rep
    chosen = chosen.filter(pl.col("step").is_in(steps) & pl.col("agent_id").is_in(agents))
    goals = sorted(set(chosen["goal"].to_list()))
    column = {g: j for j, g in enumerate(goals)}
    row = {a: i for i, a in enumerate(agents)}
    n = len(agents)
    frames = []
    for step in steps:
        member = np.zeros((n, len(goals)), dtype=np.int64)
        at = chosen.filter(pl.col("step") == step)
        member[[row[a] for a in at["agent_id"].to_list()], [column[g] for g in at["goal"].to_list()]] = 1
        shared = member @ member.T  # goals both agents hold
        sizes = member.sum(axis=1)
        union = sizes[:, None] + sizes[None, :] - shared
        with np.errstate(invalid="ignore", divide="ignore"):
            jaccard = np.where(union > 0, shared / np.maximum(union, 1), np.nan)
        frames.append(pl.DataFrame({
            "step": np.full(n * n, step, dtype=np.int64), "agent_a": np.repeat(agents, n).astype(np.int64),
            "agent_b": np.tile(agents, n).astype(np.int64), "shared": shared.ravel(), "union": union.ravel(),
            "jaccard": jaccard.ravel()}).with_columns(pl.col("jaccard").fill_nan(None)))
    schema = {"step": pl.Int64, "agent_a": pl.Int64, "agent_b": pl.Int64, "shared": pl.Int64, "union": pl.Int64,
              "jaccard": pl.Float64}
    return pl.concat(frames).cast(schema) if frames else pl.DataFrame(schema=schema)


def heatmap_steps(res, rel: str) -> list[int]:
    """The steps offered as heatmap tabs: evenly spaced, the last included, fewer for a large population."""
    steps = sorted(repertoire(res, rel)["step"].unique().to_list())
    n = max(1, len(agent_ids(res, rel)))
    return evenly(steps, max(1, min(MAX_TABS, MAX_CELLS // (len(GOAL_SETS) * n * n))))


def heatmap_frame(res, rel: str) -> pl.DataFrame:
    """:func:`pairwise_overlap` of mastered and of known goals at :func:`heatmap_steps`."""
    rep, agents, steps = repertoire(res, rel), agent_ids(res, rel), heatmap_steps(res, rel)
    return pl.concat([pairwise_overlap(rep, agents, steps, mastered_only=kind == "mastered")
                      .with_columns(goal_set=pl.lit(kind)) for kind in GOAL_SETS])


def coverage_frame(res, rel: str) -> pl.DataFrame:
    """culturesim.kinds.autotelic.measures.coverage, with a ``who`` label."""
    from culturesim.kinds.autotelic.measures import coverage

    return who(coverage(episodes(res, rel)))


def agreement_frame(res, rel: str) -> pl.DataFrame:
    """culturesim.kinds.autotelic.measures.reward_agreement per step."""
    from culturesim.kinds.autotelic.measures import reward_agreement

    return reward_agreement(episodes(res, rel), by="step")


def agreement_table(res, rel: str) -> pl.DataFrame:
    """reward_agreement over all episodes and per goal source, with the four counts behind it."""
    from culturesim.kinds.autotelic.measures import reward_agreement

    eps = episodes(res, rel)
    judged = eps.filter(pl.col("llm_reward").is_not_null() & pl.col("oracle_success").is_not_null())
    counts = judged.group_by("source").agg(
        both_yes=(pl.col("llm_reward") & pl.col("oracle_success")).sum(),
        llm_yes_oracle_no=(pl.col("llm_reward") & ~pl.col("oracle_success")).sum(),
        llm_no_oracle_yes=(~pl.col("llm_reward") & pl.col("oracle_success")).sum(),
        both_no=(~pl.col("llm_reward") & ~pl.col("oracle_success")).sum(),
    ).cast({c: pl.Int64 for c in ("both_yes", "llm_yes_oracle_no", "llm_no_oracle_yes", "both_no")})
    overall = reward_agreement(eps).with_columns(goals=pl.lit("all episodes"))
    overall = pl.concat([overall, counts.drop("source").sum()], how="horizontal") if not overall.is_empty() \
        else overall
    by_source = reward_agreement(eps, by="source").join(counts, on="source", how="left").with_columns(
        goals=pl.col("source").replace_strict(EPISODE_SOURCES, default=pl.col("source"))).drop("source")
    return pl.concat([overall, by_source], how="diagonal_relaxed").select("goals", pl.exclude("goals"))


def goals_table(res, rel: str) -> pl.DataFrame:
    """Every agent's repertoire at the last recorded step: one row per (agent, goal)."""
    rep = repertoire(res, rel)
    last = rep.filter(pl.col("step") == rep["step"].max())
    return last.sort("agent_id", "goal").select(
        "step", pl.col("agent_id").alias("agent"), "goal",
        pl.col("source").replace_strict(GOAL_SOURCES, default=pl.col("source")).alias("source"),
        pl.col("from_agent").alias("from agent"), pl.col("subgoals").list.join("; ").alias("subgoals"),
        pl.col("first_step").alias("first step"), "attempts", "successes", "competence",
        pl.when(pl.col("mastered")).then(pl.lit("yes")).otherwise(pl.lit("no")).alias("mastered"),
        pl.col("trajectory_len").alias("trajectory length"))


# ------------------------------------------------------------------------------ drawing


def _agent_lines(fig: go.Figure, frame: pl.DataFrame, y: str, row: int, col: int, legend: bool,
                 dash: str | None = None, suffix: str = "") -> None:
    """One line per agent (grey, one legend entry, when there are more than ten) and the
    population's in black."""
    agents = sorted(a for a in frame["agent_id"].unique().to_list() if a is not None)
    many = len(agents) > len(AGENT_COLORS)
    for i, agent in enumerate(agents):
        part = frame.filter(pl.col("agent_id") == agent).sort("step")
        name = ("agents" if many else f"agent {agent}") + suffix
        fig.add_trace(go.Scatter(
            x=part["step"].to_list(), y=finite(part[y].cast(pl.Float64).to_list()), mode="lines+markers", name=name,
            legendgroup=name, showlegend=legend and (not many or i == 0),
            line={"color": "#bbbbbb" if many else AGENT_COLORS[i], "width": 1.5, "dash": dash},
            marker={"size": 5}), row=row, col=col)
    part = frame.filter(pl.col("agent_id").is_null()).sort("step")
    if not part.is_empty():
        fig.add_trace(go.Scatter(x=part["step"].to_list(), y=finite(part[y].cast(pl.Float64).to_list()),
                                 mode="lines+markers", name="population" + suffix, legendgroup="population" + suffix,
                                 showlegend=legend, line={"color": "black", "width": 3, "dash": dash}),
                      row=row, col=col)


def _goals(res, rel: str):
    frame = goals_frame(res, rel)
    fig = make_subplots(rows=1, cols=2, subplot_titles=["goals known", "goals mastered"])
    _agent_lines(fig, frame, "known", 1, 1, legend=True)
    _agent_lines(fig, frame, "mastered", 1, 2, legend=False)
    layout(fig)
    fig.update_xaxes(title_text="step")
    whole_steps(fig, sorted(frame["step"].unique().to_list()))
    return html.Div([
        html.P("A goal is mastered once the language model's rewards over its last pursuits reach the run's "
               "mastery threshold. The population counts distinct goals, not the agents' sum.", className="cs-hint"),
        section_plot("at-goals", rel, fig, frame),
    ])


def _diversity(res, rel: str):
    frame = diversity_frame(res, rel)
    if frame.is_empty():
        raise Notice("No goal to measure yet.")
    fig = make_subplots(rows=2, cols=2, vertical_spacing=0.16, subplot_titles=[
        "Vendi score: mastered goals", "mean pairwise distance: mastered goals",
        "Vendi score: all known goals", "mean pairwise distance: all known goals"])
    for r, kind in enumerate(GOAL_SETS, start=1):
        part = frame.filter(pl.col("goal_set") == kind)
        _agent_lines(fig, part, "vendi", r, 1, legend=r == 1)
        _agent_lines(fig, part, "mean_pairwise", r, 2, legend=False)
    layout(fig)
    fig.update_xaxes(title_text="step", row=2)
    whole_steps(fig, sorted(frame["step"].unique().to_list()))
    return html.Div([
        html.P("Goal texts embedded with TF-IDF (fitted on the goals measured). Vendi score: the effective "
               "number of distinct goals; mean pairwise cosine distance needs two goals (a gap below that).",
               className="cs-hint"),
        section_plot("at-diversity", rel, fig, frame, height=560),
    ])


def _heatmap_figure(frame: pl.DataFrame, agents: list[int], step: int) -> go.Figure:
    labels = [f"agent {a}" for a in agents]
    fig = make_subplots(rows=1, cols=len(GOAL_SETS), subplot_titles=list(GOAL_SETS.values()),
                        horizontal_spacing=0.12)
    for c, kind in enumerate(GOAL_SETS, start=1):
        part = frame.filter((pl.col("goal_set") == kind) & (pl.col("step") == step)).sort("agent_a", "agent_b")
        n = len(agents)
        z = np.array(finite(part["jaccard"].to_list()), dtype=object).reshape(n, n).tolist()
        counts = np.stack([part["shared"].to_numpy(), part["union"].to_numpy()], axis=-1).reshape(n, n, 2).tolist()
        fig.add_trace(go.Heatmap(
            z=z, x=labels, y=labels, zmin=0, zmax=1, colorscale="Viridis", customdata=counts,
            showscale=c == len(GOAL_SETS), colorbar={"title": {"text": "Jaccard"}},
            hovertemplate="%{y} and %{x}<br>Jaccard %{z:.3f}<br>%{customdata[0]} shared of %{customdata[1]}"
                          "<extra></extra>"), row=1, col=c)
        fig.update_yaxes(autorange="reversed", row=1, col=c)
    return layout(fig)


def _overlap(res, rel: str):
    steps_frame = overlap_frame(res, rel)
    cells = heatmap_frame(res, rel)
    agents = agent_ids(res, rel)
    steps = heatmap_steps(res, rel)
    all_steps = sorted(steps_frame["step"].unique().to_list())
    # a plot per tab; their data is the one CSV of every tab's cells below the tabs
    tabs = [dcc.Tab(label=f"step {s}", value=str(s), children=[
        section_plot(f"at-overlap-step{s}", rel, _heatmap_figure(cells, agents, s), None)]) for s in steps]
    fig = go.Figure()
    for kind, dash in (("mastered", None), ("known", "dot")):
        part = steps_frame.filter(pl.col("goal_set") == kind).sort("step")
        for column, label, color in (("mean_jaccard", "all pairs", "black"),
                                     ("neighbour_jaccard", "neighbouring pairs", "#d62728")):
            fig.add_trace(go.Scatter(x=part["step"].to_list(), y=finite(part[column].to_list()), mode="lines+markers",
                                     name=f"{label}, {GOAL_SETS[kind]}", line={"color": color, "dash": dash}))
    layout(fig, xaxis={"title": "step"}, yaxis={"title": "mean Jaccard similarity", "range": [0, 1.05]})
    whole_steps(fig, all_steps)
    note = (f"heatmaps for {len(steps)} of {len(all_steps)} steps, evenly spaced" if len(steps) < len(all_steps)
            else None)
    return html.Div([
        html.P("Jaccard similarity of two agents' goal sets: 1 when they hold the same goals. Rising overlap "
               "is homogenisation; a pair whose sets are both empty has none to measure (blank).",
               className="cs-hint"),
        *([note_box(note)] if note else []),
        dcc.Tabs(id="at-overlap-tabs", value=str(steps[-1]), children=tabs, persistence=rel,
                 persistence_type="session"),
        html.Div([csv_link("at-overlap-cells", cells, "Heatmaps' data as CSV")], className="cs-export"),
        html.P("Mean overlap over steps:"),
        section_plot("at-overlap", rel, fig, steps_frame, height=380),
    ])


def _evaluation(res, rel: str):
    cov = coverage_frame(res, rel)
    agree = agreement_frame(res, rel)
    summary = agreement_table(res, rel)
    eps = episodes(res, rel)
    judged = eps.filter(pl.col("llm_reward").is_not_null() & pl.col("oracle_success").is_not_null()).height
    with_goal = eps.filter(pl.col("goal").is_not_null()).height
    total = int(eps.group_by("game").agg(pl.col("eval_total").first())["eval_total"].sum())
    parts = [html.P(f"Coverage: the share of the {total} held-out evaluation goals (judged by the game's facts, "
                    "which the agents never see) reached in any episode so far.", className="cs-hint")]
    if cov.is_empty():
        parts.append(note_box("This run's games have no evaluation goal."))
    else:
        fig = go.Figure()
        _agent_lines(fig, cov, "coverage", None, None, legend=True)
        layout(fig, xaxis={"title": "step"}, yaxis={"title": "share of evaluation goals reached",
                                                       "range": [0, 1.05]})
        whole_steps(fig, sorted(cov["step"].unique().to_list()))
        parts.append(section_plot("at-coverage", rel, fig, cov, height=380))
    parts.append(html.P(f"Rewards: the language model's yes/no against the oracle's verdict, on the {judged} of "
                        f"{with_goal} episodes with a goal where both gave one (the oracle cannot read every goal). "
                        "Cohen's kappa is agreement beyond chance; blank where chance is already perfect.",
                        className="cs-hint"))
    if agree.is_empty():
        parts.append(note_box("No episode has both a reward and an oracle verdict yet."))
        return html.Div(parts)
    fig = go.Figure()
    x = agree["step"].to_list()
    for column, label, color, dash in (("agreement", "agreement", "black", None), ("kappa", "Cohen's kappa",
                                                                                    "#1f77b4", None),
                                       ("llm_yes", "LLM's yes-rate", "#ff7f0e", "dot"),
                                       ("oracle_yes", "oracle's yes-rate", "#2ca02c", "dot")):
        fig.add_trace(go.Scatter(x=x, y=finite(agree[column].to_list()), name=label, mode="lines+markers",
                                 line={"color": color, "dash": dash}))
    layout(fig, xaxis={"title": "step"}, yaxis={"title": "share / kappa"})
    whole_steps(fig, x)
    parts += [table(summary.to_dicts(), summary.columns), section_plot("at-agreement", rel, fig, agree, height=380)]
    return html.Div(parts)


def _goal_list(res, rel: str):
    frame = goals_table(res, rel)
    per_agent = frame.group_by("agent").agg(
        known=pl.len(), mastered=(pl.col("mastered") == "yes").sum(),
        **{name: (pl.col("source") == name).sum() for name in GOAL_SOURCES.values()}).sort("agent")
    shown = frame.head(MAX_ROWS)
    note = f"showing the first {MAX_ROWS} of {frame.height} goals (by agent, then goal)" if frame.height > MAX_ROWS \
        else None
    return html.Div([
        html.P(f"Each agent's goals at step {frame['step'][0]} (the last recorded). Source: own (named from its "
               "own play), neighbour (sent by a neighbour: from agent), imagined (invented by the language model). "
               "Type in a column's filter row to search; click a header to sort.", className="cs-hint"),
        table(per_agent.to_dicts(), per_agent.columns),
        *([note_box(note)] if note else []),
        grid(grid_id(GOALS_GRID), shown, filename=f"goals-{rel.replace('/', '_')}.csv", page_size=20,
             persistence=rel),
        export_button(GOALS_GRID, "Goals as CSV"),  # the rows as filtered and sorted in the browser
    ])


register_sections(
    "autotelic",
    cached_section("Goals known and mastered", _goals, "repertoire"),
    cached_section("Goal diversity", _diversity, "repertoire"),
    cached_section("Repertoire overlap between agents", _overlap, "repertoire", "agents", "edges"),
    cached_section("Evaluation coverage and LLM rewards against the oracle", _evaluation, "episodes"),
    cached_section("Goals per agent", _goal_list, "repertoire"),
)
