"""Starting points of the linear fits (identity activation).

The linear network is low-rank regression on the conv-pool features ``Z``
(:mod:`sktensorcnn.datafits`): its starts are the unconstrained (ridge) fit
truncated to the ranks, when the features allow it, then random factors.
Every start is scaled to the best multiple of itself, so that it is no worse
than the trivial model whatever the targets' units.
"""

from __future__ import annotations

import warnings

import numpy as np

from . import datafits
from ._problem import FitSpec, warm_params
from .datafits import GramSquared, ridge_solution, ridge_statistics
from .solvers._result import ridge_objective
from .solvers.als import solve_psd

__all__ = ["best_multiple", "loss_starts", "squared_starts"]


def best_multiple(params, parametrization, datafit, alpha, spread=False,
                  trivial=None):
    """A start times the multiple ``c`` of its weight ``W`` that fits the data
    best (the objective is quadratic along ``c W``), so that it is no worse
    than the trivial model (``c = 0``) whatever the targets' units.  ``W`` is
    multilinear in the parameter blocks: scaling one block by ``c`` scales it,
    and so does scaling each of the ``B`` blocks by ``|c|^(1/B)`` (``spread``,
    for random starts: blocks of equal scale keep L-BFGS well conditioned).
    ``trivial``: the objective and gradient at ``W = 0``, when known."""
    w = parametrization.to_tensor(params).ravel()
    f0, g0 = (ridge_objective(datafit, np.zeros_like(w), alpha) if trivial is None
              else trivial)
    curvature = 2.0 * (ridge_objective(datafit, w, alpha)[0] - f0 - g0 @ w)
    if curvature <= 0:
        return params
    c = -(g0 @ w) / curvature
    if spread and c != 0:
        root = abs(c) ** (1.0 / len(params))
        params = [p * root for p in params]
        params[-1] = params[-1] * np.sign(c)
    else:
        params[-1] = params[-1] * c
    return params


def _n_init(spec: FitSpec, sufficient_statistics: bool) -> int:
    """``n_init='auto'``: the structure's count on sufficient statistics, where
    a start costs nothing in ``n``, and 1 otherwise."""
    if spec.options.n_init != "auto":
        return spec.options.n_init
    return spec.structure.auto_n_init if sufficient_statistics else 1


def _warn_no_spectral_start(n_samples: int, n_features: int, size: str) -> None:
    """``init='spectral'`` asked for a start the features do not allow (with
    ``init='auto'`` the fit goes on from random starts without a word)."""
    warnings.warn(
        f"init='spectral' needs the least squares fit on the conv-pool "
        f"features, computed when {size} <= {datafits.GRAM_MAX_FEATURES}; here "
        f"n_samples = {n_samples} and L * P = {n_features}, so the fit starts "
        "from random factors scaled to the data.  Pass init='auto' (the "
        "default) or 'random' to choose that.", UserWarning, stacklevel=6,
    )


def squared_starts(spec: FitSpec, parametrization, datafit, alpha: float):
    """Starts of the squared loss's linear fit, one per start.

    ``warm_start`` with a previous fit of the same shapes: that fit alone.
    Otherwise the unconstrained ridge fit truncated to the ranks (when the
    sufficient statistics are small enough to solve it), then random starts,
    ``n_init`` in all.  ``n_init='auto'`` is 4 with sufficient statistics, where
    a start costs nothing in ``n``, and 1 otherwise (1 always for dense
    kernels, whose rank-K matrix problem is reliably solved from the spectral
    start).
    """
    rng = spec.rng
    warm = spec.warm and warm_params(spec.warm.weight_params,
                                     parametrization.param_shapes)
    if warm:
        yield warm
        return
    n_init = _n_init(spec, isinstance(datafit, GramSquared))
    # the trivial model W = 0, against which every start is scaled
    trivial = ridge_objective(datafit, np.zeros(int(np.prod(parametrization.shape))),
                              alpha)
    start = 0
    if spec.options.init != "random":  # 'auto' or 'spectral'
        cache, key = spec.path_cache, ("ridge", alpha)
        if cache is not None and key in cache:
            W0 = cache[key]
        else:
            W0 = ridge_solution(datafit, alpha)
            if cache is not None:
                cache[key] = W0
        if W0 is not None:
            # truncated to the ranks, the ridge fit can fit worse than a
            # constant (an interpolant with alpha = 0): rescaled, never
            yield best_multiple(
                parametrization.initialize(rng, W0.reshape(parametrization.shape)),
                parametrization, datafit, alpha, trivial=trivial)
            start = 1
        elif spec.options.init == "spectral":  # asked for: say why not
            _warn_no_spectral_start(*datafit.features.shape, "min(n_samples, L * P)")
    for _ in range(start, n_init):
        yield best_multiple(parametrization.initialize(rng), parametrization,
                            datafit, alpha, spread=True, trivial=trivial)


def loss_starts(spec: FitSpec, X, y, sample_weight, parametrization,
                alpha: float = 0.0, scale: float = 1.0):
    """Starts of the linear fit of any other loss, as :func:`squared_starts`: a
    previous fit (``warm_start``); else the least squares fit of the task's
    indicator targets truncated to the ranks (when ``L P`` allows a Gram
    matrix), then random starts; ``n_init='auto'`` is 1.  ``scale``: the input
    scale of the fit (a previous fit is in the data's units)."""
    rng, task = spec.rng, spec.task
    warm = spec.warm and warm_params(spec.warm.weight_params,
                                     parametrization.param_shapes)
    if warm:
        warm[-1] = warm[-1] * scale
        yield warm
        return
    n_init = _n_init(spec, False)
    start = 0
    if spec.options.init != "random":  # 'auto' or 'spectral'
        stats = ridge_statistics(X, task.indicator_targets(y), spec.geometry,
                                 sample_weight, task.fit_intercept)
        if stats is None:
            if spec.options.init == "spectral":  # asked for: say why not
                _warn_no_spectral_start(X.shape[0], spec.geometry.n_features,
                                        "L * P")
        else:
            gram, zy = stats
            lhs = gram + max(alpha, 1e-8 * np.trace(gram) / len(gram)) \
                * np.eye(len(gram))
            W0 = solve_psd(lhs, zy)  # (L P, n_out), outputs innermost
            yield parametrization.initialize(rng, W0.reshape(parametrization.shape))
            start = 1
    for _ in range(start, n_init):
        yield parametrization.initialize(rng)
