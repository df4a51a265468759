"""Genetic programming for symbolic regression, built for populations that choose their mates.

Trees are flat prefix sequences (node codes plus constant values), evaluated once per tree
over all fitness cases with numpy; the modules split the idea into primitives, trees,
evaluation, variation operators, distances, benchmark problems and mate selection.
"""
