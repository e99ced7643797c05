"""Scalar pieces the numba kernels share: activations, per-sample losses and a
vectorizable dot product.

Activations and losses are compiled from their registries
(:mod:`sktensorcnn.activations`, :mod:`sktensorcnn.losses`; codes from
:func:`~sktensorcnn.activations.activation_code` and
:func:`~sktensorcnn.losses.loss_code`).  Targets are float64.
"""

import numpy as np
from numba import njit

from ._pointwise import compile_activations, compile_losses

#: ``activate(code, y) -> (value, slope)`` and ``activate_rows(code, y, v)``
#: for every activation of the registry (:mod:`sktensorcnn.activations`).
_ACTIVATIONS = compile_activations(njit(inline="always"))
activate = _ACTIVATIONS["activate"]
activate_rows = _ACTIVATIONS["activate_rows"]


#: ``sample_loss(code, f, target, grad) -> loss`` for every loss of the
#: registry (:mod:`sktensorcnn.losses`): writes ``dloss/df`` to ``grad``.
sample_loss = compile_losses(njit(inline="always"))


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


@njit(inline="always")
def head_sample(V, Bt, intercept, loss_code, target, weight, f, G, D, db):
    """The head on one sample's activations ``V`` (flattened): outputs ``f =
    Bt V + intercept``, returns the weighted loss, leaves ``G = w dloss/df``
    and adds ``G`` to ``db`` and ``G V^T`` to ``D`` ``(n_out, size)``; shared
    by the fused loops and the BLAS path's head."""
    for o in range(Bt.shape[0]):
        f[o] = dot(V, Bt[o]) + intercept[o]
    loss = weight * sample_loss(loss_code, f, target, G)
    for o in range(Bt.shape[0]):
        G[o] *= weight
        db[o] += G[o]
        g = G[o]
        Do = D[o]
        for j in range(V.shape[0]):
            Do[j] += g * V[j]
    return loss
