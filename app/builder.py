"""The scenario builder's model: a form generated from a kind's pydantic schema, and the
two-way mapping between the form's values and the scenario's YAML.

Nothing here knows a kind: every input comes from ``Kind.load_schema()`` (so a plug-in kind
gets a form with no change to the app). Types map to inputs: ``Literal``/``Enum`` to a
choice, ``bool`` to a checkbox, ``int``/``float`` to a number with the bounds of its
``Field(ge/gt/le/lt)``, ``str`` to text, a nested model to a section, anything else (lists,
mappings, optional blocks) to a one-line YAML input. Descriptions become help text.

A kind's prompt presets (``Kind.prompt_presets``: name -> {dotted key: text}) are offered
beside the form when it declares any; picking one writes its texts into the inputs of those
keys (and into the YAML directly for a key the form has no input for).

The YAML is the truth the app validates and starts (through ``Launcher.validate`` in a
confined subprocess, as for a pasted scenario): the form only writes keys into it. The form's
values go into the YAML last read, so keys the form does not show stay, and a key is written
when the YAML had it, when it is required, or when its value differs from the default.
"""

from __future__ import annotations

import enum
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import annotated_types
import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined

from culturesim.yamlsource import YamlSyntaxError, parse_yaml

Path = tuple[str, ...]
STARTERS = {"steps": 3, "size": 10}  # what a required number starts at (within its bounds)
HIDDEN = {("kind",)}  # fixed by the kind picked


@dataclass
class Input:
    """One input of the form."""

    path: Path
    widget: str  # number | integer | choice | bool | text | yaml
    default: Any
    required: bool = False
    lo: float | None = None
    hi: float | None = None
    choices: list[Any] = field(default_factory=list)
    description: str = ""
    optional: bool = False  # None is allowed (an empty input)

    @property
    def key(self) -> str:
        return ".".join(self.path)


@dataclass
class Section:
    path: Path
    description: str
    items: list[Input | Section]


def _strip_optional(annotation: Any) -> tuple[Any, bool, list]:
    """(the annotation without ``None``, whether None was allowed, metadata of Annotated)."""
    metadata: list = []
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            args = typing.get_args(annotation)
            annotation = args[0]
            for extra in args[1:]:
                metadata += list(getattr(extra, "metadata", None) or [extra])
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == len(typing.get_args(annotation)) - 1 and len(args) == 1:
                optional = True
                annotation = args[0]
                continue
        return annotation, optional, metadata


def _bounds(metadata: list) -> tuple[float | None, float | None]:
    lo = hi = None
    for m in metadata:
        if isinstance(m, annotated_types.Ge):
            lo = m.ge
        elif isinstance(m, annotated_types.Gt):
            lo = m.gt
        elif isinstance(m, annotated_types.Le):
            hi = m.le
        elif isinstance(m, annotated_types.Lt):
            hi = m.lt
    return lo, hi


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=False)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def form_of(schema: type[BaseModel], prefix: Path = (), default: dict | None = None) -> list[Input | Section]:
    """The inputs and sections of a schema, in the schema's order."""
    items: list[Input | Section] = []
    for name, info in schema.model_fields.items():
        path = (*prefix, name)
        if path in HIDDEN:
            continue
        if default is not None and name in default:
            value = default[name]
        else:
            value = info.get_default(call_default_factory=True)
            value = None if value is PydanticUndefined else _jsonable(value)
        required = info.is_required()
        annotation, optional, metadata = _strip_optional(info.annotation)
        metadata = [*info.metadata, *metadata]
        description = info.description or ""
        if _is_model(annotation) and not optional:
            items.append(Section(path, description or (annotation.__doc__ or "").strip().split("\n\n")[0],
                                 form_of(annotation, path, value if isinstance(value, dict) else None)))
            continue
        lo, hi = _bounds(metadata)
        if typing.get_origin(annotation) is typing.Literal:
            widget, choices = "choice", list(typing.get_args(annotation))
        elif isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            widget, choices = "choice", [m.value for m in annotation]
        elif annotation is bool:
            widget, choices = "bool", []
        elif annotation is int:
            widget, choices = "integer", []
        elif annotation is float:
            widget, choices = "number", []
        elif annotation is str:
            widget, choices = "text", []
        else:
            widget, choices = "yaml", []
        items.append(Input(path, widget, value, required, lo, hi, choices, description, optional))
    return items


def inputs(items: list[Input | Section]) -> list[Input]:
    """Every input of a form, depth first (the order of the page)."""
    found: list[Input] = []
    for item in items:
        found += inputs(item.items) if isinstance(item, Section) else [item]
    return found


def starter(inp: Input, kind: str) -> Any:
    """The value a required input starts at, so the form's defaults make a valid scenario."""
    if inp.widget in ("integer", "number"):
        lo = inp.lo if inp.lo is not None else 1
        value = max(math.ceil(lo), STARTERS.get(inp.path[-1], 1))
        return value if inp.hi is None else min(value, math.floor(inp.hi))
    if inp.widget == "choice":
        return inp.choices[0]
    if inp.path == ("name",):
        return f"my-{kind}"
    if inp.widget == "bool":
        return False
    return ""


