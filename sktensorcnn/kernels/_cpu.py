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


@njit(inline="always")
def _add_row(S, x1, x2, x3, y1, y2, y3):
    """``S[x1, x2, x3, :] += S[y1, y2, y3, :]``."""
    for m in range(S.shape[3]):
        S[x1, x2, x3, m] += S[y1, y2, y3, m]


@njit(cache=True)
def _load_strided_prefix_sums(S, X, first, count, B, c, pad_before, stride, padded):
    """Fill ``S`` with the strided prefix sums of the zero-padded ``X[first + b, c]``.

    ``S`` has shape ``(D1, D2, D3, D4 * B)``: ``B`` samples interleaved along the
    last axis (``S[..., x4 * B + b]``), so that rows stay long even for tiny
    samples; with ``B = 1`` this is one sample's padded volume.  ``S[x]`` is the
    sum of ``Xpad[y]`` over ``y <= x`` (per axis) with ``x - y`` a multiple of the
    stride.  Every pass keeps independent work in a contiguous innermost loop, and
    unit strides get their own branches: with a literal offset LLVM can prove the
    rows do not overlap and vectorizes the row additions (about twice as fast).
    """
    D1, D2, D3, W = S.shape
    d1, d2, d3, d4 = X.shape[2], X.shape[3], X.shape[4], X.shape[5]
    o1, o2, o3, o4 = pad_before[0], pad_before[1], pad_before[2], pad_before[3]
    s1, s2, s3, s4 = stride[0], stride[1], stride[2], stride[3]
    if padded:
        S[:] = 0.0
    for y1 in range(d1):
        for y2 in range(d2):
            for y3 in range(d3):
                # Views indexed by range() carry no negative-index wraparound,
                # so the copies vectorize.
                row = S[o1 + y1, o2 + y2, o3 + y3, o4 * B:(o4 + d4) * B]
                if B == 1:
                    src = X[first, c, y1, y2, y3]
                    for y4 in range(d4):
                        row[y4] = src[y4]
                else:  # interleave: row[y4 * B + b] = X[first + b, ..., y4]
                    block = X[first:first + count, c, y1, y2, y3]
                    for y4 in range(d4):
                        lanes = row[y4 * B:(y4 + 1) * B]
                        for b in range(count):
                            lanes[b] = block[b, y4]
    for x1 in range(D1):
        for x2 in range(D2):
            if s3 == 1:
                for x3 in range(1, D3):
                    _add_row(S, x1, x2, x3, x1, x2, x3 - 1)
            else:
                for x3 in range(s3, D3):
                    _add_row(S, x1, x2, x3, x1, x2, x3 - s3)
    for x1 in range(s1, D1):
        for x2 in range(D2):
            for x3 in range(D3):
                _add_row(S, x1, x2, x3, x1 - s1, x2, x3)
    offset = s4 * B
    for x1 in range(D1):
        if s2 == 1:
            for x2 in range(1, D2):
                for x3 in range(D3):
                    _add_row(S, x1, x2, x3, x1, x2 - 1, x3)
        else:
            for x2 in range(s2, D2):
                for x3 in range(D3):
                    _add_row(S, x1, x2, x3, x1, x2 - s2, x3)
        # The last axis is a chain of dependent additions within a row: with one
        # sample, advance all the rows of the plane at once; with B interleaved
        # samples, the B lanes of a row are independent already.
        for x2 in range(D2):
            if B == 1:
                for m in range(offset, W):
                    for x3 in range(D3):
                        S[x1, x2, x3, m] += S[x1, x2, x3, m - offset]
            else:
                for x3 in range(D3):
                    for m in range(offset, W):
                        S[x1, x2, x3, m] += S[x1, x2, x3, m - offset]


