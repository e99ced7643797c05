"""Solvers: functions of (data term, parametrization, start, options).

Each returns a :class:`SolverResult`; none touches an estimator.
"""

from ._result import SolverResult
from .als import alternating_least_squares
from .lbfgs import lbfgs, minimize_lbfgs

__all__ = [
    "SolverResult", "alternating_least_squares", "lbfgs", "minimize_lbfgs",
]
