"""The scenario file: its schema, loading, overrides, and the errors a user sees.

Everything a run depends on is in the scenario, so a resolved scenario stored in the
manifest is enough to reproduce or resume a run. Unknown keys are errors (a typo must
never silently fall back to a default), and every error names file, key path and line.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
import string
import typing
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)

from culturesim import confine
from culturesim.kinds.registry import KindLoadError, get_kind, kind_names
from culturesim.personalities import registry
from culturesim.yamlsource import MAX_DEPTH, KeyPath, YamlLimitError, YamlSyntaxError, line_of, load_yaml, parse_yaml


class ScenarioError(ValueError):
    """A scenario that cannot run; ``problems`` are one-line, user-facing messages."""

    def __init__(self, problems: list[str]):
        # one line per problem, whatever odd characters a file's keys or values held
        self.problems = [p.replace("\r", "\\r").replace("\n", "\\n") for p in problems]
        super().__init__("\n".join(self.problems))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


PathStr = Annotated[str, AfterValidator(confine.check_path)]
"""A file or folder path in a scenario. Declare every path field of a kind with it: under
confinement (scenarios started from the app) its value must stay inside the results folder."""
OutputPathStr = Annotated[str, AfterValidator(confine.check_output_path)]
"""A folder the runner writes, a relative value taken from the working directory."""


class PopulationSpec(Strict):
    size: Annotated[int, Field(strict=True, ge=1, le=1_000_000)]
    mix: dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default_factory=lambda: {"neutral": 1.0},
        description="personality name -> proportion of the population (normalised)",
    )
    personalities: dict[str, str] = Field(
        default_factory=dict, description="extra or overriding personalities: name -> system message"
    )
    assign: dict[str, Selector] = Field(
        default_factory=dict,
        description="personality name -> the agents that have it (ids, community or proportion); "
                    "the others are drawn from mix",
    )

    @field_validator("mix")
    @classmethod
    def _mix_not_all_zero(cls, mix: dict[str, float]) -> dict[str, float]:
        if mix and not math.isfinite(sum(mix.values())):
            raise ValueError("proportions are too large to add up; use ordinary numbers such as 0.3")
        if mix and sum(mix.values()) <= 0:
            raise ValueError("proportions must not all be zero")
        if not mix:
            raise ValueError("name at least one personality, e.g. {neutral: 1.0}")
        return mix

    def unknown_personalities(self) -> list[tuple[KeyPath, str]]:
        """The mix's names that are neither built in nor defined under ``personalities``."""
        known = registry(self.personalities)
        return [(("population", "mix", name), f"unknown personality {name!r}{did_you_mean(name, known)}; "
                 f"known: {', '.join(sorted(known))} (add your own under population.personalities)")
                for name in self.mix if name not in known] + [
            (("population", "assign", name), f"unknown personality {name!r}{did_you_mean(name, known)}; "
             f"known: {', '.join(sorted(known))}")
            for name in self.assign if name not in known]


class NetworkSpec(Strict):
    topology: str = "complete"
    params: dict[str, Any] = Field(default_factory=dict)
    directed: bool = False
    self_loops: bool = False

    @field_validator("params")
    @classmethod
    def _confined_paths(cls, params: dict[str, Any], info) -> dict[str, Any]:
        """The parameters a topology reads as file paths, under confinement (see culturesim.confine)."""
        if confine.active() is None:
            return params  # and loading a scenario still imports no networkx
        from culturesim.networks import PATH_PARAMS

        for key in PATH_PARAMS.get(info.data.get("topology"), ()):
            value = params.get(key)
            if isinstance(value, str):
                try:
                    confine.check_path(value)
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from None
        return params


