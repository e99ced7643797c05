"""numba CPU kernels.

Every kernel works on the canonical 4-d layout: samples ``(n, C, d_1, d_2, d_3, d_4)``
with missing spatial modes (and a missing channel axis) given size 1 and
placed first (so the innermost loops run over real modes), so that one
compiled kernel serves N = 1 to 4.  The dispatch in :mod:`sktensorcnn.kernels`
does that reshaping, which is free for contiguous arrays.
"""

import numpy as np
from numba import njit

from ._threads import block_bounds, run_blocks


@njit(cache=True)
def _prefix(A, s):
    """Strided prefix sums along axis 0 of the 2-d ``A``, in place:
    ``A[x] += A[x - s]``; the rows are contiguous, so each update vectorizes."""
    D, R = A.shape
    if s == 1:
        for x in range(1, D):
            dst, src = A[x], A[x - 1]
            for r in range(R):
                dst[r] += src[r]
    else:
        for x in range(s, D):
            dst, src = A[x], A[x - s]
            for r in range(R):
                dst[r] += src[r]


@njit(cache=True)
def _differences(A, last, before, out):
    """``out[k] = A[last[k]] - A[before[k]]`` (``A[last[k]]`` when ``before < 0``)."""
    R = A.shape[1]
    for k in range(out.shape[0]):
        dst, hi = out[k], A[last[k]]
        g = before[k]
        if g >= 0:
            lo = A[g]
            for r in range(R):
                dst[r] = hi[r] - lo[r]
        else:
            for r in range(R):
                dst[r] = hi[r]


@njit(cache=True)
def _load_one(Xc, S4, o1, o2, o3, o4):
    """``S4[o + y] = Xc[y]`` (one sample; ``S4`` zero outside)."""
    d1, d2, d3, d4 = Xc.shape
    for y1 in range(d1):
        for y2 in range(d2):
            for y3 in range(d3):
                row = S4[o1 + y1, o2 + y2, o3 + y3, o4:o4 + d4]
                src = Xc[y1, y2, y3]
                for y4 in range(d4):
                    row[y4] = src[y4]


@njit(cache=True)
def _load_interleaved(Xb, S4, o1, o2, o3, o4, B):
    """``S4[o + y][..., (o4 + y4) * B + b] = Xb[b, y]``: samples side by side."""
    count, d1, d2, d3, d4 = Xb.shape
    for y1 in range(d1):
        for y2 in range(d2):
            for y3 in range(d3):
                row = S4[o1 + y1, o2 + y2, o3 + y3]
                for b in range(count):
                    src = Xb[b, y1, y2, y3]
                    for y4 in range(d4):
                        row[(o4 + y4) * B + b] = src[y4]


@njit(cache=True, nogil=True)
def _features_block(X, pad_before, padded_shape, stride, last, before, last4,
                    before4, source, scale, batch, start, stop, Z):
    """Samples ``start <= i < stop`` of :func:`conv_pool_features`.

    Modes are reduced in order 1, 2, 3, 4, each by strided prefix sums along
    the leading axis and one difference per box: the data shrink from ``D_j``
    to ``l_j p_j`` positions at each step, and every pass has a long contiguous
    innermost loop (the rest of the sample), which vectorizes.  Mode 4 is the
    contiguous one: with one sample at a time its ``(k_3, x_4)`` table is
    transposed so that it too runs along rows; with ``batch`` samples
    interleaved it runs over the lanes.  The scratch is the block's own and
    float64 (prefix sums in float32 would lose digits to cancellation).
    """
    C = X.shape[1]
    d1, d2, d3, d4 = X.shape[2], X.shape[3], X.shape[4], X.shape[5]
    l1, l2, l3, l4 = Z.shape[1], Z.shape[2], Z.shape[3], Z.shape[4]
    p1, p2, p3, p4 = Z.shape[6], Z.shape[7], Z.shape[8], Z.shape[9]
    D1, D2, D3, D4 = padded_shape[0], padded_shape[1], padded_shape[2], padded_shape[3]
    o1, o2, o3, o4 = pad_before[0], pad_before[1], pad_before[2], pad_before[3]
    s1, s2, s3, s4 = stride[0], stride[1], stride[2], stride[3]
    padded = (D1, D2, D3, D4) != (d1, d2, d3, d4)
    B = batch
    W = D4 * B
    K1, K2, K3, K4 = l1 * p1, l2 * p2, l3 * p3, l4 * p4
    S = np.zeros((D1, D2 * D3 * W))
    # mode 1 of a missing mode (D1 = K1 = 1) is the identity: no copy
    skip1 = D1 == 1 and K1 == 1
    T1 = S if skip1 else np.empty((K1, D2 * D3 * W))
    T2 = np.empty((K1 * K2, D3 * W))
    if B == 1:  # mode 4 along rows: keep (k3, x4) transposed to (x4, k3)
        T3 = np.empty((K1 * K2, D4 * K3))
        T4 = np.empty((K1 * K2, K4 * K3))
    else:  # B interleaved samples: mode 4 runs along the lanes
        T3 = np.empty((K1 * K2 * K3, W))
        T4 = np.empty((K1 * K2 * K3, K4 * B))
    L, P = l1 * l2 * l3 * l4, p1 * p2 * p3 * p4
    T4f = T4.reshape(T4.size)
    for first in range(start, stop, B):
        count = min(B, stop - first)
        for c in range(C):
            if padded:  # the prefix sums below overwrite the padding in place
                S[:] = 0.0
            S4 = S.reshape((D1, D2, D3, W))
            if B == 1:
                _load_one(X[first, c], S4, o1, o2, o3, o4)
            else:
                _load_interleaved(X[first:first + count, c], S4, o1, o2, o3, o4, B)
            # modes 1, 2, 3: prefix sums along the leading axis, then differences
            if not skip1:
                _prefix(S, s1)
                _differences(S, last[0], before[0], T1)
            for k1 in range(K1):
                A = T1[k1].reshape((D2, D3 * W))
                _prefix(A, s2)
                _differences(A, last[1], before[1], T2[k1 * K2:(k1 + 1) * K2])
            for j in range(K1 * K2):
                A = T2[j].reshape((D3, W))
                _prefix(A, s3)
                if B == 1:
                    At = T3[j].reshape((D4, K3))
                    for k3 in range(K3):
                        h, g = last[2, k3], before[2, k3]
                        for x4 in range(D4):
                            v = A[h, x4]
                            if g >= 0:
                                v -= A[g, x4]
                            At[x4, k3] = v
                    _prefix(At, s4)
                    _differences(At, last[3], before[3],
                                 T4[j].reshape((K4, K3)))
                else:
                    _differences(A, last[2], before[2], T3[j * K3:(j + 1) * K3])
            if B > 1:
                off = s4 * B
                for j in range(T3.shape[0]):
                    row = T3[j]
                    for m in range(off, W):
                        row[m] += row[m - off]
                    out = T4[j]
                    for m in range(K4 * B):
                        v = row[last4[m]]
                        g = before4[m]
                        if g >= 0:
                            v -= row[g]
                        out[m] = v
            # Z[i, a, c, r] from the last stage's table, in Z's order
            for b in range(count):
                Zi = Z[first + b].reshape((L, C, P))
                for a in range(L):
                    dst = Zi[a, c]
                    src = source[a]
                    for r in range(P):
                        dst[r] = T4f[src[r] + b] * scale


