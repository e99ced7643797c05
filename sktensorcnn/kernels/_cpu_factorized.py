"""Factorized convolution with Tucker or CP kernels, forward and backward (numpy).

With stacked kernels ``A = G x_1 H_1 ... x_N H_N [x_C H_C] x_K H_K`` the
convolution never needs ``A`` ([Rank reduction], Prop. 1): mix the channels with
``H_C``,
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

from . import _cpu_modewise
from ._cpu_gemm import flat_head_weights, loss_head, unflatten_head_grad
from ._memory import CHUNK_BYTES


def factorized_macs(geometry, ranks, n_kernels) -> int:
    """Multiply-adds per sample of the factorized forward convolution."""
    N = geometry.n_modes
    C = geometry.n_channels or 1
    R = list(ranks[:N])
    R_C = ranks[N] if geometry.n_channels is not None else 1
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
    # the core and the output mixing run as one product: R_1..R_N R_C -> K
    return macs + M * lead * n_kernels


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


def _split(params, geometry):
    N = geometry.n_modes
    factors, core = params[:-1], params[-1]
    spatial = factors[:N]
    channel = factors[N] if geometry.n_channels is not None else None
    return spatial, channel, factors[-1], core


def _pad(X, geometry):
    pads = [(0, 0), (0, 0), *geometry.padding]
    return np.pad(X, pads) if any(p != (0, 0) for p in pads) else X


def _channel_mix(Xp, channel):
    """``(b, C, D...)`` -> ``(b, R_C, D...)``; without channels ``(b, 1, D...)``."""
    if channel is None:
        return Xp
    b, C = Xp.shape[:2]
    mixed = channel.T.astype(Xp.dtype) @ Xp.reshape(b, C, -1)
    return mixed.reshape(b, channel.shape[1], *Xp.shape[2:])


def _convolve_modes(T, filters, geometry, depthwise):
    """Filter ``T`` ``(b, G, D_1..D_N)`` along every spatial mode in turn.

    Tucker (``depthwise=False``): each mode's ``R_j`` filters read every map and
    their axis is put in front, ending as ``(b, R_N..R_1, G, m_1..m_N)``.  CP
    (``depthwise``): filter ``r`` reads map ``r``, ending as ``(b, R, m_1..m_N)``.
    Returns the result and the 5-D input views the backward pass needs.
    """
    b = T.shape[0]
    N = geometry.n_modes
    inputs = []
    for j in range(N):
        D = geometry.padded_shape[j]
        m = geometry.conv_shape[j]
        I = int(np.prod(geometry.padded_shape[j + 1:]))
        G = T.shape[1] if depthwise else 1
        T5 = T.reshape(b, G, -1, D, I)
        H = np.ascontiguousarray(filters[j], dtype=T.dtype)
        out = np.empty((b, H.shape[1], T5.shape[2], m, I), dtype=T.dtype)
        if I == 1:
            _cpu_modewise.conv_along_last(T5[..., 0], H, geometry.stride[j],
                                          out[..., 0])
        else:
            _cpu_modewise.conv_along(T5, H, geometry.stride[j], out)
        inputs.append(T5)
        T = out
    return T.reshape(b, -1, int(np.prod(geometry.conv_shape))), inputs


def _convolve_modes_backward(dT, filters, geometry, inputs, want_input):
    """Back through :func:`_convolve_modes`: the filters' gradients and the
    gradient of the maps it started from (``None`` unless ``want_input``)."""
    grads = [None] * geometry.n_modes
    for j in reversed(range(geometry.n_modes)):
        T5 = inputs[j]
        b, _, Q, _, I = T5.shape
        H = np.ascontiguousarray(filters[j], dtype=T5.dtype)
        l, R = H.shape
        m = geometry.conv_shape[j]
        dout = np.ascontiguousarray(dT, dtype=T5.dtype).reshape(b, R, Q, m, I)
        need = want_input or j > 0
        dT_in = np.zeros(T5.shape if need else (0, 1, 1, 1, 1), dtype=T5.dtype)
        dH = np.empty((b, l, R))
        scratch = np.empty((b, m if I == 1 else I), dtype=T5.dtype)
        if I == 1:
            _cpu_modewise.conv_along_last_backward(
                dout[..., 0], T5[..., 0], H, geometry.stride[j], need,
                dT_in[..., 0], dH, scratch)
        else:
            _cpu_modewise.conv_along_backward(dout, T5, H, geometry.stride[j], need,
                                              dT_in, dH, scratch)
        grads[j] = dH.sum(axis=0)
        dT = dT_in
    return grads, (dT if want_input else None)


def _channel_grad(Xp, dT, channel):
    """Gradient of the channel mix ``(C, R_C)`` from that of its output."""
    b, C = Xp.shape[:2]
    return np.einsum("bcx,brx->cr", Xp.reshape(b, C, -1),
                     dT.reshape(b, channel.shape[1], -1), dtype=np.float64)


def _core_matrix(core, geometry):
    """The core ``(R_1..R_N, [R_C], R_K)`` as ``(R_N..R_1 [R_C], R_K)``, matching
    the rank axes of :func:`_convolve_modes`."""
    N = geometry.n_modes
    order = [*reversed(range(N)), *range(N, core.ndim)]
    return np.transpose(core, order).reshape(-1, core.shape[-1])


def _uncore(matrix, core, geometry):
    """Inverse of :func:`_core_matrix`."""
    N = geometry.n_modes
    order = [*reversed(range(N)), *range(N, core.ndim)]
    return np.transpose(matrix.reshape([core.shape[a] for a in order]),
                        np.argsort(order))


def forward(X, params, geometry):
    """Convolution outputs ``(b, M, K)`` and what the backward pass needs."""
    spatial, channel, H_K, core = _split(params, geometry)
    Xp = _pad(X, geometry)
    T, inputs = _convolve_modes(_channel_mix(Xp, channel), spatial, geometry, False)
    # one product mixes the R_1..R_N R_C maps into K outputs: G's matrix times H_K^T
    W = (_core_matrix(core, geometry) @ H_K.T).astype(X.dtype)
    Y = np.matmul(T.transpose(0, 2, 1), W)  # (b, M, K)
    return Y, (Xp, inputs, T, W)


def backward(dY, params, geometry, cache):
    """Gradients of ``<dY, Y>`` w.r.t. ``[H_1..H_N, [H_C], H_K, G]``."""
    spatial, channel, H_K, core = _split(params, geometry)
    Xp, inputs, T, W = cache
    dY = dY.astype(T.dtype, copy=False)
    dW = np.matmul(T, dY).sum(axis=0, dtype=np.float64)  # (R.., K)
    core_mat = _core_matrix(core, geometry)
    dcore = _uncore(dW @ H_K, core, geometry)
    dH_K = dW.T @ core_mat
    dT = np.matmul(W, dY.transpose(0, 2, 1))  # (b, R.., M)
    grads, dT = _convolve_modes_backward(dT, spatial, geometry, inputs,
                                         channel is not None)
    if channel is not None:
        grads.append(_channel_grad(Xp, dT, channel))
    return [*grads, dH_K, dcore]


def cp_forward(X, params, geometry):
    """CP counterpart of :func:`forward`: ``(b, M, K)`` and a cache."""
    N = geometry.n_modes
    factors, H = params[:-1], params[-1]
    channel = factors[N] if geometry.n_channels is not None else None
    Xp = _pad(X, geometry)
    T, inputs = _convolve_modes(_channel_mix(Xp, channel), factors[:N], geometry,
                                True)
    Y = np.matmul(T.transpose(0, 2, 1), H.T.astype(X.dtype))  # (b, M, K)
    return Y, (Xp, inputs, T)


def cp_backward(dY, params, geometry, cache):
    """Gradients of ``<dY, Y>`` w.r.t. ``[U_1..U_N, [U_C], H]``."""
    N = geometry.n_modes
    factors, H = params[:-1], params[-1]
    Xp, inputs, T = cache
    dY = dY.astype(T.dtype, copy=False)
    dH = np.matmul(T, dY).sum(axis=0, dtype=np.float64).T  # (K, R)
    dT = np.matmul(H.T.astype(T.dtype), dY.transpose(0, 2, 1))  # (b, R, M)
    want = geometry.n_channels is not None
    grads, dT = _convolve_modes_backward(dT, factors[:N], geometry, inputs, want)
    if want:
        grads.append(_channel_grad(Xp, dT, factors[N]))
    return [*grads, dH]




def network_loss_grad(X, y, weights, params, Bt, b, code, loss_code, geometry,
                      kind="tucker"):
    """Loss and gradients as :func:`._cpu_gemm.network_loss_grad`, for Tucker or
    CP (``kind``) parameters.

    ``X`` ``(n, C, d...)``, ``Bt`` ``(n_out, K, m...)``, ``b`` ``(n_out,)``.
    Returns the loss, the gradients of ``params``, ``D`` (shape of ``Bt``,
    unpooled FC gradient) and ``db``.
    """
    n, n_out, K = X.shape[0], Bt.shape[0], Bt.shape[1]
    M = int(np.prod(geometry.conv_shape))
    Bt_flat = flat_head_weights(Bt, X.dtype)
    per_sample = X[0].nbytes * 4 + M * K * X.itemsize * 4
    size = max(1, CHUNK_BYTES // per_sample)
    loss, db = 0.0, np.zeros(n_out)
    grads = [np.zeros(p.shape) for p in params]
    D = np.zeros((n_out, M, K))
    fwd, bwd = (forward, backward) if kind == "tucker" else (cp_forward, cp_backward)
    for start in range(0, n, size):
        rows = slice(start, min(start + size, n))
        chunk = X[rows]
        if not chunk.flags.writeable:  # one numba signature: see _memory.writable
            chunk = chunk.copy()
        Y, cache = fwd(chunk, params, geometry)
        part_loss, part_db, part_D, dY = loss_head(
            Y, Bt_flat, b, y[rows], weights[rows], code, loss_code)
        loss, db = loss + part_loss, db + part_db
        D += part_D
        for total, part in zip(grads, bwd(dY, params, geometry, cache)):
            total += part
    return loss, grads, unflatten_head_grad(D, Bt), db
