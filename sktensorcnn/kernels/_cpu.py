"""numba CPU kernel of the conv-pool features ``Z``.

A feature averages the padded input over a box that is a product of one run of
``q_j`` positions per mode, spaced by the stride (``ConvPoolGeometry.box_bounds``),
so the box sums are taken one mode at a time.  Samples are in the canonical
4-mode layout ``(n, C, d_1, d_2, d_3, d_4)``: missing spatial modes have size 1
and come first, so that one compiled kernel serves N = 1 to 4; the dispatch in
:mod:`._host` does that reshaping, which is free for contiguous arrays.

Each mode is summed by one of two passes, both running along long contiguous
rows so that they vectorize:

* *box rows* (leading modes, whose rows -- the rest of the sample -- are long):
  one output row per box, ``l_j p_j`` of them in place of the ``D_j`` input
  rows, so the data shrink at each step.  Boxes are visited in order of their
  first row, and a box one stride after the previous one is that box plus the
  row entering minus the row leaving (two rows read instead of ``q_j``), which
  also lets the first pass stream through the sample in order;
* *sliding sums* (trailing modes, short rows): the sum over ``q_j`` positions
  at every position of the whole table of a group of samples, read as one flat
  array; positions whose run would cross into the next row or sample are
  computed but never read.

Tiny samples are processed a group at a time so that these rows stay long.  The
features are then read off the last table.  The sums are taken in the input's
precision: direct sums of a few terms, and chains of at most ``q_j`` running
boxes before a direct sum, so a float32 feature is within a few float32 roundings
of the largest input its run of boxes reads (prefix sums over the whole mode
would instead lose digits to the cancellation of long sums).
"""

import numpy as np
from numba import njit

from ._threads import block_bounds, run_blocks


@njit(cache=True, nogil=True)
def _sliding_sums(src, off, length, step, q, dst):
    """``dst[i] = sum_{m < q} src[off + i + m step]`` for ``i < length - (q-1)
    step`` (returned): up to four terms per sweep over ``dst``."""
    n = length - (q - 1) * step
    out = dst[:n]
    m = 0
    while m < q:
        t = min(4, q - m)
        b = off + m * step
        r0 = src[b:b + n]
        if t == 1:
            if m == 0:
                for i in range(n):
                    out[i] = r0[i]
            else:
                for i in range(n):
                    out[i] += r0[i]
        elif t == 2:
            r1 = src[b + step:b + step + n]
            if m == 0:
                for i in range(n):
                    out[i] = r0[i] + r1[i]
            else:
                for i in range(n):
                    out[i] += r0[i] + r1[i]
        elif t == 3:
            r1 = src[b + step:b + step + n]
            r2 = src[b + 2 * step:b + 2 * step + n]
            if m == 0:
                for i in range(n):
                    out[i] = r0[i] + r1[i] + r2[i]
            else:
                for i in range(n):
                    out[i] += r0[i] + r1[i] + r2[i]
        else:
            r1 = src[b + step:b + step + n]
            r2 = src[b + 2 * step:b + 2 * step + n]
            r3 = src[b + 3 * step:b + 3 * step + n]
            if m == 0:
                for i in range(n):
                    out[i] = (r0[i] + r1[i]) + (r2[i] + r3[i])
            else:
                for i in range(n):
                    out[i] += (r0[i] + r1[i]) + (r2[i] + r3[i])
        m += t
    return n


@njit(cache=True, nogil=True)
def _box_rows(src, off, n_outer, E, slab, first, order, K, q, s, dst):
    """Box sums along one mode, one output row per box.

    ``src[off:]`` is read as ``(n_outer, E, slab)`` and ``dst`` written as
    ``(n_outer, K, slab)``: ``dst[u, k] = sum_{m < q} src[u, first[k] + m s]``.
    2-d views indexed by row, not slices per row: a slice costs a reference
    count update, which dominates rows of a few dozen values.  The sweeps of
    up to four rows repeat those of :func:`_sliding_sums` on purpose: one
    helper on flat indices shared by both ran 3-6x slower (its loops were no
    longer vectorized).
    """
    S = src[off:off + n_outer * E * slab].reshape((n_outer * E, slab))
    D = dst[:n_outer * K * slab].reshape((n_outer * K, slab))
    for u in range(n_outer):
        prev = -1
        chain = 0  # running boxes since the last direct sum: at most q, so
        # that float32 rounding does not pile up along the whole mode
        for kk in range(K):
            k = order[kk]
            o = u * K + k
            if prev >= 0 and first[k] - first[prev] == s and chain < q:
                chain += 1
                p = u * K + prev
                r_in = u * E + first[prev] + q * s
                r_out = u * E + first[prev]
                for i in range(slab):
                    D[o, i] = D[p, i] + (S[r_in, i] - S[r_out, i])
                prev = k
                continue
            prev = k
            chain = 0
            m = 0
            while m < q:
                t = min(4, q - m)
                r = u * E + first[k] + m * s
                if t == 1:
                    if m == 0:
                        for i in range(slab):
                            D[o, i] = S[r, i]
                    else:
                        for i in range(slab):
                            D[o, i] += S[r, i]
                elif t == 2:
                    if m == 0:
                        for i in range(slab):
                            D[o, i] = S[r, i] + S[r + s, i]
                    else:
                        for i in range(slab):
                            D[o, i] += S[r, i] + S[r + s, i]
                elif t == 3:
                    if m == 0:
                        for i in range(slab):
                            D[o, i] = S[r, i] + S[r + s, i] + S[r + 2 * s, i]
                    else:
                        for i in range(slab):
                            D[o, i] += S[r, i] + S[r + s, i] + S[r + 2 * s, i]
                else:
                    if m == 0:
                        for i in range(slab):
                            D[o, i] = ((S[r, i] + S[r + s, i])
                                       + (S[r + 2 * s, i] + S[r + 3 * s, i]))
                    else:
                        for i in range(slab):
                            D[o, i] += ((S[r, i] + S[r + s, i])
                                        + (S[r + 2 * s, i] + S[r + 3 * s, i]))
                m += t


