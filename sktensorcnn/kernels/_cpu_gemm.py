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
thread each (the callers, :mod:`sktensorcnn.network`'s functions, hold BLAS
there for the whole call).  Same inputs and outputs as the numba kernels (the 4-mode
canonical layout).
"""

import numpy as np
from numba import njit

from . import _cpu_head
from ._cpu_pointwise import activate_rows, head_sample
from ._memory import CHUNK_BYTES
from ._threads import block_bounds, n_blocks_for, run_blocks


@njit(cache=True, nogil=True)
def _gather_planes(Xs, x1, x2, n2, stride, kernel_size, m3, m4, Q):
    """``Q[(c, a1, p, a3, a4), i3 m4 + i4] = Xs[c, x1 + a1, x2 + p, i3 s3 + a3,
    i4 s4 + a4]`` for ``p < n2``: the 2-d patches of ``n2`` consecutive planes,
    one column per output position of the plane (rows along the positions, so
    that the innermost loop is long)."""
    C = Xs.shape[0]
    l1, l3, l4 = kernel_size[0], kernel_size[2], kernel_size[3]
    s3, s4 = stride[2], stride[3]
    r = 0
    for c in range(C):
        for a1 in range(l1):
            for p in range(n2):
                plane = Xs[c, x1 + a1, x2 + p]
                for a3 in range(l3):
                    for a4 in range(l4):
                        dst = Q[r]
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
def _slab_patches(Xs, i1, i2, group, stride, kernel_size, conv_shape, Q):
    """The patches ``(C L, m3 m4)`` of slab ``(i1, i2)`` (the outputs sharing
    their two leading indices): rows of ``Q``, gathered for ``group``
    consecutive slabs at once when ``i2`` is a multiple of ``group``.

    Slabs ``i2`` and ``i2 + 1`` read the same input planes but ``s2`` (the
    stride): with one channel and ``l1 = 1`` (volumes), each slab's patches
    are the contiguous rows of its ``l2`` planes, so each plane is gathered
    once per group instead of ``l2`` times (``group = 1`` otherwise)."""
    l2, l34 = kernel_size[1], kernel_size[2] * kernel_size[3]
    s2 = stride[1]
    t = i2 % group
    if t == 0:
        count = min(group, conv_shape[1] - i2)
        _gather_planes(Xs, i1 * stride[0], i2 * s2, (count - 1) * s2 + l2, stride,
                       kernel_size, conv_shape[2], conv_shape[3], Q)
    first = t * s2 * l34
    return Q[first:first + Xs.shape[0] * kernel_size[0] * l2 * l34]


@njit(cache=True)
def _patch_buffer(Xp, group, stride, kernel_size, conv_shape):
    """Room for the patches of ``group`` slabs (see :func:`_slab_patches`)."""
    planes = (group - 1) * stride[1] + kernel_size[1]
    rows = Xp.shape[1] * kernel_size[0] * planes * kernel_size[2] * kernel_size[3]
    return np.empty((rows, conv_shape[2] * conv_shape[3]), dtype=Xp.dtype)


@njit(cache=True, nogil=True)
def _convolve_block(Xp, AT, stride, kernel_size, conv_shape, group, first, last, Y):
    """``Y[i, slab] = AT @ patches(X_i, slab)`` ``(K, slab size)`` for
    ``first <= i < last``; ``Y`` ``(n, m1 m2, K, m3 m4)``."""
    m1, m2 = conv_shape[0], conv_shape[1]
    Q = _patch_buffer(Xp, group, stride, kernel_size, conv_shape)
    for i in range(first, last):
        for i1 in range(m1):
            for i2 in range(m2):
                Pt = _slab_patches(Xp[i], i1, i2, group, stride, kernel_size,
                                   conv_shape, Q)
                np.dot(AT, Pt, Y[i, i1 * m2 + i2])  # in place: no temporary


@njit(cache=True, nogil=True)
def _one_output_block(Xp, AT, Bt, intercept, y, weights, act_code, loss_code, stride,
                      kernel_size, conv_shape, group, first, last, D, db, dAT):
    """The loss and gradients of samples ``first <= i < last`` with one output
    (regression, binary classification), gathering each slab once.  With one
    output ``dY = g act'(Y) Bt`` and the loss's derivative ``g`` is a scalar per
    sample, so the kernel gradient ``g sum_slab P (act'(Y) Bt)^T`` is
    accumulated during the forward pass, while the slab's patches are still in
    cache, and scaled by ``g`` once the head has it."""
    m1, m2, m3, m4 = conv_shape[0], conv_shape[1], conv_shape[2], conv_shape[3]
    size = m3 * m4
    K, CL = AT.shape
    Q = _patch_buffer(Xp, group, stride, kernel_size, conv_shape)
    V = np.empty(m1 * m2 * K * size, dtype=Xp.dtype)
    W = np.empty((K, size), dtype=Xp.dtype)
    part = np.zeros((CL, K), dtype=Xp.dtype)
    f = np.empty(1)
    G = np.empty(1)
    B0 = Bt[0]
    loss = 0.0
    for i in range(first, last):
        for i1 in range(m1):
            for i2 in range(m2):
                Pt = _slab_patches(Xp[i], i1, i2, group, stride, kernel_size,
                                   conv_shape, Q)
                np.dot(AT, Pt, W)
                offset = (i1 * m2 + i2) * K * size
                for k in range(K):
                    # V = act(Y), W = act'(Y) in place (one vectorized loop),
                    # then W *= Bt
                    start = offset + k * size
                    Wk = W[k]
                    activate_rows(act_code, Wk, V[start:start + size])
                    Bk = B0[start:start + size]
                    for t in range(size):
                        Wk[t] *= Bk[t]
                part += np.dot(Pt, W.T)
        loss += head_sample(V, Bt, intercept, loss_code, y[i], weights[i], f, G, D,
                            db)
        g = G[0]
        for j in range(CL):
            for k in range(K):
                dAT[j, k] += g * part[j, k]
                part[j, k] = 0.0
    return loss


@njit(cache=True, nogil=True)
def _kernel_grad_block(Xp, dY, stride, kernel_size, conv_shape, group, first, last,
                       dAT):
    """``dA^T += sum_slab patches(X_i, slab) dY_i[slab]^T`` ``(C L, K)`` for
    ``first <= i < last``, the slabs gathered again (cheaper than keeping
    them); ``dY`` ``(n, m1 m2, K, m3 m4)``.  Each sample's part is summed in
    the data's precision, the samples' in float64 (``P dY^T`` runs 1.5x faster
    in float32 than ``dY P^T``)."""
    m1, m2 = conv_shape[0], conv_shape[1]
    CL, K = dAT.shape
    Q = _patch_buffer(Xp, group, stride, kernel_size, conv_shape)
    part = np.zeros((CL, K), dtype=Xp.dtype)
    for i in range(first, last):
        for i1 in range(m1):
            for i2 in range(m2):
                Pt = _slab_patches(Xp[i], i1, i2, group, stride, kernel_size,
                                   conv_shape, Q)
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


#: Bytes of the patches gathered at once (a few slabs' worth; it stays in cache
#: while BLAS multiplies them, see :func:`_slab_patches`).
PATCH_BYTES = 512 * 1024


def _slab_group(n_channels, kernel_size, stride, conv_shape, itemsize) -> int:
    """Slabs whose patches are gathered together: as many as fit in
    ``PATCH_BYTES`` when they share their planes (one channel, ``l1 = 1``)."""
    if n_channels * kernel_size[0] > 1:
        return 1
    plane = int(kernel_size[2] * kernel_size[3] * conv_shape[2] * conv_shape[3])
    planes = PATCH_BYTES // (plane * itemsize)
    group = (planes - int(kernel_size[1])) // int(stride[1]) + 1
    return int(np.clip(group, 1, conv_shape[1]))


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
    group = _slab_group(Xp.shape[1], kernel_size, stride, shape, Xp.itemsize)
    run_blocks(lambda block: _convolve_block(
        Xp, AT, stride, kernel_size, shape, group,
        *block_bounds(n, n_blocks, block), Y), n_blocks)
    return Y


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


def _outputs_loss_grad(Xp, AT, Bt_flat, b, y, weights, code, loss_code, stride,
                       kernel_size, conv_shape, group, n_blocks, dATs):
    """A chunk of padded samples, several outputs: the convolution outputs, the
    head on all of them (:func:`._cpu_head.loss_grad`), then the kernel
    gradient, added to ``dATs`` (one per block).  Returns the loss, ``D`` and
    ``db``."""
    count, size = Xp.shape[0], Bt_flat.shape[1]
    Y = _convolve(Xp, AT, stride, kernel_size, conv_shape)
    result = _cpu_head.loss_grad(Y.reshape(count, size), Bt_flat, b, y, weights,
                                 code, loss_code,
                                 n_blocks_for(count, 3 * size * Bt_flat.shape[0]))
    blocks = min(n_blocks, count)
    run_blocks(lambda block: _kernel_grad_block(
        Xp, Y, stride, kernel_size, conv_shape, group,
        *block_bounds(count, blocks, block), dATs[block]), blocks)
    return result


def network_loss_grad(
    X, y, weights, A, Bt, b, code, loss_code, pad_before, padded_shape, stride
):
    """As :func:`._cpu_network.network_loss_grad`.

    One output: each slab gathered once, the head fused in
    (:func:`_one_output_block`).  Several: the convolution outputs of a chunk
    of samples, the head on all of them by matrix products
    (:func:`._cpu_head.loss_grad`), then the kernel gradient."""
    n, K = X.shape[0], A.shape[0]
    AT = np.ascontiguousarray(A.reshape(K, -1), dtype=X.dtype)
    kernel_size = np.asarray(A.shape[2:], dtype=np.int64)
    shape = np.asarray(Bt.shape[2:], dtype=np.int64)
    Bt_flat = _slab_head_weights(Bt, X.dtype)
    n_out, size = Bt_flat.shape
    n_blocks = n_blocks_for(n, 2 * size * AT.shape[1])
    dATs = np.zeros((n_blocks, AT.shape[1], K))
    group = _slab_group(X.shape[1], kernel_size, stride, shape, X.itemsize)

    if n_out == 1:
        Ds = np.zeros((n_blocks, n_out, size))
        dbs = np.zeros((n_blocks, n_out))

        def chunk_loss(rows):
            Xp = _padded(X[rows], pad_before, padded_shape)
            count = Xp.shape[0]
            blocks = min(n_blocks, count)
            return sum(run_blocks(lambda block: _one_output_block(
                Xp, AT, Bt_flat, b, y[rows], weights[rows], code, loss_code,
                stride, kernel_size, shape, group,
                *block_bounds(count, blocks, block), Ds[block], dbs[block],
                dATs[block]), blocks))

        loss = float(sum(chunk_loss(rows)
                         for rows in _chunks(n, X[0].size * X.itemsize)))
        D, db = Ds.sum(axis=0), dbs.sum(axis=0)
    else:
        loss, D, db = 0.0, np.zeros((n_out, size)), np.zeros(n_out)
        # chunks of outputs, which outnumber the inputs K M / (C d) to one
        for rows in _chunks(n, size * X.itemsize):
            part = _outputs_loss_grad(
                _padded(X[rows], pad_before, padded_shape), AT, Bt_flat, b,
                y[rows], weights[rows], code, loss_code, stride, kernel_size,
                shape, group, n_blocks, dATs)
            loss, D, db = (total + p for total, p in zip((loss, D, db), part))
    dA = dATs.sum(axis=0).T.reshape(A.shape)
    return loss, dA, _unslab_head_grad(D, Bt), db
