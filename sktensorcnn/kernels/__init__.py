"""The one dispatch point for compute kernels.

Everything else in the library calls the functions here, never a backend directly,
so that device-specific twins (CUDA) can be added behind the same signatures.
"""

from __future__ import annotations

import numba
import numpy as np

from ..geometry import MAX_SPATIAL_MODES, ConvPoolGeometry
from . import _cpu

__all__ = ["conv_pool_features"]


def _pad_to_4(values, fill) -> np.ndarray:
    """Missing modes go first, so the kernels' innermost loops run over real modes."""
    values = list(values)
    return np.array([fill] * (MAX_SPATIAL_MODES - len(values)) + values, dtype=np.int64)


def _box_tables(geometry: ConvPoolGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Per-mode box corners in the padded 4-mode layout used by the kernels."""
    l_max = max(geometry.kernel_size)
    p_max = max(geometry.pooled_shape)
    last = np.zeros((MAX_SPATIAL_MODES, l_max, p_max), dtype=np.int64)
    before = np.full((MAX_SPATIAL_MODES, l_max, p_max), -1, dtype=np.int64)
    offset = MAX_SPATIAL_MODES - geometry.n_modes
    for j, (bounds, s) in enumerate(zip(geometry.box_bounds, geometry.stride), offset):
        l, p = bounds.shape[:2]
        last[j, :l, :p] = bounds[..., 1]
        before[j, :l, :p] = bounds[..., 0] - s
    return last, before


def conv_pool_features(
    X: np.ndarray, geometry: ConvPoolGeometry, out: np.ndarray | None = None
) -> np.ndarray:
    """Conv-pool features of a validated batch (see :func:`sktensorcnn.features`).

    Parameters
    ----------
    X : ndarray of shape (n, *geometry.input_shape), float32 or float64, C-contiguous
    geometry : ConvPoolGeometry
    out : ndarray of shape (n, *geometry.feature_shape), optional
        Written in place when given (same dtype as ``X``, C-contiguous).

    Returns
    -------
    Z : ndarray of shape (n, *geometry.feature_shape), dtype of ``X``
    """
    n = X.shape[0]
    N = geometry.n_modes
    ones = (1,) * (MAX_SPATIAL_MODES - N)
    C = geometry.n_channels or 1
    X6 = X.reshape(n, C, *ones, *geometry.sample_shape)
    if out is None:
        out = np.empty((n, *geometry.feature_shape), dtype=X.dtype)
    Z10 = out.reshape(n, *ones, *geometry.kernel_size, C, *ones, *geometry.pooled_shape)
    if not np.shares_memory(Z10, out):
        raise ValueError("out must be C-contiguous")
    last, before = _box_tables(geometry)
    _cpu.conv_pool_features(
        X6,
        _pad_to_4([lo for lo, _ in geometry.padding], 0),
        _pad_to_4(geometry.padded_shape, 1),
        _pad_to_4(geometry.stride, 1),
        last,
        before,
        1.0 / float(np.prod(geometry.pool_size)),
        min(n, numba.get_num_threads()),
        Z10,
    )
    return out
