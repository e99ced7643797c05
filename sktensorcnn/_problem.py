"""What a fit reads and what it returns.

An estimator validates its input and builds a :class:`FitSpec`: the task (its
loss and how targets are encoded), the kernel structure, the geometry, the
activation, the resolved solver and constraint, and the options a solver reads,
named as the estimator's parameters.  A fit routine (see
:mod:`sktensorcnn._solver_table`) reads the spec and returns a :class:`Fitted`;
the estimator publishes it as fitted attributes.  No fit routine writes to an
estimator.

The policies every fit shares are here too: the penalty ``alpha`` as used, the
unit of the stopping rule, ``max_iter`` as used, warm starts, and the
multi-start loop (:func:`best_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from . import losses
from .datafits import GramSquared, gcv_alpha
from .geometry import ConvPoolGeometry
from .kernel_structures import KernelStructure
from .solvers._result import SolverResult, trivial_scale

__all__ = ["FitOptions", "FitSpec", "Fitted", "Task", "WarmState", "best_of"]


@dataclass(frozen=True)
class Task:
    """What the network predicts (set by the regressor or classifier class).

    ``initial_intercept(y, w)``: the best constant output; ``indicator_targets(y)``:
    the least squares targets of the linear starts; ``validation_score(y, outputs,
    w)``: the score early stopping tracks; ``validation_order(y, n_val, rng)``: the
    sample order whose first ``n_val`` are held out.
    """

    loss: str
    n_out: int
    fit_intercept: bool
    initial_intercept: Callable
    indicator_targets: Callable
    validation_score: Callable
    validation_order: Callable

    @property
    def scales_targets(self) -> bool:
        """Whether the fits see standardized targets: regression losses whose
        output is the target itself (squared, Huber), not a log (Poisson) or
        class scores."""
        loss = losses.BY_NAME[self.loss]
        return loss.regression and loss.link == "identity"

    def stopping_scale(self, y: np.ndarray, sample_weight: np.ndarray) -> float:
        """The unit of the stopping rule (see
        :func:`~sktensorcnn.solvers._result.relative_decrease`), which makes
        ``tol`` mean the same whatever the targets' units: for the squared loss
        twice the trivial model's loss on the targets as the fit sees them
        (their weighted variance, summed over the outputs: 1 per output on the
        standardized targets of the network fits, as scipy's floor), for the
        Poisson loss the mean count (summed over the outputs), and 1 for
        the Huber loss (whose fits always see standardized targets) and the
        classification losses, which have no unit."""
        loss = losses.BY_NAME[self.loss]
        if not loss.regression or loss.name == "huber":
            return 1.0
        if loss.link == "log":  # summed over the outputs, as the loss is
            return trivial_scale(float(np.sum(np.average(y, axis=0,
                                                         weights=sample_weight))))
        b = np.asarray(self.initial_intercept(y, sample_weight), float)
        values = losses.loss_and_gradient(loss.name, np.broadcast_to(
            b, (len(y), b.size)), y)[0]
        return trivial_scale(2.0 * np.average(values, weights=sample_weight))


@dataclass(frozen=True)
class FitOptions:
    """The estimator parameters that fits read, under the same names."""

    alpha: Any
    max_iter: Any
    tol: float
    n_init: Any
    init: str
    verbose: int
    batch_size: Any
    shuffle: bool
    learning_rate_init: Any
    momentum: float
    early_stopping: bool
    validation_fraction: float
    n_iter_no_change: int
    sparsity: Any
    radius: Any
    warm_start: bool
    random_state: Any

    @classmethod
    def of(cls, estimator) -> FitOptions:
        return cls(**{f.name: getattr(estimator, f.name) for f in fields(cls)})

    def iterations(self, network_lbfgs: bool = False) -> int:
        """``max_iter`` as used: ``'auto'`` is 1000 L-BFGS iterations for a
        network with a nonlinear activation (each is one or two passes over the
        data, and the loss keeps falling well past 200 on real data) and 200
        otherwise (ALS sweeps, epochs, PGD steps, L-BFGS on the linear network)."""
        if self.max_iter != "auto":
            return int(self.max_iter)
        return 1000 if network_lbfgs else 200

    def samples_per_step(self, solver: str, n: int) -> int:
        """Samples in one evaluation: a mini-batch for Adam, all for the others."""
        if solver != "adam":
            return n
        return min(200, n) if self.batch_size == "auto" else min(self.batch_size, n)


@dataclass
class WarmState:
    """A previous fit that ``warm_start`` continues: the composite weight's
    factors (linear fits) or the network's parameters, in the user's units, with
    the scales and optimizer state of the fit that produced them."""

    weight_params: list | None = None
    network_params: list | None = None
    optimizer_state: Any = None
    scaling: Any = None


@dataclass(frozen=True)
class FitSpec:
    """Everything a fit routine reads.

    ``energy`` and ``kernels_follow_rank`` serve rank reduction: the energy
    kept, and whether ``K`` follows the output rank it settles on
    (``n_kernels=None``).
    ``path_cache`` and ``previous`` serve
    :class:`~sktensorcnn.model_selection.RankPathCV`: the squared loss's
    sufficient statistics are computed once per data set and shared, and the
    fit at the previous point of the path is one more start.
    ``progress`` reports the solver runs to scikit-learn's callbacks
    (:mod:`sktensorcnn._callbacks`); ``None`` when none listens, and for the
    fits inside a fit (the linear fit that starts a network).
    """

    task: Task
    structure: KernelStructure
    geometry: ConvPoolGeometry
    activation: str
    solver: str
    constraint: str
    options: FitOptions
    rng: np.random.RandomState
    warm: WarmState | None = None
    energy: float | None = None
    kernels_follow_rank: bool = False
    path_cache: dict | None = None
    previous: Any = None
    progress: Any = None

    def but(self, **changes) -> FitSpec:
        """A copy with ``changes``."""
        return replace(self, **changes)

    def monitor(self, finish: Callable[[SolverResult], Fitted] | None,
                max_iter: int) -> Callable[[list], bool] | None:
        """The ``monitor`` of one solver run (see
        :meth:`~sktensorcnn._callbacks.FitProgress.monitor`), or ``None`` when
        no callback listens.  ``finish`` turns a solver's result into the
        routine's :class:`Fitted`; called on a copy of the parameters at an
        iteration, it is the model as if the fit stopped there."""
        if self.progress is None:
            return None
        snapshot = None
        if finish is not None:
            def snapshot(params):
                return finish(SolverResult([np.array(p) for p in params]))
        return self.progress.monitor(self.solver, max_iter, snapshot)

    def penalty(self, sample_weight, datafit=None, constrained=False) -> float:
        """``alpha`` as used (published as ``alpha_``).

        ``alpha='auto'``: for the linear network with the squared loss
        (``datafit`` given), the ridge penalty that minimizes generalized
        cross-validation of the unconstrained fit on the conv-pool features
        (:func:`~sktensorcnn.datafits.gcv_alpha`; the mean Gram eigenvalue over
        ``n`` when the features are too many for it); otherwise ``1 / n``: the
        penalty of scikit-learn's ``LogisticRegression(C=1)`` written per sample,
        which for the network fits (on scaled data, see
        :mod:`sktensorcnn._scaling`) is a unit Gaussian prior on each weight;
        ``n`` is the sum of the sample weights, so that integer weights act as
        repeated samples.  The projected and rank-reducing solvers
        (``constrained``) regularize by their constraint set: no ridge for the
        squared loss there, as in the papers.
        """
        n_samples = float(np.sum(sample_weight))
        alpha = self.options.alpha
        if alpha != "auto":
            return float(alpha)
        if constrained and self.task.loss == "squared":
            return 0.0
        if datafit is None:
            return 1.0 / n_samples
        alpha = gcv_alpha(datafit, n_samples, self.task.fit_intercept)
        if alpha is None:
            alpha = _mean_eigenvalue(datafit) / n_samples
        return alpha


@dataclass
class Fitted:
    """What a fit returns, in the user's units.

    Exactly one of ``linear`` (``(params, intercept, parametrization)``: the
    composite weight's factors and the intercepts ``(n_out,)``) and ``network``
    (``(params, kernel_parametrization)``: ``[*kernel_params, fc (n_out, K, P),
    intercept (n_out,)]``) is set.
    """

    result: SolverResult
    alpha: float
    n_kernels: int
    linear: tuple | None = None
    network: tuple | None = None
    scaling: Any = None
    optimizer_state: Any = None
    rank_history: list | None = None
    constraint: Any = None


def warm_params(previous: list | None, shapes: list) -> list | None:
    """Copies of a previous fit's parameters when their shapes are ``shapes``."""
    if previous is None or [p.shape for p in previous] != list(shapes):
        return None
    return [p.copy() for p in previous]


def best_of(starts: Iterable, run: Callable[[list], SolverResult]) -> SolverResult:
    """Run from every start and keep the result that ends lowest: low-rank and
    network fits are non-convex, and this is the one multi-start loop."""
    best = None
    for params in starts:
        candidate = run(params)
        if best is None or candidate.objective < best.objective:
            best = candidate
    return best


def _mean_eigenvalue(datafit) -> float:
    """Mean eigenvalue of the weighted Gram matrix of a squared data term."""
    if isinstance(datafit, GramSquared):
        return float(np.trace(datafit.gram)) / datafit.gram.shape[0]
    Z = datafit.features
    return float(datafit.weights @ np.einsum("ij,ij->i", Z, Z)) / Z.shape[1]
