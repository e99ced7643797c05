"""Network kernels of small calls: every patch gathered once, products by BLAS.

When all the patches of a call take a few megabytes (a digits-sized fit:
1,257 samples of 8 x 8 with 3 x 3 kernels make 3.3 MB), they are gathered
once, in numpy, as a matrix ``P`` ``(n, M, C L)`` (``M`` convolution outputs
per sample), and staged samples keep it for every evaluation of the fit.  The
convolution is then ``Y = P A^T`` ``(n, M, K)``, the head is the numba head of
every matrix path (:mod:`._cpu_head`), and the kernel gradient is
``dA = dY^T P``: two matrix products, run by blocks of samples on the
kernels' threads (BLAS on one thread each).

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
kernel gradients are summed in float64.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..geometry import ConvPoolGeometry
from . import _cpu_head
from ._cpu_gemm import flat_head_weights, loss_head, unflatten_head_grad
from ._threads import block_bounds, n_blocks_for, run_blocks, single_threaded_blas


def patch_bytes(n: int, geometry: ConvPoolGeometry, itemsize: int) -> int:
    """Bytes of the patches of ``n`` samples (see :func:`patches`)."""
    return n * int(np.prod(geometry.conv_shape)) * geometry.n_kernel_entries * itemsize


def patches(X: np.ndarray, geometry: ConvPoolGeometry) -> np.ndarray:
    """``P[i, t, (c, a)] = X_pad[i, c, t * stride + a]``: the patch of every
    convolution output ``t`` (C order over ``geometry.conv_shape``) of every
    sample, channels then kernel offsets along the last axis (the order of a
    kernel ``(C, l...)`` flattened).  float32 samples stay float32, any other
    dtype becomes float64."""
    n, N = X.shape[0], geometry.n_modes
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    Xc = np.asarray(X).reshape(n, geometry.n_channels or 1, *geometry.sample_shape)
    Xp = np.pad(Xc, [(0, 0), (0, 0), *geometry.padding])
    windows = sliding_window_view(Xp, geometry.kernel_size,
                                  axis=tuple(range(2, 2 + N)))
    windows = windows[(slice(None), slice(None), *(
        slice(0, m * s, s) for m, s in zip(geometry.conv_shape, geometry.stride)))]
    # (n, C, m..., l...) -> (n, m..., C, l...)
    order = (0, *range(2, 2 + N), 1, *range(2 + N, 2 + 2 * N))
    P = np.ascontiguousarray(windows.transpose(order), dtype=dtype)
    return P.reshape(n, -1, geometry.n_kernel_entries)


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


def network_forward(P, kernels, Bt, b, code) -> np.ndarray:
    """Outputs ``(n, n_out)`` of the network on patches ``P`` (see
    :func:`sktensorcnn.kernels.network_forward`)."""
    n = P.shape[0]
    with single_threaded_blas():
        Y = _convolve(P, kernels, _blocks(P, kernels.shape[0]))
    return _cpu_head.outputs(Y.reshape(n, -1), flat_head_weights(Bt, P.dtype), b,
                             code)


def network_loss_grad(P, y, weights, kernels, Bt, b, code, loss_code):
    """Weighted loss, ``dkernels``, ``D`` (shape of ``Bt``) and ``db`` on patches
    ``P`` (see :func:`sktensorcnn.kernels.network_loss_grad`)."""
    n, M, CL = P.shape
    K = kernels.shape[0]
    n_blocks = _blocks(P, K)
    with single_threaded_blas():
        Y = _convolve(P, kernels, n_blocks)
        loss, db, D, dY = loss_head(Y, flat_head_weights(Bt, P.dtype), b, y,
                                    weights, code, loss_code)

        def kernel_grad(block):
            first, last = block_bounds(n, n_blocks, block)
            rows = slice(first * M, last * M)
            return dY.reshape(-1, K)[rows].T @ P.reshape(-1, CL)[rows]

        parts = run_blocks(kernel_grad, n_blocks)
    dA = np.sum([part.astype(np.float64) for part in parts], axis=0)
    return loss, dA.reshape(kernels.shape), unflatten_head_grad(D, Bt), db
