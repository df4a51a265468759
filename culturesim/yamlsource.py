"""Reading YAML while remembering where each key came from, within bounds.

Error messages must name the line of the offending key, but plain ``yaml.safe_load``
forgets positions. We compose the node tree once, record the line of every key path,
and construct the data from the same tree, so positions and values can never disagree.

Every scenario text (a file, a ``--set`` value, a scenario pasted in the app) is read by
this one loader, which refuses what no scenario needs and what would exhaust the machine:
more than ``MAX_BYTES`` of text, nesting deeper than ``MAX_DEPTH``, aliases that would
create more than ``MAX_ALIAS_NODES`` nodes (a "billion laughs" file is a kilobyte that
expands to billions), recursive aliases, and the same key twice in one mapping.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

KeyPath = tuple[str | int, ...]

MAX_BYTES = 1 << 20  # 1 MiB of YAML text
MAX_DEPTH = 100  # nested mappings/lists
MAX_ALIAS_NODES = 100_000  # nodes that aliases add when expanded


class YamlSyntaxError(ValueError):
    """The file is not YAML at all; carries the line so the message can point at it."""

    prefix = "not valid YAML: "

    def __init__(self, path: Path | str, line: int | None, problem: str):
        self.path, self.line, self.problem = path, line, problem
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {self.prefix}{problem}")


class YamlLimitError(YamlSyntaxError):
    """YAML that parses but is refused: too big, too deep, an alias bomb, a duplicate key."""

    prefix = ""


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader whose composer refuses nesting deeper than MAX_DEPTH (it recurses)."""

    def __init__(self, stream: str, where: Path | str):
        super().__init__(stream)
        self._where = where
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.MappingStartEvent, yaml.SequenceStartEvent):
            self._depth += 1
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlLimitError(self._where, mark.line + 1,
                                     f"nesting is too deep (more than {MAX_DEPTH} levels)")
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        return super().compose_node(parent, index)


