"""Reading YAML while remembering where each key came from.

Error messages must name the line of the offending key, but plain ``yaml.safe_load``
forgets positions. We compose the node tree once, record the line of every key path,
and construct the data from the same tree, so positions and values can never disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

KeyPath = tuple[str | int, ...]


class YamlSyntaxError(ValueError):
    """The file is not YAML at all; carries the line so the message can point at it."""

    def __init__(self, path: Path, line: int | None, problem: str):
        self.path, self.line, self.problem = path, line, problem
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: not valid YAML: {problem}")


def _walk(node: yaml.Node, prefix: KeyPath, lines: dict[KeyPath, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = prefix + (str(key_node.value),)
            lines[path] = key_node.start_mark.line + 1
            _walk(value_node, path, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = prefix + (i,)
            lines[path] = item.start_mark.line + 1
            _walk(item, path, lines)


def load_yaml(path: Path) -> tuple[Any, dict[KeyPath, int]]:
    """Return (data, {key path: 1-based line}) for a YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise YamlSyntaxError(path, None, f"the file is not UTF-8 text ({exc.reason})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None, {}
        lines: dict[KeyPath, int] = {}
        _walk(node, (), lines)
        loader = yaml.SafeLoader(text)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise YamlSyntaxError(path, line, problem) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(path, None, str(exc)) from None
    except RecursionError:
        raise YamlSyntaxError(path, None, "nesting is too deep") from None
    return data, lines


def line_of(lines: dict[KeyPath, int], loc: KeyPath) -> int | None:
    """Line of the deepest existing prefix of ``loc`` (a missing key points at its parent)."""
    for cut in range(len(loc), 0, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None
