"""The one typed description of a kind.

Everything but the name is a dotted path ("package.module:Name" or "package.module"),
imported only when asked for: listing kinds or validating a scenario must not import
mesa models, dash views, torch measures or TextWorld, and a kind whose optional extra is
not installed still validates. The parts a kind may leave out (measures, report, view,
importers) are simply absent from what the CLI and the app offer for it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any


def load(path: str) -> Any:
    """``"pkg.mod:Name"`` -> the object; ``"pkg.mod"`` -> the module."""
    module, _, name = path.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, name) if name else loaded


@dataclass(frozen=True)
class Kind:
    """A kind of study: what the core needs to validate, run and resume it, and what the CLI
    and the app may show of it."""

    name: str
    schema: str  # "module:Class": the scenario schema, a culturesim.scenario.ScenarioBase
    model: str  # "module:Class": the model, a culturesim.kinds.contract.KindModel
    tables: str  # "module": TABLES, the Parquet schemas of the kind's own per-step tables
    description: str = ""
    measures: str | None = None  # "module": the kind's measures (analysis of its tables)
    report: str | None = None  # "module:function": the study table of ``culturesim report``
    view: str | None = None  # "module": imported by the app; registers its sections (app.kinds)
    importers: dict[str, str] = field(default_factory=dict)  # format -> "module:function"
    shows_ideas: bool = False  # its ideas table is the population's ideas (Ideas and Network pages)
    # the operations whose ideas the generic measures (diversity over steps) read; None: every idea.
    # An autotelic agent writes a relabel and a reward beside each goal it imagines: judgements, not
    # the population's ideas, and several per agent and step, which per-step measures refuse.
    measured_operations: tuple[str, ...] | None = None
    # "module:NAME": preset name -> {dotted scenario key: prompt text}, offered by the app's builder
    prompt_presets: str | None = None

    def load_schema(self) -> type:
        return load(self.schema)

    def load_model(self) -> type:
        return load(self.model)

    def load_tables(self) -> dict[str, dict]:
        """name -> polars schema of every per-step table the kind may write."""
        return dict(load(self.tables).TABLES)

    def load_measures(self) -> ModuleType | None:
        return load(self.measures) if self.measures else None

    def load_report(self):
        return load(self.report) if self.report else None

    def load_view(self) -> ModuleType | None:
        return load(self.view) if self.view else None

    def load_prompt_presets(self) -> dict[str, dict[str, str]]:
        """Preset name -> {dotted scenario key: text}; empty when the kind declares none.
        Entries of another shape (a plug-in's slip) are a TypeError naming the kind."""
        if not self.prompt_presets:
            return {}
        presets = load(self.prompt_presets)
        ok = isinstance(presets, dict) and all(
            isinstance(name, str) and isinstance(keys, dict) and keys
            and all(isinstance(k, str) and isinstance(v, str) for k, v in keys.items())
            for name, keys in presets.items())
        if not ok:
            raise TypeError(f"kind {self.name!r}: {self.prompt_presets} must map preset names to "
                            "non-empty {dotted key: text} mappings")
        return {name: dict(keys) for name, keys in presets.items()}


@dataclass(frozen=True)
class ReportOptions:
    """What ``culturesim report`` passes to every kind's report, whichever flags it uses."""

    embedder: str = "minilm"
    judge: str | None = None  # a judge model; None: the run's own; "none": no judge
    judge_api_base: str | None = None
    seed: int = 0
    reference: str | None = None  # a run, folder or file to print beside (kinds that compare with one)
    price_trait: str = "fitness"  # the trait a kind's Price decomposition follows (each kind says which it has)
    innovation_form: str = "immigration"  # analysis.price.INNOVATION_FORMS
    plot: str | None = None  # an .html file a kind's report draws its figure in (culture: ours beside the reference)
