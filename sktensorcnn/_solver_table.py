"""The estimators' solvers, in one table.

Each row says how the solver fits the linear network (identity activation) and
a network with any other activation, and what it needs: :func:`resolve_solver`
reads the table to pick ``solver='auto'`` and to refuse a combination with a
message that names the fix.  A fit routine takes a
:class:`~sktensorcnn._problem.FitSpec` and the validated data and returns a
:class:`~sktensorcnn._problem.Fitted`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ._fit_constrained import fit_projected, fit_rank_reduction
from ._fit_linear import fit_linear
from ._fit_network import fit_network
from .constraints import KERNEL_ENTRY_CONSTRAINTS

__all__ = ["SOLVERS", "Solver", "resolve_solver"]


@dataclass(frozen=True)
class Solver:
    """A row of :data:`SOLVERS`.

    Attributes
    ----------
    fit_linear, fit_network : callable or None
        The fit routine for the identity activation, and for any other
        (``None``: the solver cannot train it).
    squared_loss_only : bool
        Needs the squared loss's normal equations (ALS).
    epochs : bool
        Trains by epochs on mini-batches; has ``partial_fit``.
    projected : bool
        Enforces a constraint by projection, so the only solver for the
        kernel-entry constraints; regularizes by the constraint set.
    structures : tuple of str
        Kernel structures it can fit (``'rank'`` dense, ``'tucker'``, ``'cp'``).
    standardizes_targets : bool
        Fits standardized targets, as the Huber loss's threshold needs.
    """

    fit_linear: Callable | None
    fit_network: Callable | None
    squared_loss_only: bool = False
    epochs: bool = False
    projected: bool = False
    structures: tuple = ("rank", "tucker", "cp")
    standardizes_targets: bool = True

    def routine(self, activation: str) -> Callable:
        return self.fit_linear if activation == "identity" else self.fit_network


SOLVERS: dict[str, Solver] = {
    "als": Solver(fit_linear, None, squared_loss_only=True),
    "lbfgs": Solver(fit_linear, fit_network),
    "gd": Solver(fit_network, fit_network, epochs=True),
    "adam": Solver(fit_network, fit_network, epochs=True),
    "pgd": Solver(fit_projected, fit_projected, projected=True,
                  standardizes_targets=False),
    "lrd": Solver(fit_rank_reduction, fit_rank_reduction, structures=("tucker",),
                  standardizes_targets=False),
}


def resolve_solver(requested: str, *, activation: str, loss: str, constraint: str,
                   structure: str, estimator: str) -> str:
    """The solver in force.

    ``'auto'``: ALS for the identity activation with the squared loss (a
    linear least squares network fitted on the features), projected gradient
    descent for the kernel-entry constraints (``'sparse'``, ``'l1'``,
    ``'nuclear'``), L-BFGS otherwise.
    """
    linear_squares = activation == "identity" and loss == "squared"
    entry = constraint in KERNEL_ENTRY_CONSTRAINTS
    if requested == "auto":
        name = "pgd" if entry else "als" if linear_squares else "lbfgs"
    else:
        name = requested
    solver = SOLVERS[name]
    if loss == "huber" and (entry or not solver.standardizes_targets):
        raise ValueError(
            "loss='huber' measures residuals in standard deviations of the "
            "targets, which the projected and rank-reducing solvers do not "
            "standardize; use loss='squared' with them, or loss='huber' "
            "with solver='lbfgs' / 'adam' and no kernel-entry constraint."
        )
    if entry and not solver.projected:
        raise ValueError(
            f"constraint={constraint!r} is enforced by projected gradient "
            f"descent; use solver='pgd' (or 'auto'), not {name!r}."
        )
    if structure not in solver.structures:
        raise ValueError(
            f"solver={name!r} reduces Tucker ranks during training; "
            f"{estimator} has no Tucker ranks. Use TuckerCNNRegressor "
            "or TuckerCNNClassifier, or another solver."
        )
    if solver.squared_loss_only and not linear_squares:
        what = (f"activation={activation!r}" if activation != "identity"
                else f"the {loss} loss")
        raise ValueError(
            f"solver={name!r} fits the linear network with the squared loss only, "
            f"not {what}; use solver='lbfgs' or 'auto'."
        )
    return name
