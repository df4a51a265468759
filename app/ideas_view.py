"""What the app shows for any kind whose runs are a population's ideas: the Price source for
the Selection page and the Run page's summary section. A kind's view calls
:func:`register_idea_view` with its name (and, if it likes, a note on reading its steps)."""

from __future__ import annotations

import polars as pl
from dash import html

from app.kinds import PRICE_COLUMNS, PriceSource, Section, register_price, register_sections

TRAITS = {"chars": "length in characters", "words": "length in words", "sentiment": "sentiment (VADER compound)"}
GROUPINGS = {"none": "one group", "community": "agent's community", "personality": "agent's personality"}


def trait_table(ideas: pl.DataFrame, trait: str) -> pl.DataFrame:
    """idea_id, value: the trait of every valid idea (float, so the Price sums stay fast)."""
    if trait == "chars":
        return ideas.select("idea_id", pl.col("text").str.len_chars().cast(pl.Float64).alias("value"))
    if trait == "words":
        return ideas.select("idea_id", pl.col("text").str.count_matches(r"\S+").cast(pl.Float64).alias("value"))
    if trait == "sentiment":
        from analysis.dynamics import text_traits

        return text_traits(ideas).select("idea_id", pl.col("sentiment").alias("value"))
    raise ValueError(f"unknown trait {trait!r}; allowed: {', '.join(TRAITS)}")


def agent_groups(agents: pl.DataFrame, grouping: str) -> dict | None:
    if grouping == "none":
        return None
    if grouping not in agents.columns:
        raise ValueError(f"this run's agents have no {grouping!r} column")
    return dict(agents.select("agent_id", grouping).iter_rows())


def price_over_steps(ideas: pl.DataFrame, trait: pl.DataFrame, groups: dict | None,
                     innovation_form: str = "immigration") -> pl.DataFrame:
    """analysis.price.price_from_run between each pair of consecutive steps with ideas, in the
    given form of the innovation term (recorded in an ``innovation_form`` column). A step pair
    that cannot be decomposed (no parents, say) is left out, with its reason."""
    from analysis.price import price_from_run

    steps = sorted(ideas["step"].unique().to_list())
    rows = []
    for parent, child in zip(steps, steps[1:], strict=False):
        window = ideas.filter(pl.col("step").is_in([parent, child]))
        try:
            terms = price_from_run(window, trait, groups, parent, child, innovation_form=innovation_form)
        except ValueError as exc:
            rows.append({"step": child, "skipped": str(exc), "innovation_form": innovation_form})
            continue
        row = {k: float(v) for k, v in terms.as_dict().items()
               if k not in ("n_parents", "n_children", "n_innovations", "innovation_form")}
        row.update(step=child, parent_step=parent, n_parents=terms.n_parents, n_children=terms.n_children,
                   n_innovations=terms.n_innovations, residual=float(terms.check()), skipped=None,
                   innovation_form=terms.innovation_form)
        rows.append(row)
    schema = {c: pl.Float64 for c in PRICE_COLUMNS} | {
        "step": pl.Int64, "parent_step": pl.Int64, "selection": pl.Float64, "mean_fitness": pl.Float64,
        "n_parents": pl.Int64, "n_children": pl.Int64, "n_innovations": pl.Int64, "residual": pl.Float64,
        "skipped": pl.String, "innovation_form": pl.String}
    return pl.DataFrame(rows, schema=schema).sort("step")


def idea_price(res, rel: str, trait: str, grouping: str, innovation_form: str = "immigration") -> pl.DataFrame:
    def make() -> pl.DataFrame:
        ideas = res.valid_ideas(rel)
        groups = agent_groups(res.agents(rel), grouping)
        return price_over_steps(ideas, trait_table(ideas, trait), groups, innovation_form)

    return res.derived(rel, ("price", trait, grouping, innovation_form), make)


def _summary(res, rel: str):
    ideas = res.ideas(rel)
    if ideas.is_empty():
        return html.P("no step recorded yet")
    by_op = ideas.group_by("operation").agg(pl.len().alias("n")).sort("operation", nulls_last=True)
    failed = int(ideas["error"].is_not_null().sum())
    items = [html.Li(f"{row['operation'] or '(none)'}: {row['n']} ideas") for row in by_op.iter_rows(named=True)]
    items.append(html.Li(f"failed agent-steps: {failed}"))
    last = ideas.filter(pl.col("step") == ideas["step"].max()).drop_nulls("text").head(3)
    examples = [html.Li(f"agent {r['agent_id']}: {r['text']}") for r in last.iter_rows(named=True)]
    return html.Div([html.Ul(items), html.P("a few ideas of the last step:"), html.Ul(examples, className="cs-ideas")])


def register_idea_view(kind: str, note: str = "") -> None:
    register_price(kind, PriceSource(TRAITS, idea_price, GROUPINGS, note=note, forms=True))
    register_sections(kind, Section("Ideas by operation", _summary))
