"""Confinement: a scenario that may only touch files under one folder and name only some keys.

The app starts scenarios that anyone who reaches it can paste. Such a scenario must not read
or write files outside the app's results folder, nor send an environment variable of the app's
choosing to a server of the scenario's choosing. The app runs ``culturesim validate|run|sweep``
in a subprocess with ``--confine DIR`` (and ``--allow-key-env NAME`` for each key variable the
app was started with); the CLI turns them into two environment variables, read here, so every
process of the command (sweep workers included) is confined the same way.

What is checked, at validation (so a refusal is one scenario error naming file, line and key):

- every value of a field declared ``PathStr`` (``culturesim.scenario``): a plug-in kind that
  declares its path fields that way is covered without being named anywhere;
- the network parameters each topology declares as paths (``culturesim.networks.PATH_PARAMS``);
- ``llm.model: local/<file>`` (an embedded model file), wherever an llm block appears;
- ``llm.api_key_env``, wherever an llm block appears: only the allowed names.

A path must resolve (symlinks followed, ``~`` expanded as the process would) inside the folder
whichever way the running code resolves a relative path: from the scenario's folder and from
the working directory. Nothing is opened to decide it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CONFINE_ENV = "CULTURESIM_CONFINE"
KEY_ENV_ENV = "CULTURESIM_ALLOW_KEY_ENV"

# the scenario file's folder while the CLI validates it (relative paths resolve from it too)
_base_dir: Path | None = None


@dataclass(frozen=True)
class Confinement:
    root: Path  # resolved
    key_envs: frozenset[str]


def active() -> Confinement | None:
    """The confinement of this process, or None (a plain ``culturesim`` command)."""
    raw = os.environ.get(CONFINE_ENV)
    if not raw:
        return None
    keys = frozenset(k for k in os.environ.get(KEY_ENV_ENV, "").split(",") if k)
    return Confinement(Path(raw).resolve(), keys)


def activate(root: str | Path, key_envs: list[str] | tuple[str, ...] = ()) -> None:
    """Confine this process and the processes it starts (the CLI's ``--confine``)."""
    os.environ[CONFINE_ENV] = str(Path(root).resolve())
    os.environ[KEY_ENV_ENV] = ",".join(key_envs)


def set_base_dir(path: Path | None) -> None:
    global _base_dir
    _base_dir = path.resolve() if path is not None else None


def _candidates(raw: str, from_base: bool = True) -> list[Path]:
    """Every place the running code may take ``raw`` to mean."""
    found = []
    for text in {raw, os.path.expanduser(raw)}:
        path = Path(text)
        if path.is_absolute():
            found.append(path)
            continue
        found.append(Path.cwd() / path)
        if from_base and _base_dir is not None:
            found.append(_base_dir / path)
    return found


def outside(raw: str, conf: Confinement, from_base: bool = True) -> bool:
    """Does ``raw`` (a path as a scenario writes it) reach outside the confinement's folder?
    ``from_base``: a relative path may also be taken from the scenario's folder (files the
    kinds read); else only from the working directory (``output.dir``, ``--out``)."""
    if "\x00" in raw:
        return True
    try:
        return any(not p.resolve().is_relative_to(conf.root) for p in _candidates(raw, from_base))
    except (OSError, RuntimeError, ValueError):  # a symlink loop, an unreadable folder
        return True


def check_path(raw: str | None, from_base: bool = True) -> str | None:
    """The value itself, or ValueError when confined and the path leaves the folder."""
    conf = active()
    if conf is None or raw is None:
        return raw
    if outside(str(raw), conf, from_base):
        raise ValueError(f"a path outside the results folder {conf.root} (symlinks followed); scenarios "
                         f"started from the app may only use files inside it")
    return raw


def check_output_path(raw: str | None) -> str | None:
    """``check_path`` for a folder the runner takes from the working directory."""
    return check_path(raw, from_base=False)


def check_key_env(name: str | None) -> str | None:
    """The name itself, or ValueError when confined and the name was not allowed."""
    conf = active()
    if conf is None or name is None or name in conf.key_envs:
        return name
    allowed = ", ".join(sorted(conf.key_envs)) or "none"
    raise ValueError(f"the environment variable {name!r} is not one the app may hand to a model "
                     f"(allowed: {allowed}; start the app with --allow-key-env {name} to allow it)")