class LLMSpec(Strict):
    model: str = Field("local/smollm2", description="any litellm model string; local/smollm2 is embedded")
    api_base: str | None = None
    api_key_env: str | None = Field(None, description="name of the environment variable holding the key")
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.8
    top_p: Annotated[float, Field(gt=0, le=1)] = 0.95
    max_tokens: Annotated[int, Field(strict=True, ge=1, le=32768)] = 64
    stop: list[str] = Field(default_factory=list)
    concurrency: Annotated[int, Field(strict=True, ge=1, le=4096)] = 16
    retries: Annotated[int, Field(strict=True, ge=0, le=20)] = 3
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 120.0
    outage_s: Annotated[float, Field(ge=0, le=86400)] = Field(
        300.0, description="when every request of a batch fails on a server error, keep trying this long"
    )
    cache: bool = True
    n_threads: Annotated[int, Field(strict=True, ge=1, le=512)] | None = Field(
        None, description="embedded model only; default: all cores"
    )
    n_ctx: Annotated[int, Field(strict=True, ge=256, le=131072)] = 2048
    batch: Annotated[int, Field(strict=True, ge=1, le=64)] = Field(
        1, description="embedded model only: requests decoded together (the same text per seed as 1)"
    )
    max_total_tokens: Annotated[int, Field(strict=True, ge=1)] | None = Field(
        None, description="stop the run (interrupted, resumable) after the step at which the tokens of all its "
                          "models reach this; None: no cap (culturesim/llm/cost.py)"
    )

    @field_validator("model")
    @classmethod
    def _confined_model_file(cls, model: str) -> str:
        """``local/<file>`` names a model file: a path like any other under confinement."""
        name = model.removeprefix("local/")
        if model.startswith("local/") and name != "smollm2":
            confine.check_path(name)
        return model

    @field_validator("api_key_env")
    @classmethod
    def _allowed_key_env(cls, name: str | None) -> str | None:
        """Under confinement, only the variables the app was started with (--allow-key-env)."""
        return confine.check_key_env(name)


# keys of the llm block that belong to the whole run, not to one model (set only in the scenario's llm)
RUN_LEVEL_LLM_KEYS = frozenset({"max_total_tokens"})


class _Override(Strict):
    """Some keys of a block: only the keys given are written out (into the manifest's resolved
    scenario too), so reading it back sets the same keys, and a key given as null (clear
    ``api_base``, say) stays apart from one not given."""

    @model_serializer(mode="wrap")
    def _only_given(self, handler):
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}


def _partial(model: type[BaseModel], name: str) -> type[BaseModel]:
    """``model`` with every key optional and unset by default: a block that overrides some
    keys of another, each key validated as in the full block."""
    fields: dict[str, Any] = {}
    for key, info in model.model_fields.items():
        if key in RUN_LEVEL_LLM_KEYS:
            continue
        annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        fields[key] = (annotation | None, Field(None, description=info.description))
    return create_model(name, __base__=_Override, __doc__=f"Some keys of {model.__name__}, overriding it.", **fields)


class LLMOverride(_partial(LLMSpec, "_LLMKeys")):  # type: ignore[misc]
    """Some keys of an ``llm`` block (a group's or an agent's), each validated as in the full
    block, confinement included: a group cannot reach a file or a key the scenario's own
    block could not."""

    @field_validator("model")
    @classmethod
    def _confined_model_file(cls, model: str | None) -> str | None:
        return None if model is None else LLMSpec._confined_model_file(model)

    @field_validator("api_key_env")
    @classmethod
    def _allowed_key_env(cls, name: str | None) -> str | None:
        return confine.check_key_env(name)

AgentId = Annotated[int, Field(strict=True, ge=0, lt=10_000_000)]


class Selector(Strict):
    """Which agents: a list of ids, the members of one or more communities of the network,
    or a proportion of the population (drawn with the run's seed among the agents no list
    or community has claimed). Exactly one of them."""

    ids: Annotated[list[AgentId], Field(min_length=1, max_length=1_000_000)] | None = None
    community: AgentId | Annotated[list[AgentId], Field(min_length=1)] | None = None
    proportion: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = None

    def how(self) -> list[str]:
        """The selector keys set (the checks want exactly one)."""
        return [k for k in ("ids", "community", "proportion", "personality") if getattr(self, k, None) is not None]

    @model_validator(mode="after")
    def _at_most_one(self):
        if len(self.how()) > 1:
            raise ValueError(f"give one of ids, community, proportion{self._more()}; got {', '.join(self.how())}")
        return self

    def _more(self) -> str:
        return ""


class GroupSpec(Selector):
    """A named group of agents (``groups:``): chosen by ids, community, proportion or
    personality (a group with no selector is the personality it is named after), with an
    optional partial ``llm`` block overriding the scenario's for its members."""

    personality: str | None = None
    llm: LLMOverride | None = None  # type: ignore[valid-type]

    def _more(self) -> str:
        return " or personality"


class AgentSpec(Strict):
    """One agent's own settings (``agents: {7: {llm: {...}}}``); they win over its group's."""

    llm: LLMOverride  # type: ignore[valid-type]


class OutputSpec(Strict):
    dir: OutputPathStr = "results"
    run_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")] | None = None


def template_fields(value: str) -> set[str]:
    """The placeholders a ``str.format`` template fills (``{{`` is a literal brace)."""
    return {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}


