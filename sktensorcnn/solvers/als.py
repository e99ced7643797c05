"""Alternating least squares over the blocks of a parametrization."""

from __future__ import annotations

import numpy as np
from scipy import linalg

from ._result import SolverResult, relative_decrease, ridge_objective


def solve_psd(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minimum-norm solution of ``A x = b`` for symmetric positive semi-definite ``A``.

    A plain Cholesky solve when ``A`` is well conditioned; otherwise (``n < L P`` with
    ``alpha = 0``, a degenerate factor) the pseudo-inverse, so every block update is
    still an exact minimizer and the objective never increases.
    """
    A = 0.5 * (A + A.T)
    try:
        c, low = linalg.cho_factor(A, check_finite=False)
        if np.min(np.abs(np.diag(c))) ** 2 > 1e-10 * np.max(np.abs(np.diag(A))):
            return linalg.cho_solve((c, low), b, check_finite=False)
    except linalg.LinAlgError:
        pass
    return linalg.pinvh(A, atol=0.0, rtol=1e-12) @ b


def alternating_least_squares(
    datafit,
    parametrization,
    params: list[np.ndarray],
    *,
    alpha: float = 0.0,
    max_iter: int = 200,
    tol: float = 1e-6,
    verbose: int = 0,
) -> SolverResult:
    """Minimize ``f(vec W) + alpha / 2 ||W||^2`` block by block.

    ``W`` is linear in each block of parameters, so each block's problem is a ridge
    regression, solved exactly through the block's normal equations.  The objective
    therefore never increases.  Stops when a sweep lowers the objective by less than
    ``tol`` relative to ``max(|f|, 1)`` (scipy L-BFGS-B's ``ftol`` rule).

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

    Returns
    -------
    SolverResult
    """
    w = parametrization.to_tensor(params).ravel()
    previous = ridge_objective(datafit, w, alpha)[0]
    result = SolverResult(params)
    for iteration in range(1, max_iter + 1):
        for b in range(parametrization.n_blocks):
            block = parametrization.block(params, b)
            lhs, rhs = datafit.normal_equations(block.apply_jacobian)
            if alpha > 0:
                lhs = lhs + alpha * block.jacobian_gram()
            parametrization.set_block(params, b, solve_psd(lhs, rhs))
        w = parametrization.to_tensor(params).ravel()
        current = ridge_objective(datafit, w, alpha)[0]
        result.loss_curve.append(current)
        result.n_iter = iteration
        if verbose:
            print(f"ALS sweep {iteration}: objective {current:.6e}")
        if relative_decrease(previous, current) <= tol:
            result.converged = True
            break
        previous = current
    return result