@njit(cache=True, nogil=True)
def _load_padded(Xf, off, R, d, pad_before, A):
    """Rows ``R`` (samples times channels) of the flat ``Xf`` from ``off`` into
    the zero-padded table ``A`` of shape ``(R, D_1, ..., D_4)``."""
    X5 = Xf[off:off + R * d[0] * d[1] * d[2] * d[3]].reshape(
        (R, d[0], d[1], d[2], d[3]))
    o1, o2, o3, o4 = pad_before[0], pad_before[1], pad_before[2], pad_before[3]
    A[:] = 0.0
    for u in range(R):
        for y1 in range(d[0]):
            for y2 in range(d[1]):
                for y3 in range(d[2]):
                    row = A[u, o1 + y1, o2 + y2, o3 + y3]
                    src = X5[u, y1, y2, y3]
                    for y4 in range(d[3]):
                        row[o4 + y4] = src[y4]


@njit(cache=True, nogil=True)
def _features_block(Xf, C, sample_shape, pad_before, padded_shape, stride, pool,
                    first, order, n_boxes, by_rows, source, scale, group, start,
                    stop, work, Z):
    """Samples ``start <= i < stop`` of :func:`conv_pool_features`, ``group`` at
    a time, in the scratch ``work`` (two tables of a group each)."""
    d, D = sample_shape, padded_shape
    size = C * d[0] * d[1] * d[2] * d[3]
    padded_size = C * D[0] * D[1] * D[2] * D[3]
    A = work[:group * padded_size]
    B = work[group * padded_size:]
    ext = np.empty(4, dtype=np.int64)
    features = Z.shape[1]
    for g0 in range(start, stop, group):
        count = min(group, stop - g0)
        R = count * C
        length = count * padded_size
        ext[:] = D
        from_x = size == padded_size
        if not from_x:
            _load_padded(Xf, g0 * size, R, d, pad_before,
                         A[:length].reshape((R, D[0], D[1], D[2], D[3])))
        for j in range(4):
            q = pool[j]
            if ext[j] == 1 or (q == 1 and not by_rows[j]):
                continue  # nothing to sum
            slab = ext[j + 1:].prod()
            # one call site per pass, so that each compiles once per dtype
            if from_x:
                src, off, dst = Xf, g0 * size, A
            else:
                src, off, dst = A, 0, B
            if by_rows[j]:
                outer = R * ext[:j].prod()
                _box_rows(src, off, outer, ext[j], slab, first[j], order[j],
                          n_boxes[j], q, stride[j], dst)
                ext[j] = n_boxes[j]
                length = outer * n_boxes[j] * slab
            else:
                length = _sliding_sums(src, off, length, stride[j] * slab, q, dst)
            if not from_x:
                A, B = B, A
            from_x = False
        if from_x:  # pooling of size 1 everywhere: the features are the inputs
            A[:length] = Xf[g0 * size:g0 * size + length]
        # one flat loop per sample, element indexing (a row slice costs a
        # reference count update, which dominates a few dozen features)
        unit = C * ext.prod()
        for g in range(count):
            base = g * unit
            for f in range(features):
                Z[g0 + g, f] = A[base + source[f]] * scale


def conv_pool_features(X, pad_before, padded_shape, stride, pool, first, order,
                       n_boxes, by_rows, source, scale, group, n_blocks, Z):
    """Conv-pool features ``Z`` of each sample, by box sums one mode at a time.

    ``Z[i, a, c, r] = scale * sum_{x in box(a, r)} Xpad[i, c, x]``, where along
    mode j the box of ``k = a_j p_j + r_j`` holds the padded positions
    ``first[j, k] + m stride_j``, ``m < pool_j``.

    Parameters
    ----------
    X : ndarray, shape (n, C, d1, d2, d3, d4), float32 or float64, C-contiguous
    pad_before, padded_shape, stride, pool : int64 arrays (4,)
    first : int64 array (4, max l_j p_j)
        First padded position of each box, per mode.
    order : int64 array (4, max l_j p_j)
        The boxes of each mode by first position.
    n_boxes : int64 array (4,)
        ``l_j p_j``.
    by_rows : bool array (4,)
        Modes summed by box rows (a leading run of modes); the others by sliding
        sums.
    source : int64 array (L C P,)
        Where feature ``(a, c, r)`` of one sample sits in its part of the last
        table: the channel's table, then per mode the box ``k`` (modes summed
        by box rows) or its first position (the others).
    scale : float32 or float64 scalar, the dtype of X
        ``1 / prod(pool)``.
    group : int
        Samples summed together (many for tiny samples, so that rows are long).
    n_blocks : int
        Blocks of consecutive samples, one per thread.
    Z : ndarray, shape (n, L C P), dtype of X
        Output, overwritten (the features ``(n, L, C, P)`` flattened).
    """
    n, C = X.shape[:2]
    sample_shape = np.array(X.shape[2:], dtype=np.int64)
    Xf = X.reshape(-1)
    scratch = 2 * group * C * int(np.prod(padded_shape))
    run_blocks(lambda block: _features_block(
        Xf, C, sample_shape, pad_before, padded_shape, stride, pool, first, order,
        n_boxes, by_rows, source, scale, group, *block_bounds(n, n_blocks, block),
        np.empty(scratch, dtype=X.dtype), Z), n_blocks)
    return Z