def check_template(value: str, allowed: set[str]) -> str:
    """Reject placeholders a template cannot fill, at load time rather than mid-run."""
    try:
        names = template_fields(value)
    except ValueError as exc:
        raise ValueError(f"bad template ({exc}); write literal braces as {{{{ and }}}}") from None
    unknown = names - allowed
    if unknown:
        shown = ", ".join("{" + n + "}" for n in sorted(allowed)) or "none"
        raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; allowed here: {shown}")
    return value


class SweepSpec(Strict):
    """Many runs from one file: a grid over key paths, zipped lists, and replicates.

    Replicate r of every cell gets the seed derived from (scenario seed, r), so cells
    are compared on common random numbers and each cell reruns alone identically.
    """

    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)
    zip: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)
    replicates: Annotated[int, Field(strict=True, ge=1, le=100_000)] = 1

    @model_validator(mode="after")
    def _well_formed(self) -> SweepSpec:
        lengths = {len(v) for v in self.zip.values()}
        if len(lengths) > 1:
            raise ValueError(f"zip lists must have the same length (got {sorted(lengths)})")
        for key in (*self.grid, *self.zip):
            if key.split(".")[0] in ("sweep", "kind") or key == "seed" or not key.strip("."):
                raise ValueError(f"{key!r} cannot be swept (seeds come from replicates)")
        both = set(self.grid) & set(self.zip)
        if both:
            raise ValueError(f"{sorted(both)} appear in both grid and zip")
        return self


class ScenarioBase(Strict):
    """What every kind's scenario has. A kind narrows ``kind`` to its name (and may
    describe ``steps`` in its own terms) and adds its own blocks after these."""

    kind: str
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""
    seed: Annotated[int, Field(strict=True, ge=0, lt=2**63)] = 0
    steps: Annotated[int, Field(strict=True, ge=1, le=1_000_000)]
    output: OutputSpec = Field(default_factory=OutputSpec)
    sweep: SweepSpec | None = None
    groups: dict[Annotated[str, Field(min_length=1, max_length=100)], GroupSpec] = Field(
        default_factory=dict, description="named groups of agents, each optionally with its own llm keys")
    # lax keys: the manifest's JSON writes them as strings, and a resume reads them back
    agents: dict[Annotated[int, Field(ge=0, lt=10_000_000)], AgentSpec] = Field(
        default_factory=dict, description="agent id -> its own llm keys (win over its group's)")

    def cross_checks(self) -> list[tuple[KeyPath, str]]:
        """Checks that span blocks, done after validation so each names its own key."""
        return []


def agent_checks(scenario: BaseModel) -> list[tuple[KeyPath, str]]:
    """The checks every kind shares, done after its own: who is who (groups, per-agent llm
    keys, population.assign; culturesim/agents/), for any schema, ScenarioBase or not."""
    from culturesim.agents.groups import check

    return check(scenario)


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_at(model: type[BaseModel], loc: KeyPath) -> type[BaseModel] | None:
    """The pydantic model that holds the key at ``loc`` (for listing allowed keys)."""
    current: Any = model
    parts = list(loc[:-1])
    while parts:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(parts.pop(0)))
        if field is None:
            return None
        current = field.annotation
        if typing.get_origin(current) is dict:  # dict[str, Model]: the next part is a free key
            current = typing.get_args(current)[1]
            if not parts:
                return None
            parts.pop(0)
        else:  # Optional[Model] and the like
            models = [a for a in typing.get_args(current) if isinstance(a, type) and issubclass(a, BaseModel)]
            current = models[0] if models else current
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


_PLAIN_KEY = re.compile(r"^[\w-]+$")


def _format_error(err: dict, model: type[BaseModel], where: str, lines: dict[KeyPath, int],
                  overridden: set[KeyPath]) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    key = ".".join(p if isinstance(p, str) and _PLAIN_KEY.match(p) else repr(p) if isinstance(p, str) else str(p)
                   for p in loc) or "(top level)"
    line = line_of(lines, loc)
    origin = " (from --set)" if any(loc[:i] in overridden for i in range(1, len(loc) + 1)) else ""
    place = f"{where}:{line}" if line and not origin else where
    if err["type"] == "extra_forbidden":
        holder = _model_at(model, loc)
        allowed = sorted(holder.model_fields) if holder else []
        hint = did_you_mean(loc[-1], allowed)
        return f"{place}: {key}{origin}: unknown key{hint}; allowed here: {', '.join(allowed)}"
    if err["type"] == "missing":
        return f"{place}: {key}: required key is missing"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "cross_check":
        return f"{place}: {key}{origin}: {msg}"
    shown = repr(err.get("input"))
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{place}: {key}{origin}: {msg} (got {shown})"


