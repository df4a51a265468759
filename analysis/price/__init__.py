"""Exact Price-equation decomposition of the change in a mean trait across one step of any genealogy.

Why this package exists: claims such as "the population drifted towards longer ideas because
long ideas were copied more" (selection) versus "because every copy came out longer"
(transmission bias) versus "because fresh ideas were longer" (innovation) are only worth
citing if the parts add up to the change that was actually observed. Every term here is
therefore defined so that the identity holds *exactly*, not approximately, and
:meth:`PriceTerms.check` returns the residual so callers (and tests) can prove it.

One module per idea, as networkx splits an algorithm family; every public name is imported
here, so ``from analysis.price import price`` is all a caller needs:

* :mod:`analysis.price.decomposition`: :class:`PriceTerms` and :func:`price`, the identity itself
  (its inputs, definitions, normalisation and arithmetic are documented there), with the
  innovation term in two forms: ``innovation_form="immigration"`` (the default, the immigration
  form of Kerr & Godfrey-Smith 2009, *Evolution* 63(2): 531-536: selection and transmission
  weighted by the inherited share ``1 - m``, innovation ``m (z_new - z_parents)``) or
  ``"residual"`` (innovation ``m (z_new - z_inherited)``);
* :mod:`analysis.price.rows`: the three inputs read and checked row by row, the reference;
* :mod:`analysis.price.fast`: valid float input read column-wise, fast enough for a GARD step;
* :mod:`analysis.price.null`: :func:`permutation_null`, how far the selection terms are from chance;
* :mod:`analysis.price.idea_runs`: :func:`price_from_run`, the terms between two steps of an idea run;
* :mod:`analysis.price.csv_input`: :func:`load_tables`, the three inputs from CSV files;
* :mod:`analysis.price.cli`: :func:`main`, the ``culturesim price`` command (also ``python -m analysis.price``).
"""

# _arrays, _prepare, _prepare_float and _terms_float are internals that tests/test_price.py checks
# directly (the row-by-row and the column-wise preparations must give the same terms, to the bit).
from analysis.price.cli import main
from analysis.price.csv_input import load_tables
from analysis.price.decomposition import FORM_SOURCES, INNOVATION_FORMS, PriceTerms, price
from analysis.price.decomposition import _terms_float as _terms_float
from analysis.price.fast import _arrays as _arrays
from analysis.price.fast import _prepare_float as _prepare_float
from analysis.price.idea_runs import price_from_run
from analysis.price.null import permutation_null
from analysis.price.rows import _prepare as _prepare

__all__ = ["PriceTerms", "price", "INNOVATION_FORMS", "FORM_SOURCES", "permutation_null", "price_from_run",
           "load_tables", "main"]
