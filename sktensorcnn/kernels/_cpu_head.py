"""The network's head on convolution outputs, forward and backward (numba).

After the convolution every path (BLAS, factorized) holds ``Y`` ``(b, M, K)`` for a
chunk of samples.  The head applies the activation, the pooled fully-connected
layer folded into ``Bt`` ``(n_out, M, K)`` (see :mod:`._cpu_network`) and the
loss; backward it gives ``D = sum_i G_i act(Y_i)`` (to be pooled into the FC
gradient), the intercept gradient and ``dY = act'(Y) sum_o G_io Bt_o``, written
over ``Y``.  ``G_io`` is the weighted derivative of the loss with respect to
output ``o`` of sample ``i``.

Losses: see :mod:`._cpu_pointwise`.  Sample weights multiply each sample's loss.

With one to three outputs the head runs sample by sample in numba (one pass
over each sample's outputs).  With more (classes) that loop reads all of ``Bt`` and
``D`` ``(n_out, M K)`` again for every sample, megabytes for an image
classifier (28 x 28 images, 32 kernels, 10 classes: 1.5 MB each), and it ran
at a few GFLOP/s; the head of a block of samples is then three matrix
products instead (outputs ``F = act(Y) Bt^T``, ``D = G^T act(Y)`` and ``G
Bt``, in float64), around one numba pass for the activation and the losses'
numpy reference on ``F`` (:mod:`sktensorcnn.losses`).
"""

import threading

import numpy as np
from numba import njit

from .. import losses
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


#: Outputs from which the head runs by matrix products (:func:`_products_block`):
#: with two or three the sample-by-sample loop is still faster (28 x 28 images,
#: 32 kernels, batches of 64: 3.3 against 5.0 ms for two outputs, 13.4 against
#: 7.7 for ten, float64, 2 threads).
PRODUCTS_MIN_OUTPUTS = 4


def loss_grad(Y, Bt, intercept, y, weights, act_code, loss_code, n_blocks):
    """Weighted loss of a chunk and its gradients, ``dY`` written over ``Y``.

    ``Y`` ``(b, M K)`` and ``Bt`` ``(n_out, M K)`` flattened, same dtype.  Returns
    the loss, ``D`` ``(n_out, M K)``, ``db`` ``(n_out,)`` (float64).  Samples are
    split into ``n_blocks`` blocks run side by side, each with its own
    accumulators summed in block order: deterministic for a given ``n_blocks``.
    """
    n, size = Y.shape
    n_out = Bt.shape[0]
    if n_out >= PRODUCTS_MIN_OUTPUTS:
        Bt64 = np.asarray(Bt, dtype=np.float64)
        parts = run_blocks(lambda block: _products_block(
            Y, Bt64, intercept, y, weights, act_code, loss_code,
            *block_bounds(n, n_blocks, block)), n_blocks)
        return (float(sum(part[0] for part in parts)),
                np.sum([part[1] for part in parts], axis=0),
                np.sum([part[2] for part in parts], axis=0))
    Ds = np.zeros((n_blocks, n_out, size))
    dbs = np.zeros((n_blocks, n_out))
    losses = run_blocks(lambda block: loss_grad_block(
        Y, Bt, intercept, y, weights, act_code, loss_code,
        *block_bounds(n, n_blocks, block), Ds[block], dbs[block]), n_blocks)
    return float(sum(losses)), Ds.sum(axis=0), dbs.sum(axis=0)


@njit(cache=True, nogil=True)
def _activate_block(Y, V, act_code, first, last):
    """``V = act(Y)``, ``Y = act'(Y)`` for rows ``first <= i < last``."""
    for i in range(first, last):
        activate_rows(act_code, Y[i], V[i])


def _products_block(Y, Bt64, intercept, y, weights, act_code, loss_code, first,
                    last):
    """Rows ``first <= i < last`` of :func:`loss_grad` by matrix products (several
    outputs): returns their loss, ``D`` and ``db``, writes ``dY`` over ``Y``.

    The products run in float64 whatever the samples' precision, as the
    sample-by-sample head sums: ``G Bt`` and ``G^T act(Y)`` add terms of both
    signs over outputs and samples, which float32 sums would round to 1e-5 of
    the terms (seen on the Poisson loss)."""
    rows = slice(first, last)
    Yr = Y[rows]
    V = _scratch(Yr.shape, Y.dtype, "activations")
    _activate_block(Yr, V, act_code, 0, last - first)
    if V.dtype != np.float64:
        wide = _scratch(Yr.shape, np.float64, "wide")
        wide[...] = V
        V = wide
    with np.errstate(over="ignore", invalid="ignore"):  # inf, as the numba head
        values, G = losses.REGISTRY[loss_code].reference(
            V @ Bt64.T + intercept, y[rows])
    G *= weights[rows, None]
    D = G.T @ V
    Yr *= np.matmul(G, Bt64, out=V)  # act'(Y) (G Bt), V no longer needed
    return float(weights[rows] @ values), D, G.sum(axis=0)


_scratches = threading.local()

#: Bytes of buffers a thread keeps between calls, all of them together:
#: mini-batches' heads fit (a batch of 64 images of 28 x 28 with 32 kernels:
#: 4.7 MB per block and buffer); the chunks of full-batch fits are allocated
#: afresh, their page faults small beside their work, so that idle threads do
#: not hold large buffers.
SCRATCH_MAX_BYTES = 16 * 2**20


def _scratch(shape, dtype, name: str) -> np.ndarray:
    """A buffer of the calling thread, kept between calls: a fresh array of
    megabytes costs its page faults at every evaluation (a third of the head's
    time on 28 x 28 images)."""
    size = int(np.prod(shape))
    buffers = getattr(_scratches, "buffers", None)
    if buffers is None:
        buffers = _scratches.buffers = {}
    key = (name, np.dtype(dtype).str)
    buffer = buffers.pop(key, None)
    if buffer is None or buffer.size < size:
        buffer = np.empty(size, dtype=dtype)
    if buffer.nbytes + sum(b.nbytes for b in buffers.values()) <= SCRATCH_MAX_BYTES:
        buffers[key] = buffer
    return buffer[:size].reshape(shape)


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
