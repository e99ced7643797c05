"""Host side of the CUDA kernels: device data and the launches.

:class:`DeviceSamples` copies a fit's samples, targets and weights to the GPU
once; each evaluation of the network then sends the parameters (kernels, FC
weights, intercepts) and gets back the loss and the gradients (parameter-sized),
never the samples.  A mini-batch is a view holding device row indices.  Dense
kernels convolve directly; Tucker / CP kernels factor by factor (the mode-wise
twins of :mod:`._cpu_factorized`), the core and output mixing as one product.  Samples
are processed in row chunks whose convolution maps fit in
:data:`SCRATCH_BYTES`.
"""

from __future__ import annotations

import copy
import math

import numpy as np
from numba import cuda

from ..geometry import MAX_SPATIAL_MODES, ConvPoolGeometry
from ..losses import target_rows
from . import _cuda
from ._cpu_factorized import _core_matrix, _uncore

#: Bytes of convolution maps (and their gradient) per chunk of samples.
SCRATCH_BYTES = 256 * 2**20
#: Samples per partial sum of the kernel gradient.
GRADIENT_CHUNK = 16


def _blocks(size: int) -> int:
    return max(1, min(math.ceil(size / _cuda.THREADS), _cuda.MAX_BLOCKS))


def _four(values, fill) -> np.ndarray:
    values = list(values)
    return np.array([fill] * (MAX_SPATIAL_MODES - len(values)) + values, np.int64)


def _ones(geometry: ConvPoolGeometry) -> tuple[int, ...]:
    return (1,) * (MAX_SPATIAL_MODES - geometry.n_modes)


