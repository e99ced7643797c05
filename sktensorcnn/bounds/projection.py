"""Compression by random projection ([Compression bounds], Algorithms 1 and 4).

A layer's weights ``A`` (``D`` numbers) are replaced by ``k`` numbers, their
inner products with random matrices fixed before the data are seen (the
*helper string*: here the integer seed), and rebuilt as
``A_hat = (1/k) sum_t <A, M_t> M_t``.  ``A_hat`` is unbiased, and its error acts
on any fixed input like spread-out noise, which a noise-stable network damps.

* :func:`matrix_project` is Algorithm 1 (random sign matrices), used for the
  FC layer and, optionally, for the convolution kernel shared by every
  position;
* :func:`matrix_project_conv` is Algorithm 4: one filter per convolution
  output position, drawn ``p``-wise independently from a random subspace of
  dimension ``k p`` so that the stored parameters are the ``k p`` coordinates
  of ``A`` in it;
* :func:`project_compress` compresses a fitted network with them and measures
  how far its outputs moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.utils import check_random_state

from ..activations import ACTIVATIONS
from ..network import _spread
from ._network import TwoLayerNetwork, dense_twin, ratio, validated_samples

__all__ = ["CompressedNetwork", "Compression", "matrix_project",
           "matrix_project_conv", "output_change", "project_compress"]

_CHUNK = 1 << 20  # entries of random matrices drawn at a time


def _seed(random_state) -> int:
    """The helper string: an integer seed (drawn once if not given)."""
    if isinstance(random_state, Integral):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def matrix_project(A, *, k: int, random_state=None):
    """Algorithm 1 of [Compression bounds]: ``k`` random sign projections.

    With ``k`` of order ``log(1 / eta) / eps**2`` every fixed bilinear form is
    kept to ``|u^T A_hat v - u^T A v| < eps ||A||_F ||u|| ||v||`` with
    probability at least ``1 - eta`` (Lemma 2, which leaves the constant
    out: ``k = 4 log(2 / eta) / eps**2`` is enough, by the sub-Gaussian tail
    of each projection; ``log(1 / eta) / eps**2`` alone fails more often than
    ``eta`` for small ``eta``).  ``||A_hat - A||_F`` itself is large when
    ``k`` is below ``A.size``: judge a compression by the outputs it gives.

    Parameters
    ----------
    A : array-like
        The weights, of any shape.
    k : int
        Number of projections: the compressed layer's parameter count.
    random_state : int, RandomState instance or None
        The helper string.  An int reproduces the sign matrices (and so
        ``A_hat`` from the coefficients alone).

    Returns
    -------
    coefficients : ndarray of shape (k,)
        ``<A, M_t>``, the compressed parameters.
    A_hat : ndarray, shape of ``A``
    """
    A = np.asarray(A, np.float64)
    if not isinstance(k, Integral) or k < 1:
        raise ValueError(f"k={k!r} must be a positive integer.")
    rng = np.random.RandomState(_seed(random_state))
    a = A.ravel()
    coefficients = np.empty(k)
    rebuilt = np.zeros_like(a)
    step = max(1, _CHUNK // a.size)
    for start in range(0, k, step):
        signs = rng.randint(0, 2, size=(min(step, k - start), a.size)) * 2.0 - 1.0
        z = signs @ a
        coefficients[start:start + len(z)] = z
        rebuilt += signs.T @ z
    return coefficients, (rebuilt / k).reshape(A.shape)


def matrix_project_conv(A, n_positions: int, *, k: int, p: int, random_state=None):
    """Algorithm 4 of [Compression bounds]: a ``p``-wise independent filter
    per convolution output position.

    A random subspace ``S`` of dimension ``k p`` (of the ``D = A.size``
    dimensional kernel space) is drawn first; each position ``t`` then gets
    ``A_hat_t = (1/k) sum_s <A, M'_s> M'_s`` with ``M'_s = sqrt(D / (k p))
    Proj_S(G_s)`` for Gaussian ``G_s`` (drawn directly in ``S``'s
    coordinates).  Every ``A_hat_t`` depends on ``A``
    through its ``k p`` coordinates in ``S`` only (Lemma 11), and is unbiased
    over the helper string.  With ``k p >= D``, ``S`` is the whole space.

    Parameters
    ----------
    A : array-like
        The kernel tensor (``K x C x l_1 x ... x l_N``).
    n_positions : int
        Convolution output positions ``n'``.
    k, p : int
        Projections per position and independence order.
    random_state : int, RandomState instance or None
        The helper string.

    Returns
    -------
    coefficients : ndarray of shape (min(k p, D),)
        ``A``'s coordinates in ``S``: the compressed parameters.
    A_hat : ndarray of shape ``(n_positions, *A.shape)``
    """
    A = np.asarray(A, np.float64)
    for name, value in (("k", k), ("p", p), ("n_positions", n_positions)):
        if not isinstance(value, Integral) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer.")
    rng = np.random.RandomState(_seed(random_state))
    D = A.size
    dim = min(k * p, D)
    if dim < D:
        basis, _ = np.linalg.qr(rng.standard_normal((D, dim)))
    else:
        basis = np.eye(D)
    coefficients = basis.T @ A.ravel()
    # M'_s = sqrt(D / dim) Q g_s, g_s ~ N(0, I_dim): E[M' M'^T] = I over S and g
    scale = D / (dim * k)
    in_subspace = np.empty((n_positions, dim))
    for t in range(n_positions):
        G = rng.standard_normal((k, dim))
        in_subspace[t] = scale * (G.T @ (G @ coefficients))
    return coefficients, (in_subspace @ basis.T).reshape(n_positions, *A.shape)


def _patches(X: np.ndarray, geometry) -> np.ndarray:
    """``(n, n', C * L)``: each convolution output position's input patch."""
    N = geometry.n_modes
    Xc = X if geometry.n_channels is not None else X[:, None]
    Xp = np.pad(Xc, [(0, 0), (0, 0), *geometry.padding])
    windows = sliding_window_view(Xp, geometry.kernel_size, axis=tuple(range(2, N + 2)))
    windows = windows[(slice(None), slice(None),
                       *(slice(None, None, s) for s in geometry.stride))]
    windows = np.moveaxis(windows, 1, N + 1)  # (n, m..., C, l...)
    return windows.reshape(X.shape[0], int(np.prod(geometry.conv_shape)), -1)


class CompressedNetwork:
    """A network whose convolution uses a different filter at every output
    position: what Algorithm 4 of [Compression bounds] compresses a
    convolution into.  It predicts like the estimator it came from (same
    input checks, same classes) but cannot be refitted.

    Attributes
    ----------
    estimator_ : fitted sktensorcnn estimator
        The network before compression.
    position_kernels_ : ndarray of shape (n', K, C * L)
    fc_weights_ : ndarray of shape (n_out, K, P)
    intercept_ : ndarray of shape (n_out,)
    """

    def __init__(self, estimator, position_kernels, fc_weights, intercept):
        self.estimator_ = estimator
        self.position_kernels_ = position_kernels
        self.fc_weights_ = fc_weights
        self.intercept_ = intercept

    def __repr__(self) -> str:
        n_positions, K = self.position_kernels_.shape[:2]
        return (f"CompressedNetwork({type(self.estimator_).__name__}, "
                f"{n_positions} positions x {K} kernels)")

    @property
    def classes_(self):
        return self.estimator_.classes_

    def _outputs(self, X) -> np.ndarray:
        est = self.estimator_
        X = validated_samples(est, X)
        n_out = self.fc_weights_.shape[0]
        Bt = _spread(self.fc_weights_.reshape(n_out, -1, *est.geometry_.pooled_shape),
                     est.geometry_).reshape(n_out, -1)
        x1 = np.einsum("ntj,tkj->nkt", _patches(X, est.geometry_),
                       self.position_kernels_)
        z = ACTIVATIONS[est.activation][0](x1)
        return z.reshape(X.shape[0], -1) @ Bt.T + self.intercept_

    def decision_function(self, X) -> np.ndarray:
        """Network outputs, shaped as the estimator's ``decision_function``."""
        out = self._outputs(X)
        return out[:, 0] if out.shape[1] == 1 else out

    def predict(self, X) -> np.ndarray:
        """Predictions, as the estimator makes them from its outputs."""
        out = self._outputs(X)
        if not hasattr(self.estimator_, "classes_"):
            return out[:, 0] if out.shape[1] == 1 else out
        codes = (out[:, 0] > 0).astype(int) if out.shape[1] == 1 else out.argmax(1)
        return self.classes_[codes]

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy (classifiers) or R^2 (regressors), as the estimator scores."""
        return type(self.estimator_).score(self, X, y, sample_weight=sample_weight)


@dataclass(frozen=True)
class Compression:
    """A compressed network and how far its outputs moved on a sample.

    Attributes
    ----------
    estimator : estimator
        The compressed network; it predicts (``predict``, ``decision_function``,
        ``score``).
    n_params : int
        Parameters that describe it given the helper string.
    n_params_layers : tuple of int
        Of the convolution and of the FC layer.
    output_change : ndarray of shape (n_samples,)
        ``||f(x) - f_hat(x)||_2``.
    relative_change : ndarray of shape (n_samples,)
        ``output_change / ||f(x) - b||``.
    method : str
    """

    estimator: object
    n_params: int
    n_params_layers: tuple
    output_change: np.ndarray
    relative_change: np.ndarray
    method: str

    @property
    def max_relative_change(self) -> float:
        return float(np.max(self.relative_change))


def output_change(estimator, compressed, X) -> tuple[np.ndarray, np.ndarray]:
    """``||f - f_hat||`` per sample and that over ``||f - b||``."""
    net = TwoLayerNetwork.of(estimator)
    Xv = validated_samples(estimator, X)
    f_hat = compressed._outputs(X) if isinstance(compressed, CompressedNetwork) \
        else compressed._decision(X)
    change = np.linalg.norm(estimator._decision(X) - f_hat, axis=1)
    f0 = np.linalg.norm(net.top(net.activate(net.preactivations(Xv))), axis=1)
    return change, ratio(change, f0)


def project_compress(estimator, X, *, k, conv: str | None = "per_position",
                     p: int = 4, random_state=None) -> Compression:
    """Compress a fitted network by random projection and measure it on ``X``.

    Parameters
    ----------
    estimator : fitted sktensorcnn estimator
    X : array-like of shape ``(n_samples, *input_shape_)``
    k : int or (int or None, int or None)
        Projections of the convolution and of the FC layer (``None`` leaves a
        layer as it is; one int applies to both).  :func:`compression_bound`
        gives the values [Compression bounds]' Lemma 3 asks for.
    conv : {'per_position', 'shared'} or None, default='per_position'
        ``'per_position'``: Algorithm 4 (the convolution analysed by
        Theorem 5.1); the result is a :class:`CompressedNetwork`.
        ``'shared'``: Algorithm 1 on the kernel tensor, one filter for every
        position (noise correlated across positions, so it needs a smaller
        error); the result is a dense estimator of the same family.
    p : int, default=4
        Independence order of Algorithm 4 (``log(1/eta)`` in the paper).
    random_state : int, RandomState instance or None
        The helper string.

    Returns
    -------
    Compression
    """
    if conv not in ("per_position", "shared", None):
        raise ValueError(f"conv={conv!r} must be 'per_position', 'shared' or None.")
    k_conv, k_fc = (k, k) if k is None or isinstance(k, Integral) else k
    if conv is None:
        k_conv = None
    seed = _seed(random_state)
    kernel_params, fc, intercept = estimator._kernel_params_and_head()
    fc = np.asarray(fc, float).reshape(estimator._n_out, estimator.n_kernels_, -1)
    n_fc = fc.size
    if k_fc is not None:
        _, fc = matrix_project(fc, k=k_fc, random_state=seed + 1)
        n_fc = k_fc
    kernels = np.asarray(estimator.kernels_, float)
    geometry = estimator.geometry_
    if k_conv is None or conv == "shared":
        if k_conv is not None:
            _, kernels = matrix_project(kernels, k=k_conv, random_state=seed)
            n_conv = k_conv
            compressed = dense_twin(estimator, kernels, fc, intercept)
        else:
            n_conv = int(estimator.n_params_) - fc.size - len(np.ravel(intercept))
            compressed = estimator._with_network(kernel_params, fc, intercept)
    else:
        n_positions = int(np.prod(geometry.conv_shape))
        coefficients, per_position = matrix_project_conv(
            kernels, n_positions, k=k_conv, p=p, random_state=seed)
        n_conv = coefficients.size
        compressed = CompressedNetwork(
            estimator, per_position.reshape(n_positions, kernels.shape[0], -1),
            fc, np.asarray(intercept, float).reshape(-1))
    change, relative = output_change(estimator, compressed, X)
    return Compression(compressed, int(n_conv + n_fc), (int(n_conv), int(n_fc)),
                       change, relative, f"projection ({conv or 'fc only'})")

