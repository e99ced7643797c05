"""Factorized convolution with Tucker or CP kernels, forward and backward (numpy).

With stacked kernels ``A = G x_1 H_1 ... x_N H_N [x_C H_C] x_K H_K`` the
convolution never needs ``A`` (seed 004, Prop. 1): mix the channels with ``H_C``,
convolve mode by mode with the ``R_j`` one-dimensional filters ``H_j[:, r]``,
contract with the core to ``R_K`` maps, and mix those into the ``K`` outputs with
``H_K`` -- the ``R_K`` core kernels mixed linearly before the activation.  Each step
is a small matrix product over a sliding-window view.  The backward pass returns
the gradients of the factors and the core directly.

CP kernels ``A = sum_r u_1r (outer) ... (outer) u_Nr [(outer) u_Cr] (outer) h_r`` are
separable: each rank component mixes the channels with ``u_Cr``, then runs one
1-D filter ``u_jr`` per mode (a depthwise convolution over the ``R`` maps), and
``H = [h_r]`` mixes the ``R`` maps into the ``K`` outputs.

Layout: samples ``(b, C, d_1, ..., d_N)`` (channel axis always present, ``C = 1``
without channels), parameters as :class:`~sktensorcnn.parametrizations.TuckerWeight`
(``[H_1, ..., H_N, [H_C], H_K, G]``) or
:class:`~sktensorcnn.parametrizations.CPWeight` (``[U_1, ..., U_N, [U_C], H]``) of
the stacked kernels.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def factorized_macs(geometry, ranks, n_kernels) -> int:
    """Multiply-adds per sample of the factorized forward convolution."""
    N = geometry.n_modes
    C = geometry.n_channels or 1
    R = list(ranks[:N])
    R_C = ranks[N] if geometry.n_channels is not None else 1
    R_K = ranks[-1]
    size = int(np.prod(geometry.padded_shape))
    macs = C * R_C * size if geometry.n_channels is not None else 0
    lead = R_C  # channels times already-contracted ranks
    for j in range(N):
        rest = int(np.prod(geometry.padded_shape[j + 1:]))
        done = int(np.prod(geometry.conv_shape[:j]))
        macs += lead * done * geometry.conv_shape[j] * rest * geometry.kernel_size[j] \
            * R[j]
        lead *= R[j]
    M = int(np.prod(geometry.conv_shape))
    return macs + M * lead * R_K + M * R_K * n_kernels


def cp_factorized_macs(geometry, rank, n_kernels) -> int:
    """Multiply-adds per sample of the factorized CP forward convolution."""
    C = geometry.n_channels or 1
    macs = C * rank * int(np.prod(geometry.padded_shape)) \
        if geometry.n_channels is not None else 0
    for j in range(geometry.n_modes):
        done = int(np.prod(geometry.conv_shape[:j + 1]))
        rest = int(np.prod(geometry.padded_shape[j + 1:]))
        macs += rank * done * rest * geometry.kernel_size[j]
    return macs + int(np.prod(geometry.conv_shape)) * rank * n_kernels


def _mode_slice(ndim, axis, start, count, stride):
    index = [slice(None)] * ndim
    index[axis] = slice(start, start + (count - 1) * stride + 1, stride)
    return tuple(index)


def cp_forward(X, params, geometry):
    """CP counterpart of :func:`forward`: ``(b, m..., K)`` and a cache."""
    N = geometry.n_modes
    factors, H = params[:-1], params[-1]
    Xp = _pad(X, geometry)
    # (b, R, D...) after the channel mix; (b, 1, D...) broadcasts over R without
    T = (np.einsum("bc...,cr->br...", Xp, factors[N])
         if geometry.n_channels is not None else Xp)
    inputs = []
    for j in range(N):
        inputs.append(T)
        U = factors[j].astype(T.dtype, copy=False)  # (l_j, R)
        shape = [1] * T.ndim
        shape[1] = U.shape[1]
        out = None
        for a in range(geometry.kernel_size[j]):
            term = T[_mode_slice(T.ndim, 2 + j, a, geometry.conv_shape[j],
                                 geometry.stride[j])] * U[a].reshape(shape)
            out = term if out is None else out + term
        T = out  # (b, R, m_1..m_j, D_{j+1}...)
    b, R = T.shape[:2]
    Tt = np.moveaxis(T.reshape(b, R, -1), 1, -1)  # (b, M, R)
    Y = _dot_last(Tt, H.T)  # (b, M, K)
    return Y, (Xp, inputs, T, Tt)


def cp_backward(dY, params, geometry, cache):
    """Gradients of ``<dY, Y>`` w.r.t. ``[U_1..U_N, [U_C], H]``."""
    N = geometry.n_modes
    factors, H = params[:-1], params[-1]
    Xp, inputs, T, Tt = cache
    K, R = H.shape
    dH = dY.reshape(-1, K).T @ Tt.reshape(-1, R)
    dT = np.moveaxis(_dot_last(dY, H), -1, 1).reshape(T.shape)  # (b, R, m...)
    grads = [None] * N
    for j in reversed(range(N)):
        T_in = inputs[j]
        U = factors[j]
        l, m, s = geometry.kernel_size[j], geometry.conv_shape[j], geometry.stride[j]
        axes = tuple(a for a in range(dT.ndim) if a != 1)
        grads[j] = np.stack([
            np.sum(dT * T_in[_mode_slice(T_in.ndim, 2 + j, a, m, s)], axis=axes)
            for a in range(l)
        ])  # (l_j, R)
        if j == 0 and geometry.n_channels is None:
            break
        shape = [1] * dT.ndim
        shape[1] = R
        dT_in = np.zeros(T_in.shape, dtype=dT.dtype)
        for a in range(l):
            dT_in[_mode_slice(T_in.ndim, 2 + j, a, m, s)] += dT * U[a].reshape(shape)
        dT = dT_in
    if geometry.n_channels is not None:
        axes = [0, *range(2, Xp.ndim)]
        grads.append(np.tensordot(Xp, dT, axes=(axes, axes)))  # (C, R)
    return [*grads, dH]


def _split(params, geometry):
    N = geometry.n_modes
    factors, core = params[:-1], params[-1]
    spatial = factors[:N]
    channel = factors[N] if geometry.n_channels is not None else None
    return spatial, channel, factors[-1], core


def _pad(X, geometry):
    pads = [(0, 0), (0, 0), *geometry.padding]
    return np.pad(X, pads) if any(p != (0, 0) for p in pads) else X


def _dot_last(T, matrix):
    """``T @ matrix`` over the last axis as one 2-D BLAS product (``@`` on an N-d
    array runs many tiny stacked products instead; strided views are gathered)."""
    out = T.reshape(-1, T.shape[-1]) @ matrix.astype(T.dtype, copy=False)
    return out.reshape(*T.shape[:-1], matrix.shape[1])


def _windows(T, axis, length, stride, count):
    """Windows of ``length`` along ``axis`` every ``stride``, the first ``count``;
    the window offset becomes the last axis."""
    win = sliding_window_view(T, length, axis=axis)
    index = [slice(None)] * win.ndim
    index[axis] = slice(0, (count - 1) * stride + 1, stride)
    return win[tuple(index)]


def forward(X, params, geometry):
    """Convolution outputs ``(b, m_1..m_N, K)`` and what the backward pass needs."""
    N = geometry.n_modes
    spatial, channel, H_K, core = _split(params, geometry)
    Xp = _pad(X, geometry)
    # (b, C, D...) -> (b, R_C, D...): channel mix
    T = np.einsum("bc...,cr->br...", Xp, channel) if channel is not None else Xp
    inputs = []
    for j in range(N):
        inputs.append(T)
        win = _windows(T, 2 + j, geometry.kernel_size[j], geometry.stride[j],
                       geometry.conv_shape[j])
        T = _dot_last(win, spatial[j])  # window axis contracted, R_j appended
    # T: (b, R_C, m..., R_1..R_N); core G: (R_1..R_N, [R_C], R_K)
    b = X.shape[0]
    M = int(np.prod(geometry.conv_shape))
    R_C = T.shape[1]
    # (b, M, R_1..R_N [R_C]) in the core's mode order (R_C = 1 drops out)
    Tm = np.moveaxis(T, 1, -1).reshape(b, M, -1)
    core_mat = core.reshape(-1, core.shape[-1])
    Yc = _dot_last(Tm, core_mat)  # (b, M, R_K)
    Y = _dot_last(Yc, H_K.T)  # (b, M, K)
    cache = (Xp, inputs, T, Tm, Yc, R_C)
    return Y, cache


def backward(dY, params, geometry, cache):
    """Gradients of ``<dY, Y>`` w.r.t. ``[H_1..H_N, [H_C], H_K, G]``."""
    N = geometry.n_modes
    spatial, channel, H_K, core = _split(params, geometry)
    Xp, inputs, T, Tm, Yc, R_C = cache
    b = dY.shape[0]
    K, R_K = H_K.shape
    dH_K = dY.reshape(-1, K).T @ Yc.reshape(-1, R_K)
    dYc = _dot_last(dY, H_K)  # (b, M, R_K)
    core_mat = core.reshape(-1, core.shape[-1])
    dcore = (Tm.reshape(-1, Tm.shape[-1]).T @ dYc.reshape(-1, R_K)).reshape(core.shape)
    dTm = _dot_last(dYc, core_mat.T)  # (b, M, R_1..R_N R_C)
    dT = np.moveaxis(dTm.reshape(b, *geometry.conv_shape, *T.shape[2 + N:], R_C),
                     -1, 1)
    d_spatial = [None] * N
    for j in reversed(range(N)):
        T_in = inputs[j]
        win = _windows(T_in, 2 + j, geometry.kernel_size[j], geometry.stride[j],
                       geometry.conv_shape[j])  # (..., l_j)
        R_j = dT.shape[-1]
        d_spatial[j] = (win.reshape(-1, win.shape[-1]).T  # (l_j, R_j)
                        @ dT.reshape(-1, R_j))
        if j == 0 and channel is None:
            break
        # back through the 1-D convolution: scatter E[..., t, ..., a] to t*s + a
        E = _dot_last(dT, spatial[j].T)  # (..., m_j, ..., l_j)
        dT_in = np.zeros(T_in.shape, dtype=E.dtype)
        s, m = geometry.stride[j], geometry.conv_shape[j]
        for a in range(geometry.kernel_size[j]):
            index = [slice(None)] * dT_in.ndim
            index[2 + j] = slice(a, a + (m - 1) * s + 1, s)
            dT_in[tuple(index)] += E[..., a]
        dT = dT_in
    grads = list(d_spatial)
    if channel is not None:
        axes = [0, *range(2, Xp.ndim)]
        grads.append(np.tensordot(Xp, dT, axes=(axes, axes)))  # (C, R_C)
    return [*grads, dH_K, dcore]


#: Bytes of intermediate maps per chunk of samples.
_CHUNK_BYTES = 64 * 2**20


def network_squared_loss_grad(X, y, weights, params, Bt, b, code_name, geometry,
                              kind="tucker"):
    """Squared loss and gradients as :mod:`._cpu_gemm`'s, for Tucker or CP
    (``kind``) parameters.

    ``X`` ``(n, C, d...)``, ``Bt`` ``(K, m...)``.  Returns the loss, the gradients
    of ``params``, ``D`` ``(K, m...)`` (unpooled FC gradient) and ``db``.
    """
    from ._cpu_gemm import squared_loss_head

    n, K = X.shape[0], Bt.shape[0]
    M = int(np.prod(geometry.conv_shape))
    Bt_mk = Bt.reshape(K, M).T.astype(X.dtype)
    per_sample = X[0].nbytes * 4 + M * K * X.itemsize * 4
    size = max(1, _CHUNK_BYTES // per_sample)
    loss, db = 0.0, 0.0
    grads = [np.zeros(p.shape) for p in params]
    D = np.zeros((M, K))
    fwd, bwd = (forward, backward) if kind == "tucker" else (cp_forward, cp_backward)
    for start in range(0, n, size):
        rows = slice(start, min(start + size, n))
        Y, cache = fwd(X[rows], params, geometry)
        part_loss, part_db, part_D, dY = squared_loss_head(
            Y.reshape(-1, M, K), Bt_mk, b, y[rows], weights[rows], code_name)
        loss, db = loss + part_loss, db + part_db
        D += part_D
        for total, part in zip(grads, bwd(dY, params, geometry, cache)):
            total += part
    return loss, grads, D.T.reshape(Bt.shape), db
