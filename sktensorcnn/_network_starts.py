"""Starting points of the network fits: kernels, then the best FC layer for them.

With the kernels held fixed, the network is a linear model on the pooled
activations ``H`` (:func:`~sktensorcnn.network.pooled_activations`), so the FC
layer and intercept that suit a set of starting kernels are a convex problem: a
ridge regression for the squared loss, a penalized logistic / multinomial /
one-vs-rest regression otherwise.  Solving it from the trivial model (FC weights
zero, the intercept the weighted mean or the class log-priors) can only lower
the training loss, so a start built this way is never worse than predicting the
mean or the class priors; the fit still compares it with the trivial model on all
samples, since ``H`` may be computed on a subsample.

Before the head is fitted, each kernel is rescaled so that its convolution
outputs have unit root mean square on the data: a start whose pre-activations
are in the hundreds (the unpenalized linear fit of collinear inputs) saturates
``tanh`` and makes ReLU outputs huge; one whose pre-activations are tiny
linearizes the network.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import linalg
from scipy.optimize import minimize
from sklearn.utils import check_random_state

from . import activations
from ._dask import gather_rows
from ._problem import FitSpec, warm_params
from .kernel_structures import _kernel_layout
from .losses import loss_and_gradient
from .network import pooled_activations

__all__ = ["fit_head", "head_rows", "network_start", "normalize_kernels",
           "scale_kernels", "spectral_rows"]

#: Largest ``rows * K * P`` of the pooled activations a start computes (64 MiB).
HEAD_MAX_ENTRIES = 1 << 23

#: Most samples the linear fit behind a spectral start sees: its kernels are
#: one candidate among others, and on 60,000 images the full linear fit would
#: cost more than the network's training.
SPECTRAL_MAX_SAMPLES = 8192


def spectral_rows(n: int, rng) -> np.ndarray:
    """Rows of the linear fit behind a spectral start: all, or a random
    subsample of :data:`SPECTRAL_MAX_SAMPLES`."""
    if n <= SPECTRAL_MAX_SAMPLES:
        return np.arange(n)
    return np.sort(rng.choice(n, size=SPECTRAL_MAX_SAMPLES, replace=False))


def head_rows(n: int, n_head_features: int, rng) -> np.ndarray:
    """Rows on which a start's FC layer is fitted: all, or a random subsample
    that keeps the pooled activations under :data:`HEAD_MAX_ENTRIES` (at least
    256 rows)."""
    limit = max(256, HEAD_MAX_ENTRIES // max(n_head_features, 1))
    if n <= limit:
        return np.arange(n)
    return np.sort(rng.choice(n, size=limit, replace=False))


def normalize_kernels(X, kernels_, geometry, weights) -> np.ndarray:
    """Per-kernel factors ``c_k`` giving ``c_k A_k`` convolution outputs of unit
    root mean square on ``X`` (samples weighted by ``weights``, summing to one);
    kernels whose outputs vanish keep factor 1."""
    conv = pooled_activations(X, kernels_, geometry, "identity", pool=False)
    conv = conv.reshape(conv.shape[0], conv.shape[1], -1)
    with np.errstate(over="ignore", invalid="ignore"):  # inf (times 0 weights)
        rms = np.sqrt(weights @ np.mean(conv**2, axis=2))
    if not np.all(np.isfinite(rms)):
        # outputs beyond 1e154 (a near-singular linear fit's kernels): their
        # squares overflow, so take them in units of the largest output
        top = np.abs(conv).max(axis=(0, 2))
        top = np.where(top > 0, top, 1.0)
        rms = top * np.sqrt(weights @ np.mean((conv / top[:, None]) ** 2, axis=2))
    return np.where(rms > 1e-12 * max(rms.max(), 1e-300), 1.0 / np.where(
        rms > 0, rms, 1.0), 1.0)


def _solve_positive(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``gram^-1 rhs`` by Cholesky, or least squares where ``gram`` is singular
    or too ill-conditioned for it (activations that vanish): a reciprocal
    condition number below machine precision, where scipy's ``solve`` would
    warn.  Decided without the warnings machinery, whose process-wide filter
    would race with fits on other threads."""
    try:
        factor, lower = linalg.cho_factor(gram, check_finite=False)
        rcond, info = linalg.lapack.dpocon(factor, np.linalg.norm(gram, 1),
                                           uplo="L" if lower else "U")
        if info == 0 and rcond >= np.finfo(float).eps:
            return linalg.cho_solve((factor, lower), rhs, check_finite=False)
    except linalg.LinAlgError:  # not positive definite to rounding
        pass
    return linalg.lstsq(gram, rhs, check_finite=False)[0]


