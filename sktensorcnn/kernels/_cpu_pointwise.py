"""Scalar pieces the numba kernels share: activations, per-sample losses and a
vectorizable dot product.

Activations are compiled from their registry (:mod:`sktensorcnn.activations`,
codes from :func:`~sktensorcnn.activations.activation_code`); loss
codes those of :func:`sktensorcnn.losses.loss_code`: squared (0, one output,
``1/2 (f - y)^2``), logistic (1, one output, ``y`` in {0, 1},
``log(1 + e^f) - y f``), multinomial (2, one output per class, ``y`` the class
index, ``logsumexp(f) - f_y``) and one-vs-rest (3, one logistic loss per class
output, summed).  Targets are float64.
"""

import numpy as np
from numba import njit

from ._pointwise import compile_activations

SQUARED, LOGISTIC, MULTINOMIAL, ONE_VS_REST = 0, 1, 2, 3


#: ``activate(code, y) -> (value, slope)`` and ``activate_rows(code, y, v)``
#: for every activation of the registry (:mod:`sktensorcnn.activations`).
_ACTIVATIONS = compile_activations(njit(inline="always"))
activate = _ACTIVATIONS["activate"]
activate_rows = _ACTIVATIONS["activate_rows"]


@njit(inline="always")
def _logistic(z, target):
    """Logistic loss of output ``z`` for a 0/1 target and its derivative."""
    grad = 0.5 * (1.0 + np.tanh(0.5 * z)) - target  # sigmoid(z) - y
    return max(z, 0.0) + np.log1p(np.exp(-abs(z))) - target * z, grad


@njit(inline="always")
def sample_loss(code, f, target, grad):
    """Loss of one sample with outputs ``f`` ``(n_out,)``; writes ``dloss/df`` to
    ``grad``."""
    if code == SQUARED:
        r = f[0] - target
        grad[0] = r
        return 0.5 * r * r
    if code == LOGISTIC:
        loss, grad[0] = _logistic(f[0], target)
        return loss
    label = int(target)
    if code == ONE_VS_REST:
        total = 0.0
        for o in range(f.shape[0]):
            loss, grad[o] = _logistic(f[o], 1.0 if o == label else 0.0)
            total += loss
        return total
    # multinomial: logsumexp(f) - f[y]
    top = f[0]
    for o in range(1, f.shape[0]):  # a loop: f.max() compiles its own kernel
        top = max(top, f[o])
    total = 0.0
    for o in range(f.shape[0]):
        grad[o] = np.exp(f[o] - top)
        total += grad[o]
    for o in range(f.shape[0]):
        grad[o] /= total
    grad[label] -= 1.0
    return top + np.log(total) - f[label]


@njit(cache=True)
def dot(a, b):
    """Float64 sum of ``a * b``, accumulated lane-wise (8 lanes) so that the
    products vectorize without reordering a scalar sum."""
    lanes = np.zeros(8)
    n = a.shape[0]
    full = n - n % 8
    for j in range(0, full, 8):
        for lane in range(8):
            lanes[lane] += a[j + lane] * b[j + lane]
    total = 0.0
    for j in range(full, n):
        total += a[j] * b[j]
    return total + lanes.sum()
