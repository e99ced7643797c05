"""The linear network (identity activation): low-rank regression on the
conv-pool features.

With the squared loss the fit runs on the data term's sufficient statistics
(:mod:`sktensorcnn.datafits`), by ALS or L-BFGS over the factors of the
composite weight ``W``; with any other loss, by L-BFGS over the factors and the
intercepts, the outputs ``Z W + b`` computed from the features.
"""

from __future__ import annotations

import itertools

import numpy as np

from ._linear_starts import loss_starts, squared_starts
from ._problem import FitSpec, Fitted, best_of
from ._scaling import input_shift_and_scale, target_offset_and_scale
from .datafits import FeatureLoss, squared_datafit
from .features import conv_pool_features
from .solvers import alternating_least_squares, lbfgs, minimize_lbfgs

__all__ = ["fit_linear"]

#: Solvers of the squared loss's data term, over the factors of ``W``.
_SQUARED_SOLVERS = {"als": alternating_least_squares, "lbfgs": lbfgs}


def fit_linear(spec: FitSpec, X, y, sample_weight) -> Fitted:
    """Fit the linear network by ``spec.solver`` (``'als'`` or ``'lbfgs'``)."""
    if spec.task.loss != "squared":
        return _fit_linear_loss(spec, X, y, sample_weight)
    parametrization = spec.structure.linear
    fit_intercept = spec.task.fit_intercept
    cache, key = spec.path_cache, ("squared", fit_intercept)
    if cache is not None and key in cache:
        datafit = cache[key]
    else:
        datafit = squared_datafit(X, y, spec.geometry, sample_weight=sample_weight,
                                  fit_intercept=fit_intercept)
        if cache is not None:
            cache[key] = datafit
    alpha = spec.penalty(sample_weight, datafit)
    starts = squared_starts(spec, parametrization, datafit, alpha)
    previous = getattr(spec.previous, "weight_", None)
    if previous is not None:
        warm = parametrization.initialize(
            spec.rng, previous.reshape(parametrization.shape))
        starts = itertools.chain([warm], starts)
    options = spec.options

    def finish(result):
        W = parametrization.to_tensor(result.params)
        intercept = (datafit.intercept(W.ravel()) if fit_intercept
                     else np.zeros(spec.task.n_out))
        return Fitted(result, alpha, spec.structure.n_kernels,
                      linear=(result.params, intercept, parametrization))

    result = best_of(starts, lambda params: _SQUARED_SOLVERS[spec.solver](
        datafit, parametrization, params, alpha=alpha,
        max_iter=options.iterations(), tol=options.tol, verbose=options.verbose,
        monitor=spec.monitor(finish, options.iterations())))
    return finish(result)


def _fit_linear_loss(spec: FitSpec, X, y, sample_weight) -> Fitted:
    """A loss without sufficient statistics (logistic, multinomial,
    one-vs-rest, Huber, Poisson): L-BFGS over the factors of ``W`` and the
    intercepts."""
    task, options = spec.task, spec.options
    n_out, fit_intercept = task.n_out, task.fit_intercept
    parametrization = spec.structure.linear
    # centered, unit-scale inputs (see input_shift_and_scale): L-BFGS is
    # well conditioned on raw pixel or reflectance values too, and alpha
    # acts on a standardized problem, as for the network fits
    shift, scale = input_shift_and_scale(X, sample_weight, fit_intercept)
    X = (X - X.dtype.type(shift)) * X.dtype.type(1.0 / scale)
    # standardized targets where the loss has a scale of its own (Huber's
    # threshold: median and MAD, which outliers do not inflate); W and b
    # are linear in the output, so they map back exactly
    offset, spread = (target_offset_and_scale(y, sample_weight, fit_intercept,
                                              robust=True)
                      if task.scales_targets else (0.0, 1.0))
    y = (y - offset) / spread
    datafit = FeatureLoss(X, y, spec.geometry, sample_weight, loss=task.loss,
                          n_out=n_out)
    alpha = spec.penalty(sample_weight)

    def objective(current):
        params, b = current[:-1], current[-1]
        w = parametrization.to_tensor(params).ravel()
        value, grad_w, grad_b = datafit.value_and_gradient(w, b)
        value += 0.5 * alpha * float(w @ w)
        grad_w = grad_w + alpha * w
        grads = [parametrization.block(params, j).apply_jacobian(grad_w[None])[0]
                 .reshape(p.shape) for j, p in enumerate(params)]
        return value, [*grads, grad_b if fit_intercept else np.zeros(n_out)]

    b0 = task.initial_intercept(y, sample_weight)
    stopping = task.stopping_scale(y, sample_weight)
    starts = loss_starts(spec, X, y, sample_weight, parametrization, alpha, scale)

    def finish(result):
        params, b = list(result.params[:-1]), result.params[-1]
        # W is multilinear in its factors: one carries the scales (per output:
        # the rows of the output mode's factor)
        if np.ndim(spread) == 0:
            params[-1] = params[-1] * (spread / scale)
        else:
            params[-1] = params[-1] / scale
            params = parametrization.scale_last_mode(
                params, np.tile(spread, spec.geometry.n_cells))
        b = b * spread + offset
        if shift:
            constant = np.full((1, *X.shape[1:]), shift)
            z_shift = conv_pool_features(constant, spec.geometry).reshape(-1)
            W = parametrization.to_tensor(params).reshape(-1, n_out)
            b = b - z_shift @ W
        result.params = params
        return Fitted(result, alpha, spec.structure.n_kernels,
                      linear=(params, b, parametrization))

    result = best_of(starts, lambda params: minimize_lbfgs(
        objective, [*params, b0.copy()], max_iter=options.iterations(),
        tol=options.tol, verbose=options.verbose, scale=stopping,
        monitor=spec.monitor(finish, options.iterations())))
    return finish(result)
