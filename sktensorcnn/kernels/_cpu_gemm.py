"""BLAS path of the network kernels: im2col + matrix products, by chunks of samples.

For large convolutions (many kernel entries times kernels) the numba shift-and-add
loops of :mod:`._cpu_network` run on short rows; gathering each sample's patches
into a ``(M, C L)`` matrix once and multiplying by the ``(C L, K)`` kernel matrix
lets BLAS do the arithmetic, in the input's precision.  Same inputs and outputs as
the numba kernels (the 4-mode canonical layout).
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import _cpu_head
from ._memory import CHUNK_BYTES
from ._threads import n_blocks_for


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
    size = max(1, CHUNK_BYTES // max(per_sample_bytes, 1))
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def flat_head_weights(Bt, dtype):
    """``Bt`` ``(n_out, K, m...)`` -> ``(n_out, M K)`` in the ``(b, M, K)`` order of
    the convolution outputs, in the data's precision."""
    n_out, K = Bt.shape[:2]
    return np.ascontiguousarray(
        np.swapaxes(Bt.reshape(n_out, K, -1), 1, 2), dtype=dtype
    ).reshape(n_out, -1)


def loss_head(Y, Bt_flat, b, y, weights, code, loss_code):
    """From convolution outputs ``Y`` ``(b, M, K)`` of a chunk (overwritten by
    ``dY``): the chunk's loss, ``db`` ``(n_out,)``, its part of
    ``D[o] = sum_i G_io act(Y_i)`` ``(n_out, M, K)`` and ``dY`` -- what every
    matrix path shares after convolving (see :mod:`._cpu_head`)."""
    n, M, K = Y.shape
    n_blocks = n_blocks_for(n, 3 * M * K * Bt_flat.shape[0])
    loss, D, db = _cpu_head.loss_grad(Y.reshape(n, M * K), Bt_flat, b, y, weights,
                                      code, loss_code, n_blocks)
    return loss, db, D.reshape(-1, M, K), Y


def unflatten_head_grad(D, Bt):
    """``(n_out, M, K)`` -> the layout of ``Bt`` ``(n_out, K, m...)``."""
    return np.ascontiguousarray(np.swapaxes(D, 1, 2)).reshape(Bt.shape)


def network_forward(X, A, Bt, b, code, pad_before, padded_shape, stride):
    """As :func:`._cpu_network.network_forward`."""
    n, K = X.shape[0], A.shape[0]
    conv_shape = Bt.shape[2:]
    M = int(np.prod(conv_shape))
    # heavy arrays in the input's precision (float32 stays float32 for BLAS)
    Amat = A.reshape(K, -1).T.astype(X.dtype)  # (C L, K)
    Bt_flat = flat_head_weights(Bt, X.dtype)
    out = np.empty((n, Bt.shape[0]))
    for rows in _chunks(n, M * Amat.shape[0] * X.itemsize):
        P = _patches(X[rows], A.shape[2:], stride, pad_before, padded_shape,
                     conv_shape)
        Y = P @ Amat  # (b, M, K)
        out[rows] = _cpu_head.outputs(Y.reshape(Y.shape[0], -1), Bt_flat, b, code)
    return out


def network_loss_grad(
    X, y, weights, A, Bt, b, code, loss_code, pad_before, padded_shape, stride
):
    """As :func:`._cpu_network.network_loss_grad`."""
    n, K = X.shape[0], A.shape[0]
    conv_shape = Bt.shape[2:]
    M = int(np.prod(conv_shape))
    Amat = A.reshape(K, -1).T.astype(X.dtype)
    Bt_flat = flat_head_weights(Bt, X.dtype)
    loss, db = 0.0, np.zeros(Bt.shape[0])
    dA = np.zeros((K, Amat.shape[0]))
    D = np.zeros((Bt.shape[0], M, K))
    for rows in _chunks(n, M * Amat.shape[0] * X.itemsize):
        P = _patches(X[rows], A.shape[2:], stride, pad_before, padded_shape,
                     conv_shape)
        part_loss, part_db, part_D, dY = loss_head(
            P @ Amat, Bt_flat, b, y[rows], weights[rows], code, loss_code)
        loss, db = loss + part_loss, db + part_db
        D += part_D
        dA += dY.reshape(-1, K).T @ P.reshape(-1, P.shape[2])
    return loss, dA.reshape(A.shape), unflatten_head_grad(D, Bt), db
