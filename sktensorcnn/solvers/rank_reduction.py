"""Low-rank descent with rank reduction ([Rank reduction], eq. 3).

The weight ``T`` is kept in Tucker form ``H = (core, factors)``, ``T = g(H)``.
Each iteration

1. takes a full gradient step ``T_hat = g(H) - eta_1 grad f(g(H))`` (free
   parameters step along);
2. compresses: ``c(T_hat)`` is the truncated HOSVD of ``T_hat`` at the smallest
   ranks keeping ``energy`` of every unfolding's squared norm (never above
   ``max_ranks``);
3. takes a step on the factors of the compressed point,
   ``H = c(T_hat) - eta_2 grad_H f(g(c(T_hat)))``.

Both step sizes are found by backtracking (halved until the objective decreases
enough, doubled after a success); a factor step that does not decrease the
objective is skipped.  The ranks of ``H`` after each iteration are recorded: the
ranks the solver settles on are the last ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import tensorly as tl

from ._result import SolverResult, relative_decrease, stop_requested

__all__ = ["RankReductionResult", "energy_hosvd", "low_rank_descent"]


@dataclass
class RankReductionResult(SolverResult):
    """:class:`SolverResult` with the Tucker ranks after each iteration."""

    rank_history: list[tuple[int, ...]] = field(default_factory=list)


def energy_hosvd(T: np.ndarray, energy: float, max_ranks) -> tuple:
    """Truncated HOSVD of ``T`` at the smallest ranks keeping ``energy`` of each
    unfolding's squared norm, capped at ``max_ranks``: ``(core, factors)``."""
    factors = []
    for mode, cap in enumerate(max_ranks):
        u, s, _ = np.linalg.svd(tl.unfold(T, mode), full_matrices=False)
        share = np.cumsum(s**2) / max(float(np.sum(s**2)), 1e-300)
        rank = int(np.searchsorted(share, energy - 1e-12) + 1)
        factors.append(u[:, : max(1, min(rank, cap, u.shape[1]))])
    core = tl.tenalg.multi_mode_dot(T, factors, transpose=True)
    return core, factors


def _tucker(core, factors):
    return tl.tucker_to_tensor((core, factors))


def _factor_gradients(grad_T, core, factors):
    """Gradients of ``f(g(core, factors))`` from ``grad_T = grad f`` at
    ``g(core, factors)``."""
    d_core = tl.tenalg.multi_mode_dot(grad_T, factors, transpose=True)
    d_factors = []
    for mode in range(len(factors)):
        partial = tl.tenalg.multi_mode_dot(core, factors, skip=mode)
        d_factors.append(tl.unfold(grad_T, mode) @ tl.unfold(partial, mode).T)
    return d_core, d_factors


def low_rank_descent(
    objective: Callable,
    params: list[np.ndarray],
    *,
    energy: float,
    max_ranks,
    step: float = 1.0,
    max_iter: int = 200,
    tol: float = 1e-6,
    verbose: int = 0,
    scale: float = 1.0,
    monitor: Callable[[list], bool] | None = None,
) -> RankReductionResult:
    """Minimize ``objective([T, *free])`` with ``T`` of adaptive Tucker ranks.

    Parameters
    ----------
    objective : callable
        ``objective(params) -> (value, grads)`` on ``[T, *free]``.
    params : list of ndarray
        Start ``[T0, *free0]``; ``T0`` is compressed first.
    energy : float in (0, 1]
        Share of each unfolding's squared norm the compression keeps.
    max_ranks : sequence of int
        Rank caps, one per mode of ``T``.
    step, max_iter, tol, verbose
        First step size, iterations, relative decrease that stops (once the ranks
        are steady), printing.
    scale : float, default=1.0
        The trivial model's objective: the unit of the stopping rule
        (:func:`~sktensorcnn.solvers._result.relative_decrease`).
    monitor : callable, optional
        ``monitor(params) -> stop``, called after each iteration with the
        current ``[*factors, core, *free]`` (scikit-learn's callbacks:
        :mod:`sktensorcnn._callbacks`); a true answer ends the run there, as
        converged.

    Returns
    -------
    RankReductionResult
        ``params == [*factors, core, *free]`` (the order of
        :class:`~sktensorcnn.parametrizations.TuckerWeight`).
    """
    T, *free = [np.array(p, dtype=float) for p in params]
    core, factors = energy_hosvd(T, energy, max_ranks)
    value, grads = objective([_tucker(core, factors), *free])
    result = RankReductionResult([])
    step_full = step_factor = step
    it = 0
    for it in range(1, max_iter + 1):
        previous = value
        previous_ranks = core.shape
        # 1. full step, backtracking on its sufficient decrease
        T = _tucker(core, factors)
        squared = sum(float(np.vdot(g, g)) for g in grads)
        while True:
            hat = [p - step_full * g for p, g in zip([T, *free], grads)]
            hat_value, _ = objective(hat)
            if hat_value <= value - 0.5 * step_full * squared or step_full < 1e-16:
                break
            step_full /= 2
        step_full *= 2
        # 2. compress
        core, factors = energy_hosvd(hat[0], energy, max_ranks)
        free = hat[1:]
        value, grads = objective([_tucker(core, factors), *free])
        # 3. factor step on the compressed point, skipped unless it decreases
        d_core, d_factors = _factor_gradients(grads[0], core, factors)
        # the factors' curvature carries the core's squared scale: divide their
        # step by the core's mean square, so the step is the same in any units
        factor_scale = float(np.mean(core**2))
        # a zero core (a flat data term) leaves the factors nothing to fit
        for _ in range(30 if factor_scale > 0 else 0):
            trial_core = core - step_factor * d_core
            trial_factors = [f - step_factor / factor_scale * d
                             for f, d in zip(factors, d_factors)]
            trial_value, trial_grads = objective(
                [_tucker(trial_core, trial_factors), *free])
            if trial_value < value:
                core, factors, value, grads = (trial_core, trial_factors,
                                               trial_value, trial_grads)
                step_factor *= 2
                break
            step_factor /= 2
        result.loss_curve.append(value)
        result.rank_history.append(tuple(core.shape))
        if verbose:
            print(f"LRD iteration {it}: objective {value:.6e}, ranks {core.shape}")
        steady = core.shape == previous_ranks
        if stop_requested(monitor, [*factors, core, *free]) or (
                steady and abs(relative_decrease(previous, value, scale)) < tol):
            result.converged = True
            break
    result.params = [*factors, core, *free]
    result.n_iter = it
    result.objective = value
    return result
