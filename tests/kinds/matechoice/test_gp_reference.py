"""Plain-Python references for the GP tests (imported by the other test files): a parser
for the recorded tree strings and a point-by-point evaluator written independently of
culturesim.kinds.matechoice.gp's numpy code."""

from __future__ import annotations

import math
import re

import pytest

_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*|-?[0-9.]+(?:e[-+]?[0-9]+)?|\(|\)|,)")


def _div(a, b):
    return 1.0 if b == 0 else a / b


SCALAR = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "div": _div,
    "sin": math.sin, "cos": math.cos, "exp": math.exp, "log": lambda a: 0.0 if a == 0 else math.log(abs(a)),
    "sqrt": lambda a: math.sqrt(abs(a)), "inv": lambda a: _div(1.0, a), "neg": lambda a: -a,
}


def parse(text: str):
    """``add(x, mul(x, 1.5))`` -> ("add", ["x", ("mul", ["x", 1.5])]); names stay strings."""
    tokens = _TOKEN.findall(text)
    pos = 0

    def node():
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if pos < len(tokens) and tokens[pos] == "(":
            pos += 1
            args = [node()]
            while tokens[pos] == ",":
                pos += 1
                args.append(node())
            assert tokens[pos] == ")"
            pos += 1
            return (tok, args)
        try:
            return float(tok)
        except ValueError:
            return tok

    tree = node()
    assert pos == len(tokens), text
    return tree


def value(tree, env: dict[str, float]) -> float:
    """One point; overflow gives inf and math domain errors nan, like numpy would."""
    if isinstance(tree, float):
        return tree
    if isinstance(tree, str):
        return env[tree]
    name, args = tree
    vals = [value(a, env) for a in args]
    try:
        return float(SCALAR[name](*vals))
    except OverflowError:
        return math.inf
    except ValueError:
        return math.nan


def outputs(tree, X, names) -> list[float]:
    return [value(tree, dict(zip(names, col, strict=True))) for col in zip(*X, strict=True)]


def rmse(out: list[float], target) -> float:
    try:
        err = math.sqrt(sum((o - t) ** 2 for o, t in zip(out, target, strict=True)) / len(out))
    except OverflowError:
        return math.inf
    return err if math.isfinite(err) else math.inf


def test_reference_parser_and_evaluator_by_hand():
    tree = parse("add(x, mul(y, -1.5e-1))")
    assert tree == ("add", ["x", ("mul", ["y", -0.15])])
    assert value(tree, {"x": 2.0, "y": 4.0}) == pytest.approx(1.4)
    assert value(parse("div(x, sub(x, x))"), {"x": 3.0}) == 1.0
    assert value(parse("log(sub(x, x))"), {"x": 3.0}) == 0.0
    assert value(parse("exp(exp(x))"), {"x": 10.0}) == math.inf
