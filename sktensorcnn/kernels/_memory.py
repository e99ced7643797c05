"""How much memory a CPU kernel call touches at a time, and the arrays the
compiled kernels accept."""

from __future__ import annotations

import numpy as np

__all__ = ["CHUNK_BYTES", "fresh", "writable"]

#: Scratch budget of one chunk (samples copied, patches gathered, features).
CHUNK_BYTES = 64 * 2**20


def fresh(a) -> np.ndarray:
    """A contiguous, writable float64 copy of a small array (targets, weights,
    parameters), so that every call meets the kernels' one compiled signature."""
    return np.array(a, dtype=np.float64, order="C")


def writable(X: np.ndarray, dtype=None) -> np.ndarray:
    """``X`` itself, or a copy when it is read-only (joblib's memory maps) or of
    another dtype: numba compiles a separate kernel for each array type, and each
    costs tens of seconds the first time."""
    if X.flags.writeable and (dtype is None or X.dtype == dtype):
        return X
    return np.array(X, dtype=dtype or X.dtype, order="C")