def fit_head(H, y, weights, *, loss: str, n_out: int, alpha: float,
             fit_intercept: bool, intercept0: np.ndarray, max_iter: int = 200):
    """The FC layer that minimizes the penalized training loss on features ``H``.

    Parameters
    ----------
    H : ndarray of shape (n, F)
        Pooled activations, flattened.
    y : ndarray of shape (n,) or (n, n_out)
        Encoded targets (:mod:`sktensorcnn.losses`).
    weights : ndarray of shape (n,)
        Sample weights, normalized to sum to one.
    loss : str
    n_out : int
    alpha : float
        Ridge penalty on the FC weights (the network's ``alpha``).
    fit_intercept : bool
    intercept0 : ndarray of shape (n_out,)
        The trivial model's intercept, where the search starts.
    max_iter : int, default=200
        L-BFGS iterations for the losses without a closed form.

    Returns
    -------
    fc : ndarray of shape (n_out, F)
    intercept : ndarray of shape (n_out,)
    """
    n, F = H.shape
    if loss == "squared":
        # weighted ridge with an unpenalized intercept: center, then solve
        # (several targets: one right-hand side each)
        h_mean = weights @ H if fit_intercept else np.zeros(F)
        y_mean = weights @ y if fit_intercept else np.zeros(y.shape[1:])
        Hc = H - h_mean
        gram = Hc.T @ (Hc * weights[:, None])
        # a jitter of the mean eigenvalue keeps the solve stable at alpha = 0
        ridge = max(alpha, 1e-10 * np.trace(gram) / F, np.finfo(float).tiny)
        gram[np.diag_indices(F)] += ridge
        rhs = Hc.T @ (weights.reshape(-1, *(1,) * (y.ndim - 1)) * (y - y_mean))
        f = _solve_positive(gram, rhs)
        return f.reshape(F, -1).T, np.atleast_1d(y_mean - h_mean @ f)

    def objective(theta):
        fc = theta[: n_out * F].reshape(n_out, F)
        b = theta[n_out * F:] if fit_intercept else intercept0
        values, grad_F = loss_and_gradient(loss, H @ fc.T + b, y)
        weighted = grad_F * weights[:, None]
        value = float(weights @ values) + 0.5 * alpha * float(np.sum(fc * fc))
        grad_fc = weighted.T @ H + alpha * fc
        grad_b = weighted.sum(axis=0) if fit_intercept else np.zeros(0)
        return value, np.concatenate([grad_fc.ravel(), grad_b])

    theta0 = np.concatenate([np.zeros(n_out * F),
                             intercept0 if fit_intercept else np.zeros(0)])
    opt = minimize(objective, theta0, jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "ftol": 1e-9, "gtol": 1e-7})
    fc = opt.x[: n_out * F].reshape(n_out, F)
    intercept = opt.x[n_out * F:] if fit_intercept else np.asarray(intercept0)
    return fc, np.asarray(intercept, dtype=float)


def network_start(spec: FitSpec, X, y, sample_weight, kernel_param, objective, *,
                  init: str, alpha: float, scaling):
    """Stacked-kernel parameters, FC weights ``(n_out, K, P)`` and intercepts
    ``(n_out,)``, on the data as the fit sees them (``scaling``).

    ``warm_start``: the previous network.  Otherwise candidate kernels (with
    ``init='auto'`` or ``'spectral'`` the fitted linear network's kernels,
    [Compact nets]: the starting point matters; always kernels drawn at
    random), each rescaled to unit pre-activations and given the best FC layer
    for it, and the trivial model (FC weights zero); the candidate with the
    lowest training ``objective`` is the start, so a start is never worse than
    predicting the mean or the class priors.
    """
    if spec.warm is not None and spec.warm.network_params is not None:
        previous = spec.warm.network_params
        if warm_params(previous[:-2], kernel_param.param_shapes) is not None:
            return scaling.to_internal(previous)
    candidates = []
    if init != "random":  # 'auto' or 'spectral'
        candidates.append(_spectral_kernels(spec, X, y, sample_weight))
    candidates.append(_random_kernels(spec, kernel_param))
    starts = [_with_fitted_head(spec, X, y, sample_weight, kernel_params,
                                kernel_param, alpha)
              for kernel_params in candidates]
    starts.append([*starts[0][:-2], np.zeros_like(starts[0][-2]),
                   spec.task.initial_intercept(y, sample_weight)])
    values = np.array([objective.value(start) for start in starts])
    # the data term alone (the penalty is on kernels and FC weights) of no
    # start may exceed the trivial model's; among those, the lowest objective
    penalties = np.array([objective.penalty(start) for start in starts])
    data_terms = values - penalties
    allowed = data_terms <= data_terms[-1] * (1 + 1e-12) + 1e-300
    return starts[int(np.argmin(np.where(allowed, values, np.inf)))]


