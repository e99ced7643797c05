"""L-BFGS (scipy's L-BFGS-B) over a list of parameter arrays."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

from ._result import SolverResult, ridge_objective, stop_requested, trivial_scale


def minimize_lbfgs(
    objective: Callable[[list[np.ndarray]], tuple[float, list[np.ndarray]]],
    params: list[np.ndarray],
    *,
    max_iter: int = 200,
    tol: float = 1e-6,
    verbose: int = 0,
    label: str = "L-BFGS",
    scale: float = 1.0,
    monitor: Callable[[list], bool] | None = None,
) -> SolverResult:
    """Minimize ``objective(params) -> (value, gradients)`` with L-BFGS-B.

    ``tol`` is passed as both ``ftol`` (relative decrease of the objective, the
    rule of :func:`~sktensorcnn.solvers.alternating_least_squares`) and ``gtol``.
    scipy measures both on ``objective / scale``: ``scale``, the trivial
    model's objective, makes the rule independent of the targets' units (its
    floor of 1 becomes ``scale``); the objectives recorded stay unscaled.
    ``monitor(params) -> stop`` is called after each iteration (scikit-learn's
    callbacks: :mod:`sktensorcnn._callbacks`); a true answer ends the run
    there, as converged.
    """
    shapes = [p.shape for p in params]
    splits = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]

    def unpack(theta):
        return [t.reshape(s) for t, s in zip(np.split(theta, splits), shapes)]

    def fun(theta):
        value, grads = objective(unpack(theta))
        return value / scale, np.concatenate([np.ravel(g) for g in grads]) / scale

    result = SolverResult(params)

    def callback(intermediate_result):
        result.loss_curve.append(float(intermediate_result.fun) * scale)
        if verbose:
            print(f"{label} iteration {len(result.loss_curve)}: "
                  f"objective {result.loss_curve[-1]:.6e}")
        if stop_requested(monitor, unpack(intermediate_result.x)):
            result.converged = True
            raise StopIteration  # scipy ends the minimization at this iterate

    theta0 = np.concatenate([p.ravel() for p in params])
    opt = minimize(
        fun, theta0, jac=True, method="L-BFGS-B", callback=callback,
        options={"maxiter": max_iter, "ftol": tol, "gtol": tol},
    )
    result.params[:] = unpack(opt.x)
    result.n_iter = int(opt.nit)
    result.converged = result.converged or opt.status == 0
    result.objective = float(opt.fun) * scale
    return result


def lbfgs(
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
    """Minimize ``f(vec W) + alpha / 2 ||W||^2`` over a parametrization of ``W``.

    The gradient with respect to each block is ``J_b^T grad_W`` (chain rule through
    the parametrization).  Parameters and returns are as in
    :func:`~sktensorcnn.solvers.alternating_least_squares`.
    """

    def objective(current):
        w = parametrization.to_tensor(current).ravel()
        value, grad_w = ridge_objective(datafit, w, alpha)
        grads = [
            parametrization.block(current, b).apply_jacobian(grad_w[None])[0]
            for b in range(parametrization.n_blocks)
        ]
        return value, grads

    # the trivial model, W = 0, sets the stopping rule's unit
    zero = np.zeros(int(np.prod(parametrization.shape)))
    scale = trivial_scale(2 * ridge_objective(datafit, zero, alpha)[0])
    return minimize_lbfgs(objective, params, max_iter=max_iter, tol=tol,
                          verbose=verbose, scale=scale, monitor=monitor)
