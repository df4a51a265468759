"""What the app shows for ``gard`` runs (GARD assemblies): Run page sections and a Price source.

Every number comes from this kind's measures.py, called on the run folder the app has already checked
(``Results.run_dir``): compositional heredity (similarity of each split to its parent split,
composomes above H = 0.9), compotype clusters, the catalysis network's mutual-catalysis
propensity, the model's timeline, and the multilevel Price decomposition with molecules as
individuals and assemblies as groups.

The Run page re-renders its sections every few seconds, and some of these measures take
seconds on a long run (k-means for compotypes, the Price sums), so each is cached until the
tables it reads change (``app.sections.cached``). The Price decomposition is computed for at most
:data:`MAX_PRICE_STEPS` evenly spaced steps; a split-level plot draws at most
:data:`MAX_POINTS` splits, evenly spaced, and says so.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from dash import html
from plotly.subplots import make_subplots

from app.kinds import PRICE_COLUMNS, PriceSource, register_price, register_sections
from app.sections import COLORS, cached, cached_section, evenly, finite, layout, section_plot, whole_steps
from app.ui import Notice, table
from culturesim.kinds.gard.measures import COMPOSOME_THRESHOLD

TRAITS = {"others_vs_self": "catalysis of others over self (log10)", "catalytic_out": "catalytic output (log10)",
          "catalysed_in": "catalysed input (log10)"}
GROUPINGS = {"assemblies": "molecules within assemblies"}
MAX_PRICE_STEPS = 50
MAX_POINTS = 2000  # a plot and its CSV travel with the Run page, which re-renders every few s
THRESHOLD = COMPOSOME_THRESHOLD  # the H above which a split is a composome (the plots' line)


def _checked(res, rel: str, name: str) -> None:
    """A section with nothing to show says why, instead of raising from deep in analysis."""
    if res.table(rel, name).is_empty():
        raise Notice(f"No {name} recorded yet.")


# ------------------------------------------------------------------------------ sections


def similarity_frame(res, rel: str) -> tuple[pl.DataFrame, int]:
    """The splits drawn (at most MAX_POINTS, evenly spaced) and how many there are in all."""
    from culturesim.kinds.gard.measures import similarity_over_time

    _checked(res, rel, "assemblies")
    sim = cached(res, rel, "similarity", ("assemblies",), lambda: similarity_over_time(res.run_dir(rel)))
    sim = sim.filter(pl.col("similarity_to_parent").is_not_null())
    if sim.height <= MAX_POINTS:
        return sim, sim.height
    return sim[evenly(list(range(sim.height)), MAX_POINTS)], sim.height


def _similarity(res, rel: str):
    frame, total = similarity_frame(res, rel)
    if frame.is_empty():
        raise Notice("No split has a parent split yet (the first splits of a run have none).")
    fig = go.Figure()
    for composome, name, color in ((True, f"composome (H > {THRESHOLD})", "#1f77b4"), (False, "drift", "#bbbbbb")):
        part = frame.filter(pl.col("composome") == composome)
        fig.add_trace(go.Scattergl(x=part["time"].to_list(), y=part["similarity_to_parent"].to_list(), name=name,
                                   mode="markers", marker={"size": 5, "color": color},
                                   hovertext=[f"split {s}, step {t}" for s, t in zip(part["split_id"], part["step"],
                                                                                        strict=True)]))
    fig.add_hline(y=THRESHOLD, line={"dash": "dash", "color": "#d62728"}, annotation_text=f"H = {THRESHOLD}")
    fig.update_layout(template="plotly_white", xaxis={"title": "model time"},
                      yaxis={"title": "H: cosine similarity to the parent split", "range": [0, 1.02]},
                      margin={"l": 60, "r": 20, "t": 30, "b": 40}, legend={"orientation": "h", "y": -0.18})
    note = f"showing {frame.height} of {total} splits, evenly spaced" if total > frame.height else None
    return section_plot("gard-sim", rel, fig, frame, note=note)


def composome_frame(res, rel: str) -> pl.DataFrame:
    from culturesim.kinds.gard.measures import composomes_over_steps

    _checked(res, rel, "assemblies")
    return cached(res, rel, "composomes", ("assemblies",), lambda: composomes_over_steps(res.run_dir(rel)))


def _composomes(res, rel: str):
    frame = composome_frame(res, rel)
    if frame.is_empty():
        raise Notice("No split has a parent split yet.")
    x = frame["step"].to_list()
    fig = go.Figure([
        go.Bar(x=x, y=frame["composome_share"].to_list(), name=f"share of splits with H > {THRESHOLD}",
               marker_color="#1f77b4", opacity=0.7),
        go.Scatter(x=x, y=frame["mean_similarity"].to_list(), name="mean H to parent", mode="lines+markers",
                   line={"color": "black"}),
    ])
    fig.update_layout(template="plotly_white", xaxis={"title": "step"},
                      yaxis={"title": "share / H", "range": [0, 1.05]}, margin={"l": 60, "r": 20, "t": 30, "b": 40},
                      legend={"orientation": "h", "y": -0.18})
    whole_steps(fig, x)
    return section_plot("gard-share", rel, fig, frame)


def compotype_result(res, rel: str) -> dict:
    from culturesim.kinds.gard.measures import compotypes

    _checked(res, rel, "assemblies")
    return cached(res, rel, "compotypes", ("assemblies", "beta"), lambda: compotypes(res.run_dir(rel)))


def compotype_frame(res, rel: str) -> pl.DataFrame:
    """Per split: its compotype (-1: not a composome, or not clustered), at most MAX_POINTS."""
    tags = compotype_result(res, rel)["tags"]
    if "time" not in tags.columns:  # no composome at all: analysis returns the bare split ids
        return tags
    return tags[evenly(list(range(tags.height)), MAX_POINTS)] if tags.height > MAX_POINTS else tags


def _compotypes(res, rel: str):
    found = compotype_result(res, rel)
    if found["k"] == 0:
        raise Notice(f"No composome yet (no split with H > {THRESHOLD}): nothing to cluster.")
    frame = compotype_frame(res, rel)
    k = found["k"]
    fig = go.Figure()
    for c in range(-1, k):
        part = frame.filter(pl.col("compotype") == c)
        fig.add_trace(go.Scattergl(x=part["time"].to_list(), y=[str(c) if c >= 0 else "drift"] * part.height,
                                   mode="markers", name=f"compotype {c}" if c >= 0 else "drift / not clustered",
                                   marker={"size": 6, "color": COLORS[c % len(COLORS)] if c >= 0 else "#bbbbbb"}))
    fig.update_layout(template="plotly_white", xaxis={"title": "model time"},
                      yaxis={"title": "compotype", "type": "category",
                             "categoryarray": ["drift", *map(str, range(k))], "categoryorder": "array"},
                      margin={"l": 60, "r": 20, "t": 30, "b": 40}, legend={"orientation": "h", "y": -0.18})
    centroids = found["centroids"]
    tags = found["tags"]
    rows = []
    for c in range(k):
        top = centroids.filter(pl.col("compotype") == c).sort("weight", descending=True).head(5)
        rows.append({"compotype": c, "splits": int((tags["compotype"] == c).sum()),
                     "main molecule types (weight)": ", ".join(f"{t} ({w:.2f})" for t, w in top.select(
                         "type", "weight").iter_rows())})
    scores = ", ".join(f"k={kk}: {s:.3f}" for kk, s in found["scores"].iter_rows())
    note = f"showing {frame.height} of {tags.height} splits, evenly spaced" if tags.height > frame.height else None
    return html.Div([
        html.P(f"{k} compotype(s): k-means on the composomes' compositions, k chosen by mean cosine silhouette "
               f"({scores})."),
        table(rows, ["compotype", "splits", "main molecule types (weight)"]),
        section_plot("gard-compotypes", rel, fig, frame, height=360, note=note),
    ])


def _network(res, rel: str):
    from culturesim.kinds.gard.measures import network_summary

    _checked(res, rel, "beta")
    summary = cached(res, rel, "network", ("beta",), lambda: network_summary(res.run_dir(rel)))
    row = summary.row(0, named=True)
    mc = row["mutual_catalysis"]
    reading = ("catalysis of other types outweighs self-catalysis" if mc > 1 else
               "self-catalysis outweighs catalysis of others" if mc < 1 else "as an unstructured network")
    return html.Div([
        table(summary.to_dicts(), summary.columns),
        html.P(f"Mutual-catalysis propensity sum(β) / (N_G · trace(β)) = {mc:.4g}: {reading} "
               "(1 for a network without structure).", className="cs-hint"),
    ])


def timeline_frame(res, rel: str) -> pl.DataFrame:
    from culturesim.kinds.gard.measures import timeline

    _checked(res, rel, "timeline")
    return cached(res, rel, "timeline", ("timeline",), lambda: timeline(res.run_dir(rel)))


def _timeline(res, rel: str):
    frame = timeline_frame(res, rel)
    x = frame["step"].to_list()
    fig = make_subplots(rows=1, cols=3, subplot_titles=["model time at the step's end", "events and deaths per step",
                                                        "mean assembly size"])
    fig.add_trace(go.Scatter(x=x, y=finite(frame["time"].to_list()), name="time", mode="lines+markers",
                             line={"color": COLORS[0]}), row=1, col=1)
    fig.add_trace(go.Bar(x=x, y=frame["events"].to_list(), name="events", marker_color=COLORS[1]), row=1, col=2)
    fig.add_trace(go.Bar(x=x, y=frame["deaths"].to_list(), name="deaths", marker_color=COLORS[3]), row=1, col=2)
    fig.add_trace(go.Scatter(x=x, y=finite(frame["mean_size"].to_list()), name="mean size", mode="lines+markers",
                             line={"color": COLORS[2]}), row=1, col=3)
    layout(fig)
    fig.update_xaxes(title_text="step")
    whole_steps(fig, x)
    return section_plot("gard-timeline", rel, fig, frame, height=380)


register_sections(
    "gard",
    cached_section("Heredity: similarity of each split to its parent split", _similarity, "assemblies"),
    cached_section("Composomes over steps", _composomes, "assemblies"),
    cached_section("Compotypes", _compotypes, "assemblies", "beta"),
    cached_section("Catalysis network: mutual catalysis", _network, "beta"),
    cached_section("Timeline", _timeline, "timeline"),
)


# ------------------------------------------------------------------------------ Price source


def price_steps(res, rel: str) -> list[int]:
    """The steps whose change can be decomposed (the step before is recorded too), at most
    MAX_PRICE_STEPS of them, evenly spaced."""
    genealogy = res.table(rel, "genealogy")
    if genealogy.is_empty():
        raise Notice("No molecule genealogy recorded (it needs gard.track_genealogy: true and one finished step).")
    recorded = set(genealogy["step"].unique().to_list())
    return evenly(sorted(s for s in recorded if s >= 1 and s - 1 in recorded), MAX_PRICE_STEPS)


def gard_price(res, rel: str, trait: str, grouping: str, innovation_form: str = "immigration") -> pl.DataFrame:
    """culturesim.kinds.gard.measures.selection_over_steps for one trait, one row per decomposed step."""
    from culturesim.kinds.gard.measures import selection_over_steps

    if trait not in TRAITS:
        raise ValueError(f"unknown trait {trait!r}; allowed: {', '.join(TRAITS)}")

    def make() -> pl.DataFrame:
        steps = price_steps(res, rel)
        terms = selection_over_steps(res.run_dir(rel), [trait], steps=steps, innovation_form=innovation_form)
        extra = [c for c in ("selection", "mean_fitness", "residual", "n_parents", "n_children", "n_innovations",
                             "innovation_form") if c in terms.columns]
        return terms.select(*PRICE_COLUMNS, *extra, "trait").sort("step")

    return cached(res, rel, ("price", trait, innovation_form), ("genealogy", "beta"), make)


register_price("gard", PriceSource(
    TRAITS, gard_price, GROUPINGS, forms=True,
    note=f"Molecules are the individuals and assemblies the groups; a molecule's fitness is its number of "
         f"descendants one step later. At most {MAX_PRICE_STEPS} evenly spaced steps are decomposed."))
