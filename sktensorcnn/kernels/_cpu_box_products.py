"""Conv-pool features of small samples as mode products with box matrices (numpy).

A feature ``Z[i, a, c, r]`` averages the padded input over a box that is a product
of one set of positions per mode (see ``ConvPoolGeometry.box_bounds``), so

    ``Z[i, :, c, :] = X[i, c] x_1 M_1 x_2 M_2 ... x_N M_N``

with ``M_j`` ``(l_j p_j, d_j)`` holding ``1 / q_j`` where input position ``x``
falls in the box of ``(a_j, r_j)`` (padding contributes zeros, so it simply has
no column).  Each mode product is one BLAS product.  The numba kernel of
:mod:`._cpu` is several times faster (one pass along long rows per mode), but
compiling it takes seconds, most of the first fit of a fresh install on small
data: small calls use this path instead (see
``kernels._host.BOX_PRODUCTS_MAX_ENTRIES``).
"""

from __future__ import annotations

import numpy as np

from ..geometry import ConvPoolGeometry


def box_matrices(geometry: ConvPoolGeometry) -> list[np.ndarray]:
    """``M_j`` ``(l_j * p_j, d_j)`` per spatial mode, rows ordered ``(a_j, r_j)``."""
    mats = []
    for bounds, s, (lo, _), d, q in zip(geometry.box_bounds, geometry.stride,
                                        geometry.padding, geometry.sample_shape,
                                        geometry.pool_size):
        first = bounds[..., 0].reshape(-1, 1)
        last = bounds[..., 1].reshape(-1, 1)
        padded = np.arange(d)[None, :] + lo
        inside = (padded >= first) & (padded <= last) & ((padded - first) % s == 0)
        mats.append(inside / float(q))
    return mats


def conv_pool_features(X: np.ndarray, geometry: ConvPoolGeometry,
                       out: np.ndarray) -> np.ndarray:
    """Write the features of ``X`` ``(n, C, d_1, ..., d_N)`` into ``out``
    ``(n, *geometry.feature_shape)`` and return it."""
    n, C, N = X.shape[0], X.shape[1], geometry.n_modes
    T = X
    for M in box_matrices(geometry):
        # contract the leading spatial mode; its (a, r) axis goes last
        T = np.tensordot(T, M.astype(X.dtype, copy=False), axes=([2], [1]))
    # T: (n, C, l_1 p_1, ..., l_N p_N) -> (n, l_1..l_N, C, p_1..p_N)
    pairs = [size for l, p in zip(geometry.kernel_size, geometry.pooled_shape)
             for size in (l, p)]
    T = T.reshape(n, C, *pairs)
    order = [0, *(2 + 2 * j for j in range(N)), 1, *(3 + 2 * j for j in range(N))]
    out[...] = T.transpose(order).reshape(out.shape)
    return out
