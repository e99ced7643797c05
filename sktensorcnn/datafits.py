"""Data terms on the conv-pool features: the squared loss, and any loss.

Both classes represent, for a flat weight ``w`` (``vec W``), the weighted least
squares term of the linear CNN on centered features and targets::

    f(w) = 1/2 * sum_i s_i (yc_i - <zc_i, w>)^2 / sum_i s_i,

with ``zc_i = z_i - mean(z)`` and ``yc_i = y_i - mean(y)`` (weighted means) when an
intercept is fitted, so that the intercept is ``mean(y) - <mean(z), w>`` and is not
penalized.  With several targets ``y_i`` is a row, ``W`` is ``(L P, n_out)``
(outputs innermost in ``w``) and the term is the sum over the outputs: its
Hessian is ``Zc^T S Zc`` on each output's column of ``W`` (a Kronecker product
with the identity), which the classes use without forming it.  They differ in
what they keep:

* :class:`GramSquared` keeps the sufficient statistics ``Zc^T S Zc`` and
  ``Zc^T S yc``, accumulated chunk by chunk: memory ``O((L P)^2)`` whatever ``n``,
  and each solver iteration is independent of ``n``;
* :class:`FeatureSquared` keeps ``Zc`` itself (``n x L P``): the choice when
  ``L P`` is too large for a Gram matrix.

:func:`squared_datafit` picks one.  :class:`FeatureLoss` serves the other losses
(logistic, multinomial, one-vs-rest), which have no sufficient statistics: it
keeps ``Z`` and evaluates the outputs ``Z W + b`` each time.

Centering uses the fact that ``Z`` is linear in ``X``: the mean of ``Z`` is the
features of the mean sample, so every chunk is centered exactly in the same single
pass.
"""

from __future__ import annotations

import functools

import numpy as np

from ._dask import (
    block_sum,
    is_dask_array,
    map_samples,
    persisted,
    rows_by_block,
    weighted_sum,
)
from .features import conv_pool_features, iter_feature_chunks
from .geometry import ConvPoolGeometry
from .losses import loss_and_gradient

__all__ = [
    "GramSquared", "FeatureSquared", "FeatureLoss", "squared_datafit",
    "ridge_statistics", "ridge_solution", "gcv_alpha", "GRAM_MAX_FEATURES",
]

#: Largest ``L * P`` for which the Gram matrix is used (128 MiB in float64).
GRAM_MAX_FEATURES = 4096
#: Most feature entries ``n * L * P`` a squared-loss fit on a Dask array
#: gathers when the Gram matrix is not used (few samples, many features):
#: 1 GiB in float64.
DASK_MAX_FEATURES = 2**27


class _Squared:
    """Shared pieces: the target statistics and the intercept.  ``y_mean`` is a
    float for one target, ``(n_out,)`` for several."""

    def __init__(self, z_mean, y_mean, yy, weight_sum):
        self.z_mean = z_mean
        self.y_mean = y_mean
        self.yy = yy
        self.weight_sum = weight_sum

    @property
    def n_out(self) -> int:
        return int(np.size(self.y_mean))

    def intercept(self, w: np.ndarray) -> np.ndarray:
        """Intercepts ``(n_out,)`` of the flat weight ``w``."""
        if np.ndim(self.y_mean) == 0:
            return np.array([float(self.y_mean - self.z_mean @ w)])
        return self.y_mean - self.z_mean @ w.reshape(self.z_mean.size, -1)

    def value(self, w: np.ndarray) -> float:
        return self.value_and_gradient(w)[0]


def _on_output(M: np.ndarray, o: int, n_out: int) -> np.ndarray:
    """``M`` ``(m, F)`` as a map onto output ``o``'s entries of a flat weight
    ``(F * n_out)`` (outputs innermost): zero on the other outputs' entries."""
    placed = np.zeros((M.shape[0], M.shape[1] * n_out), dtype=M.dtype)
    placed[:, o::n_out] = M
    return placed