def _key_text(path: KeyPath) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _check_tree(root: yaml.Node, where: Path | str) -> None:
    """Refuse recursive aliases, alias expansion beyond MAX_ALIAS_NODES and duplicate keys.

    The composed tree is a graph in which an alias is the anchored node itself; each
    distinct node is visited once (iteratively), so a bomb costs its size, not its expansion.
    """
    expanded: dict[int, int] = {}  # id(node) -> nodes in its expansion
    depth: dict[int, int] = {}  # id(node) -> levels of collections in its expansion
    paths: dict[int, KeyPath] = {id(root): ()}
    state: dict[int, int] = {}  # 1: on the stack, 2: done
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        nid = id(node)
        children = _children(node)
        if leaving:
            expanded[nid] = 1 + sum(expanded[id(c)] for c in children)
            depth[nid] = 0 if isinstance(node, yaml.ScalarNode) else 1 + max(
                (depth[id(c)] for c in children), default=0)
            if depth[nid] > MAX_DEPTH:
                raise YamlLimitError(where, node.start_mark.line + 1, f"{_key_text(paths[nid])}: nesting is too "
                                     f"deep through aliases (more than {MAX_DEPTH} levels)")
            state[nid] = 2
            continue
        if state.get(nid) == 2:
            continue
        state[nid] = 1
        if isinstance(node, yaml.MappingNode):
            _check_duplicates(node, paths[nid], where)
        stack.append((node, True))
        prefix = paths[nid]
        for part, child in _labelled(node):
            cid = id(child)
            if state.get(cid) == 1:
                raise YamlLimitError(where, child.start_mark.line + 1,
                                     f"{_key_text(prefix + (part,))}: a recursive alias (a node that contains "
                                     f"itself) is not allowed")
            if cid not in state:
                paths.setdefault(cid, prefix + (part,))
                stack.append((child, False))
    distinct = len(expanded)
    if expanded[id(root)] - distinct > MAX_ALIAS_NODES:
        raise YamlLimitError(where, None, f"aliases expand to more than {MAX_ALIAS_NODES:,} extra nodes "
                                          f"({expanded[id(root)]:,} in all); write the values out or use fewer "
                                          f"aliases")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _labelled(node: yaml.Node) -> list[tuple[str | int, yaml.Node]]:
    if isinstance(node, yaml.MappingNode):
        out: list[tuple[str | int, yaml.Node]] = []
        for key_node, value_node in node.value:
            out.append((str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?", key_node))
            out.append((str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?", value_node))
        return out
    if isinstance(node, yaml.SequenceNode):
        return list(enumerate(node.value))
    return []


def _check_duplicates(node: yaml.MappingNode, prefix: KeyPath, where: Path | str) -> None:
    seen: dict[tuple[str, str], int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        ident = (key_node.tag, key_node.value)
        line = key_node.start_mark.line + 1
        if ident in seen:
            raise YamlLimitError(where, line, f"{_key_text(prefix + (key_node.value,))}: duplicate key "
                                              f"{key_node.value!r} (first on line {seen[ident]})")
        seen[ident] = line


def _walk(node: yaml.Node, lines: dict[KeyPath, int]) -> None:
    """Record the line of every key path (aliases expanded: bounded by _check_tree)."""
    stack: list[tuple[yaml.Node, KeyPath]] = [(node, ())]
    while stack:
        node, prefix = stack.pop()
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in reversed(node.value):
                path = prefix + (str(key_node.value),)
                lines[path] = key_node.start_mark.line + 1
                stack.append((value_node, path))
        elif isinstance(node, yaml.SequenceNode):
            for i in range(len(node.value) - 1, -1, -1):
                item = node.value[i]
                path = prefix + (i,)
                lines[path] = item.start_mark.line + 1
                stack.append((item, path))


def check_size(text: str, where: Path | str) -> None:
    """Refuse text over MAX_BYTES (in UTF-8) before anything reads it further."""
    if len(text) > MAX_BYTES or len(text.encode("utf-8", errors="replace")) > MAX_BYTES:
        raise YamlLimitError(where, None, f"the text is larger than {MAX_BYTES // (1 << 20)} MiB; "
                                          f"a scenario is far smaller")


def parse_yaml(text: str, where: Path | str = "<text>") -> tuple[Any, dict[KeyPath, int]]:
    """Return (data, {key path: 1-based line}) for YAML text, within the loader's bounds.

    Raises YamlLimitError for refused input and YamlSyntaxError for text that is not YAML.
    """
    check_size(text, where)
    loader = None
    try:
        loader = _BoundedLoader(text, where)
        node = loader.get_single_node()
        if node is None:
            return None, {}
        _check_tree(node, where)
        lines: dict[KeyPath, int] = {}
        _walk(node, lines)
        data = loader.construct_document(node)
    except YamlSyntaxError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise YamlSyntaxError(where, line, problem) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(where, None, str(exc)) from None
    except RecursionError:
        raise YamlLimitError(where, None, "nesting is too deep") from None
    except (ValueError, TypeError, OverflowError) as exc:  # a scalar the constructor cannot make (huge int)
        raise YamlSyntaxError(where, None, " ".join(str(exc).split())) from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, lines


def load_yaml(path: Path) -> tuple[Any, dict[KeyPath, int]]:
    """Return (data, {key path: 1-based line}) for a YAML file."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise YamlLimitError(path, None, f"cannot read the file ({exc.strerror or exc})") from None
    if len(raw) > MAX_BYTES:
        raise YamlLimitError(path, None, f"the file is larger than {MAX_BYTES // (1 << 20)} MiB; "
                                         f"a scenario is far smaller")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlSyntaxError(path, None, f"the file is not UTF-8 text ({exc.reason})") from None
    return parse_yaml(text, path)


def line_of(lines: dict[KeyPath, int], loc: KeyPath) -> int | None:
    """Line of the deepest existing prefix of ``loc`` (a missing key points at its parent)."""
    for cut in range(len(loc), 0, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None
