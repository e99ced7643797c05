"""numba CPU kernels of the nonlinear network: convolution, activation, and the
backward pass, fused per group of samples.

Layout as in :mod:`._cpu`: samples ``(n, C, d1, d2, d3, d4)`` with missing modes of
size 1 in front; kernels ``A`` ``(K, C, l1, l2, l3, l4)``.  Average pooling and
the fully-connected layer are linear, so they are folded into one weight on the
convolution outputs, ``Bt[o, k, t] = sum over cells r containing t of
B[o, k, r] / q`` for each output ``o`` (one for regression and binary
classification, one per class otherwise): output ``o`` is
``<Bt[o], act(conv(X, A))> + b[o]``, and the FC gradient is the pooling of
``D[o] = sum_i G_io act(conv(X_i, A))``, done once per call by the caller.

The convolution runs in the samples' precision (float32 or float64, the
kernels ``A`` given in it too); activations, the head and the gradient sums
are float64.  Small samples are convolved ``lanes`` at a time, interleaved
along the last axis (``P[c, x1, x2, x3, x4 * lanes + b]`` holds sample ``b``'s
entry), so that the innermost loops run over ``m4 * lanes`` entries instead of
a short row of one sample: 1.5-1.9x faster on 8 x 8 images.  Large samples use
one lane.
"""

import numpy as np
from numba import njit

from ._cpu_pointwise import activate, dot, head_sample
from ._threads import block_bounds, run_blocks


@njit(cache=True)
def _load_lanes(P, X, first, count, lanes, pad_before):
    """``P[c, o + y, (o4 + y4) * lanes + b] = X[first + b, c, y]`` for the
    ``count`` samples from ``first`` (the padding, zeroed once by the caller,
    is never written)."""
    C = X.shape[1]
    d1, d2, d3, d4 = X.shape[2], X.shape[3], X.shape[4], X.shape[5]
    o1, o2, o3, o4 = pad_before[0], pad_before[1], pad_before[2], pad_before[3]
    for c in range(C):
        for y1 in range(d1):
            for y2 in range(d2):
                for y3 in range(d3):
                    row = P[c, o1 + y1, o2 + y2, o3 + y3]
                    for b in range(count):
                        src = X[first + b, c, y1, y2, y3]
                        for y4 in range(d4):
                            row[(o4 + y4) * lanes + b] = src[y4]


@njit(cache=True)
def _convolve(Y, P, A, stride, lanes):
    """``Y[k, t, t4 * lanes + b] = sum_{c, a} A[k, c, a] P[c, t * s + a]`` (lane
    ``b``) by shifted row axpys."""
    K, C = A.shape[0], A.shape[1]
    l1, l2, l3, l4 = A.shape[2], A.shape[3], A.shape[4], A.shape[5]
    m1, m2, m3, width = Y.shape[1], Y.shape[2], Y.shape[3], Y.shape[4]
    m4 = width // lanes
    s1, s2, s3, s4 = stride[0], stride[1], stride[2], stride[3]
    Y[:] = 0.0
    for k in range(K):
        for c in range(C):
            for a1 in range(l1):
                for a2 in range(l2):
                    for a3 in range(l3):
                        for a4 in range(l4):
                            w = A[k, c, a1, a2, a3, a4]
                            for t1 in range(m1):
                                for t2 in range(m2):
                                    for t3 in range(m3):
                                        out = Y[k, t1, t2, t3]
                                        row = P[c, t1 * s1 + a1, t2 * s2 + a2,
                                                t3 * s3 + a3]
                                        if s4 == 1:  # contiguous: vectorizes
                                            src = row[a4 * lanes:a4 * lanes + width]
                                            for j in range(width):
                                                out[j] += w * src[j]
                                        else:
                                            for t4 in range(m4):
                                                src = row[(t4 * s4 + a4) * lanes:]
                                                dst = out[t4 * lanes:]
                                                for b in range(lanes):
                                                    dst[b] += w * src[b]


@njit(cache=True)
def _correlate_into(dA, dY, P, stride, lanes):
    """``dA[k, c, a] += sum_{t, b} dY[k, t, t4 * lanes + b] P[c, t * s + a]``
    (lane ``b``) by row dot products."""
    K, C = dA.shape[0], dA.shape[1]
    l1, l2, l3, l4 = dA.shape[2], dA.shape[3], dA.shape[4], dA.shape[5]
    m1, m2, m3, width = dY.shape[1], dY.shape[2], dY.shape[3], dY.shape[4]
    m4 = width // lanes
    s1, s2, s3, s4 = stride[0], stride[1], stride[2], stride[3]
    for k in range(K):
        for c in range(C):
            for a1 in range(l1):
                for a2 in range(l2):
                    for a3 in range(l3):
                        for a4 in range(l4):
                            acc = 0.0
                            for t1 in range(m1):
                                for t2 in range(m2):
                                    for t3 in range(m3):
                                        g = dY[k, t1, t2, t3]
                                        row = P[c, t1 * s1 + a1, t2 * s2 + a2,
                                                t3 * s3 + a3]
                                        if s4 == 1:  # contiguous: vectorizes
                                            src = row[a4 * lanes:a4 * lanes + width]
                                            for j in range(width):
                                                acc += g[j] * src[j]
                                        else:
                                            for t4 in range(m4):
                                                src = row[(t4 * s4 + a4) * lanes:]
                                                grad = g[t4 * lanes:]
                                                for b in range(lanes):
                                                    acc += grad[b] * src[b]
                            dA[k, c, a1, a2, a3, a4] += acc


