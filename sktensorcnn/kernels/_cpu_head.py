"""The network's head on convolution outputs, forward and backward (numba).

After the convolution every path (BLAS, factorized) holds ``Y`` ``(b, M, K)`` for a
chunk of samples.  The head applies the activation, the pooled fully-connected
layer folded into ``Bt`` ``(n_out, M, K)`` (see :mod:`._cpu_network`) and the
loss; backward it gives ``D = sum_i G_i act(Y_i)`` (to be pooled into the FC
gradient), the intercept gradient and ``dY = act'(Y) sum_o G_io Bt_o``, written
over ``Y``.  ``G_io`` is the weighted derivative of the loss with respect to
output ``o`` of sample ``i``.

Losses (codes) with their targets ``y_i`` (float64): squared (0, one output,
``1/2 (f - y)^2``), logistic (1, one output, ``y`` in {0, 1}, ``log(1 + e^f) - y f``)
and multinomial (2, one output per class, ``y`` the class index,
``logsumexp(f) - f_y``).  Sample weights multiply each sample's loss.
"""

import numpy as np
from numba import njit, prange

from ._cpu_network import _act

SQUARED, LOGISTIC, MULTINOMIAL = 0, 1, 2


@njit(inline="always")
def sample_loss(code, f, target, grad):
    """Loss of one sample with outputs ``f`` ``(n_out,)``; writes ``dloss/df`` to
    ``grad``."""
    if code == SQUARED:
        r = f[0] - target
        grad[0] = r
        return 0.5 * r * r
    if code == LOGISTIC:
        z = f[0]
        grad[0] = 0.5 * (1.0 + np.tanh(0.5 * z)) - target  # sigmoid(z) - y
        return max(z, 0.0) + np.log1p(np.exp(-abs(z))) - target * z
    # multinomial: logsumexp(f) - f[y]
    top = f.max()
    total = 0.0
    for o in range(f.shape[0]):
        grad[o] = np.exp(f[o] - top)
        total += grad[o]
    for o in range(f.shape[0]):
        grad[o] /= total
    label = int(target)
    grad[label] -= 1.0
    return top + np.log(total) - f[label]


@njit(cache=True)
def _activate(code, y, v):
    """``v = act(y)`` and ``y = act'(y)`` in place, one branch per row so the
    loops vectorize (codes: see activations.py)."""
    n = y.shape[0]
    if code == 0:
        for j in range(n):
            v[j] = y[j]
            y[j] = 1.0
    elif code == 1:
        for j in range(n):
            positive = y[j] > 0.0
            v[j] = y[j] if positive else 0.0
            y[j] = 1.0 if positive else 0.0
    elif code == 5:
        for j in range(n):
            positive = y[j] > 0.0
            v[j] = y[j] * y[j] if positive else 0.0
            y[j] = 2.0 * y[j] if positive else 0.0
    else:
        for j in range(n):
            v[j], y[j] = _act(code, y[j])


@njit(cache=True)
def _dot(a, b):
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


@njit(parallel=True, cache=True)
def loss_grad(Y, Bt, intercept, y, weights, act_code, loss_code, n_blocks):
    """Weighted loss of a chunk and its gradients, ``dY`` written over ``Y``.

    ``Y`` ``(b, M K)`` and ``Bt`` ``(n_out, M K)`` flattened, same dtype.  Returns
    the loss, ``D`` ``(n_out, M K)``, ``db`` ``(n_out,)`` (float64).  Samples are
    split into ``n_blocks`` blocks, one per thread, each with its own accumulators
    summed in order: deterministic for a given thread count.
    """
    n, size = Y.shape
    n_out = Bt.shape[0]
    losses = np.zeros(n_blocks)
    dbs = np.zeros((n_blocks, n_out))
    Ds = np.zeros((n_blocks, n_out, size))
    for block in prange(n_blocks):
        f = np.empty(n_out)
        G = np.empty(n_out)
        V = np.empty(size, dtype=Y.dtype)
        D = Ds[block]
        for i in range((block * n) // n_blocks, ((block + 1) * n) // n_blocks):
            Yi = Y[i]
            _activate(act_code, Yi, V)  # V = act(Y_i), Y_i = act'(Y_i)
            for o in range(n_out):
                f[o] = _dot(V, Bt[o]) + intercept[o]
            losses[block] += weights[i] * sample_loss(loss_code, f, y[i], G)
            for o in range(n_out):
                G[o] *= weights[i]
                dbs[block, o] += G[o]
                g = G[o]
                Do = D[o]
                for j in range(size):
                    Do[j] += g * V[j]
            if n_out == 1:
                g = G[0]
                B0 = Bt[0]
                for j in range(size):
                    Yi[j] *= g * B0[j]
            else:
                for j in range(size):
                    s = 0.0
                    for o in range(n_out):
                        s += G[o] * Bt[o, j]
                    Yi[j] *= s
    D_total = np.zeros((n_out, size))
    db = np.zeros(n_out)
    loss = 0.0
    for block in range(n_blocks):
        loss += losses[block]
        db += dbs[block]
        D_total += Ds[block]
    return loss, D_total, db