class GramSquared(_Squared):
    """Squared loss through the sufficient statistics (see module docstring):
    ``gram`` ``(F, F)`` and ``zy`` ``(F,)``, or ``(F, n_out)`` for several
    targets."""

    def __init__(self, gram, zy, **stats):
        super().__init__(**stats)
        self.gram = gram
        self.zy = zy

    def value_and_gradient(self, w):
        gw = (self.gram @ w.reshape(self.zy.shape)).ravel()
        value = 0.5 * (self.yy - 2.0 * self.zy.ravel() @ w + w @ gw)
        return max(value, 0.0), gw - self.zy.ravel()

    def normal_equations(self, apply_jacobian):
        """``(J^T H J, J^T r)``: the block's least squares system."""
        rhs = apply_jacobian(self.zy.ravel()[None])[0]
        if self.zy.ndim == 1:
            gj = apply_jacobian(self.gram)
            return apply_jacobian(np.ascontiguousarray(gj.T)), rhs
        lhs = 0.0  # sum over outputs of J_o^T G J_o
        for o in range(self.n_out):
            gj = apply_jacobian(_on_output(self.gram, o, self.n_out))
            lhs = lhs + apply_jacobian(_on_output(np.ascontiguousarray(gj.T), o,
                                                  self.n_out))
        return lhs, rhs


class FeatureSquared(_Squared):
    """Squared loss on centered features kept in memory (see module docstring);
    ``y_centered`` ``(n,)``, or ``(n, n_out)`` for several targets."""

    def __init__(self, features, y_centered, weights, **stats):
        super().__init__(**stats)
        self.features = features
        self.y_centered = y_centered
        self.weights = weights  # normalized to sum to 1

    def value_and_gradient(self, w):
        W = w.reshape((self.features.shape[1], *self.y_centered.shape[1:]))
        residual = self.features @ W.astype(self.features.dtype) - self.y_centered
        if residual.ndim == 1:
            weighted = self.weights * residual
            value = 0.5 * float(weighted @ residual)
            return value, (weighted @ self.features).astype(np.float64)
        weighted = self.weights[:, None] * residual
        value = 0.5 * float(np.sum(weighted * residual))
        return value, (self.features.T @ weighted).astype(np.float64).ravel()

    def normal_equations(self, apply_jacobian):
        if self.y_centered.ndim == 1:
            M = apply_jacobian(self.features).astype(np.float64)
            WM = M * self.weights[:, None]
            return M.T @ WM, WM.T @ self.y_centered
        lhs, rhs = 0.0, 0.0
        for o in range(self.n_out):
            M = apply_jacobian(_on_output(self.features, o, self.n_out)).astype(
                np.float64)
            WM = M * self.weights[:, None]
            lhs, rhs = lhs + M.T @ WM, rhs + WM.T @ self.y_centered[:, o]
        return lhs, rhs


def ridge_solution(datafit: GramSquared | FeatureSquared,
                   alpha: float) -> np.ndarray | None:
    """The unconstrained ridge weight ``argmin f(w) + alpha / 2 ||w||^2``.

    From the Gram matrix (``L P`` features), or for a feature datafit with at
    most :data:`GRAM_MAX_FEATURES` samples from the ``n x n`` kernel matrix
    (``w = Z_s^T (Z_s Z_s^T + alpha I)^{-1} y_s``, ``Z_s`` the features times
    the square roots of the weights): one threshold, on the smaller side of
    ``Z``.  ``None`` when both sides exceed it.
    """
    from .solvers.als import solve_psd

    if isinstance(datafit, GramSquared):
        lhs = datafit.gram + alpha * np.eye(datafit.gram.shape[0])
        return solve_psd(lhs, datafit.zy).ravel()
    if datafit.features.shape[0] > GRAM_MAX_FEATURES:
        return None
    root = np.sqrt(datafit.weights)
    Zs = np.asarray(datafit.features, dtype=np.float64) * root[:, None]
    kernel = Zs @ Zs.T
    kernel[np.diag_indices_from(kernel)] += alpha
    return (Zs.T @ solve_psd(kernel, _rooted(root, datafit.y_centered))).ravel()


