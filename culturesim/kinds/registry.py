"""Which kinds exist: the ``culturesim.kinds`` entry-point group, read once.

Entry points are the packaging system's own plug-in registry, so a kind from another
distribution (``pip install my-kind``) is found exactly like a built-in one, with no list
in this repository to edit. Names are read without importing anything; a kind's
description (its folder's ``__init__``) is imported when that kind is first asked for.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import warnings

from culturesim.kinds.spec import Kind

GROUP = "culturesim.kinds"


class KindLoadError(RuntimeError):
    """An installed kind whose description cannot be imported (a broken or half-installed plug-in)."""


class UnknownKind(KeyError):
    """A kind no installed distribution registers."""

    def __init__(self, name: str, known: list[str]):
        self.name, self.known = name, known
        super().__init__(f"no kind {name!r} is installed; known: {', '.join(known) or 'none'}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


_REGISTERED: dict[str, Kind] = {}  # kinds defined in the running process (notebooks, tests)


@functools.cache
def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        found.setdefault(ep.name, ep)  # the first distribution on sys.path wins, as imports do
    return found


def kind_names() -> list[str]:
    """Every registered kind's name, installed ones first; imports nothing."""
    return list(dict.fromkeys([*_entry_points(), *_REGISTERED]))


def register(kind: Kind) -> None:
    """Make a kind defined in the running process (a notebook, a test) known until
    :func:`unregister`; an installed kind of the same name is shadowed meanwhile."""
    _REGISTERED[kind.name] = kind
    get_kind.cache_clear()


def unregister(name: str) -> None:
    _REGISTERED.pop(name, None)
    get_kind.cache_clear()


@functools.cache
def get_kind(name: str) -> Kind:
    if name in _REGISTERED:
        return _REGISTERED[name]
    eps = _entry_points()
    if name not in eps:
        raise UnknownKind(name, kind_names())
    try:
        kind = eps[name].load()
    except Exception as exc:  # noqa: BLE001 - whatever a plug-in's import raises, say which and why
        raise KindLoadError(f"kind {name!r} ({eps[name].value}, from the {GROUP} entry points) could not "
                            f"be loaded: {type(exc).__name__}: {exc}") from exc
    if not isinstance(kind, Kind):
        raise TypeError(f"entry point {name!r} of group {GROUP} ({eps[name].value}) is a "
                        f"{type(kind).__name__}, not a culturesim.kinds.Kind")
    if kind.name != name:
        raise TypeError(f"entry point {name!r} ({eps[name].value}) describes a kind named {kind.name!r}")
    return kind


def all_kinds() -> list[Kind]:
    """Every kind that loads. One broken plug-in must not take the others down with it: it is
    left out with a warning (asking for it by name gives the error)."""
    found = []
    for name in kind_names():
        try:
            found.append(get_kind(name))
        except (KindLoadError, TypeError) as exc:
            warnings.warn(str(exc), RuntimeWarning, stacklevel=2)
    return found


def refresh() -> None:
    """Forget what was read, after a distribution was installed into the running process."""
    importlib.invalidate_caches()
    _entry_points.cache_clear()
    get_kind.cache_clear()
