"""Network kernels of small calls: every patch gathered once, products by BLAS.

When all the patches of a call take a few megabytes (a digits-sized fit:
1,257 samples of 8 x 8 with 3 x 3 kernels make 3.3 MB), they are gathered
once, in numpy, as a matrix ``P`` ``(n, M, C L)`` (``M`` convolution outputs
per sample), and staged samples keep it for every evaluation of the fit.  The
convolution is then ``Y = P A^T`` ``(n, M, K)``, the head is that of every
matrix path (:mod:`._cpu_head`), and the kernel gradient is ``dA = dY^T P``:
two matrix products, run by blocks of samples on the kernels' threads (BLAS on
one thread each), chunk by chunk of samples so that the outputs ``Y`` (``K /
(C L)`` times the patches' size) and the head's buffers stay within
``CHUNK_BYTES``.  Samples staged in a Dask array are evaluated block by block
and gather each block's patches at each evaluation.

The fused numba loops (:mod:`._cpu_network`) compute the same, but compiling
their forward and backward kernels takes most of a fresh install's first
nonlinear fit (about 7 s of 9 on digits on a 2-core machine, 15 s of 23 on a
slower one); here only the head compiles (about 2.5 s).  On such calls this
path is also 1.3-2.9x faster per evaluation (digits, float32 and float64,
one or ten outputs); beyond tens of megabytes of patches it reads ``C L``
times more memory than the samples and falls behind.  The rule is
:func:`sktensorcnn.kernels._host.uses_patches`.

Precision: the products run in the samples' precision (float32 stays
float32); the head works as on the other matrix paths, and the blocks'
kernel gradients are summed in float64 (in float32 each block's sum over its
samples carries about 2e-7 of relative rounding, against 3e-8 to 6e-8 on the
paths that sum each sample in float32 and the samples in float64).
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..geometry import ConvPoolGeometry
from . import _cpu_head
from ._cpu_gemm import flat_head_weights, loss_head, unflatten_head_grad
from ._memory import CHUNK_BYTES
from ._threads import block_bounds, n_blocks_for, run_blocks


def patch_dtype(dtype) -> np.dtype:
    """The patches' precision: float32 samples stay float32, any other dtype
    becomes float64."""
    return np.dtype(np.float32 if np.dtype(dtype) == np.float32 else np.float64)


def patch_bytes(n: int, geometry: ConvPoolGeometry, dtype) -> int:
    """Bytes of the patches of ``n`` samples of ``dtype`` (see :func:`patches`)."""
    return (n * int(np.prod(geometry.conv_shape)) * geometry.n_kernel_entries
            * patch_dtype(dtype).itemsize)


def patches(X: np.ndarray, geometry: ConvPoolGeometry) -> np.ndarray:
    """``P[i, t, (c, a)] = X_pad[i, c, t * stride + a]``: the patch of every
    convolution output ``t`` (C order over ``geometry.conv_shape``) of every
    sample, channels then kernel offsets along the last axis (the order of a
    kernel ``(C, l...)`` flattened), in :func:`patch_dtype`."""
    n, N = X.shape[0], geometry.n_modes
    Xc = np.asarray(X).reshape(n, geometry.n_channels or 1, *geometry.sample_shape)
    Xp = np.pad(Xc, [(0, 0), (0, 0), *geometry.padding])
    windows = sliding_window_view(Xp, geometry.kernel_size,
                                  axis=tuple(range(2, 2 + N)))
    windows = windows[(slice(None), slice(None), *(
        slice(0, m * s, s) for m, s in zip(geometry.conv_shape, geometry.stride)))]
    # (n, C, m..., l...) -> (n, m..., C, l...)
    order = (0, *range(2, 2 + N), 1, *range(2 + N, 2 + 2 * N))
    P = np.ascontiguousarray(windows.transpose(order), dtype=patch_dtype(X.dtype))
    return P.reshape(n, int(np.prod(geometry.conv_shape)), geometry.n_kernel_entries)


def _convolve(P: np.ndarray, kernels: np.ndarray, n_blocks: int) -> np.ndarray:
    """``Y = P A^T`` ``(n, M, K)`` in the patches' precision."""
    n, M, CL = P.shape
    AT = np.ascontiguousarray(kernels.reshape(kernels.shape[0], CL).T, dtype=P.dtype)
    Y = np.empty((n, M, AT.shape[1]), dtype=P.dtype)

    def block(b):
        first, last = block_bounds(n, n_blocks, b)
        np.matmul(P[first:last], AT, out=Y[first:last])

    run_blocks(block, n_blocks)
    return Y


def _blocks(P: np.ndarray, K: int) -> int:
    return n_blocks_for(P.shape[0], P.shape[1] * P.shape[2] * K)


def _chunks(P: np.ndarray, K: int):
    """Row slices whose outputs ``Y`` take at most a quarter of ``CHUNK_BYTES``
    (the head keeps up to three more arrays of their size)."""
    per_sample = max(1, P.shape[1] * K * 8)
    size = max(1, CHUNK_BYTES // (4 * per_sample))
    # one chunk at least: no samples still give (zero) gradients of their shape
    for start in range(0, max(P.shape[0], 1), size):
        yield slice(start, min(start + size, P.shape[0]))


def network_forward(P, kernels, Bt, b, code) -> np.ndarray:
    """Outputs ``(n, n_out)`` of the network on patches ``P`` (see
    :func:`sktensorcnn.kernels.network_forward`)."""
    n, K = P.shape[0], kernels.shape[0]
    Bt_flat = flat_head_weights(Bt, P.dtype)
    out = np.empty((n, Bt.shape[0]))
    for rows in _chunks(P, K):
        Pr = P[rows]
        Y = _convolve(Pr, kernels, _blocks(Pr, K))
        out[rows] = _cpu_head.outputs(Y.reshape(len(Y), Bt_flat.shape[1]),
                                      Bt_flat, b, code)
    return out


def network_loss_grad(P, y, weights, kernels, Bt, b, code, loss_code):
    """Weighted loss, ``dkernels``, ``D`` (shape of ``Bt``) and ``db`` on patches
    ``P`` (see :func:`sktensorcnn.kernels.network_loss_grad`)."""
    K, CL = kernels.shape[0], P.shape[2]
    Bt_flat = flat_head_weights(Bt, P.dtype)
    loss, D, db = 0.0, 0.0, 0.0
    parts = []
    for rows in _chunks(P, K):
        Pr = P[rows]
        n_blocks = _blocks(Pr, K)
        Y = _convolve(Pr, kernels, n_blocks)
        part_loss, part_db, part_D, dY = loss_head(
            Y, Bt_flat, b, y[rows], weights[rows], code, loss_code)
        loss, D, db = loss + part_loss, D + part_D, db + part_db
        parts += run_blocks(functools.partial(_kernel_grad, Pr, dY, n_blocks),
                            n_blocks)
    dA = np.zeros((K, CL))
    for part in parts:
        dA += part
    return loss, dA.reshape(kernels.shape), unflatten_head_grad(D, Bt), db


def _kernel_grad(P, dY, n_blocks, block) -> np.ndarray:
    """``dY^T P`` ``(K, C L)`` over the samples of ``block``."""
    first, last = block_bounds(P.shape[0], n_blocks, block)
    M, CL, K = P.shape[1], P.shape[2], dY.shape[2]
    rows = slice(first * M, last * M)
    return dY.reshape(-1, K)[rows].T @ P.reshape(-1, CL)[rows]
