"""A user's CSV dataset: loaded as inputs -> target, with one clear error per bad file."""

from __future__ import annotations

import numpy as np
import pytest

from culturesim.kinds.matechoice.gp.primitives import Constants
from culturesim.kinds.matechoice.gp.problems import NGUYEN_SET, from_csv


def load(path, target="y", inputs=None, **kw):
    kw.setdefault("test_path", None)
    kw.setdefault("test_fraction", 0.0)
    return from_csv(path, target, inputs, rng=np.random.default_rng(0), functions=NGUYEN_SET,
                    constants=Constants(), **kw)


def test_good_csv_becomes_inputs_and_target(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,2,3\n4,5,9\n7,8,15\n10,11,21\n")
    p = load(path)
    assert p.X_train.tolist() == [[1, 4, 7, 10], [2, 5, 8, 11]] and p.y_train.tolist() == [3, 9, 15, 21]
    assert p.pset.var_names == ("a", "b") and p.X_test.tolist() == p.X_train.tolist()
    held = load(path, inputs=["b"], test_fraction=0.25)
    assert held.X_train.shape == (1, 3) and held.X_test.shape == (1, 1)
    assert sorted(held.X_train[0].tolist() + held.X_test[0].tolist()) == [2, 5, 8, 11]
    test = tmp_path / "t.csv"
    test.write_text("y,b,a\n0,1,1\n")
    assert load(path, test_path=test).X_test.tolist() == [[1], [1]]


@pytest.mark.parametrize("text, kwargs, message", [
    (None, {}, "does not exist"),
    ("", {}, "is empty"),
    ("a,y\n", {}, "has a header but no rows"),
    ("a,b\n1,2\n", {}, "has no column 'y'; it has \\['a', 'b'\\]"),
    ("a,y\n1,2\n", {"inputs": ["a", "c"]}, "lacks column\\(s\\) \\['c'\\]"),
    ("a,y\n1,2\n,3\n", {}, "column 'a' has 1 missing, NaN or infinite value\\(s\\), the first on data row 2"),
    ("a,y\n1,2\nnan,3\n", {}, "column 'a' has 1 missing, NaN"),
    ("a,y\n1,2\nx,3\n", {}, "column 'a' is not numeric \\(String; e.g. 'x' on data row 2\\)"),
    ("y\n1\n", {}, "no input column besides the target"),
    ("a,y\n1,2\n", {"inputs": ["a", "y"]}, "cannot also be an input"),
    ("a,y\n1,2\n3,4\n", {"test_fraction": 0.1}, "leaves no training or no test rows"),
])
def test_bad_csv_gets_one_clear_error(tmp_path, text, kwargs, message):
    path = tmp_path / "d.csv"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        load(path, **kwargs)
    assert "\n" not in str(info.value) and str(info.value).startswith("matechoice.problem.csv.")
