"""A fitted estimator seen as the two-layer network the bounds speak of.

``x -> x1 = A * x`` (the convolution, no bias) ``-> z = act(x1) -> f = Bt z + b``,
with the average pooling folded into the FC layer: ``Bt = B x_j Pool_j^T`` has
shape ``(M, K, m_1, ..., m_N)``, one row per output, and acts on the activations
before pooling.  Pooling is linear, so this is the same network, exactly; it
keeps the definitions of [Compression bounds] (layer ``i`` is a linear map
applied to the activated output of layer ``i - 1``) without a pooling layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import LinearOperator
from sklearn.utils.validation import check_is_fitted

from ..activations import ACTIVATIONS
from ..geometry import ConvPoolGeometry
from ..network import _spread, pooled_activations

__all__ = ["TwoLayerNetwork", "conv_operator"]


@dataclass(frozen=True)
class TwoLayerNetwork:
    """The fitted network as ``f(x) = Bt act(A * x) + b``.

    Attributes
    ----------
    kernels : ndarray of shape (K, [C], l_1, ..., l_N)
    spread_fc : ndarray of shape (M, K, m_1, ..., m_N)
        The FC weights spread onto the convolution outputs (pooling folded in).
    intercept : ndarray of shape (M,)
    geometry : ConvPoolGeometry
    activation : str
    """

    kernels: np.ndarray
    spread_fc: np.ndarray
    intercept: np.ndarray
    geometry: ConvPoolGeometry
    activation: str

    @classmethod
    def of(cls, estimator) -> TwoLayerNetwork:
        """The network of a fitted sktensorcnn estimator."""
        if not hasattr(estimator, "_kernel_params_and_head"):
            raise TypeError(
                f"estimator must be a fitted sktensorcnn estimator (CNNRegressor, "
                f"TuckerCNNClassifier, ...); got {type(estimator).__name__}."
            )
        check_is_fitted(estimator)
        fc, intercept = estimator._head()
        return cls(np.asarray(estimator.kernels_, np.float64),
                   _spread(fc, estimator.geometry_), intercept,
                   estimator.geometry_, estimator.activation)

    @property
    def n_kernels(self) -> int:
        return self.kernels.shape[0]

    @property
    def n_outputs(self) -> int:
        return self.spread_fc.shape[0]

    @property
    def n_positions(self) -> int:
        """``n^1 = prod m_j``: convolution output positions per kernel."""
        return int(np.prod(self.geometry.conv_shape))

    @property
    def overlap(self) -> int:
        """``omega = prod ceil(l_j / s_j)``: the most patches one input entry
        falls in ([Compression bounds]' ``ceil(kappa / s)^2`` in 2-d)."""
        g = self.geometry
        return int(np.prod([-(-l // s) for l, s in zip(g.kernel_size, g.stride)]))

    def fc_matrix(self) -> np.ndarray:
        """``Bt`` as an ``(M, K * n^1)`` matrix."""
        return self.spread_fc.reshape(self.n_outputs, -1)

    def preactivations(self, X: np.ndarray) -> np.ndarray:
        """``x1 = A * x``: ``(n, K, m_1, ..., m_N)``."""
        return pooled_activations(X, self.kernels, self.geometry, "identity",
                                  pool=False)

    def activate(self, x1: np.ndarray) -> np.ndarray:
        return ACTIVATIONS[self.activation][0](x1)

    def slope(self, x1: np.ndarray) -> np.ndarray:
        """The activation's derivative at ``x1`` (the Jacobian's diagonal)."""
        return ACTIVATIONS[self.activation][1](x1)

    def top(self, z: np.ndarray) -> np.ndarray:
        """The bias-free second layer ``Bt z``: ``(n, M)``."""
        return z.reshape(z.shape[0], -1) @ self.fc_matrix().T


def ratio(numerator, denominator):
    """``numerator / denominator``, ``inf`` where the denominator is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0,
                                                             denominator, 1), np.inf)


def validated_samples(estimator, X) -> np.ndarray:
    """``X`` checked as ``estimator`` checks it, in its internal layout, float64."""
    check_is_fitted(estimator)
    return np.asarray(estimator._validate_X(X, reset=False), np.float64)


def _offset_slices(geometry: ConvPoolGeometry, offset) -> tuple[slice, ...]:
    return tuple(slice(a, a + s * (m - 1) + 1, s)
                 for a, s, m in zip(offset, geometry.stride, geometry.conv_shape))


def conv_operator(kernels: np.ndarray, geometry: ConvPoolGeometry) -> LinearOperator:
    """The convolution of one sample as a linear operator (zero padding and
    stride included), with its adjoint: for operator norms by iteration.

    Parameters
    ----------
    kernels : ndarray of shape (K, [C], l_1, ..., l_N)
    geometry : ConvPoolGeometry

    Returns
    -------
    LinearOperator of shape ``(K * prod m_j, [C] * prod d_j)``
    """
    A = np.asarray(kernels, np.float64)
    if geometry.n_channels is None:
        A = A[:, None]
    K, C = A.shape[:2]
    in_shape, out_shape = (C, *geometry.sample_shape), (K, *geometry.conv_shape)
    pads = [(0, 0), *geometry.padding]
    inner = tuple(slice(lo, lo + d) for (lo, _), d in zip(geometry.padding,
                                                          geometry.sample_shape))
    offsets = list(np.ndindex(*geometry.kernel_size))

    def matvec(x):
        xp = np.pad(np.reshape(x, in_shape), pads)
        y = np.zeros(out_shape)
        for a in offsets:
            y += np.tensordot(A[(slice(None), slice(None), *a)],
                              xp[(slice(None), *_offset_slices(geometry, a))], axes=1)
        return y.ravel()

    def rmatvec(y):
        y = np.reshape(y, out_shape)
        xp = np.zeros((C, *geometry.padded_shape))
        for a in offsets:
            xp[(slice(None), *_offset_slices(geometry, a))] += np.tensordot(
                A[(slice(None), slice(None), *a)].T, y, axes=1)
        return xp[(slice(None), *inner)].ravel()

    return LinearOperator((int(np.prod(out_shape)), int(np.prod(in_shape))),
                          matvec=matvec, rmatvec=rmatvec, dtype=np.float64)


def operator_norm(operator: LinearOperator) -> float:
    """Largest singular value of ``operator`` (exact for small ones)."""
    n_rows, n_cols = operator.shape
    if n_cols <= 512:
        return float(np.linalg.norm(operator @ np.eye(n_cols), 2))
    if n_rows <= 512:
        return float(np.linalg.norm(operator.T @ np.eye(n_rows), 2))
    from scipy.sparse.linalg import svds

    return float(svds(operator, k=1, return_singular_vectors=False,
                      random_state=0)[0])


def dense_twin(estimator, kernels: np.ndarray, fc: np.ndarray, intercept):
    """A fitted dense estimator (``CNNClassifier`` / ``CNNRegressor``) with the
    geometry and activation of ``estimator`` and the given kernels ``(K, [C],
    l...)``, FC weights and intercept: what a compression that does not keep
    a Tucker or CP structure gives."""
    from ..classification import CNNClassifier
    from ..regression import CNNRegressor

    dense_class = CNNClassifier if hasattr(estimator, "classes_") else CNNRegressor
    if isinstance(estimator, dense_class):
        base = estimator
    else:
        shared = dense_class().get_params()
        base = dense_class(**{name: value for name, value in
                              estimator.get_params().items() if name in shared})
        base.__dict__.update({k: v for k, v in estimator.__dict__.items()
                              if k.endswith("_") and not k.startswith("__")
                              and k not in ("core_", "factors_", "ranks_")})
        base._n_out = estimator._n_out
        base.constraint_ = "rank"
    geometry = estimator.geometry_
    stacked = np.moveaxis(np.asarray(kernels, np.float64), 0, -1)  # (..., K)
    if geometry.n_channels is not None:  # (C, l..., K) -> (l..., C, K)
        stacked = np.moveaxis(stacked, 0, -2)
    return base._with_network([stacked], fc, intercept, n_kernels=kernels.shape[0])
