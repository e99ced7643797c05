"""Alternating least squares over the blocks of a parametrization."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import linalg

from ._result import (
    SolverResult,
    relative_decrease,
    ridge_objective,
    stop_requested,
    trivial_scale,
)


def solve_psd(A: np.ndarray, b: np.ndarray, jitter: float = 1e-10) -> np.ndarray:
    """Solve ``A x = b`` for symmetric positive semi-definite ``A``.

    ``A`` is singular whenever the weight is not identifiable from the features
    (``l_j p_j > d_j`` along a mode, fewer samples than features with
    ``alpha = 0``, a degenerate factor).  A ridge of ``jitter`` times the mean
    eigenvalue keeps the Cholesky solve stable and selects, in the limit, the
    minimum-norm solution; on well-posed blocks it changes nothing measurable.
    """
    A = 0.5 * (A + A.T)
    m = A.shape[0]
    shift = jitter * max(np.trace(A) / m, np.finfo(float).tiny)
    A[np.diag_indices(m)] += shift
    try:
        return linalg.cho_solve(linalg.cho_factor(A, check_finite=False), b,
                                check_finite=False)
    except linalg.LinAlgError:  # not PSD to rounding: fall back on eigenvalues
        return linalg.pinvh(A) @ b


def alternating_least_squares(
    datafit,
    parametrization,
    params: list[np.ndarray],
    *,
    alpha: float = 0.0,
    max_iter: int = 200,
    tol: float = 1e-6,
    verbose: int = 0,
    monitor: Callable[[list], bool] | None = None,
) -> SolverResult:
    """Minimize ``f(vec W) + alpha / 2 ||W||^2`` block by block.

    ``W`` is linear in each block of parameters, so each block's problem is a ridge
    regression, solved exactly through the block's normal equations, in the
    parametrization's ``sweep_order``.  The objective therefore never increases
    (up to the ``1e-10`` relative jitter of :func:`solve_psd`).  Stops when a
    sweep lowers the objective by less than ``tol`` relative to ``max(|f|,
    2 f_0)``, ``f_0`` the objective of ``W = 0`` (the trivial model; see
    :func:`~sktensorcnn.solvers._result.relative_decrease`).

    Parameters
    ----------
    datafit : GramSquared or FeatureSquared
    parametrization : TuckerWeight or CPWeight
    params : list of ndarray
        Starting parameters; updated in place.
    alpha : float
        Ridge penalty on ``W``.
    max_iter : int
        Maximum number of sweeps over all blocks.
    tol : float
    verbose : int
        Print the objective after each sweep when positive.
    monitor : callable, optional
        ``monitor(params) -> stop``, called after each sweep with the current
        parameters (scikit-learn's callbacks: :mod:`sktensorcnn._callbacks`); a
        true answer ends the run there, as converged.

    Returns
    -------
    SolverResult
    """
    w = parametrization.to_tensor(params).ravel()
    previous = ridge_objective(datafit, w, alpha)[0]
    scale = trivial_scale(datafit.yy)  # twice the objective at W = 0
    result = SolverResult(params, objective=previous)
    for iteration in range(1, max_iter + 1):
        for b in parametrization.sweep_order:
            block = parametrization.block(params, b)
            lhs, rhs = datafit.normal_equations(block.apply_jacobian)
            if alpha > 0:
                lhs = lhs + alpha * block.jacobian_gram()
            theta = solve_psd(lhs, rhs)
            parametrization.set_block(params, b, theta)
        parametrization.normalize(params)
        # The objective is quadratic in the last block: read it off that block's
        # normal equations instead of another pass over the data.
        current = max(0.5 * datafit.yy - theta @ rhs + 0.5 * theta @ lhs @ theta, 0.0)
        result.loss_curve.append(current)
        result.n_iter = iteration
        result.objective = current
        if verbose:
            print(f"ALS sweep {iteration}: objective {current:.6e}")
        if (stop_requested(monitor, params)
                or relative_decrease(previous, current, scale) <= tol):
            result.converged = True
            break
        previous = current
    return result
