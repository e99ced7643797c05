"""numba CPU kernels of the nonlinear network: convolution, activation, and the
backward pass, fused per sample.

Layout as in :mod:`._cpu`: samples ``(n, C, d1, d2, d3, d4)`` with missing modes of
size 1 in front; kernels ``A`` ``(K, C, l1, l2, l3, l4)``.  Average pooling and
the fully-connected layer are linear, so they are folded into one weight on the
convolution outputs, ``Bt[o, k, t] = sum over cells r containing t of
B[o, k, r] / q`` for each output ``o`` (one for regression and binary
classification, one per class otherwise): output ``o`` is
``<Bt[o], act(conv(X, A))> + b[o]``, and the FC gradient is the pooling of
``D[o] = sum_i G_io act(conv(X_i, A))``, done once per call by the caller.
"""

import numpy as np
from numba import njit

from ._cpu_pointwise import activate, dot, sample_loss
from ._threads import block_bounds, run_blocks


@njit(cache=True)
def _load_padded(Pbuf, X, i, pad_before):
    """``Pbuf[c] = X[i, c]`` zero-padded (``Pbuf`` zeroed by the caller once)."""
    C = X.shape[1]
    d1, d2, d3, d4 = X.shape[2], X.shape[3], X.shape[4], X.shape[5]
    o1, o2, o3, o4 = pad_before[0], pad_before[1], pad_before[2], pad_before[3]
    for c in range(C):
        for y1 in range(d1):
            for y2 in range(d2):
                for y3 in range(d3):
                    row = Pbuf[c, o1 + y1, o2 + y2, o3 + y3, o4:o4 + d4]
                    src = X[i, c, y1, y2, y3]
                    for y4 in range(d4):
                        row[y4] = src[y4]


@njit(cache=True)
def _convolve(Y, Pbuf, A, stride):
    """``Y[k, t] = sum_{c, a} A[k, c, a] Pbuf[c, t * s + a]`` by shifted row axpys."""
    K, C = A.shape[0], A.shape[1]
    l1, l2, l3, l4 = A.shape[2], A.shape[3], A.shape[4], A.shape[5]
    m1, m2, m3, m4 = Y.shape[1], Y.shape[2], Y.shape[3], Y.shape[4]
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
                                        row = Pbuf[c, t1 * s1 + a1, t2 * s2 + a2,
                                                   t3 * s3 + a3]
                                        if s4 == 1:  # contiguous: vectorizes
                                            src = row[a4:a4 + m4]
                                            for t4 in range(m4):
                                                out[t4] += w * src[t4]
                                        else:
                                            for t4 in range(m4):
                                                out[t4] += w * row[a4 + t4 * s4]


@njit(cache=True)
def _correlate_into(dA, dY, Pbuf, stride):
    """``dA[k, c, a] += sum_t dY[k, t] Pbuf[c, t * s + a]`` by row dot products."""
    K, C = dA.shape[0], dA.shape[1]
    l1, l2, l3, l4 = dA.shape[2], dA.shape[3], dA.shape[4], dA.shape[5]
    m1, m2, m3, m4 = dY.shape[1], dY.shape[2], dY.shape[3], dY.shape[4]
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
                                        row = Pbuf[c, t1 * s1 + a1, t2 * s2 + a2,
                                                   t3 * s3 + a3]
                                        if s4 == 1:  # contiguous: vectorizes
                                            src = row[a4:a4 + m4]
                                            for t4 in range(m4):
                                                acc += g[t4] * src[t4]
                                        else:
                                            for t4 in range(m4):
                                                acc += g[t4] * row[a4 + t4 * s4]
                            dA[k, c, a1, a2, a3, a4] += acc


@njit(inline="always")
def _sample_outputs(Pbuf, X, i, A, Bt, pad_before, stride, code, Y, H, dH, f):
    """One sample: ``Y = conv``, ``H = act(Y)``, ``dH = act'(Y)`` and the outputs
    ``f[o] = <Bt[o], H>`` (without intercept)."""
    _load_padded(Pbuf, X, i, pad_before)
    _convolve(Y, Pbuf, A, stride)
    size = Y.size
    Yf, Hf, dHf = Y.reshape(size), H.reshape(size), dH.reshape(size)
    for j in range(size):
        Hf[j], dHf[j] = activate(code, Yf[j])
    for o in range(Bt.shape[0]):
        f[o] = dot(Hf, Bt[o].reshape(size))


