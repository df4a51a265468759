"""Per-kind extension points, keyed by the manifest's ``kind``.

Scenario kinds (culture, exposure, matechoice, gard, autotelic, ...) keep the same run
folder shape but their own tables. The app's generic pages handle what every kind has
(manifest, agents, edges, and ideas where there are ideas); what only one kind has plugs
in here, with no change to the pages:

- **Sections of the Run page** — ``register_sections(kind, Section(...), ...)``: a title and
  ``render(results, run_id) -> Dash component``. Read the kind's tables with
  ``results.table(run_id, "assemblies")`` (compacted file, or per-step parts while the run
  is going), which keeps the results-folder containment and caching. A section that raises
  shows its error in place; the rest of the page still renders. Build it with app/sections.py:
  ``cached_section`` (computed once per state of the tables it reads) and ``section_plot`` (a
  plot with its PNG/SVG switch, wired once for every section by the Run page, and its CSV link).
- **Selection (Price) sources** — ``register_price(kind, PriceSource(...))``: the traits it
  offers and ``compute(results, run_id, trait, grouping) -> frame`` with one row per step and
  the columns of :data:`PRICE_COLUMNS`. The Selection page draws whatever a source returns.
  A source with ``forms=True`` also takes ``innovation_form=`` (one of
  ``analysis.price.INNOVATION_FORMS``: the immigration form of Kerr & Godfrey-Smith 2009, the
  default, or the residual form) and records it in an ``innovation_form`` column; the page
  offers the choice and says which form a plot uses.
- **Cards of the Compare page** — ``register_compare_card(CompareCard(layout, register))``: a
  card shown on the Compare page (hidden by its own callback for sweeps it does not apply
  to) and the function that wires its callbacks.
- **Whole pages** — drop a module into ``app/pages/`` that calls ``dash.register_page`` and
  defines ``register(app)`` for its callbacks; ``create_app`` finds it.

Each kind's view module (its ``Kind.view``, from the registry in culturesim.kinds) does the
registering; the app imports every installed kind's view when it starts, so a broken view
fails loudly at start-up, and a kind added as a plug-in needs no change here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

PRICE_COLUMNS = ("step", "delta", "between", "within", "transmission", "innovation")


@dataclass(frozen=True)
class Section:
    title: str
    render: Callable[[Any, str], Any]  # (Results, run id) -> Dash component


@dataclass(frozen=True)
class PriceSource:
    """How to decompose one kind's change in a trait over steps."""

    traits: dict[str, str]  # value -> label shown on the Selection page
    compute: Callable[[Any, str, str, str], pl.DataFrame]  # (Results, run id, trait, grouping) -> frame
    groupings: dict[str, str] = field(default_factory=lambda: {"none": "one group"})
    note: str = ""
    forms: bool = False  # compute takes innovation_form= and writes an innovation_form column


SECTIONS: dict[str, list[Section]] = {}
PRICE_SOURCES: dict[str, PriceSource] = {}

@dataclass(frozen=True)
class CompareCard:
    """A card of the Compare page: ``layout()`` builds it, ``register(app)`` wires its callbacks."""

    layout: Callable[[], Any]
    register: Callable[[Any], None]


COMPARE_CARDS: list[CompareCard] = []


def register_sections(kind: str, *sections: Section) -> None:
    SECTIONS.setdefault(kind, [])
    known = {s.title for s in SECTIONS[kind]}
    SECTIONS[kind].extend(s for s in sections if s.title not in known)  # importing twice adds nothing


def register_price(kind: str, source: PriceSource) -> None:
    PRICE_SOURCES[kind] = source


def register_compare_card(card: CompareCard) -> None:
    if card not in COMPARE_CARDS:  # importing twice adds nothing
        COMPARE_CARDS.append(card)


def load_kind_views() -> None:
    """Import the view of every installed kind that has one. A view that fails to import
    (a broken plug-in) leaves the app up: its runs' pages show the error in place of the
    kind's sections, and the other kinds are untouched."""
    from culturesim.kinds import all_kinds

    for kind in all_kinds():
        try:
            kind.load_view()
        except Exception as exc:  # noqa: BLE001 - any import failure of a kind's own code
            message = f"the {kind.name!r} kind's view ({kind.view}) could not be loaded: {type(exc).__name__}: {exc}"
            warnings.warn(message, RuntimeWarning, stacklevel=2)

            def unavailable(res, rel, message=message):
                raise RuntimeError(message)

            register_sections(kind.name, Section("View unavailable", unavailable))


def kinds_with_ideas() -> tuple[str, ...]:
    """Kinds whose ideas table is the population's ideas (Ideas, Network and Diversity pages)."""
    from culturesim.kinds import all_kinds

    return tuple(kind.name for kind in all_kinds() if kind.shows_ideas)


def sections_for(kind: str) -> list[Section]:
    return SECTIONS.get(kind, [])


def price_source(kind: str) -> PriceSource | None:
    return PRICE_SOURCES.get(kind)
