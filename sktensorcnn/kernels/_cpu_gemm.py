"""BLAS path of the network kernels: im2col + matrix products, slab by slab.

For large convolutions (many kernel entries times kernels) the numba shift-and-add
loops of :mod:`._cpu_network` run on short rows; multiplying each sample's patches
``(M, C L)`` by the ``(C L, K)`` kernel matrix lets BLAS do the arithmetic, in the
input's precision.  The patches are never gathered for a whole sample (32^3
samples with 5^3 kernels would make 11 MB of them, each written to memory and
read back): a numba loop gathers the patches of one slab of outputs (the
positions sharing their two leading indices, e.g. one plane of a volume, a few
hundred KB) into a buffer that stays in cache, and BLAS multiplies it at once;
the kernel gradient gathers each slab again, which costs less than storing it.
Blocks of samples run side by side on the kernels' threads, BLAS on one
thread each.  Same inputs and outputs as the numba kernels (the 4-mode
canonical layout).
"""

import numpy as np
from numba import njit

from . import _cpu_head
from ._memory import CHUNK_BYTES
from ._threads import block_bounds, n_blocks_for, run_blocks, single_threaded_blas


@njit(cache=True, nogil=True)
def _gather_slab(Xs, i1, i2, stride, kernel_size, m3, m4, Pt):
    """``Pt[(c, a), i3 m4 + i4] = Xs[c, i1 s1 + a1, i2 s2 + a2, i3 s3 + a3,
    i4 s4 + a4]``: the patches of one slab of outputs, one column each (rows
    along the slab's positions, so that the innermost loop is long)."""
    C = Xs.shape[0]
    l1, l2, l3, l4 = kernel_size[0], kernel_size[1], kernel_size[2], kernel_size[3]
    s1, s2, s3, s4 = stride[0], stride[1], stride[2], stride[3]
    r = 0
    for c in range(C):
        for a1 in range(l1):
            for a2 in range(l2):
                plane = Xs[c, i1 * s1 + a1, i2 * s2 + a2]
                for a3 in range(l3):
                    for a4 in range(l4):
                        dst = Pt[r]
                        for i3 in range(m3):
                            src = plane[i3 * s3 + a3]
                            base = i3 * m4
                            if s4 == 1:
                                for i4 in range(m4):
                                    dst[base + i4] = src[a4 + i4]
                            else:
                                for i4 in range(m4):
                                    dst[base + i4] = src[a4 + i4 * s4]
                        r += 1


@njit(cache=True, nogil=True)
def _convolve_block(Xp, AT, stride, kernel_size, conv_shape, first, last, Y):
    """``Y[i, slab] = AT @ patches(X_i, slab)`` ``(K, slab size)`` for
    ``first <= i < last``; ``Y`` ``(n, m1 m2, K, m3 m4)``."""
    m1, m2, m3, m4 = conv_shape[0], conv_shape[1], conv_shape[2], conv_shape[3]
    Pt = np.empty((AT.shape[1], m3 * m4), dtype=Xp.dtype)
    for i in range(first, last):
        for i1 in range(m1):
            for i2 in range(m2):
                _gather_slab(Xp[i], i1, i2, stride, kernel_size, m3, m4, Pt)
                Y[i, i1 * m2 + i2] = np.dot(AT, Pt)


@njit(cache=True, nogil=True)
def _kernel_grad_block(Xp, dY, stride, kernel_size, conv_shape, first, last, dAT):
    """``dA^T += sum_i sum_slab patches(X_i, slab) dY[i, slab]^T`` ``(C L, K)``
    (float64 across samples, the data's precision within one; this
    orientation of the product runs 1.5x faster in float32 than ``dY P^T``)."""
    m1, m2, m3, m4 = conv_shape[0], conv_shape[1], conv_shape[2], conv_shape[3]
    CL, K = dAT.shape
    Pt = np.empty((CL, m3 * m4), dtype=Xp.dtype)
    part = np.zeros((CL, K), dtype=Xp.dtype)
    for i in range(first, last):
        for i1 in range(m1):
            for i2 in range(m2):
                _gather_slab(Xp[i], i1, i2, stride, kernel_size, m3, m4, Pt)
                part += np.dot(Pt, dY[i, i1 * m2 + i2].T)
        for j in range(CL):
            for k in range(K):
                dAT[j, k] += part[j, k]
                part[j, k] = 0.0


def _padded(X, pad_before, padded_shape):
    pads = [(0, 0), (0, 0)] + [
        (int(lo), int(D - d - lo))
        for lo, D, d in zip(pad_before, padded_shape, X.shape[2:])
    ]
    return np.pad(X, pads) if any(p != (0, 0) for p in pads) else X


