"""numba CPU kernels.

Every kernel works on the canonical 4-d layout: samples ``(n, C, d_1, d_2, d_3, d_4)``
with missing spatial modes (and a missing channel axis) given size 1 and
placed first (so the innermost loops run over real modes), so that one
compiled kernel serves N = 1 to 4.  The dispatch in :mod:`sktensorcnn.kernels`
does that reshaping, which is free for contiguous arrays.
"""

import numpy as np
from numba import njit, prange


@njit(inline="always")
def _diff4(S, i1, i2, i3, hi, lo):
    """Sum of ``S[i1, i2, i3, x]`` over one stride class, via prefix sums."""
    v = S[i1, i2, i3, hi]
    if lo >= 0:
        v -= S[i1, i2, i3, lo]
    return v


@njit(inline="always")
def _diff34(S, i1, i2, h3, g3, h4, g4):
    v = _diff4(S, i1, i2, h3, h4, g4)
    if g3 >= 0:
        v -= _diff4(S, i1, i2, g3, h4, g4)
    return v


@njit(inline="always")
def _diff234(S, i1, h2, g2, h3, g3, h4, g4):
    v = _diff34(S, i1, h2, h3, g3, h4, g4)
    if g2 >= 0:
        v -= _diff34(S, i1, g2, h3, g3, h4, g4)
    return v


@njit(inline="always")
def _box(S, h1, g1, h2, g2, h3, g3, h4, g4):
    """Inclusion-exclusion over the (up to) 2^4 corners of a strided box."""
    v = _diff234(S, h1, h2, g2, h3, g3, h4, g4)
    if g1 >= 0:
        v -= _diff234(S, g1, h2, g2, h3, g3, h4, g4)
    return v


@njit(cache=True)
def _load_strided_prefix_sums(S, X, i, c, pad_before, stride):
    """Fill ``S`` with the strided prefix sums of the zero-padded ``X[i, c]``.

    ``S[x] = sum of Xpad[y]`` over ``y <= x`` (per axis) with ``x - y`` a multiple of
    the stride.  Every pass keeps independent work in its innermost loop: the copy
    is fused with the scan along axis 3 and the scans along axes 1-3 add whole
    contiguous rows; the scan along the last axis, a chain of dependent additions
    within a row, advances many rows at once instead.
    """
    D1, D2, D3, D4 = S.shape
    d1, d2, d3, d4 = X.shape[2], X.shape[3], X.shape[4], X.shape[5]
    o1, o2, o3, o4 = pad_before[0], pad_before[1], pad_before[2], pad_before[3]
    s1, s2, s3, s4 = stride[0], stride[1], stride[2], stride[3]
    for x1 in range(D1):
        for x2 in range(D2):
            for x3 in range(D3):
                y1, y2, y3 = x1 - o1, x2 - o2, x3 - o3
                inside = 0 <= y1 < d1 and 0 <= y2 < d2 and 0 <= y3 < d3
                for x4 in range(D4):
                    y4 = x4 - o4
                    v = 0.0
                    if inside and 0 <= y4 < d4:
                        v = X[i, c, y1, y2, y3, y4]
                    if x3 >= s3:
                        v += S[x1, x2, x3 - s3, x4]
                    S[x1, x2, x3, x4] = v
    for x1 in range(s1, D1):
        for x2 in range(D2):
            for x3 in range(D3):
                for x4 in range(D4):
                    S[x1, x2, x3, x4] += S[x1 - s1, x2, x3, x4]
    for x1 in range(D1):
        for x2 in range(s2, D2):
            for x3 in range(D3):
                for x4 in range(D4):
                    S[x1, x2, x3, x4] += S[x1, x2 - s2, x3, x4]
        for x2 in range(D2):
            for x4 in range(s4, D4):
                for x3 in range(D3):
                    S[x1, x2, x3, x4] += S[x1, x2, x3, x4 - s4]


@njit(parallel=True, cache=True)
def conv_pool_features(
    X, pad_before, padded_shape, stride, last, before, scale, n_blocks, Z
):
    """Conv-pool features ``Z`` of each sample, by strided box sums.

    ``Z[i, a, c, r] = scale * sum_{x in box(a, r)} Xpad[i, c, x]`` where along mode j
    the box holds the padded positions ``before[j, a_j, r_j] + s_j, ..., last[j, a_j,
    r_j]`` in steps of the stride ``s_j``.  With strided prefix sums ``S`` each box sum
    is a signed sum of ``S`` at its 2^N corners: the cost per sample and channel is
    ``O(prod D_j + 2^N L P)`` whatever the pool size.

    Parameters
    ----------
    X : ndarray, shape (n, C, d1, d2, d3, d4), float32 or float64
    pad_before : int64 array (4,)
    padded_shape : int64 array (4,)
    stride : int64 array (4,)
    last, before : int64 arrays (4, max l, max p)
        Last padded position of each box, and the position one stride before its
        first (``-1`` when that falls before the start, i.e. nothing to subtract).
    scale : float
        ``1 / prod(pool_size)``.
    n_blocks : int
        Blocks of consecutive samples, one per thread: each block reuses its own
        float64 scratch (prefix sums in float32 would lose digits to cancellation).
    Z : ndarray, shape (n, l1, l2, l3, l4, C, p1, p2, p3, p4), dtype of X
        Output, overwritten.
    """
    n, C = X.shape[0], X.shape[1]
    l1, l2, l3, l4 = Z.shape[1], Z.shape[2], Z.shape[3], Z.shape[4]
    p1, p2, p3, p4 = Z.shape[6], Z.shape[7], Z.shape[8], Z.shape[9]
    for b in prange(n_blocks):
        S = np.empty(
            (padded_shape[0], padded_shape[1], padded_shape[2], padded_shape[3])
        )
        for i in range((b * n) // n_blocks, ((b + 1) * n) // n_blocks):
            for c in range(C):
                _load_strided_prefix_sums(S, X, i, c, pad_before, stride)
                for a1 in range(l1):
                    for a2 in range(l2):
                        for a3 in range(l3):
                            for a4 in range(l4):
                                for r1 in range(p1):
                                    h1 = last[0, a1, r1]
                                    g1 = before[0, a1, r1]
                                    for r2 in range(p2):
                                        h2 = last[1, a2, r2]
                                        g2 = before[1, a2, r2]
                                        for r3 in range(p3):
                                            h3 = last[2, a3, r3]
                                            g3 = before[2, a3, r3]
                                            for r4 in range(p4):
                                                v = _box(
                                                    S, h1, g1, h2, g2, h3, g3,
                                                    last[3, a4, r4],
                                                    before[3, a4, r4],
                                                )
                                                Z[i, a1, a2, a3, a4, c,
                                                  r1, r2, r3, r4] = v * scale
    return Z