def _source_table(l, p, batch):
    """Where each feature ``(a, r)`` of one sample and channel sits in the last
    stage's table of :func:`_features_block` (lane 0; lane ``b`` adds ``b``)."""
    l1, l2, l3, l4 = l
    p1, p2, p3, p4 = p
    K2, K3, K4 = l2 * p2, l3 * p3, l4 * p4
    a = np.indices(l).reshape(4, -1)[:, :, None]
    r = np.indices(p).reshape(4, -1)[:, None, :]
    k1, k2, k3, k4 = (a[j] * p[j] + r[j] for j in range(4))
    if batch == 1:
        t = (k1 * K2 + k2) * (K4 * K3) + k4 * K3 + k3
    else:
        t = ((k1 * K2 + k2) * K3 + k3) * (K4 * batch) + k4 * batch
    return np.ascontiguousarray(t, dtype=np.int64)


def conv_pool_features(X, pad_before, padded_shape, stride, last, before, last4,
                       before4, scale, n_blocks, batch, Z):
    """Conv-pool features ``Z`` of each sample, by strided box sums.

    ``Z[i, a, c, r] = scale * sum_{x in box(a, r)} Xpad[i, c, x]`` where along mode j
    the box holds the padded positions ``before[j, k] + s_j, ..., last[j, k]`` in
    steps of the stride ``s_j``, for ``k = a_j * p_j + r_j``.  From strided prefix
    sums each box sum is a difference along each mode, taken one mode at a time:
    the cost per sample and channel is ``O(prod D_j + sum_j prod_{i<=j} l_i p_i
    prod_{i>j} D_i)`` whatever the pool size.

    Parameters
    ----------
    X : ndarray, shape (n, C, d1, d2, d3, d4), float32 or float64
    pad_before : int64 array (4,)
    padded_shape : int64 array (4,)
    stride : int64 array (4,)
    last, before : int64 arrays (4, max l_j p_j)
        Last padded position of each box, and the position one stride before its
        first (``-1`` when that falls before the start: nothing to subtract).
    last4, before4 : int64 arrays (l4 * p4 * batch,)
        The same for mode 4 in the interleaved layout: entry ``k * batch + b`` is
        ``last[3, k] * batch + b`` (``-1`` stays ``-1``).
    scale : float
        ``1 / prod(pool_size)``.
    n_blocks : int
        Blocks of consecutive samples, one per thread.
    batch : int
        Samples processed side by side within a block (many for tiny samples, so
        that inner loops are long; 1 for large ones).
    Z : ndarray, shape (n, l1, l2, l3, l4, C, p1, p2, p3, p4), dtype of X
        Output, overwritten.
    """
    n = X.shape[0]
    source = _source_table(Z.shape[1:5], Z.shape[6:10], batch)
    run_blocks(lambda block: _features_block(
        X, pad_before, padded_shape, stride, last, before, last4, before4, source,
        scale, batch, *block_bounds(n, n_blocks, block), Z), n_blocks)
    return Z
