"""Projected gradient descent ([Compact nets]).

Each iteration takes a gradient step on the objective and projects back onto the
constraint set (:mod:`sktensorcnn.projections`)::

    w_{t+1} = P_C(w_t - step * grad f(w_t)).

The step is halved until the projected point decreases the objective enough
(backtracking on the projected gradient mapping); after a success the next step
tries twice as long.  :func:`minimize_projected` works on a list of parameter
arrays (some of them constrained, the others free: ``project`` decides);
:func:`projected_gradient` is the data-term version, whose first step is ``1 / L``
with ``L`` estimated by power iteration on the Gram matrix when there is one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._result import (
    SolverResult,
    relative_decrease,
    ridge_objective,
    stop_requested,
    trivial_scale,
)

__all__ = ["minimize_projected", "projected_gradient"]


def _lipschitz(datafit, alpha: float, rng) -> float:
    gram = getattr(datafit, "gram", None)
    if gram is None:
        return 1.0
    v = rng.standard_normal(gram.shape[0])  # several outputs: the same Gram each
    for _ in range(30):
        v = gram @ v
        v /= np.linalg.norm(v) + 1e-300
    lipschitz = float(v @ gram @ v) + alpha
    # a flat data term (features constant over the samples) has no curvature:
    # its gradient is zero, and any step leaves the weight where it is
    return lipschitz if lipschitz > 0 else 1.0


def minimize_projected(
    objective: Callable,
    params: list[np.ndarray],
    project: Callable[[list[np.ndarray]], list[np.ndarray]],
    *,
    step: float = 1.0,
    max_iter: int = 500,
    tol: float = 1e-6,
    verbose: int = 0,
    scale: float = 1.0,
    monitor: Callable[[list], bool] | None = None,
) -> SolverResult:
    """Minimize ``objective`` over ``{params : project(params) == params}``.

    Parameters
    ----------
    objective : callable
        ``objective(params) -> (value, grads)``, ``grads`` shaped as ``params``.
    params : list of ndarray
        Start; projected first.
    project : callable
        Projection onto the constraint set, on the whole parameter list (free
        parameters pass through unchanged).
    step : float, default=1.0
        First step size; backtracking adapts it.
    max_iter, tol, verbose
        Iterations, relative decrease of the objective that stops, printing.
    scale : float, default=1.0
        The trivial model's objective: the unit of the stopping rule
        (:func:`~sktensorcnn.solvers._result.relative_decrease`).
    monitor : callable, optional
        ``monitor(params) -> stop``, called after each step with the current
        parameters (scikit-learn's callbacks: :mod:`sktensorcnn._callbacks`); a
        true answer ends the run there, as converged.

    Returns
    -------
    SolverResult
    """
    params = project([np.array(p, dtype=float) for p in params])
    value, grads = objective(params)
    result = SolverResult(params)
    it = 0
    for it in range(1, max_iter + 1):
        while True:
            candidate = project([p - step * g for p, g in zip(params, grads)])
            cand_value, cand_grads = objective(candidate)
            moves = [c - p for c, p in zip(candidate, params)]
            linear = sum(float(np.vdot(g, m)) for g, m in zip(grads, moves))
            squared = sum(float(np.vdot(m, m)) for m in moves)
            # sufficient decrease for the projected (proximal) gradient step; the
            # min with 0 keeps descent for the quasi-projections (HOSVD, CP-ALS)
            bound = min(linear + squared / (2 * step), 0.0)
            if cand_value <= value + bound or step < 1e-16:
                break
            step /= 2
        if cand_value > value:  # no step decreases: a stationary point of PGD
            result.converged = True
            it -= 1
            break
        previous, params, value, grads = value, candidate, cand_value, cand_grads
        result.loss_curve.append(value)
        if verbose:
            print(f"PGD iteration {it}: objective {value:.6e} (step {step:.3g})")
        step *= 2
        if (stop_requested(monitor, params)
                or relative_decrease(previous, value, scale) < tol):
            result.converged = True
            break
    result.params = params
    result.n_iter = it
    result.objective = value
    return result


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
    w0 = np.asarray(w0, dtype=float).ravel()

    def objective(params):
        value, grad = ridge_objective(datafit, params[0], alpha)
        return value, [grad]

    zero = np.zeros_like(w0)  # the trivial model sets the stopping rule's unit
    return minimize_projected(
        objective, [w0], lambda params: [project(params[0])],
        step=1.0 / _lipschitz(datafit, alpha, rng), max_iter=max_iter,
        tol=tol, verbose=verbose, scale=trivial_scale(2 * objective([zero])[0]),
    )