def starting_values(schema: type[BaseModel], kind: str) -> dict[str, Any]:
    """key -> value: every input's default, a starter for the required ones."""
    return {i.key: starter(i, kind) if i.required else i.default for i in inputs(form_of(schema))}


# ----------------------------------------------------------------------- form <-> YAML


def flow(value: Any) -> str:
    """A value as one line of YAML (what a ``yaml`` input shows)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**9, allow_unicode=True).strip().removesuffix(
        "\n...").removesuffix("...").strip()


def _get(data: Any, path: Path) -> tuple[bool, Any]:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return False, None
        data = data[part]
    return True, data


def _set(data: dict, path: Path, value: Any) -> None:
    for part in path[:-1]:
        if not isinstance(data.get(part), dict):
            data[part] = {}
        data = data[part]
    data[path[-1]] = value


def to_widget(inp: Input, value: Any) -> Any:
    """A scenario value as its input holds it."""
    if inp.widget == "yaml":
        return "" if value is None else flow(value)  # an optional block not given: an empty input
    if inp.widget == "bool":
        return ["on"] if value else []
    return value


def from_widget(inp: Input, raw: Any) -> Any:
    """An input's value as the scenario holds it; ValueError for a YAML input that is not YAML."""
    if inp.widget == "yaml":
        text = raw if isinstance(raw, str) else ""
        if not text.strip():
            return None if inp.optional else inp.default
        try:
            value, _ = parse_yaml(text, inp.key)
        except YamlSyntaxError as exc:
            raise ValueError(f"{inp.key}: {exc}") from None
        return value
    if inp.widget == "bool":
        return bool(raw)
    if inp.widget in ("integer", "number") and raw in (None, ""):
        return None if inp.optional else inp.default
    if inp.widget == "integer" and isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if inp.widget == "text" and raw in (None, ""):
        return None if inp.optional else ""  # an empty optional text is "not given"
    return raw


def scenario_data(kind: str, items: list[Input | Section], values: dict[str, Any], base: Any) -> tuple[dict, list[str]]:
    """The scenario mapping: ``base`` (the YAML last read) with the form's values written in.
    Returns (mapping, problems of inputs that could not be read)."""
    data = dict(base) if isinstance(base, dict) else {}
    data = yaml.safe_load(yaml.safe_dump(data)) if data else {}  # a deep copy of plain data
    data["kind"] = kind
    problems = []
    for inp in inputs(items):
        if inp.key not in values:
            continue
        try:
            value = from_widget(inp, values[inp.key])
        except ValueError as exc:
            problems.append(str(exc))
            continue
        present, _ = _get(data, inp.path)
        if present or inp.required or value != inp.default:
            _set(data, inp.path, value)
    ordered = {k: data.pop(k) for k in ("kind", "name", "steps") if k in data}
    return {**ordered, **data}, problems


def dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def default_yaml(kind: str, schema: type[BaseModel]) -> str:
    """The scenario the form's defaults make."""
    items = form_of(schema)
    values = {i.key: to_widget(i, v) for i, v in zip(inputs(items), starting_values(schema, kind).values(),
                                                        strict=True)}
    data, _ = scenario_data(kind, items, values, {})
    return dump(data)


def read_yaml(text: str, schema: type[BaseModel]) -> tuple[dict | None, str | None]:
    """(the mapping, None) when the YAML parses with the bounded loader and fits the schema,
    else (None, one line saying why)."""
    try:
        data, _ = parse_yaml(text or "", "the scenario")
    except YamlSyntaxError as exc:
        return None, str(exc)
    if not isinstance(data, dict):
        return None, "the scenario is not a mapping of keys"
    try:
        schema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the scenario"
        return None, f"{where}: {first['msg']} (the form keeps its values until the YAML fits)"
    return data, None


def form_values(items: list[Input | Section], data: dict) -> dict[str, Any]:
    """key -> the scenario value each input shows for a mapping (its default where the mapping has none)."""
    out = {}
    for inp in inputs(items):
        present, value = _get(data, inp.path)
        out[inp.key] = value if present else inp.default
    return out


def mix_of(names: list[str]) -> dict[str, float]:
    """A population mix of personality presets, in equal shares."""
    names = [n for n in dict.fromkeys(names or []) if isinstance(n, str)]
    return {n: round(1.0 / len(names), 6) for n in names}


def prompt_presets(kind: str) -> dict[str, dict[str, str]]:
    """The prompt presets ``kind`` declares in its Kind (none: an empty mapping, no picker)."""
    from culturesim.kinds import get_kind

    return get_kind(kind).load_prompt_presets()


def apply_preset(items: list[Input | Section], values: dict[str, Any], preset: dict[str, str]) -> tuple[
        dict[str, Any], dict[str, str]]:
    """(the form's values with the preset's texts in their inputs, the preset's keys that have no
    input: to write into the scenario mapping as they are)."""
    by_key = {i.key: i for i in inputs(items)}
    values = dict(values)
    loose = {}
    for key, text in preset.items():
        if key in by_key:
            values[key] = to_widget(by_key[key], text)
        else:
            loose[key] = text
    return values, loose


def set_keys(data: dict, keys: dict[str, Any]) -> dict:
    """``data`` with each dotted key set (the sections on the way made as needed)."""
    for key, value in keys.items():
        _set(data, tuple(key.split(".")), value)
    return data
