"""Projected gradient descent on the full weight (seed 003).

Each iteration takes a gradient step on ``f(w) + alpha/2 ||w||^2`` and projects
back onto the constraint set (:mod:`sktensorcnn.projections`).  The step size
starts from ``1 / L`` with ``L`` estimated by power iteration when the data term
exposes its Hessian (the Gram matrix), else from 1, and is halved until the
projected point decreases the objective enough (backtracking on the projected
gradient mapping); after a success the next step tries twice as long.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._result import SolverResult, relative_decrease, ridge_objective


def _lipschitz(datafit, alpha: float, size: int, rng) -> float:
    gram = getattr(datafit, "gram", None)
    if gram is None:
        return 1.0
    v = rng.standard_normal(size)
    for _ in range(30):
        v = gram @ v
        v /= np.linalg.norm(v) + 1e-300
    return float(v @ gram @ v) + alpha


def projected_gradient(
    datafit,
    project: Callable[[np.ndarray], np.ndarray],
    w0: np.ndarray,
    *,
    alpha: float = 0.0,
    max_iter: int = 500,
    tol: float = 1e-6,
    random_state=0,
    verbose: int = 0,
) -> SolverResult:
    """Minimize ``f(w) + alpha/2 ||w||^2`` over ``{w : project(w) == w}``.

    Parameters
    ----------
    datafit : object with ``value_and_gradient(w)``
        A data term of :mod:`sktensorcnn.datafits` (flat weight ``w``).
    project : callable
        Projection onto the constraint set, on flat weights.
    w0 : ndarray
        Start; projected first.
    alpha, max_iter, tol, verbose
        As for the other solvers (``tol``: relative decrease of the objective).

    Returns
    -------
    SolverResult
        ``params == [w]``.
    """
    rng = np.random.default_rng(random_state)
    w = project(np.asarray(w0, dtype=float).ravel())
    value, grad = ridge_objective(datafit, w, alpha)
    step = 1.0 / _lipschitz(datafit, alpha, w.size, rng)
    result = SolverResult([w])
    for it in range(1, max_iter + 1):
        while True:
            candidate = project(w - step * grad)
            cand_value, cand_grad = ridge_objective(datafit, candidate, alpha)
            move = candidate - w
            # sufficient decrease for the projected (proximal) gradient step
            if cand_value <= value + grad @ move + (move @ move) / (2 * step) \
                    or step < 1e-16:
                break
            step /= 2
        previous, w, value, grad = value, candidate, cand_value, cand_grad
        result.loss_curve.append(value)
        if verbose:
            print(f"PGD iteration {it}: objective {value:.6e} (step {step:.3g})")
        step *= 2
        if relative_decrease(previous, value) < tol:
            result.converged = True
            break
    result.params = [w]
    result.n_iter = it
    result.objective = value
    return result