def _spectral_kernels(spec: FitSpec, X, y, sample_weight):
    """Kernels of the fitted linear network (on at most
    :data:`SPECTRAL_MAX_SAMPLES` samples), with a little noise to break the
    symmetry of kernels that the linear fit leaves at zero."""
    from ._fit_linear import fit_linear  # the linear fit starts the network

    rng = spec.rng
    rows = spectral_rows(len(y), rng)
    if len(rows) < len(y):
        X, y, sample_weight = gather_rows(X, rows), y[rows], sample_weight[rows]
    options = spec.options
    linear = spec.but(
        activation="identity", solver="als" if spec.task.loss == "squared"
        else "lbfgs", constraint=spec.structure.constraint, warm=None,
        path_cache=None, previous=None, progress=None,
        options=replace(options, verbose=0, warm_start=False, sparsity=None,
                        radius=None),
        rng=check_random_state(options.random_state),
    )
    params = fit_linear(linear, X, y, sample_weight).linear[0]
    kernel_params, _ = spec.structure.to_network(params, spec.geometry)
    # each parameter's noise at its own scale: the factors of a Tucker or CP
    # kernel can differ in scale by orders of magnitude, and noise at their
    # common scale would swamp the small ones (and overflow the kernels)
    scales = [np.sqrt(np.mean(p**2)) for p in kernel_params]
    fallback = max(scales)  # for a parameter the linear fit left at zero
    return [p + 1e-2 * (scale if scale > 0 else fallback)
            * rng.standard_normal(p.shape)
            for p, scale in zip(kernel_params, scales)]


def _random_kernels(spec: FitSpec, kernel_param):
    """Stacked kernels at random, scaled to the fan-in and the activation's
    gain (He for the ReLU family)."""
    kernel_params = kernel_param.initialize(spec.rng)
    stacked = kernel_param.to_tensor(kernel_params)
    gain = activations.BY_NAME[spec.activation].gain
    target = np.sqrt(gain / spec.geometry.n_kernel_entries)
    # the entries' spread; a single entry (one 1 x 1 kernel) has none: its size
    spread = stacked.std() if stacked.size > 1 else np.sqrt(np.mean(stacked**2))
    kernel_params[-1] = kernel_params[-1] * (target / (spread + 1e-300))
    return kernel_params


def _with_fitted_head(spec: FitSpec, X, y, sample_weight, kernel_params,
                      kernel_param, alpha):
    """``[*kernel_params, fc, intercept]``: the kernels rescaled to unit
    pre-activations and the FC layer and intercept that minimize the
    penalized loss with those kernels, on at most :data:`HEAD_MAX_ENTRIES`
    pooled activations."""
    geometry, task = spec.geometry, spec.task
    K, P, n_out = spec.structure.n_kernels, geometry.n_cells, task.n_out
    rows = head_rows(len(y), K * P, spec.rng)
    X_rows = gather_rows(X, rows)
    weights = sample_weight[rows] / sample_weight[rows].sum()
    stacked = kernel_param.to_tensor(kernel_params)
    factors = normalize_kernels(X_rows, _kernel_layout(stacked, geometry),
                                geometry, weights)
    kernel_params = scale_kernels(kernel_params, factors,
                                  spec.structure.output_factor)
    H = pooled_activations(
        X_rows, _kernel_layout(kernel_param.to_tensor(kernel_params), geometry),
        geometry, spec.activation,
    ).reshape(len(rows), K * P)
    fc, intercept = fit_head(
        H, y[rows], weights, loss=task.loss, n_out=n_out, alpha=alpha,
        fit_intercept=task.fit_intercept,
        intercept0=task.initial_intercept(y, sample_weight),
    )
    kernel_params, fc = _balance(spec, kernel_params, fc.reshape(n_out, K, P))
    return [*kernel_params, fc, intercept]


def _balance(spec: FitSpec, kernel_params, fc):
    """Move scale between each kernel and its FC weights so that the ridge
    penalty is smallest for the same network: possible for the positively
    homogeneous activations (``act(c z) = c^d act(z)``, ``c > 0``)."""
    degree = activations.BY_NAME[spec.activation].degree
    if degree is None:
        return kernel_params, fc
    index = spec.structure.output_factor
    scaled = kernel_params[0] if index is None else kernel_params[index].T
    a = np.sqrt(np.sum(scaled.reshape(-1, scaled.shape[-1]) ** 2, axis=0))
    b = np.sqrt(np.sum(fc**2, axis=(0, 2)))
    ok = (a > 0) & (b > 0)
    # minimizes (c a)^2 + (b / c^d)^2 over c > 0
    c = np.where(ok, (degree * b**2 / np.where(ok, a, 1.0) ** 2)
                 ** (1.0 / (2 * degree + 2)), 1.0)
    return (scale_kernels(kernel_params, c, index),
            fc / (c**degree)[None, :, None])


def scale_kernels(kernel_params, factors, output_factor):
    """Kernel ``k`` times ``factors[k]``: through the kernels' output factor
    ``(K, R)`` at ``output_factor`` (Tucker, CP) or the stacked kernels' last
    axis (dense, ``output_factor=None``)."""
    kernel_params = [np.array(p, dtype=float) for p in kernel_params]
    if output_factor is None:
        kernel_params[0] = kernel_params[0] * factors
    else:
        kernel_params[output_factor] = kernel_params[output_factor] * factors[:, None]
    return kernel_params
