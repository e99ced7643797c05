from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SolverResult:
    """What a solver hands back.

    Attributes
    ----------
    params : list of ndarray
        Fitted parameters of the parametrization.
    loss_curve : list of float
        Objective after each iteration.
    n_iter : int
        Iterations run.
    converged : bool
        Whether the stopping rule was met before ``max_iter``.
    objective : float
        Final value of the objective.
    """

    params: list[np.ndarray]
    objective: float = np.inf
    loss_curve: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False


def stop_requested(monitor, params) -> bool:
    """Report an iteration to ``monitor`` (see the solvers' ``monitor``
    parameter) and say whether it asks the solver to stop."""
    return monitor is not None and bool(monitor(params))


def relative_decrease(previous: float, current: float, scale: float) -> float:
    """``(f_prev - f) / max(|f_prev|, |f|, scale)``.

    scipy L-BFGS-B's ``ftol`` rule with its floor of 1 replaced by ``scale``, the
    problem's own unit: for the squared loss twice the objective of the trivial
    model (no weight, the best constant output), which is 1 on standardized
    targets.  Multiplying the targets by ``c`` multiplies every term by
    ``c^2``, so the rule stops at the same iterate whatever the targets' units;
    and as the objective goes to zero (a perfect fit) decreases are still
    measured against the trivial model's loss.
    """
    return (previous - current) / max(abs(previous), abs(current), scale,
                                      np.finfo(float).tiny)


def trivial_scale(value: float) -> float:
    """``value`` (the trivial model's objective) as a positive stopping scale."""
    value = abs(float(value))
    return value if np.isfinite(value) and value > 0 else 1.0


def ridge_objective(datafit, w: np.ndarray, alpha: float):
    """``f(w) + alpha / 2 ||w||^2`` and its gradient."""
    value, grad = datafit.value_and_gradient(w)
    return value + 0.5 * alpha * float(w @ w), grad + alpha * w
