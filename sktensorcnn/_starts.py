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

import numpy as np
from scipy import linalg
from scipy.optimize import minimize

from .losses import loss_and_gradient
from .network import pooled_activations

__all__ = ["fit_head", "head_rows", "normalize_kernels", "spectral_rows"]

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
    squares = np.mean(conv.reshape(conv.shape[0], conv.shape[1], -1) ** 2, axis=2)
    rms = np.sqrt(weights @ squares)
    return np.where(rms > 1e-12 * max(rms.max(), 1e-300), 1.0 / np.where(
        rms > 0, rms, 1.0), 1.0)


def fit_head(H, y, weights, *, loss: str, n_out: int, alpha: float,
             fit_intercept: bool, intercept0: np.ndarray, max_iter: int = 200):
    """The FC layer that minimizes the penalized training loss on features ``H``.

    Parameters
    ----------
    H : ndarray of shape (n, F)
        Pooled activations, flattened.
    y : ndarray of shape (n,)
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
        h_mean = weights @ H if fit_intercept else np.zeros(F)
        y_mean = float(weights @ y) if fit_intercept else 0.0
        Hc = H - h_mean
        gram = Hc.T @ (Hc * weights[:, None])
        # a jitter of the mean eigenvalue keeps the solve stable at alpha = 0
        ridge = max(alpha, 1e-10 * np.trace(gram) / F, np.finfo(float).tiny)
        gram[np.diag_indices(F)] += ridge
        rhs = Hc.T @ (weights * (y - y_mean))
        try:
            f = linalg.solve(gram, rhs, assume_a="pos", check_finite=False)
        except linalg.LinAlgError:
            f = linalg.lstsq(gram, rhs, check_finite=False)[0]
        return f[None, :], np.array([y_mean - float(h_mean @ f)])

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
