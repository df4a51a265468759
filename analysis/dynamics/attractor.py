"""Where transmission pulls a scalar trait: a regression of each chain's end on its start.

Chains that end near the same value whatever they started from show transmission itself
pulling the trait there; :class:`Attractor` says where, how strongly, and when there is no
such point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from analysis.dynamics._common import _valid_mask


@dataclass(frozen=True)
class Attractor:
    """Where transmission pulls a trait, from a regression of end values on start values.

    ``last = intercept + slope * first``. If this held at every generation, the trait
    would move towards ``position`` = intercept / (1 - slope), where the line crosses the
    diagonal; ``strength`` = 1 - |slope| is how much of the distance to it is closed per
    pass (1: every chain ends at the attractor whatever it started from; 0: the end
    follows the start one for one; negative: the fixed point repels).
    """

    slope: float
    intercept: float
    position: float | None
    strength: float
    r2: float
    n: int
    note: str | None = None


_SLOPE_ONE = 1e-9  # |slope - 1| below this is treated as exactly 1 (no fixed point)


def attractors(first: Any, last: Any) -> Attractor:
    """Fit the attractor of a scalar trait across chains (or agents).

    ``first[i]`` and ``last[i]`` are the trait of chain i's first and last idea. With a
    slope of 1 (to within 1e-9) the line never crosses the diagonal: ``position`` is None
    and ``note`` says why, rather than an infinite or NaN position.
    """
    f = np.asarray(first, dtype=np.float64)
    g = np.asarray(last, dtype=np.float64)
    if f.ndim != 1 or g.ndim != 1 or f.shape != g.shape:
        raise ValueError(
            "attractors needs two 1-D arrays of one scalar per chain, "
            f"got shapes {np.shape(first)} and {np.shape(last)}"
        )
    n = f.size
    if n < 2:
        raise ValueError(f"attractors needs at least 2 chains, got {n}")
    if not (np.isfinite(f).all() and np.isfinite(g).all()):
        raise ValueError("attractors: first and last must be finite (no NaN or inf)")
    if np.ptp(f) == 0:
        raise ValueError(
            "attractors: every chain starts at the same value, so how the end depends on the start "
            "(the slope) is undefined; start chains at different values"
        )
    dx, dy = f - f.mean(), g - g.mean()
    slope = float(dx @ dy / (dx @ dx))
    intercept = float(g.mean() - slope * f.mean())
    resid = g - (intercept + slope * f)
    ss_tot = float(dy @ dy)
    r2 = 1.0 - float(resid @ resid) / ss_tot if ss_tot > 0 else 1.0  # all ends equal: a perfect flat fit
    note = None
    if abs(slope - 1.0) < _SLOPE_ONE:
        position = None
        note = (
            "slope is 1: the end follows the start one for one (shifted by the intercept), "
            "so the line never crosses the diagonal and there is no fixed point"
        )
    else:
        position = intercept / (1.0 - slope)
        if abs(slope) > 1:
            note = "|slope| > 1: the fixed point repels; chains move away from it"
    return Attractor(slope, intercept, position, 1.0 - abs(slope), r2, n, note)


def _trait_frame(trait: Any) -> pl.DataFrame:
    if isinstance(trait, dict):
        frame = pl.DataFrame(
            {"idea_id": list(trait.keys()), "value": [float(v) for v in trait.values()]},
            schema={"idea_id": pl.String, "value": pl.Float64},
        )
    elif isinstance(trait, pl.DataFrame):
        if "idea_id" not in trait.columns:
            raise ValueError("a trait frame needs an idea_id column")
        others = [c for c in trait.columns if c != "idea_id"]
        column = "value" if "value" in others else (others[0] if len(others) == 1 else None)
        if column is None:
            raise ValueError(f"a trait frame needs a 'value' column or exactly one column beside idea_id, got {others}")
        frame = trait.select(pl.col("idea_id").cast(pl.String), pl.col(column).cast(pl.Float64).alias("value"))
    else:
        raise TypeError(f"trait must be a dict idea_id -> value or a polars DataFrame, got {type(trait).__name__}")
    if frame["idea_id"].is_duplicated().any():
        raise ValueError("trait gives more than one value for some idea_id")
    bad = frame.filter(pl.col("value").is_null() | ~pl.col("value").is_finite())
    if bad.height:
        raise ValueError(f"trait has {bad.height} missing, NaN or inf value(s) (first: {bad['idea_id'][0]})")
    return frame


def chain_attractors(ideas: pl.DataFrame, trait: Any, by: str | pl.DataFrame = "agent_id") -> Attractor:
    """The attractor of a trait across chains, each chain's first idea against its last.

    ``trait``: a dict idea_id -> value, or a frame with idea_id and a value column (e.g.
    ``text_traits(...).select("idea_id", "sentiment")``). Ideas without a value are left
    out, so a trait measured on part of the run restricts the chains to that part.

    ``by`` says what a chain is:

    - a column of ``ideas`` (default ``"agent_id"``: in population runs each agent's
      succession of ideas is a chain of its own);
    - a frame with columns ``idea_id`` and ``chain`` mapping each idea to its chain (ideas
      not in it are left out). For ``update: chain`` runs, where one seed passes down each
      component, the lineage gives this mapping directly::

          roots = lineage(ideas).filter(pl.col("root_ids").list.len() == 1)
          chains = roots.select("idea_id", chain=pl.col("root_ids").list.first())

    A chain's first and last ideas are its earliest and latest by step (ties broken by
    idea_id); chains with a single idea say nothing about change and are left out.
    """
    values = _trait_frame(trait)
    kept = ideas.filter(pl.Series(_valid_mask(ideas)))
    if isinstance(by, pl.DataFrame):
        missing = {"idea_id", "chain"} - set(by.columns)
        if missing:
            raise ValueError(f"a chain mapping frame needs columns idea_id and chain (missing: {sorted(missing)})")
        if by["idea_id"].is_duplicated().any():
            raise ValueError("the chain mapping puts some idea in more than one chain")
        chain = by.select("idea_id", pl.col("chain").alias("__chain"))
        kept = kept.select("idea_id", "step").join(chain, on="idea_id", how="inner")
        label = "chain"
    else:
        if by not in ideas.columns:
            raise ValueError(
                f"by={by!r} is not a column of the ideas frame; pass a column name or an (idea_id, chain) frame"
            )
        kept = kept.select("idea_id", "step", pl.col(by).alias("__chain"))
        label = by
    ends = (
        kept.join(values, on="idea_id", how="inner")
        .drop_nulls("__chain")
        .sort("__chain", "step", "idea_id")
        .group_by("__chain")  # rows keep their sorted order within each group
        .agg(pl.col("value").first().alias("first"), pl.col("value").last().alias("last"), pl.len().alias("n"))
        .filter(pl.col("n") >= 2)
        .sort("__chain")
    )
    if ends.height < 2:
        raise ValueError(
            f"chain_attractors needs at least 2 chains with 2 or more valued ideas (chains by {label!r}), "
            f"found {ends.height}"
        )
    return attractors(ends["first"].to_numpy(), ends["last"].to_numpy())