def _slabs(conv_shape) -> tuple[int, int]:
    """``(m1 m2, m3 m4)``: slabs per sample and positions per slab."""
    m1, m2, m3, m4 = (int(m) for m in conv_shape)
    return m1 * m2, m3 * m4


def _convolve(Xp, AT, stride, kernel_size, conv_shape):
    """``(b, m1 m2, K, m3 m4)`` convolution outputs of the padded samples."""
    n, K = Xp.shape[0], AT.shape[0]
    Y = np.empty((n, *_slabs(conv_shape)[:1], K, _slabs(conv_shape)[1]),
                 dtype=Xp.dtype)
    n_blocks = n_blocks_for(n, Y[0].size * AT.shape[1])
    shape = np.asarray(conv_shape, dtype=np.int64)
    with single_threaded_blas():
        run_blocks(lambda block: _convolve_block(
            Xp, AT, stride, kernel_size, shape,
            *block_bounds(n, n_blocks, block), Y), n_blocks)
    return Y


def _kernel_grad(Xp, dY, stride, kernel_size, conv_shape, CL):
    """``(K, C L)`` gradient of the kernels from ``dY`` ``(b, m1 m2, K, m3 m4)``."""
    n, K = dY.shape[0], dY.shape[2]
    n_blocks = n_blocks_for(n, dY[0].size * CL)
    parts = np.zeros((n_blocks, CL, K))
    shape = np.asarray(conv_shape, dtype=np.int64)
    with single_threaded_blas():
        run_blocks(lambda block: _kernel_grad_block(
            Xp, dY, stride, kernel_size, shape,
            *block_bounds(n, n_blocks, block), parts[block]), n_blocks)
    return parts.sum(axis=0).T


def _slab_head_weights(Bt, dtype):
    """``Bt`` ``(n_out, K, m...)`` -> ``(n_out, m1 m2 K m3 m4)``: the order of the
    slab-wise convolution outputs, in the data's precision."""
    n_out, K = Bt.shape[:2]
    S, size = _slabs(Bt.shape[2:])
    return np.ascontiguousarray(np.swapaxes(Bt.reshape(n_out, K, S, size), 1, 2),
                                dtype=dtype).reshape(n_out, -1)


def _unslab_head_grad(D, Bt):
    """Inverse of :func:`_slab_head_weights` for the head's gradient ``D``."""
    n_out, K = Bt.shape[:2]
    S, size = _slabs(Bt.shape[2:])
    return np.ascontiguousarray(np.swapaxes(D.reshape(n_out, S, K, size), 1, 2)
                                ).reshape(Bt.shape)


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
    # heavy arrays in the input's precision (float32 stays float32 for BLAS)
    AT = np.ascontiguousarray(A.reshape(K, -1), dtype=X.dtype)  # (K, C L)
    kernel_size = np.asarray(A.shape[2:], dtype=np.int64)
    Bt_flat = _slab_head_weights(Bt, X.dtype)
    out = np.empty((n, Bt.shape[0]))
    for rows in _chunks(n, Bt_flat.shape[1] * X.itemsize):
        Y = _convolve(_padded(X[rows], pad_before, padded_shape), AT, stride,
                      kernel_size, Bt.shape[2:])
        out[rows] = _cpu_head.outputs(Y.reshape(Y.shape[0], -1), Bt_flat, b, code)
    return out


def network_loss_grad(
    X, y, weights, A, Bt, b, code, loss_code, pad_before, padded_shape, stride
):
    """As :func:`._cpu_network.network_loss_grad`."""
    n, K = X.shape[0], A.shape[0]
    AT = np.ascontiguousarray(A.reshape(K, -1), dtype=X.dtype)
    kernel_size = np.asarray(A.shape[2:], dtype=np.int64)
    Bt_flat = _slab_head_weights(Bt, X.dtype)
    size = Bt_flat.shape[1]
    loss, db = 0.0, np.zeros(Bt.shape[0])
    dA = np.zeros((K, AT.shape[1]))
    D = np.zeros((Bt.shape[0], size))
    for rows in _chunks(n, size * X.itemsize):
        Xp = _padded(X[rows], pad_before, padded_shape)
        Y = _convolve(Xp, AT, stride, kernel_size, Bt.shape[2:])
        count = Y.shape[0]
        n_blocks = n_blocks_for(count, 3 * size * Bt.shape[0])
        part_loss, part_D, part_db = _cpu_head.loss_grad(  # dY written over Y
            Y.reshape(count, size), Bt_flat, b, y[rows], weights[rows], code,
            loss_code, n_blocks)
        loss, db = loss + part_loss, db + part_db
        D += part_D
        dA += _kernel_grad(Xp, Y, stride, kernel_size, Bt.shape[2:], AT.shape[1])
    return loss, dA.reshape(A.shape), _unslab_head_grad(D, Bt), db
