"""Plain-numpy reference of the network, independent of the library's kernels."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def conv_pool_reference(X, kernels, geometry):
    """Direct convolution (cross-correlation) -> average pooling, per kernel.

    X : (n, [C], d...) ; kernels : (K, [C], l...) ; returns (n, K, p...).
    """
    N = geometry.n_modes
    has_c = geometry.n_channels is not None
    Xc = X if has_c else X[:, None]
    A = kernels if has_c else kernels[:, None]
    pads = [(0, 0), (0, 0), *geometry.padding]
    Xp = np.pad(Xc, pads)
    # conv: windows over spatial axes, then stride
    win = sliding_window_view(Xp, geometry.kernel_size, axis=tuple(range(2, 2 + N)))
    keep = (slice(None), slice(None))
    win = win[(*keep, *[slice(None, None, s) for s in geometry.stride])]
    win = win[(*keep, *[slice(0, m) for m in geometry.conv_shape])]
    # win: (n, C, m..., l...) ; A: (K, C, l...)
    spatial = "abde"[:N]
    kern = "fghi"[:N]
    conv = np.einsum(f"nc{spatial}{kern},kc{kern}->nk{spatial}", win, A)
    pooled = sliding_window_view(conv, geometry.pool_size, axis=tuple(range(2, 2 + N)))
    pooled = pooled[(*keep, *[slice(None, None, t) for t in geometry.pool_stride])]
    pooled = pooled[(*keep, *[slice(0, p) for p in geometry.pooled_shape])]
    return pooled.mean(axis=tuple(range(2 + N, 2 + 2 * N)))


def network_reference(X, kernels, fc_weights, intercept, geometry):
    """conv -> identity -> avg pool -> FC, computed directly."""
    pooled = conv_pool_reference(X, kernels, geometry)
    n, K = pooled.shape[:2]
    return pooled.reshape(n, -1) @ fc_weights.reshape(-1) + intercept


def patches_reference(X, kernel_size, stride, pad_before, padded_shape, conv_shape):
    """``(b, M, C * L)`` patches of samples ``X`` ``(b, C, d1..d4)`` (canonical
    4-mode layout), by sliding windows: the dense convolution is ``P @ A^T``."""
    b, C = X.shape[:2]
    pads = [(0, 0), (0, 0)] + [
        (int(lo), int(D - d - lo))
        for lo, D, d in zip(pad_before, padded_shape, X.shape[2:])
    ]
    Xp = np.pad(X, pads)
    win = sliding_window_view(Xp, tuple(kernel_size), axis=(2, 3, 4, 5))
    win = win[:, :, ::stride[0], ::stride[1], ::stride[2], ::stride[3]]
    win = win[:, :, :conv_shape[0], :conv_shape[1], :conv_shape[2], :conv_shape[3]]
    win = np.moveaxis(win, 1, 5)  # (b, m1..m4, C, l1..l4)
    return np.ascontiguousarray(win).reshape(b, int(np.prod(conv_shape)), -1)
