"""Host side of the CUDA kernels: device data and the launches.

:class:`DeviceSamples` copies a fit's samples, targets and weights to the GPU
once; each evaluation of the network then sends the parameters (kernels, FC
weights, intercepts) and gets back the loss and the gradients (parameter-sized),
never the samples.  A mini-batch is a view holding device row indices.  Samples
are processed in row chunks whose convolution maps fit in
:data:`SCRATCH_BYTES`.
"""

from __future__ import annotations

import copy
import math

import numpy as np
from numba import cuda

from ..geometry import MAX_SPATIAL_MODES, ConvPoolGeometry
from . import _cuda

#: Bytes of convolution maps (and their gradient) per chunk of samples.
SCRATCH_BYTES = 256 * 2**20
#: Samples per partial sum of the kernel gradient.
GRADIENT_CHUNK = 16


def _blocks(size: int) -> int:
    return max(1, min(math.ceil(size / _cuda.THREADS), 65535))


def _four(values, fill) -> np.ndarray:
    values = list(values)
    return np.array([fill] * (MAX_SPATIAL_MODES - len(values)) + values, np.int64)


def _ones(geometry: ConvPoolGeometry) -> tuple[int, ...]:
    return (1,) * (MAX_SPATIAL_MODES - geometry.n_modes)


def _canonical_samples(X: np.ndarray, geometry: ConvPoolGeometry) -> np.ndarray:
    C = geometry.n_channels or 1
    return np.ascontiguousarray(X, dtype=np.float64).reshape(
        X.shape[0], C, *_ones(geometry), *geometry.sample_shape)


def conv_pool_features(X: np.ndarray, geometry: ConvPoolGeometry) -> np.ndarray:
    """Conv-pool features computed on the GPU, returned on the host (float64)."""
    n = X.shape[0]
    ones, C = _ones(geometry), geometry.n_channels or 1
    X_dev = cuda.to_device(_canonical_samples(X, geometry))
    Z = cuda.device_array((n, *ones, *geometry.kernel_size, C, *ones,
                           *geometry.pooled_shape))
    _cuda.features[_blocks(Z.size), _cuda.THREADS](
        X_dev, _four([lo for lo, _ in geometry.padding], 0),
        _four(geometry.stride, 1), _four(geometry.pool_size, 1),
        _four(geometry.pool_stride, 1), 1.0 / float(np.prod(geometry.pool_size)), Z)
    return Z.copy_to_host().reshape(n, *geometry.feature_shape)