@njit(inline="always")
def _scratch(C, padded_shape, conv_shape5):
    """Per-thread buffers: the padded sample, then ``Y``, ``H``, ``dH``."""
    Pbuf = np.zeros((C, padded_shape[0], padded_shape[1], padded_shape[2],
                     padded_shape[3]))
    return (Pbuf, np.empty(conv_shape5), np.empty(conv_shape5),
            np.empty(conv_shape5))


@njit(cache=True, nogil=True)
def _forward_block(X, A, Bt, b, code, pad_before, padded_shape, stride, first,
                   last, out):
    """``out[i] = <Bt[o], act(conv(X_i, A))> + b[o]`` for ``first <= i < last``."""
    n_out = Bt.shape[0]
    Pbuf, Y, H, dH = _scratch(X.shape[1], padded_shape, Bt.shape[1:])
    f = np.empty(n_out)
    for i in range(first, last):
        _sample_outputs(Pbuf, X, i, A, Bt, pad_before, stride, code, Y, H, dH, f)
        for o in range(n_out):
            out[i, o] = f[o] + b[o]


def network_forward(X, A, Bt, b, code, pad_before, padded_shape, stride, n_blocks):
    """Outputs ``<Bt[o], act(conv(X_i, A))> + b[o]`` ``(n, n_out)``, the samples
    in ``n_blocks`` blocks side by side."""
    n = X.shape[0]
    out = np.empty((n, Bt.shape[0]))
    run_blocks(lambda block: _forward_block(
        X, A, Bt, b, code, pad_before, padded_shape, stride,
        *block_bounds(n, n_blocks, block), out), n_blocks)
    return out


@njit(cache=True, nogil=True)
def _loss_grad_block(X, y, weights, A, Bt, b, code, loss_code, pad_before,
                     padded_shape, stride, first, last, dA, D, db):
    """Samples ``first <= i < last`` of :func:`network_loss_grad`: returns their
    loss and adds their gradients to ``dA``, ``D`` ``(n_out, size)`` and ``db``."""
    n_out = Bt.shape[0]
    size = Bt[0].size
    Btf = Bt.reshape(n_out, size)
    Pbuf, Y, H, dY = _scratch(X.shape[1], padded_shape, Bt.shape[1:])
    Hf, dYf = H.reshape(size), dY.reshape(size)
    f = np.empty(n_out)
    G = np.empty(n_out)
    loss = 0.0
    for i in range(first, last):
        _sample_outputs(Pbuf, X, i, A, Bt, pad_before, stride, code, Y, H, dY, f)
        for o in range(n_out):
            f[o] += b[o]
        loss += weights[i] * sample_loss(loss_code, f, y[i], G)
        for o in range(n_out):
            G[o] *= weights[i]
            db[o] += G[o]
            for j in range(size):
                D[o, j] += G[o] * Hf[j]
        # dY held act'(Y): dY = act'(Y) sum_o G_o Bt_o
        for j in range(size):
            s = 0.0
            for o in range(n_out):
                s += G[o] * Btf[o, j]
            dYf[j] *= s
        _correlate_into(dA, dY, Pbuf, stride)
    return loss


def network_loss_grad(
    X, y, weights, A, Bt, b, code, loss_code, pad_before, padded_shape, stride,
    n_blocks,
):
    """Weighted loss and its gradients, one fused pass over the samples.

    Loss ``sum_i w_i loss(f_i, y_i)`` (see :mod:`._cpu_pointwise`).  Returns the
    loss, ``dA`` (shape of ``A``), ``D[o] = sum_i G_io act(conv(X_i))`` (to be
    pooled into the FC gradient) and ``db``, with ``G_io = w_i dloss/df_io``.
    Each of the ``n_blocks`` blocks of samples accumulates its own sums; they
    are added in block order, so results are deterministic for a given
    ``n_blocks``.
    """
    n, n_out = X.shape[0], Bt.shape[0]
    dAs = np.zeros((n_blocks, *A.shape))
    Ds = np.zeros((n_blocks, n_out, Bt[0].size))
    dbs = np.zeros((n_blocks, n_out))
    losses = run_blocks(lambda block: _loss_grad_block(
        X, y, weights, A, Bt, b, code, loss_code, pad_before, padded_shape, stride,
        *block_bounds(n, n_blocks, block), dAs[block], Ds[block], dbs[block]),
        n_blocks)
    return (float(sum(losses)), dAs.sum(axis=0), Ds.sum(axis=0).reshape(Bt.shape),
            dbs.sum(axis=0))
