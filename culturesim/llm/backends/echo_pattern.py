"""A string matching a JSON Schema ``pattern``, for the echo stand-in model.

A model decoding under llama.cpp's or vLLM's grammar can only write strings the pattern
accepts; echo answers schema requests as such a model would, so it must too (an autotelic
goal is held to "verb words..."). No well-kept library generates regex matches without
pulling in a dependency for a test stand-in (``exrex``, ``rstr`` are small and little kept),
so this walks the parse tree Python's own ``re`` builds: literals, classes, alternation,
groups and bounded repeats, which is what the kinds' patterns use. A pattern outside that
subset raises ValueError, and the caller answers unshaped text, as a provider would that
cannot enforce it. Repeats of a character class are filled with a word from the prompt
when one fits, so the reply still carries words it heard, like echo's free text does.
"""

from __future__ import annotations

import re

import numpy as np

try:  # Python 3.11+: the parser lives in re._parser (sre_parse is its deprecated alias)
    from re import _constants as C
    from re import _parser as P
except ImportError:  # pragma: no cover
    import sre_constants as C  # type: ignore[no-redef]
    import sre_parse as P  # type: ignore[no-redef]

_OPEN_REPEAT = 4  # how many times an unbounded repeat (+, *) goes round, at most


def matching(pattern: str, rng: np.random.Generator, words: list[str]) -> str:
    """A string ``re.search(pattern, s)`` accepts, drawn with ``rng``; ValueError if none can be made here."""
    text = _emit(P.parse(pattern), rng, words)
    if re.search(pattern, text) is None:  # the walk's subset was wrong about this pattern
        raise ValueError(f"could not make a string matching {pattern!r}")
    return text


def _class_chars(items) -> list[str]:
    chars: list[str] = []
    for op, av in items:
        if op is C.LITERAL:
            chars.append(chr(av))
        elif op is C.RANGE:
            chars.extend(chr(c) for c in range(av[0], av[1] + 1))
        else:
            raise ValueError(f"character class item {op} is not supported")
    return chars


def _emit(tree, rng: np.random.Generator, words: list[str]) -> str:
    out = []
    for op, av in tree:
        if op is C.LITERAL:
            out.append(chr(av))
        elif op is C.AT:
            continue  # anchors (^, $) write nothing
        elif op is C.ANY:
            out.append("x")
        elif op is C.IN:
            chars = _class_chars(av)
            out.append(chars[int(rng.integers(len(chars)))])
        elif op is C.BRANCH:
            options = av[1]
            out.append(_emit(options[int(rng.integers(len(options)))], rng, words))
        elif op is C.SUBPATTERN:
            out.append(_emit(av[-1], rng, words))
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
            low, high, sub = av
            longest = 10**6 if high is C.MAXREPEAT else high  # a heard word may be this long
            high = low + _OPEN_REPEAT if high is C.MAXREPEAT else high
            count = int(rng.integers(low, high + 1))
            out.append(_repeat(sub, count, low, longest, rng, words))
        else:
            raise ValueError(f"regex construct {op} is not supported")
    return "".join(out)


def _repeat(sub, count: int, low: int, longest: int, rng: np.random.Generator, words: list[str]) -> str:
    """``sub`` ``count`` times; a repeated single class is filled with a heard word that fits."""
    if len(sub) == 1 and sub[0][0] is C.IN:
        chars = set(_class_chars(sub[0][1]))
        fits = [w for w in words if low <= len(w) <= longest and set(w) <= chars]
        if fits:
            return fits[int(rng.integers(len(fits)))]
        count = max(count, low)
    return "".join(_emit(sub, rng, words) for _ in range(count))