def _rooted(root: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Targets ``(n,)`` or ``(n, n_out)`` times the roots of the weights."""
    return root * y if y.ndim == 1 else root[:, None] * y


def squared_datafit(
    X: np.ndarray,
    y: np.ndarray,
    geometry: ConvPoolGeometry,
    sample_weight: np.ndarray | None = None,
    fit_intercept: bool = True,
    use_gram: bool | None = None,
) -> GramSquared | FeatureSquared:
    """Build the squared-loss data term of ``(X, y)`` in one pass over ``X``.

    Parameters
    ----------
    X : ndarray of shape ``(n, *geometry.input_shape)``
    y : ndarray of shape (n,) or (n, n_out)
    geometry : ConvPoolGeometry
    sample_weight : ndarray of shape (n,), optional
    fit_intercept : bool, default=True
    use_gram : bool, optional
        Force the Gram (``True``) or feature (``False``) representation.  By default
        the Gram matrix is used when ``L * P <= n`` and ``L * P * n_out <=
        GRAM_MAX_FEATURES`` (the normal equations of several outputs are
        ``n_out`` times larger).

    Returns
    -------
    GramSquared or FeatureSquared
    """
    n = X.shape[0]
    s = _normalized_weights(sample_weight, n)
    y = np.asarray(y, dtype=np.float64)
    n_features, n_out = geometry.n_features, int(np.prod(y.shape[1:]))
    if use_gram is None:
        use_gram = n_features <= n and n_features * n_out <= GRAM_MAX_FEATURES
    if is_dask_array(X) and not use_gram and n * n_features > DASK_MAX_FEATURES:
        raise ValueError(
            f"A fit on a Dask array with {n_features} conv-pool features (times "
            f"{n_out} targets, more than {GRAM_MAX_FEATURES} or than the {n} "
            f"samples) gathers the {n} x {n_features} features, more than "
            f"{DASK_MAX_FEATURES}; use a larger pool_size or stride, or a "
            "nonlinear activation (fitted by sums of gradients over the blocks).")
    z_mean, y_mean = _means(X, y, geometry, s, fit_intercept)
    if y.ndim == 1:
        y_mean = float(y_mean)
    yc = y - y_mean
    yy = float(s @ yc**2) if y.ndim == 1 else float(np.sum(s @ yc**2))
    stats = dict(z_mean=z_mean, y_mean=y_mean, yy=yy, weight_sum=1.0)
    if use_gram:
        gram, zy = _centered_gram(X, yc.reshape(n, -1), geometry, s, z_mean)
        return GramSquared(gram, zy[:, 0] if y.ndim == 1 else zy, **stats)
    Z = _in_memory_features(X, geometry)
    Z -= z_mean.astype(Z.dtype)
    return FeatureSquared(Z, yc, s, **stats)


def _in_memory_features(X, geometry) -> np.ndarray:
    """The features ``(n, L P)`` in memory (computed block by block from a
    Dask array)."""
    if is_dask_array(X):
        return map_samples(X, functools.partial(_flat_features, geometry=geometry),
                           geometry.n_features, dtype=X.dtype).compute()
    return _flat_features(X, geometry)


def _flat_features(X, geometry) -> np.ndarray:
    return conv_pool_features(X, geometry).reshape(X.shape[0], -1)


#: Largest side of the eigendecomposition behind :func:`gcv_alpha`.
GCV_MAX_SIZE = 4096
#: Most multiply-adds :func:`gcv_alpha` spends forming the smaller Gram matrix
#: of features kept in memory (about ten seconds on two cores).
GCV_MAX_MACS = 10**11


def gcv_alpha(datafit: GramSquared | FeatureSquared, n_samples: int,
              fit_intercept: bool = True, n_alphas: int = 41) -> float | None:
    """Ridge penalty ``alpha`` (on ``f(w) + alpha / 2 ||w||^2``) minimizing the
    generalized cross-validation criterion of the unconstrained ridge fit.

    With ``e_j`` the eigenvalues of the weighted Gram matrix and ``r_j`` the
    squared projections of the targets on its eigenvectors, the ridge fit's
    residual is ``RSS(alpha) = yy - sum_j r_j (1 - (alpha / (e_j + alpha))^2)``
    and its degrees of freedom ``df = sum_j e_j / (e_j + alpha)``; GCV is
    ``RSS / (1 - (df + intercept) / n)^2`` (Golub, Heath and Wahba, 1979), the
    rotation-invariant form of leave-one-out, computed here from the sufficient
    statistics or from the smaller side of the features.  The grid spans
    ``1e-6`` to ``1e2`` times the mean eigenvalue.  ``None`` when neither side
    has at most :data:`GCV_MAX_SIZE` entries, or forming its Gram matrix would
    take more than :data:`GCV_MAX_MACS` (either would dominate the fit).
    """
    if isinstance(datafit, GramSquared):
        e, U = np.linalg.eigh(datafit.gram)
        q = U.T @ datafit.zy
        positive = e > 1e-12 * max(e.max(), 1e-300)
        e, r = e[positive], _summed_squares(q[positive]) / e[positive]
    else:
        Z, s = datafit.features, datafit.weights
        root = np.sqrt(s)[:, None]
        yr = _rooted(root[:, 0], datafit.y_centered)
        n, F = Z.shape
        if n * F * min(n, F) > GCV_MAX_MACS:
            return None
        if Z.shape[1] <= min(GCV_MAX_SIZE, Z.shape[0]):
            Zs = (Z * root).astype(np.float64)
            e, U = np.linalg.eigh(Zs.T @ Zs)
            q = U.T @ (Zs.T @ yr)
            positive = e > 1e-12 * max(e.max(), 1e-300)
            e, r = e[positive], _summed_squares(q[positive]) / e[positive]
        elif Z.shape[0] <= GCV_MAX_SIZE:
            Zs = (Z * root).astype(np.float64)
            e, V = np.linalg.eigh(Zs @ Zs.T)
            r = _summed_squares(V.T @ yr)
        else:
            return None
    e = np.clip(e, 0.0, None)
    scale = float(e.mean()) if e.size and e.mean() > 0 else 1.0
    alphas = scale * np.logspace(-6, 2, n_alphas)
    shrink = alphas[:, None] / (e[None, :] + alphas[:, None])
    rss = datafit.yy - (r[None, :] * (1.0 - shrink**2)).sum(axis=1)
    dof = (1.0 - shrink).sum(axis=1) + int(fit_intercept)
    denominator = 1.0 - dof / n_samples
    gcv = np.where(denominator > 1e-3, np.clip(rss, 0.0, None)
                   / np.maximum(denominator, 1e-3) ** 2, np.inf)
    return float(alphas[int(np.argmin(gcv))])


def _summed_squares(q: np.ndarray) -> np.ndarray:
    """Squares of the projections ``(m,)`` or ``(m, n_out)``, summed over the
    outputs: the ridge fits of several targets share the eigenvectors and the
    degrees of freedom, so GCV sums their residuals."""
    return q**2 if q.ndim == 1 else (q**2).sum(axis=1)


def _normalized_weights(sample_weight, n: int) -> np.ndarray:
    s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    return s / s.sum()


def _means(X, Y, geometry, s, fit_intercept):
    """Weighted means of the features (the features of the mean sample: ``Z`` is
    linear in ``X``) and of the targets; zeros without intercept."""
    if not fit_intercept:
        return np.zeros(geometry.n_features), np.zeros(Y.shape[1:])
    x_mean = (weighted_sum(X, s) if is_dask_array(X)
              else np.tensordot(s, X, axes=1))[None].astype(X.dtype)
    z_mean = conv_pool_features(x_mean, geometry).reshape(-1).astype(np.float64)
    return z_mean, s @ Y


def _centered_gram(X, Yc, geometry, s, z_mean):
    """``Zc^T S Zc`` and ``Zc^T S Yc`` (``Yc`` ``(n, n_out)``) in one chunked pass
    (for a Dask array, one pass over its blocks where they are)."""
    if is_dask_array(X):
        return block_sum(X, _block_gram, (Yc, s), (geometry, z_mean))
    n_features = geometry.n_features
    gram = np.zeros((n_features, n_features))
    zy = np.zeros((n_features, Yc.shape[1]))
    for rows, Z in iter_feature_chunks(X, geometry):
        Zc = Z.reshape(Z.shape[0], -1).astype(np.float64) - z_mean
        SZ = Zc * s[rows, None]
        gram += SZ.T @ Zc
        zy += SZ.T @ Yc[rows]
    return gram, zy


def _block_gram(X, Yc, s, geometry, z_mean):
    return _centered_gram(X, Yc, geometry, s, z_mean)


def ridge_statistics(X, Y, geometry, sample_weight=None, fit_intercept=True):
    """``(Zc^T S Zc, Zc^T S Yc)`` for targets ``Y`` ``(n, n_out)``, or ``None`` when
    ``L * P`` exceeds :data:`GRAM_MAX_FEATURES`: the least squares system of a
    multi-output linear fit on the features (the classifiers' spectral start)."""
    if geometry.n_features > GRAM_MAX_FEATURES:
        return None
    s = _normalized_weights(sample_weight, X.shape[0])
    z_mean, Y_mean = _means(X, Y, geometry, s, fit_intercept)
    return _centered_gram(X, Y - Y_mean, geometry, s, z_mean)


class FeatureLoss:
    """Any loss of :mod:`sktensorcnn.losses` of the linear outputs
    ``F = Z W + b``, ``W`` ``(L P, n_out)``, with the features kept in memory when
    they fit in ``max_bytes`` and recomputed chunk by chunk otherwise.

    ``value_and_gradient(w, b)`` gives ``sum_i s_i loss(F_i, y_i)`` (weights ``s``
    summing to 1) and its gradients with respect to ``vec W`` and ``b``.
    """

    def __init__(self, X, y, geometry, sample_weight=None, *, loss, n_out,
                 max_bytes=2**30):
        self.X, self.y, self.geometry = X, np.asarray(y, np.float64), geometry
        self.weights = _normalized_weights(sample_weight, X.shape[0])
        self.loss, self.n_out = loss, n_out
        in_memory = (X.shape[0] * geometry.n_features * X.itemsize <= max_bytes
                     and not is_dask_array(X))
        self.features = (conv_pool_features(X, geometry).reshape(X.shape[0], -1)
                         if in_memory else None)
        if is_dask_array(X):  # staged where the blocks are, once for the fit
            self.X = persisted(X)
            self._block_rows = (rows_by_block(self.X, self.y),
                                rows_by_block(self.X, self.weights))

    def _chunks(self):
        if self.features is not None:
            yield slice(0, self.X.shape[0]), self.features
            return
        for rows, Z in iter_feature_chunks(self.X, self.geometry):
            yield rows, Z.reshape(Z.shape[0], -1)

    def value_and_gradient(self, w, b):
        Wm = w.reshape(-1, self.n_out)
        if is_dask_array(self.X):  # the features of each block, where it is
            value, grad_W, grad_b = block_sum(
                self.X, _block_feature_terms, self._block_rows,
                (self.geometry, Wm, b, self.loss))
            return value, grad_W.ravel(), grad_b
        value = 0.0
        grad_W = np.zeros(Wm.shape)
        grad_b = np.zeros(self.n_out)
        for rows, Z in self._chunks():
            part = _feature_terms(Z, self.y[rows], self.weights[rows], Wm, b,
                                  self.loss)
            value, grad_W, grad_b = value + part[0], grad_W + part[1], grad_b + part[2]
        return value, grad_W.ravel(), grad_b


def _feature_terms(Z, y, weights, Wm, b, loss):
    """One chunk's weighted loss and its gradients in ``W`` and ``b``."""
    F = Z @ Wm.astype(Z.dtype) + b
    losses, G = loss_and_gradient(loss, F, y)
    G *= weights[:, None]
    return float(weights @ losses), Z.T @ G.astype(Z.dtype), G.sum(axis=0)


def _block_feature_terms(X, y, weights, geometry, Wm, b, loss):
    Z = conv_pool_features(X, geometry).reshape(X.shape[0], -1)
    return _feature_terms(Z, y, weights, Wm, b, loss)
