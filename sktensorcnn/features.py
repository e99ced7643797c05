"""The conv-pool feature tensor ``Z`` and its adjoint.

With identity activation a convolution -> average pooling -> fully-connected network
is linear in its input (``docs/model.rst``)::

    y_hat_i = sum_k <pool(conv(X_i, A_k)), B_k> + b = <Z_i, W> + b,
    W = sum_k A_k (outer) B_k,

with ``Z_i[a, r]`` the mean, over the convolution positions ``t`` of pooling cell
``r``, of the input value ``X_i[t * stride + a]`` that meets kernel offset ``a``.
``Z`` is computed once per data set; every linear solver then works on it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from . import kernels
from .geometry import ConvPoolGeometry
from .kernels._memory import CHUNK_BYTES

__all__ = [
    "conv_pool_features",
    "iter_feature_chunks",
    "features_to_input_space",
    "default_chunk_size",
]



def default_chunk_size(geometry: ConvPoolGeometry, itemsize: int = 8) -> int:
    """Samples per chunk so that one chunk of ``Z`` stays near 64 MiB."""
    return max(1, CHUNK_BYTES // (geometry.n_features * itemsize))


def _as_batch(X: np.ndarray, geometry: ConvPoolGeometry) -> np.ndarray:
    if X.shape[1:] != geometry.input_shape:
        raise ValueError(
            f"X has samples of shape {X.shape[1:]} but the geometry expects "
            f"{geometry.input_shape}."
        )
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    return np.ascontiguousarray(X)


def iter_feature_chunks(
    X: np.ndarray, geometry: ConvPoolGeometry, chunk_size: int | None = None
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield ``(rows, Z[rows])`` for consecutive chunks of samples.

    The scratch buffer is reused between chunks, so peak memory is one chunk of
    ``Z`` however large ``n`` is: consume (or copy) each chunk before the next.

    Parameters
    ----------
    X : ndarray of shape ``(n, *geometry.input_shape)``
    geometry : ConvPoolGeometry
    chunk_size : int, optional
        Samples per chunk; by default about 64 MiB of features.
    """
    X = _as_batch(X, geometry)
    n = X.shape[0]
    if chunk_size is None:
        chunk_size = default_chunk_size(geometry, X.dtype.itemsize)
    buffer = np.empty((min(chunk_size, n), *geometry.feature_shape), dtype=X.dtype)
    for start in range(0, n, chunk_size):
        rows = slice(start, min(start + chunk_size, n))
        out = buffer[: rows.stop - rows.start]
        yield rows, kernels.conv_pool_features(X[rows], geometry, out=out)


def conv_pool_features(X: np.ndarray, geometry: ConvPoolGeometry) -> np.ndarray:
    """Conv-pool features of every sample.

    Parameters
    ----------
    X : ndarray of shape ``(n, *geometry.input_shape)``
        Samples; float32 stays float32, any other dtype is computed in float64.
    geometry : ConvPoolGeometry

    Returns
    -------
    Z : ndarray of shape (n, l_1, ..., l_N, [C], p_1, ..., p_N)
        ``Z[i, a, c, r] = mean_{t in cell r} X[i, c, t * stride + a - pad]``
        (zero where that position is padding), so that for any weight ``W`` of
        shape ``geometry.feature_shape`` the linear network's output is
        ``<Z[i], W>``.
    """
    X = _as_batch(X, geometry)
    Z = np.empty((X.shape[0], *geometry.feature_shape), dtype=X.dtype)
    return kernels.conv_pool_features(X, geometry, out=Z)


def features_to_input_space(W: np.ndarray, geometry: ConvPoolGeometry) -> np.ndarray:
    """Map a weight on the features to the equivalent weight on the input.

    This is the adjoint of :func:`conv_pool_features`:
    ``<conv_pool_features(X)[i], W> == <X[i], features_to_input_space(W)>``.
    Computed once per fit with the positioning matrices ([Compressed CNNs], eq. 4).

    Parameters
    ----------
    W : ndarray of shape geometry.feature_shape (or geometry.weight_shape)
    geometry : ConvPoolGeometry

    Returns
    -------
    ndarray of shape geometry.input_shape
    """
    N = geometry.n_modes
    W = np.asarray(W, dtype=np.float64).reshape(geometry.feature_shape)
    has_c = geometry.n_channels is not None
    # einsum over (a_j, r_j) pairs with UF_j[x_j, a_j, r_j]; letters: a* kernel
    # offsets, r* cells, x* input positions, c channel.
    a, r, x = "abde"[:N], "fghi"[:N], "jklm"[:N]
    w_sub = a + ("c" if has_c else "") + r
    out_sub = ("c" if has_c else "") + x
    uf_subs = [x[j] + a[j] + r[j] for j in range(N)]
    expr = ",".join([w_sub, *uf_subs]) + "->" + out_sub
    return np.einsum(expr, W, *geometry.positioning_matrices(), optimize=True)
