"""Losses of the network's outputs: squared, logistic, multinomial, one-vs-rest.

Each loss takes the outputs ``F`` ``(n, n_out)`` and encoded targets ``y``
(float64, see below) and gives the per-sample losses and their gradients with
respect to ``F``.  These numpy versions serve the linear fits on the conv-pool
features; the numba kernels use the same losses by code
(:func:`loss_code`, implemented in ``kernels/_cpu_pointwise.py``).

* ``'squared'``: one output, ``1/2 (f - y)^2``;
* ``'logistic'``: one output, ``y`` in {0, 1}, ``log(1 + e^f) - y f`` ([Compressed
  CNNs],
  eq. 24);
* ``'multinomial'``: one output per class, ``y`` the class index,
  ``logsumexp(f) - f_y`` (softmax cross-entropy);
* ``'ovr'``: one output per class, ``y`` the class index, the sum of the
  logistic losses of ``f_m`` for the targets ``[y == m]`` ([Compressed CNNs], App. A.4).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_softmax, softmax

__all__ = ["LOSSES", "loss_code", "loss_and_gradient"]

#: Loss names in code order.
LOSSES = ("squared", "logistic", "multinomial", "ovr")


def loss_code(name: str) -> int:
    """The integer the numba kernels use for loss ``name``."""
    try:
        return LOSSES.index(name)
    except ValueError:
        raise ValueError(f"loss={name!r} is unknown; use one of {LOSSES}.") from None


def _onehot(y: np.ndarray, n_out: int) -> np.ndarray:
    return np.arange(n_out) == y.astype(np.intp)[:, None]


def loss_and_gradient(name: str, F: np.ndarray, y: np.ndarray):
    """Per-sample losses ``(n,)`` and ``dloss/dF`` ``(n, n_out)`` (float64)."""
    F = np.asarray(F, dtype=np.float64)
    if name == "squared":
        residual = F[:, 0] - y
        return 0.5 * residual**2, residual[:, None]
    if name == "logistic":
        f = F[:, 0]
        return np.logaddexp(0.0, f) - y * f, (expit(f) - y)[:, None]
    onehot = _onehot(y, F.shape[1])
    if name == "multinomial":
        log_p = log_softmax(F, axis=1)
        return -log_p[onehot], softmax(F, axis=1) - onehot
    if name == "ovr":
        values = np.logaddexp(0.0, F) - onehot * F
        return values.sum(axis=1), expit(F) - onehot
    raise ValueError(f"loss={name!r} is unknown; use one of {LOSSES}.")
