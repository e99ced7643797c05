"""BLAS path of the network kernels: im2col + matrix products, by chunks of samples.

For large convolutions (many kernel entries times kernels) the numba shift-and-add
loops of :mod:`._cpu_network` run on short rows; gathering each sample's patches
into a ``(M, C L)`` matrix once and multiplying by the ``(C L, K)`` kernel matrix
lets BLAS do the arithmetic, in the input's precision.  Same inputs and outputs as
the numba kernels (the 4-mode canonical layout).
"""

import numba
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..activations import ACTIVATIONS
from . import _cpu_head

_NAMES = list(ACTIVATIONS)
#: Bytes of patches gathered per chunk.
_CHUNK_BYTES = 64 * 2**20


def _patches(X, kernel_size, stride, pad_before, padded_shape, conv_shape):
    """``(b, M, C * L)`` patches of samples ``X`` ``(b, C, d1..d4)``."""
    b, C = X.shape[:2]
    pads = [(0, 0), (0, 0)] + [
        (int(lo), int(D - d - lo))
        for lo, D, d in zip(pad_before, padded_shape, X.shape[2:])
    ]
    Xp = np.pad(X, pads) if any(p != (0, 0) for p in pads) else X
    win = sliding_window_view(Xp, tuple(kernel_size), axis=(2, 3, 4, 5))
    win = win[:, :, ::stride[0], ::stride[1], ::stride[2], ::stride[3]]
    win = win[:, :, :conv_shape[0], :conv_shape[1], :conv_shape[2], :conv_shape[3]]
    # (b, C, m1..m4, l1..l4) -> (b, m1..m4, C, l1..l4), gathered contiguously
    win = np.moveaxis(win, 1, 5)
    M = int(np.prod(conv_shape))
    return np.ascontiguousarray(win).reshape(b, M, -1)


def _chunks(n, per_sample_bytes):
    size = max(1, _CHUNK_BYTES // max(per_sample_bytes, 1))
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def squared_loss_head(Y, Bt_mk, b, y, weights, code):
    """From convolution outputs ``Y`` ``(b, M, K)`` of a chunk (overwritten by
    ``dY``): the chunk's squared loss, ``db``, its part of
    ``D = sum_i g_i act(Y_i)`` ``(M, K)`` and ``dY = g act'(Y) Bt`` -- what every
    matrix path shares after convolving (see :mod:`._cpu_head`)."""
    n_blocks = max(1, min(Y.shape[0], numba.get_num_threads()))
    n, M, K = Y.shape
    loss, D, db = _cpu_head.loss_grad(
        Y.reshape(n, M * K), Bt_mk.reshape(1, M * K), np.array([b], dtype=float),
        y, weights, code, _cpu_head.SQUARED, n_blocks)
    return loss, float(db[0]), D.reshape(M, K), Y


def network_forward(X, A, Bt, b, code, pad_before, padded_shape, stride):
    """As :func:`._cpu_network.network_forward`."""
    n, K = X.shape[0], A.shape[0]
    conv_shape = Bt.shape[1:]
    M = int(np.prod(conv_shape))
    # heavy arrays in the input's precision (float32 stays float32 for BLAS)
    Amat = A.reshape(K, -1).T.astype(X.dtype)  # (C L, K)
    Bt_mk = np.ascontiguousarray(Bt.reshape(K, M).T, dtype=X.dtype)  # (M, K)
    act = ACTIVATIONS[_NAMES[code]][0]
    out = np.empty(n)
    for rows in _chunks(n, M * Amat.shape[0] * X.itemsize):
        P = _patches(X[rows], A.shape[2:], stride, pad_before, padded_shape,
                     conv_shape)
        H = act(P @ Amat)  # (b, M, K)
        out[rows] = np.einsum("bmk,mk->b", H, Bt_mk, dtype=np.float64) + b
    return out


def network_squared_loss_grad(
    X, y, weights, A, Bt, b, code, pad_before, padded_shape, stride
):
    """As :func:`._cpu_network.network_squared_loss_grad`."""
    n, K = X.shape[0], A.shape[0]
    conv_shape = Bt.shape[1:]
    M = int(np.prod(conv_shape))
    Amat = A.reshape(K, -1).T.astype(X.dtype)
    Bt_mk = np.ascontiguousarray(Bt.reshape(K, M).T, dtype=X.dtype)
    loss, db = 0.0, 0.0
    dA = np.zeros((K, Amat.shape[0]))
    D = np.zeros((M, K))
    for rows in _chunks(n, M * Amat.shape[0] * X.itemsize):
        P = _patches(X[rows], A.shape[2:], stride, pad_before, padded_shape,
                     conv_shape)
        part_loss, part_db, part_D, dY = squared_loss_head(
            P @ Amat, Bt_mk, b, y[rows], weights[rows], code)
        loss, db = loss + part_loss, db + part_db
        D += part_D
        dA += dY.reshape(-1, K).T @ P.reshape(-1, P.shape[2])
    return loss, dA.reshape(A.shape), D.T.reshape(Bt.shape), db