@njit(inline="always")
def _scratch(X, padded_shape, Bt, lanes):
    """Per-block buffers: the padded, interleaved samples ``P`` and their
    convolution outputs ``Y`` ``(K, m1, m2, m3, m4 * lanes)`` in the samples'
    precision, ``Y`` seen as ``Yf`` (row ``j = (k, t)``, one column per lane),
    the head's weights as rows ``Btf`` ``(n_out, size)`` and the activations
    ``H`` of one sample."""
    P = np.zeros((X.shape[1], padded_shape[0], padded_shape[1], padded_shape[2],
                  padded_shape[3] * lanes), X.dtype)
    Y = np.empty((Bt.shape[1], Bt.shape[2], Bt.shape[3], Bt.shape[4],
                  Bt.shape[5] * lanes), X.dtype)
    size = Bt[0].size
    return P, Y, Y.reshape(size, lanes), Bt.reshape(Bt.shape[0], size), np.empty(size)


@njit(cache=True, nogil=True)
def _forward_block(X, A, Bt, b, code, pad_before, padded_shape, stride, lanes,
                   first, last, out):
    """``out[i] = <Bt[o], act(conv(X_i, A))> + b[o]`` for ``first <= i < last``."""
    n_out, size = Bt.shape[0], Bt[0].size
    P, Y, Yf, Btf, H = _scratch(X, padded_shape, Bt, lanes)
    for start in range(first, last, lanes):
        count = min(lanes, last - start)
        _load_lanes(P, X, start, count, lanes, pad_before)
        _convolve(Y, P, A, stride, lanes)
        for lane in range(count):
            for j in range(size):
                H[j], _ = activate(code, Yf[j, lane])
            for o in range(n_out):
                out[start + lane, o] = dot(H, Btf[o]) + b[o]


def network_forward(X, A, Bt, b, code, pad_before, padded_shape, stride, n_blocks,
                    lanes=1):
    """Outputs ``<Bt[o], act(conv(X_i, A))> + b[o]`` ``(n, n_out)``, the samples
    in ``n_blocks`` blocks side by side, ``lanes`` samples at a time in each."""
    n = X.shape[0]
    out = np.empty((n, Bt.shape[0]))
    run_blocks(lambda block: _forward_block(
        X, A, Bt, b, code, pad_before, padded_shape, stride, lanes,
        *block_bounds(n, n_blocks, block), out), n_blocks)
    return out


@njit(cache=True, nogil=True)
def _loss_grad_block(X, y, weights, A, Bt, b, code, loss_code, pad_before,
                     padded_shape, stride, lanes, first, last, dA, D, db):
    """Samples ``first <= i < last`` of :func:`network_loss_grad`: returns their
    loss and adds their gradients to ``dA``, ``D`` ``(n_out, size)`` and ``db``."""
    n_out, size = Bt.shape[0], Bt[0].size
    P, Y, Yf, Btf, H = _scratch(X, padded_shape, Bt, lanes)
    dH = np.empty(size)
    f = np.empty(n_out)
    G = np.empty(n_out)
    loss = 0.0
    for start in range(first, last, lanes):
        count = min(lanes, last - start)
        _load_lanes(P, X, start, count, lanes, pad_before)
        _convolve(Y, P, A, stride, lanes)
        for lane in range(lanes):
            if lane >= count:  # a lane without a sample adds no gradient
                for j in range(size):
                    Yf[j, lane] = 0.0
                continue
            i = start + lane
            for j in range(size):
                H[j], dH[j] = activate(code, Yf[j, lane])
            loss += head_sample(H, Btf, b, loss_code, y[i], weights[i], f, G, D, db)
            # the gradient of the convolution outputs, written over them:
            # act'(Y) sum_o G_o Bt_o
            for j in range(size):
                s = 0.0
                for o in range(n_out):
                    s += G[o] * Btf[o, j]
                Yf[j, lane] = dH[j] * s
        _correlate_into(dA, Y, P, stride, lanes)
    return loss


def network_loss_grad(
    X, y, weights, A, Bt, b, code, loss_code, pad_before, padded_shape, stride,
    n_blocks, lanes=1,
):
    """Weighted loss and its gradients, one fused pass over the samples.

    Loss ``sum_i w_i loss(f_i, y_i)`` (see :mod:`._cpu_pointwise`).  Returns the
    loss, ``dA`` (shape of ``A``), ``D[o] = sum_i G_io act(conv(X_i))`` (to be
    pooled into the FC gradient) and ``db``, with ``G_io = w_i dloss/df_io``.
    Each of the ``n_blocks`` blocks of samples accumulates its own sums; they
    are added in block order, so results are deterministic for a given
    ``n_blocks`` and ``lanes``.
    """
    n, n_out = X.shape[0], Bt.shape[0]
    dAs = np.zeros((n_blocks, *A.shape))
    Ds = np.zeros((n_blocks, n_out, Bt[0].size))
    dbs = np.zeros((n_blocks, n_out))
    losses = run_blocks(lambda block: _loss_grad_block(
        X, y, weights, A, Bt, b, code, loss_code, pad_before, padded_shape, stride,
        lanes, *block_bounds(n, n_blocks, block), dAs[block], Ds[block],
        dbs[block]), n_blocks)
    return (float(sum(losses)), dAs.sum(axis=0), Ds.sum(axis=0).reshape(Bt.shape),
            dbs.sum(axis=0))
