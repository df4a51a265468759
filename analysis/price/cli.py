"""``culturesim price``: the decomposition of one genealogy step given as three CSV files.

The terms are printed (as Fractions when the input was exact) and optionally written as JSON;
both say which form of the innovation term they use (``--innovation-form``: the immigration
form of Kerr & Godfrey-Smith 2009 by default, or the residual form; see
:mod:`analysis.price.decomposition`), because the two split the same change differently.
The input is a user's files, so a bad file or argument is an ``error:`` line and exit status 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis.price.csv_input import load_tables
from analysis.price.decomposition import _TERMS, FORM_SOURCES, INNOVATION_FORMS, PriceTerms, price


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit; we report and return 2
        raise _UsageError(message)


def _floats(terms: PriceTerms) -> dict[str, float]:
    """Every term as a finite float (what is printed and written), or ValueError naming the first that is not:
    an exact term can be too large for a float even though the Fraction itself is fine."""
    out = {}
    for k in _TERMS:
        v = getattr(terms, k)
        try:
            f = float(v)
        except OverflowError:
            f = math.inf
        if not math.isfinite(f):
            raise ValueError(f"the {k} term ({f}) is too large for a float: rescale the trait (divide it by a "
                             f"constant, e.g. 1e6) and decompose again")
        out[k] = f
    return out


def _json_terms(terms: PriceTerms) -> dict[str, Any]:
    out: dict[str, Any] = {
        "exact": terms.exact,
        "innovation_form": terms.innovation_form,
        "terms": _floats(terms),
        "n_parents": terms.n_parents, "n_children": terms.n_children, "n_innovations": terms.n_innovations,
    }
    if terms.exact:
        out["exact_terms"] = {k: f"{getattr(terms, k).numerator}/{getattr(terms, k).denominator}" for k in _TERMS}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``price --parents P.csv --children C.csv --attributions A.csv [--innovation-form F] [--out terms.json]``."""
    parser = _Parser(prog="price", description="Exact Price-equation decomposition of one genealogy step.")
    parser.add_argument("--parents", required=True, help="CSV with columns id, [group,] trait")
    parser.add_argument("--children", required=True, help="CSV with columns id, trait")
    parser.add_argument("--attributions", required=True, help="CSV with columns child, parent, weight")
    parser.add_argument("--innovation-form", choices=INNOVATION_FORMS, default=INNOVATION_FORMS[0],
                        help="immigration (default; Kerr & Godfrey-Smith 2009: selection and transmission weighted "
                             "by the inherited share 1-m, innovation m(z_new - z_parents)) or residual (innovation "
                             "m(z_new - z_inherited))")
    parser.add_argument("--out", help="write the terms as JSON here")
    try:
        args = parser.parse_args(argv)
        terms = price(*load_tables(args.parents, args.children, args.attributions),
                      innovation_form=args.innovation_form)
        floats = _floats(terms)  # before anything is printed: a term that is not finite prints nothing
        text = json.dumps(_json_terms(terms), indent=2, allow_nan=False) + "\n" if args.out else None
        lines = [f"innovation form: {terms.innovation_form} ({FORM_SOURCES[terms.innovation_form]})"]
        for k in ("delta", "between", "within", "transmission", "innovation"):
            v = getattr(terms, k)
            lines.append(f"{k:<13} {v!s:>14}  ({floats[k]:.6g})" if terms.exact else f"{k:<13} {v:.12g}")
        print("\n".join(lines))
        print(f"n_parents={terms.n_parents} n_children={terms.n_children} n_innovations={terms.n_innovations} "
              f"mean_fitness={terms.mean_fitness!s}")
        if text is not None:
            Path(args.out).write_text(text)
    except SystemExit as e:  # --help
        return int(e.code or 0)
    except (_UsageError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