class DeviceSamples:
    """Samples, targets and sample weights kept on the GPU for a fit.

    Parameters
    ----------
    X : ndarray of shape (n, *geometry.input_shape)
    geometry : ConvPoolGeometry
    y : ndarray of shape (n,), optional
        Encoded targets (see :mod:`sktensorcnn.losses`).
    sample_weight : ndarray of shape (n,), optional
        Weights; each evaluation normalizes those of its rows to sum to 1 (unless
        ``normalize=False``: taken as they are, as the CPU kernels do).
    """

    def __init__(self, X, geometry: ConvPoolGeometry, y=None, sample_weight=None,
                 normalize: bool = True):
        n = X.shape[0]
        self.geometry = geometry
        self.n = n
        self.X = cuda.to_device(_canonical_samples(X, geometry))
        y = np.zeros(n) if y is None else np.asarray(y, np.float64)
        weights = (np.ones(n) if sample_weight is None
                   else np.asarray(sample_weight, np.float64))
        self._weights = weights
        self.y = cuda.to_device(np.ascontiguousarray(y))
        self.weights = cuda.to_device(np.ascontiguousarray(weights))
        self.rows = cuda.to_device(np.arange(n, dtype=np.int64))
        self.normalize = normalize
        self.scale = self._scale(weights)
        self.pad = cuda.to_device(_four([lo for lo, _ in geometry.padding], 0))
        self.stride = cuda.to_device(_four(geometry.stride, 1))

    def take(self, rows) -> DeviceSamples:
        """The mini-batch ``rows`` (indices into the samples): a view."""
        rows = np.asarray(rows, dtype=np.int64)
        view = copy.copy(self)
        view.rows = cuda.to_device(rows)
        view.n = rows.size
        view.scale = self._scale(self._weights[rows])
        return view

    def _scale(self, weights) -> float:
        total = float(weights.sum())
        return 1.0 / total if self.normalize and total > 0 else 1.0

    # ------------------------------------------------------------ helpers
    def _chunks(self, n_kernels: int):
        per_sample = 2 * n_kernels * int(np.prod(self.geometry.conv_shape)) * 8
        size = max(1, SCRATCH_BYTES // per_sample)
        for start in range(0, self.n, size):
            yield start, min(start + size, self.n)

    def _parameters(self, kernels, Bt, intercept):
        g = self.geometry
        K = kernels.shape[0]
        C = g.n_channels or 1
        A = np.ascontiguousarray(kernels, np.float64).reshape(
            K, C, *_ones(g), *g.kernel_size)
        Bt_flat = np.ascontiguousarray(Bt, np.float64).reshape(Bt.shape[0], -1)
        return (cuda.to_device(A), cuda.to_device(Bt_flat),
                cuda.to_device(np.ascontiguousarray(intercept, np.float64)))

    def _maps(self, A, rows, b):
        """Convolution maps ``(b, K, m...)`` of ``b`` rows."""
        g = self.geometry
        Y = cuda.device_array((b, A.shape[0], *_ones(g), *g.conv_shape))
        _cuda.convolve[_blocks(Y.size), _cuda.THREADS](
            self.X, rows, A, self.pad, self.stride, Y)
        return Y

    # ------------------------------------------------------------ network
    def forward(self, kernels, Bt, intercept, code) -> np.ndarray:
        """Network outputs ``(n, n_out)`` (see
        :func:`sktensorcnn.kernels.network_forward`)."""
        A, Bt_d, b_d = self._parameters(kernels, Bt, intercept)
        out = np.empty((self.n, Bt.shape[0]))
        for start, stop in self._chunks(kernels.shape[0]):
            b = stop - start
            Y = self._maps(A, self.rows[start:stop], b)
            F = cuda.device_array((b, Bt.shape[0]))
            _cuda.head[b, _cuda.THREADS](Y.reshape(b, Y.size // b), Bt_d, b_d, code,
                                         F)
            out[start:stop] = F.copy_to_host()
        return out

    def loss_grad(self, kernels, Bt, intercept, code, loss_code):
        """Weighted loss, ``dkernels``, ``D`` (unpooled FC gradient, shape of
        ``Bt``) and ``db`` (see :func:`sktensorcnn.kernels.network_loss_grad`)."""
        A, Bt_d, b_d = self._parameters(kernels, Bt, intercept)
        n_out, K = Bt.shape[0], kernels.shape[0]
        S = Bt_d.shape[1]
        loss, dA = 0.0, np.zeros(A.size)
        D, db = np.zeros((n_out, S)), np.zeros(n_out)
        for start, stop in self._chunks(K):
            b = stop - start
            rows = self.rows[start:stop]
            Y6 = self._maps(A, rows, b)
            Y = Y6.reshape(b, S)
            F = cuda.device_array((b, n_out))
            _cuda.head[b, _cuda.THREADS](Y, Bt_d, b_d, code, F)
            losses = cuda.device_array((b, 1))
            G = cuda.device_array((b, n_out))
            _cuda.sample_losses[_blocks(b), _cuda.THREADS](
                F, self.y, rows, self.weights, self.scale, loss_code,
                losses.reshape(b), G)
            dY6 = cuda.device_array(Y6.shape)
            _cuda.map_gradient[_blocks(b * S), _cuda.THREADS](
                Y, Bt_d, G, code, dY6.reshape(b, S))
            D_d = cuda.device_array((n_out, S))
            _cuda.head_gradient[_blocks(n_out * S), _cuda.THREADS](Y, G, code, D_d)
            n_chunks = math.ceil(b / GRADIENT_CHUNK)
            partials = cuda.device_array((n_chunks, *A.shape))
            _cuda.kernel_gradient_partials[_blocks(partials.size), _cuda.THREADS](
                self.X, rows, dY6, self.pad, self.stride, GRADIENT_CHUNK, partials)
            dA_d = cuda.device_array(A.size)
            _cuda.column_sums[_blocks(A.size), _cuda.THREADS](
                partials.reshape(n_chunks, A.size), dA_d)
            sums = cuda.device_array(1)
            _cuda.column_sums[1, _cuda.THREADS](losses, sums)
            db_d = cuda.device_array(n_out)
            _cuda.column_sums[_blocks(n_out), _cuda.THREADS](G, db_d)
            loss += float(sums.copy_to_host()[0])
            dA += dA_d.copy_to_host()
            D += D_d.copy_to_host()
            db += db_d.copy_to_host()
        return loss, dA.reshape(kernels.shape), D.reshape(Bt.shape), db
