"""Kinds of study, each one folder, found through one registry.

A kind (culture, exposure, ... or one from another package) is described by one
:class:`~culturesim.kinds.spec.Kind` and registered in the ``culturesim.kinds`` entry-point
group; the built-in kinds are registered the same way, in culturesim's own pyproject.toml.
The core (runner, CLI, sweeps) and the app ask :func:`get_kind` and never name a kind, so a
new study is one folder plus one entry-point line. Importing this package imports no kind.
"""

from culturesim.kinds.registry import (
    KindLoadError,
    UnknownKind,
    all_kinds,
    get_kind,
    kind_names,
    refresh,
    register,
    unregister,
)
from culturesim.kinds.spec import Kind

__all__ = ["Kind", "KindLoadError", "UnknownKind", "all_kinds", "get_kind", "kind_names", "refresh", "register",
           "unregister"]
