"""Solvers: functions of (data term, parametrization, start, options).

Each returns a :class:`SolverResult`; none touches an estimator.
"""

from ._result import SolverResult
from .als import alternating_least_squares
from .lbfgs import lbfgs, minimize_lbfgs
from .pgd import projected_gradient
from .stochastic import EpochResult, OptimizerState, train_by_epochs

__all__ = [
    "EpochResult", "OptimizerState", "SolverResult", "alternating_least_squares",
    "lbfgs", "minimize_lbfgs", "projected_gradient", "train_by_epochs",
]