@njit(cache=True)
def _box_differences(S, last, before, last4, before4, Ta, Tb, Tc):
    """Box sums from prefix sums, one mode at a time (modes 4, 3, 2).

    Mode ``j``'s pairs ``k = (a_j, r_j)`` are flattened as ``a_j * p_j + r_j``; the
    box along mode ``j`` is ``S[last[j, k]] - S[before[j, k]]`` (no subtraction when
    ``before < 0``).  Along mode 4 the tables ``last4`` / ``before4`` already
    include the sample interleaving.  Every pass has a contiguous innermost loop.
    """
    D1, D2, D3 = S.shape[0], S.shape[1], S.shape[2]
    K2, K3 = Tc.shape[1], Tb.shape[2]
    W4 = Ta.shape[3]
    for x1 in range(D1):
        for x2 in range(D2):
            for x3 in range(D3):
                for m in range(W4):
                    v = S[x1, x2, x3, last4[m]]
                    g = before4[m]
                    if g >= 0:
                        v -= S[x1, x2, x3, g]
                    Ta[x1, x2, x3, m] = v
            for k3 in range(K3):
                h, g = last[2, k3], before[2, k3]
                for m in range(W4):
                    v = Ta[x1, x2, h, m]
                    if g >= 0:
                        v -= Ta[x1, x2, g, m]
                    Tb[x1, x2, k3, m] = v
        for k2 in range(K2):
            h, g = last[1, k2], before[1, k2]
            for k3 in range(K3):
                for m in range(W4):
                    v = Tb[x1, h, k3, m]
                    if g >= 0:
                        v -= Tb[x1, g, k3, m]
                    Tc[x1, k2, k3, m] = v


@njit(cache=True, nogil=True)
def _features_block(X, pad_before, padded_shape, stride, last, before, last4,
                    before4, scale, batch, start, stop, Z):
    """Samples ``start <= i < stop`` of :func:`conv_pool_features`; its
    float64 scratch is the block's own."""
    C = X.shape[1]
    l1, l2, l3, l4 = Z.shape[1], Z.shape[2], Z.shape[3], Z.shape[4]
    p1, p2, p3, p4 = Z.shape[6], Z.shape[7], Z.shape[8], Z.shape[9]
    D1, D2, D3, D4 = padded_shape[0], padded_shape[1], padded_shape[2], padded_shape[3]
    padded = (D1, D2, D3, D4) != X.shape[2:]
    B = batch
    K2, K3, K4 = l2 * p2, l3 * p3, l4 * p4
    S = np.empty((D1, D2, D3, D4 * B))
    Ta = np.empty((D1, D2, D3, K4 * B))
    Tb = np.empty((D1, D2, K3, K4 * B))
    Tc = np.empty((D1, K2, K3, K4 * B))
    for first in range(start, stop, B):
        count = min(B, stop - first)
        for c in range(C):
            _load_strided_prefix_sums(
                S, X, first, count, B, c, pad_before, stride, padded
            )
            _box_differences(S, last, before, last4, before4, Ta, Tb, Tc)
            # mode 1, written straight into Z's (a..., c, r...) order
            for b in range(count):
                for a1 in range(l1):
                    for r1 in range(p1):
                        k1 = a1 * p1 + r1
                        h, g = last[0, k1], before[0, k1]
                        for a2 in range(l2):
                            for a3 in range(l3):
                                for a4 in range(l4):
                                    for r2 in range(p2):
                                        k2 = a2 * p2 + r2
                                        for r3 in range(p3):
                                            k3 = a3 * p3 + r3
                                            for r4 in range(p4):
                                                m = (a4 * p4 + r4) * B + b
                                                v = Tc[h, k2, k3, m]
                                                if g >= 0:
                                                    v -= Tc[g, k2, k3, m]
                                                Z[first + b, a1, a2, a3, a4, c,
                                                  r1, r2, r3, r4] = v * scale


def conv_pool_features(
    X, pad_before, padded_shape, stride, last, before, last4, before4, scale,
    n_blocks, batch, Z,
):
    """Conv-pool features ``Z`` of each sample, by strided box sums.

    ``Z[i, a, c, r] = scale * sum_{x in box(a, r)} Xpad[i, c, x]`` where along mode j
    the box holds the padded positions ``before[j, k] + s_j, ..., last[j, k]`` in
    steps of the stride ``s_j``, for ``k = a_j * p_j + r_j``.  From strided prefix
    sums each box sum is a difference along each mode, taken one mode at a time:
    the cost per sample and channel is ``O(prod D_j + sum_j prod_{i<j} D_i
    prod_{i>=j} l_i p_i)`` whatever the pool size.

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
        Blocks of consecutive samples, one per thread; each block reuses its own
        float64 scratch (prefix sums in float32 would lose digits to cancellation).
    batch : int
        Samples processed side by side within a block (many for tiny samples, so
        that inner loops are long; 1 for large ones).
    Z : ndarray, shape (n, l1, l2, l3, l4, C, p1, p2, p3, p4), dtype of X
        Output, overwritten.
    """
    n = X.shape[0]
    run_blocks(lambda block: _features_block(
        X, pad_before, padded_shape, stride, last, before, last4, before4, scale,
        batch, *block_bounds(n, n_blocks, block), Z), n_blocks)
    return Z
