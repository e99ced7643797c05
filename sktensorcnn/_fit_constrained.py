"""Constrained training: projected gradient descent (``solver='pgd'``,
[Compact nets]) and low-rank descent with rank reduction (``solver='lrd'``,
[Rank reduction]).

Both run on a problem ``(objective, start)``: with the identity activation and
the estimator's own structure, over the composite weight ``W`` of the linear
network (plus the intercepts for losses without sufficient statistics);
otherwise over the dense stacked kernels ``A``, the FC weights and the
intercepts of the network.  What is projected is a constraint object
(:mod:`sktensorcnn.constraints`).
"""

from __future__ import annotations

import numpy as np
import tensorly as tl

from . import kernels
from ._fit_network import network_objective
from ._linear_starts import loss_starts, squared_starts
from ._network_starts import network_start
from ._problem import FitSpec, Fitted
from ._scaling import DataScaling
from .constraints import make_constraint
from .datafits import FeatureLoss, squared_datafit
from .kernel_structures import _stacked_shape
from .parametrizations import FullWeight, TuckerWeight
from .solvers import low_rank_descent, minimize_projected
from .solvers._result import ridge_objective
from .solvers.pgd import _lipschitz

__all__ = ["fit_projected", "fit_rank_reduction"]


def _linear_problem(spec: FitSpec, X, y, sample_weight, parametrization):
    """Identity activation: ``(objective, start, step, intercept, alpha)`` on
    ``[W]`` (squared loss, the intercept is implicit) or ``[W, b]``."""
    task = spec.task
    shape = parametrization.shape
    if task.loss == "squared":
        datafit = squared_datafit(X, y, spec.geometry, sample_weight=sample_weight,
                                  fit_intercept=task.fit_intercept)
        alpha = spec.penalty(sample_weight, datafit, constrained=True)
        first = next(iter(squared_starts(spec, parametrization, datafit, alpha)))

        def objective(params):
            value, grad = ridge_objective(datafit, params[0].ravel(), alpha)
            return value, [grad.reshape(shape)]

        def intercept(params):
            if not task.fit_intercept:
                return np.zeros(task.n_out)
            return datafit.intercept(params[0].ravel())

        step = 1.0 / _lipschitz(datafit, alpha, spec.rng)
        return (objective, [parametrization.to_tensor(first)], step, intercept,
                alpha)
    n_out = task.n_out
    alpha = spec.penalty(sample_weight, constrained=True)
    datafit = FeatureLoss(X, y, spec.geometry, sample_weight, loss=task.loss,
                          n_out=n_out)
    first = next(iter(loss_starts(spec, X, y, sample_weight, parametrization,
                                  alpha)))

    def objective(params):
        w = params[0].ravel()
        value, grad_w, grad_b = datafit.value_and_gradient(w, params[1])
        return (value + 0.5 * alpha * float(w @ w),
                [(grad_w + alpha * w).reshape(shape),
                 grad_b if task.fit_intercept else np.zeros(n_out)])

    start = [parametrization.to_tensor(first),
             task.initial_intercept(y, sample_weight)]
    return objective, start, 1.0, lambda params: params[1], alpha


def _network_problem(spec: FitSpec, X, y, sample_weight):
    """Any activation: ``(objective, start, alpha)`` on ``[A, fc, b]`` with
    dense stacked kernels ``A``, in the data's units (the constraint sizes are
    in them)."""
    kernel_param = spec.structure.kernels
    alpha = spec.penalty(sample_weight, constrained=True)
    objective = network_objective(spec, X, y, sample_weight,
                                  FullWeight(kernel_param.shape), alpha)
    start = network_start(
        spec, X, y, sample_weight, kernel_param,
        network_objective(spec, X, y, sample_weight, kernel_param, alpha),
        init=spec.options.init, alpha=alpha, scaling=DataScaling())
    A = kernel_param.to_tensor(start[:-2])
    return objective, [A, start[-2], start[-1]], alpha


def _on_weight(spec: FitSpec) -> bool:
    """Whether the constraint is on the linear network's ``W``."""
    return (spec.activation == "identity"
            and spec.constraint == spec.structure.constraint)