def set_path(data: dict, path: tuple[str, ...], value: Any, what: str) -> None:
    """Set ``data[a][b][c] = value`` for path (a, b, c), creating mappings on the way."""
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ScenarioError([f"{what}: {part!r} is not a mapping, cannot set a key inside it"])
        node = child
    node[path[-1]] = value


def _short(item: str) -> str:
    shown = repr(item)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def apply_overrides(data: dict, overrides: list[str]) -> tuple[dict, set[KeyPath]]:
    """Apply ``key.path=value`` overrides; values are parsed as YAML scalars or lists."""
    data = copy.deepcopy(data)
    touched: set[KeyPath] = set()
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ScenarioError([f"--set {item!r}: expected key.path=value, e.g. --set steps=10"])
        path = tuple(key.strip().split("."))
        if len(path) > MAX_DEPTH:
            raise ScenarioError([f"--set {_short(item)}: the key path has {len(path)} parts; "
                                 f"at most {MAX_DEPTH} are allowed"])
        try:
            value = parse_yaml(raw, f"--set {key.strip()[:60]!r}")[0] if raw.strip() else ""
        except YamlLimitError as exc:  # parses, but too big, too deep, an alias bomb, a duplicate key
            raise ScenarioError([str(exc)]) from None
        except YamlSyntaxError:
            value = raw
        set_path(data, path, value, f"--set {item!r}")
        touched.add(path)
    return data, touched


def validate_data(data: Any, where: str, lines: dict[KeyPath, int] | None = None,
                  overridden: set[KeyPath] | None = None) -> ScenarioBase:
    """Validate already-parsed scenario data; raise ScenarioError with every problem."""
    lines = lines or {}
    overridden = overridden or set()
    if data is None:
        raise ScenarioError([f"{where}: the file is empty; a scenario needs at least kind, name, steps "
                             f"and population (see scenarios/quickstart.yaml)"])
    if not isinstance(data, dict):
        raise ScenarioError([f"{where}: a scenario is a mapping of keys (kind, name, steps, ...), "
                             f"not a {type(data).__name__}"])
    kind = data.get("kind")
    known = kind_names()
    if not isinstance(kind, str) or kind not in known:
        line = lines.get(("kind",))
        place = f"{where}:{line}" if line else where
        got = "missing" if kind is None else repr(kind)
        hint = did_you_mean(kind, known) if isinstance(kind, str) else ""
        raise ScenarioError([f"{place}: kind: {got}{hint}; allowed: {', '.join(known)}"])
    try:
        model = get_kind(kind).load_schema()
    except (KindLoadError, ImportError, AttributeError, TypeError) as exc:  # a broken plug-in, not the file
        line = lines.get(("kind",))
        raise ScenarioError([f"{where}:{line}: kind: {exc}" if line else f"{where}: kind: {exc}"]) from None
    try:
        scenario = model.model_validate(data)
    except ValidationError as exc:
        problems = [_format_error(e, model, where, lines, overridden) for e in exc.errors()]
        raise ScenarioError(problems) from None
    except RecursionError:
        raise ScenarioError([f"{where}: nesting is too deep"]) from None
    # who-is-who is worked out only from blocks that passed their own checks
    checks = scenario.cross_checks() or agent_checks(scenario)
    problems = [
        _format_error({"loc": loc, "type": "cross_check", "msg": msg, "input": loc[-1]},
                      model, where, lines, overridden)
        for loc, msg in checks
    ]
    if problems:
        raise ScenarioError(problems)
    return scenario


def load(path: str | Path, overrides: list[str] | None = None) -> ScenarioBase:
    """Load and validate a scenario file, applying ``--set`` overrides."""
    path = Path(path)
    if not path.is_file():
        raise ScenarioError([f"{path}: no such scenario file"])
    try:
        data, lines = load_yaml(path)
    except YamlSyntaxError as exc:
        raise ScenarioError([str(exc)]) from None
    if not isinstance(data, dict):
        return validate_data(data, str(path), lines)
    data, touched = apply_overrides(data, overrides or [])
    scenario = validate_data(data, str(path), lines, touched)
    return scenario


Scenario = ScenarioBase  # any kind's schema


def resolved(scenario: BaseModel) -> dict:
    """The scenario with every default filled in, as stored in a run's manifest."""
    return scenario.model_dump(mode="json")
