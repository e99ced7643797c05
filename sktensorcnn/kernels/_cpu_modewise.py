"""One-dimensional convolution along one mode of a batch of maps (numba).

The building block of factorized convolution (:mod:`._cpu_factorized`): every
Tucker or CP step filters the maps along one spatial mode with a few 1-D filters.
Maps are viewed as ``T`` ``(n, G, Q, D, I)``: ``D`` the filtered mode, ``Q`` the
modes before it, ``I`` the modes after it (contiguous, so the innermost loops run
over ``I``).  The last mode (``I = 1``) has its own kernels on ``(n, G, Q, D)``
views, whose innermost loops run over the output positions.  Filter ``r`` reads group
``r`` when ``G > 1`` (CP: each rank component has its own map, a depthwise
convolution) and the only group when ``G = 1`` (Tucker: every filter reads every
map).  Outputs are ``(n, R, Q, m, I)``: the new filter axis goes in front so that
the next mode's view is again a plain reshape.

Samples (and filters in the forward pass) are split into blocks run side by
side (:func:`._threads.run_blocks`); the filter gradients are
accumulated per sample and summed afterwards, so results do not depend on the
number of threads.  Arithmetic in the maps' precision.
"""

from numba import njit

from ._threads import block_bounds, n_blocks_for, run_blocks


@njit(cache=True, nogil=True)
def _conv_along_block(T, H, stride, out, first, last):
    """Items ``first <= job < last`` of :func:`conv_along`."""
    n, G, Q, _, I = T.shape
    l, R = H.shape
    m = out.shape[3]
    for job in range(first, last):
        b, r = job // R, job % R
        g = r if G > 1 else 0
        for q in range(Q):
            for t in range(m):
                for i in range(I):
                    out[b, r, q, t, i] = 0.0
                for k in range(l):
                    h = H[k, r]
                    row = t * stride + k
                    for i in range(I):
                        out[b, r, q, t, i] += h * T[b, g, q, row, i]


def conv_along(T, H, stride, out):
    """``out[b, r, q, t, i] = sum_k H[k, r] T[b, g(r), q, t * stride + k, i]``."""
    n_items = T.shape[0] * H.shape[1]
    n_blocks = n_blocks_for(n_items, out[0, 0].size * H.shape[0])
    run_blocks(lambda block: _conv_along_block(
        T, H, stride, out,
        *block_bounds(n_items, n_blocks, block)), n_blocks)


@njit(cache=True, nogil=True)
def _conv_along_backward_block(dout, T, H, stride, want_input, dT, dH, scratch,
                               first, last):
    """Items ``first <= b < last`` of :func:`conv_along_backward`."""
    n, G, Q, _, I = T.shape
    l, R = H.shape
    m = dout.shape[3]
    for b in range(first, last):
        acc = scratch[b]
        for r in range(R):
            g = r if G > 1 else 0
            for k in range(l):
                h = H[k, r]
                acc[:] = 0.0
                for q in range(Q):
                    for t in range(m):
                        row = t * stride + k
                        for i in range(I):
                            acc[i] += dout[b, r, q, t, i] * T[b, g, q, row, i]
                        if want_input:
                            for i in range(I):
                                dT[b, g, q, row, i] += h * dout[b, r, q, t, i]
                total = 0.0
                for i in range(I):
                    total += acc[i]
                dH[b, k, r] = total


def conv_along_backward(dout, T, H, stride, want_input, dT, dH, scratch):
    """Back through :func:`conv_along` for the gradient ``dout`` of its output.

    Writes per-sample filter gradients to ``dH`` ``(n, l, R)`` (float64) and, when
    ``want_input``, adds the input gradient to ``dT`` (shaped as ``T``).
    ``scratch`` ``(n, I)`` in the maps' dtype holds partial sums that run along
    the contiguous axis, so the products vectorize.
    """
    n_items = T.shape[0]
    n_blocks = n_blocks_for(n_items, 2 * dout[0].size * H.shape[0])
    run_blocks(lambda block: _conv_along_backward_block(
        dout, T, H, stride, want_input, dT, dH, scratch,
        *block_bounds(n_items, n_blocks, block)), n_blocks)


@njit(cache=True, nogil=True)
def _conv_along_last_block(T, H, stride, out, first, last):
    """Items ``first <= job < last`` of :func:`conv_along_last`."""
    n, G, Q, _ = T.shape
    l, R = H.shape
    m = out.shape[3]
    for job in range(first, last):
        b, r = job // R, job % R
        g = r if G > 1 else 0
        for q in range(Q):
            row_out = out[b, r, q]
            row_in = T[b, g, q]
            row_out[:] = 0.0
            for k in range(l):
                h = H[k, r]
                if stride == 1:  # contiguous: vectorizes
                    for t in range(m):
                        row_out[t] += h * row_in[t + k]
                else:
                    for t in range(m):
                        row_out[t] += h * row_in[t * stride + k]


def conv_along_last(T, H, stride, out):
    """:func:`conv_along` for the last mode: ``T`` ``(n, G, Q, D)``, ``out``
    ``(n, R, Q, m)``."""
    n_items = T.shape[0] * H.shape[1]
    n_blocks = n_blocks_for(n_items, out[0, 0].size * H.shape[0])
    run_blocks(lambda block: _conv_along_last_block(
        T, H, stride, out,
        *block_bounds(n_items, n_blocks, block)), n_blocks)


@njit(cache=True, nogil=True)
def _conv_along_last_backward_block(dout, T, H, stride, want_input, dT, dH,
                                    scratch, first, last):
    """Items ``first <= b < last`` of :func:`conv_along_last_backward`."""
    n, G, Q, _ = T.shape
    l, R = H.shape
    m = dout.shape[3]
    for b in range(first, last):
        acc = scratch[b]
        for r in range(R):
            g = r if G > 1 else 0
            for k in range(l):
                h = H[k, r]
                acc[:] = 0.0
                for q in range(Q):
                    grad = dout[b, r, q]
                    row_in = T[b, g, q]
                    if stride == 1:
                        for t in range(m):
                            acc[t] += grad[t] * row_in[t + k]
                    else:
                        for t in range(m):
                            acc[t] += grad[t] * row_in[t * stride + k]
                    if not want_input:
                        continue
                    row_grad = dT[b, g, q]
                    if stride == 1:
                        for t in range(m):
                            row_grad[t + k] += h * grad[t]
                    else:
                        for t in range(m):
                            row_grad[t * stride + k] += h * grad[t]
                total = 0.0
                for t in range(m):
                    total += acc[t]
                dH[b, k, r] = total


def conv_along_last_backward(dout, T, H, stride, want_input, dT, dH, scratch):
    """:func:`conv_along_backward` for the last mode (``(n, G, Q, D)`` maps,
    ``scratch`` ``(n, m)``)."""
    n_items = T.shape[0]
    n_blocks = n_blocks_for(n_items, 2 * dout[0].size * H.shape[0])
    run_blocks(lambda block: _conv_along_last_backward_block(
        dout, T, H, stride, want_input, dT, dH, scratch,
        *block_bounds(n_items, n_blocks, block)), n_blocks)
