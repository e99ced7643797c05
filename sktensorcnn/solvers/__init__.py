"""Solvers: functions of (data term, parametrization, start, options).

Each returns a :class:`SolverResult`; none touches an estimator.
"""

from ._result import SolverResult
from .als import alternating_least_squares
from .lbfgs import lbfgs, minimize_lbfgs
from .pgd import minimize_projected, projected_gradient
from .rank_reduction import RankReductionResult, energy_hosvd, low_rank_descent
from .stochastic import EpochResult, OptimizerState, train_by_epochs

__all__ = [
    "EpochResult", "OptimizerState", "RankReductionResult", "SolverResult",
    "alternating_least_squares", "energy_hosvd", "lbfgs", "low_rank_descent",
    "minimize_lbfgs", "minimize_projected", "projected_gradient", "train_by_epochs",
]
