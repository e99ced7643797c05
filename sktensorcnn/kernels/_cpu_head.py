"""The network's head on convolution outputs, forward and backward (numba).

After the convolution every path (BLAS, factorized) holds ``Y`` ``(b, M, K)`` for a
chunk of samples.  The head applies the activation, the pooled fully-connected
layer folded into ``Bt`` ``(n_out, M, K)`` (see :mod:`._cpu_network`) and the
loss; backward it gives ``D = sum_i G_i act(Y_i)`` (to be pooled into the FC
gradient), the intercept gradient and ``dY = act'(Y) sum_o G_io Bt_o``, written
over ``Y``.  ``G_io`` is the weighted derivative of the loss with respect to
output ``o`` of sample ``i``.

Losses: see :mod:`._cpu_pointwise`.  Sample weights multiply each sample's loss.
"""

import numpy as np
from numba import njit

from ._cpu_pointwise import activate, activate_rows, dot, head_sample
from ._threads import block_bounds, n_blocks_for, run_blocks


@njit(cache=True, nogil=True)
def loss_grad_block(Y, Bt, intercept, y, weights, act_code, loss_code, first,
                     last, D, db):
    """Samples ``first <= i < last`` of :func:`loss_grad`: returns their loss,
    adds to ``D`` and ``db``."""
    size = Y.shape[1]
    n_out = Bt.shape[0]
    f = np.empty(n_out)
    G = np.empty(n_out)
    V = np.empty(size, dtype=Y.dtype)
    loss = 0.0
    for i in range(first, last):
        Yi = Y[i]
        activate_rows(act_code, Yi, V)  # V = act(Y_i), Y_i = act'(Y_i)
        loss += head_sample(V, Bt, intercept, loss_code, y[i], weights[i], f, G, D,
                            db)
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
    return loss


def loss_grad(Y, Bt, intercept, y, weights, act_code, loss_code, n_blocks):
    """Weighted loss of a chunk and its gradients, ``dY`` written over ``Y``.

    ``Y`` ``(b, M K)`` and ``Bt`` ``(n_out, M K)`` flattened, same dtype.  Returns
    the loss, ``D`` ``(n_out, M K)``, ``db`` ``(n_out,)`` (float64).  Samples are
    split into ``n_blocks`` blocks run side by side, each with its own
    accumulators summed in block order: deterministic for a given ``n_blocks``.
    """
    n, size = Y.shape
    n_out = Bt.shape[0]
    Ds = np.zeros((n_blocks, n_out, size))
    dbs = np.zeros((n_blocks, n_out))
    losses = run_blocks(lambda block: loss_grad_block(
        Y, Bt, intercept, y, weights, act_code, loss_code,
        *block_bounds(n, n_blocks, block), Ds[block], dbs[block]), n_blocks)
    return float(sum(losses)), Ds.sum(axis=0), dbs.sum(axis=0)


@njit(cache=True, nogil=True)
def _outputs_block(Y, Bt, intercept, act_code, first, last, out):
    size = Y.shape[1]
    V = np.empty(size, dtype=Y.dtype)
    for i in range(first, last):
        Yi = Y[i]
        for j in range(size):
            V[j], _ = activate(act_code, Yi[j])
        for o in range(Bt.shape[0]):
            out[i, o] = dot(V, Bt[o]) + intercept[o]


def outputs(Y, Bt, intercept, act_code):
    """Forward only: ``f[i, o] = <Bt[o], act(Y_i)> + intercept[o]`` ``(b, n_out)``,
    ``Y`` ``(b, M K)`` left as it is."""
    n = Y.shape[0]
    out = np.empty((n, Bt.shape[0]))
    n_blocks = n_blocks_for(n, Y.shape[1] * Bt.shape[0])
    run_blocks(lambda block: _outputs_block(
        Y, Bt, intercept, act_code, *block_bounds(n, n_blocks, block), out),
        n_blocks)
    return out