def fit_projected(spec: FitSpec, X, y, sample_weight) -> Fitted:
    """``solver='pgd'``."""
    options, structure = spec.options, spec.structure
    stopping = spec.task.stopping_scale(y, sample_weight)
    if _on_weight(spec):
        parametrization = structure.linear
        objective, start, step, intercept, alpha = _linear_problem(
            spec, X, y, sample_weight, parametrization)
        constraint = make_constraint(spec.constraint, parametrization,
                                     on_weight=True, n_kernels=structure.n_kernels,
                                     rng=spec.rng)

        def finish_weight(result, rng=spec.rng):
            params = constraint.parameters(result.params[0], parametrization, rng)
            b = intercept(result.params)
            result.params = params
            return Fitted(result, alpha, structure.n_kernels,
                          linear=(params, b, parametrization))

        result = minimize_projected(
            objective, start, lambda p: [constraint.project(p[0]), *p[1:]],
            step=step, max_iter=options.iterations(), tol=options.tol,
            verbose=options.verbose, scale=stopping,
            monitor=spec.monitor(_apart(finish_weight), options.iterations()))
        return finish_weight(result)

    kernel_param = structure.kernels
    objective, (A, fc, b), alpha = _network_problem(spec, X, y, sample_weight)
    constraint = make_constraint(
        spec.constraint, kernel_param, on_weight=False,
        n_kernels=structure.n_kernels, rng=spec.rng,
        sparsity=options.sparsity, radius=options.radius)
    project_fc = np.asarray
    if hasattr(constraint, "sized"):
        constraint, A, fc = constraint.sized(A, fc)
        project_fc = constraint.project_fc

    def finish(result, rng=spec.rng):
        kernel_params = constraint.parameters(result.params[0], kernel_param, rng)
        result.params = [*kernel_params, *result.params[1:]]
        return Fitted(result, alpha, structure.n_kernels,
                      network=(result.params, kernel_param), constraint=constraint)

    with kernels.single_threaded_blas():
        result = minimize_projected(
            objective, [A, fc, b],
            lambda p: [constraint.project(p[0]), project_fc(p[1]), p[2]],
            max_iter=options.iterations(), tol=options.tol,
            verbose=options.verbose, scale=stopping,
            monitor=spec.monitor(_apart(finish), options.iterations()))
    return finish(result)


def _apart(finish):
    """``finish`` on a generator of its own: a snapshot taken for a callback
    must not draw from the fit's random state (a fit with callbacks ends where
    one without them does)."""
    return lambda result: finish(result, np.random.RandomState(0))


def fit_rank_reduction(spec: FitSpec, X, y, sample_weight) -> Fitted:
    """``solver='lrd'``: Tucker ranks reduced during training, ``ranks`` the
    caps; ``n_kernels=None`` follows the reduced output rank."""
    options, structure = spec.options, spec.structure
    stopping = spec.task.stopping_scale(y, sample_weight)
    solver_options = dict(energy=spec.energy, max_iter=options.iterations(),
                          tol=options.tol, verbose=options.verbose, scale=stopping)
    if spec.activation == "identity":
        parametrization = structure.linear
        objective, start, step, intercept, alpha = _linear_problem(
            spec, X, y, sample_weight, parametrization)
        n_factors = len(parametrization.ranks) + 1

        def finish_weight(result):
            params = result.params[:n_factors]
            ranks = params[-1].shape
            W = tl.tucker_to_tensor((params[-1], params[:-1]))
            b = intercept([W, *result.params[n_factors:]])
            result.params = params
            n_kernels = ranks[-1] if spec.kernels_follow_rank else structure.n_kernels
            return Fitted(result, alpha, n_kernels,
                          linear=(params, b, TuckerWeight(parametrization.shape,
                                                          ranks)),
                          rank_history=list(getattr(result, "rank_history", [])))

        result = low_rank_descent(objective, start, max_ranks=parametrization.ranks,
                                  step=step, **solver_options,
                                  monitor=spec.monitor(finish_weight,
                                                       options.iterations()))
        return finish_weight(result)
    kernel_param = structure.kernels
    objective, start, alpha = _network_problem(spec, X, y, sample_weight)

    def finish(result):
        core = result.params[len(kernel_param.ranks)]
        settled = TuckerWeight(_stacked_shape(spec.geometry, structure.n_kernels),
                               core.shape)
        return Fitted(result, alpha, structure.n_kernels,
                      network=(result.params, settled),
                      rank_history=list(getattr(result, "rank_history", [])))

    with kernels.single_threaded_blas():
        result = low_rank_descent(objective, start, max_ranks=kernel_param.ranks,
                                  **solver_options,
                                  monitor=spec.monitor(finish, options.iterations()))
    return finish(result)