def _totals(M) -> np.ndarray:
    """Column sums of a device matrix ``(rows, cols)``, summed on the device and
    returned on the host."""
    out = cuda.device_array(M.shape[1])
    _cuda.column_sums[_blocks(M.shape[1]), _cuda.THREADS](M, out)
    return out.copy_to_host()


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
    X : ndarray of shape ``(n, *geometry.input_shape)``
    geometry : ConvPoolGeometry
    y : ndarray of shape (n,) or (n, n_targets), optional
        Encoded targets (see :mod:`sktensorcnn.losses`), kept as rows.
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
        y = np.zeros((n, 1)) if y is None else target_rows(y)
        weights = (np.ones(n) if sample_weight is None
                   else np.asarray(sample_weight, np.float64))
        self._weights = weights
        self.y = cuda.to_device(np.ascontiguousarray(y))
        self.weights = cuda.to_device(np.ascontiguousarray(weights))
        self.rows = cuda.to_device(np.arange(n, dtype=np.int64))
        self.normalize = normalize
        self.scale = self._scale(weights)
        self._host_X = X
        self._shared = {}  # device data made on demand, shared with the views
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

    def _head(self, Y, Bt, intercept, rows, code, loss_code):
        """Outputs, losses and the backward pass through the head, for the maps
        ``Y`` ``(b, S)`` of ``rows``: per-sample weighted losses ``(b, 1)``,
        ``G`` ``(b, n_out)``, ``dY`` ``(b, S)`` and the unpooled FC gradient
        ``(n_out, S)``, all on the device."""
        b, S = Y.shape
        n_out = Bt.shape[0]
        F = cuda.device_array((b, n_out))
        _cuda.head[b, _cuda.THREADS](Y, Bt, intercept, code, F)
        losses = cuda.device_array((b, 1))
        G = cuda.device_array((b, n_out))
        _cuda.sample_losses[_blocks(b), _cuda.THREADS](
            F, self.y, rows, self.weights, self.scale, loss_code, losses.reshape(b),
            G)
        dY = cuda.device_array((b, S))
        _cuda.map_gradient[_blocks(b * S), _cuda.THREADS](Y, Bt, G, code, dY)
        D = cuda.device_array((n_out, S))
        _cuda.head_gradient[_blocks(n_out * S), _cuda.THREADS](Y, G, code, D)
        return losses, G, dY, D

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
            losses, G, dY, D_d = self._head(Y, Bt_d, b_d, rows, code, loss_code)
            dY6 = dY.reshape(*Y6.shape)
            n_chunks = math.ceil(b / GRADIENT_CHUNK)
            partials = cuda.device_array((n_chunks, *A.shape))
            _cuda.kernel_gradient_partials[_blocks(partials.size), _cuda.THREADS](
                self.X, rows, dY6, self.pad, self.stride, GRADIENT_CHUNK, partials)
            dA += _totals(partials.reshape(n_chunks, A.size))
            loss += float(_totals(losses)[0])
            D += D_d.copy_to_host()
            db += _totals(G)
        return loss, dA.reshape(kernels.shape), D.reshape(Bt.shape), db

    # ------------------------------------------------------------ factorized
    def _padded(self):
        """Zero-padded samples ``(n, C, D_1..D_N)`` on the device (made once)."""
        if "padded" not in self._shared:
            g = self.geometry
            C = g.n_channels or 1
            X = np.asarray(self._host_X, np.float64).reshape(
                self._host_X.shape[0], C, *g.sample_shape)
            Xp = np.pad(X, [(0, 0), (0, 0), *g.padding])
            self._shared["padded"] = cuda.to_device(np.ascontiguousarray(Xp))
        return self._shared["padded"]

    def factorized_loss_grad(self, params, Bt, intercept, code, loss_code, kind):
        """As :func:`sktensorcnn.kernels.factorized_network_loss_grad`, the
        convolution factor by factor on the device."""
        g = self.geometry
        N, C = g.n_modes, g.n_channels or 1
        has_channels = g.n_channels is not None
        factors = [np.asarray(p, np.float64) for p in params]
        if kind == "tucker":
            H_K, core = factors[-2], factors[-1]
            W = _core_matrix(core, g) @ H_K.T
        else:
            W = factors[-1].T  # (R, K)
        spatial = [cuda.to_device(np.ascontiguousarray(f)) for f in factors[:N]]
        channel = (cuda.to_device(np.ascontiguousarray(factors[N]))
                   if has_channels else None)
        W_d = cuda.to_device(np.ascontiguousarray(W))
        Bt_d = cuda.to_device(np.ascontiguousarray(Bt, np.float64).reshape(
            Bt.shape[0], -1))
        b_d = cuda.to_device(np.ascontiguousarray(intercept, np.float64))
        Xp = self._padded()
        n_out, K = Bt.shape[0], W.shape[1]
        M = int(np.prod(g.conv_shape))
        sample = C * int(np.prod(g.padded_shape))
        widest = max([W.shape[0], C, *(f.shape[1] for f in factors[:N])])
        per_sample = 8 * (sample * (2 + 2 * widest) + 4 * K * M)
        size = max(1, SCRATCH_BYTES // per_sample)
        loss, dW, D, db = 0.0, np.zeros(W.shape), np.zeros((n_out, K * M)), \
            np.zeros(n_out)
        grads = [np.zeros(f.shape) for f in factors[:N]]
        d_channel = np.zeros(factors[N].shape) if has_channels else None
        for start in range(0, self.n, size):
            stop = min(start + size, self.n)
            b = stop - start
            rows = self.rows[start:stop]
            Xb = cuda.device_array((b, C, *g.padded_shape))
            _cuda.gather_rows[_blocks(b * sample), _cuda.THREADS](
                Xp.reshape(Xp.shape[0], sample), rows, Xb.reshape(b, sample))
            volume = sample // C  # padded positions per channel
            T = Xb.reshape(b, C, volume)
            if has_channels:
                mixed = cuda.device_array((b, channel.shape[1], volume))
                _cuda.mix[_blocks(mixed.size), _cuda.THREADS](channel, T, mixed)
                T = mixed
            inputs = []
            for j in range(N):
                D_j, m = g.padded_shape[j], g.conv_shape[j]
                I = int(np.prod(g.padded_shape[j + 1:]))
                G = T.shape[1] if kind == "cp" else 1
                Q = T.size // (b * G * D_j * I)
                T5 = T.reshape(b, G, Q, D_j, I)
                out = cuda.device_array((b, spatial[j].shape[1], Q, m, I))
                _cuda.conv_along[_blocks(out.size), _cuda.THREADS](
                    T5, spatial[j], g.stride[j], out)
                inputs.append(T5)
                T = out
            Tm = T.reshape(b, T.size // (b * M), M)
            Y = cuda.device_array((b, K, M))
            _cuda.mix[_blocks(Y.size), _cuda.THREADS](W_d, Tm, Y)
            # the head, as for dense kernels
            Y2 = Y.reshape(b, K * M)
            losses, G_out, dY, D_d = self._head(Y2, Bt_d, b_d, rows, code,
                                                loss_code)
            dY = dY.reshape(b, K, M)
            # back through the mixing product and the modes
            dW += self._chunk_sums(_cuda.mix_partials, Tm, dY, W.shape)
            dT = cuda.device_array(Tm.shape)
            _cuda.unmix[_blocks(dT.size), _cuda.THREADS](W_d, dY, dT)
            for j in reversed(range(N)):
                T5 = inputs[j]
                H = spatial[j]
                dout = dT.reshape(b, H.shape[1], T5.shape[2], g.conv_shape[j],
                                  T5.shape[4])
                grads[j] += self._chunk_sums(
                    _cuda.conv_along_filter_partials, dout, T5, H.shape,
                    g.stride[j])
                if j > 0 or has_channels:
                    dT = cuda.device_array(T5.shape)
                    _cuda.conv_along_input_grad[_blocks(dT.size), _cuda.THREADS](
                        dout, H, g.stride[j], dT)
            if has_channels:
                d_channel += self._chunk_sums(
                    _cuda.mix_partials, Xb.reshape(b, C, volume),
                    dT.reshape(b, channel.shape[1], volume), d_channel.shape)
            loss += float(_totals(losses)[0])
            D += D_d.copy_to_host()
            db += _totals(G_out)
        if has_channels:
            grads.append(d_channel)
        if kind == "tucker":
            core_mat = _core_matrix(core, g)
            grads += [dW.T @ core_mat, _uncore(dW @ H_K, core, g)]
        else:
            grads.append(dW.T)
        return loss, grads, D.reshape(Bt.shape), db

    def _chunk_sums(self, kernel, first, second, shape, *extra):
        """Run a partial-sum kernel over chunks of samples and add the chunks on
        the device: the result ``shape`` on the host."""
        b = first.shape[0]
        n_chunks = math.ceil(b / GRADIENT_CHUNK)
        partials = cuda.device_array((n_chunks, *shape))
        if extra:  # conv_along_filter_partials(dout, T, stride, chunk, partials)
            kernel[_blocks(partials.size), _cuda.THREADS](
                first, second, extra[0], GRADIENT_CHUNK, partials)
        else:
            kernel[_blocks(partials.size), _cuda.THREADS](
                first, second, GRADIENT_CHUNK, partials)
        return _totals(partials.reshape(n_chunks, int(np.prod(shape)))).reshape(
            shape)
