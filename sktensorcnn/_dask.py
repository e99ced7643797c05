"""Samples in a Dask array: fits and predictions on data that need not fit in
memory, on one machine or a cluster (``pip install "sktensorcnn[dask]"``).

A ``dask.array`` ``X`` chunked along the samples is never gathered.  What a fit
needs from it is sums over samples: the sufficient statistics of the squared
loss (``Z^T S Z``, ``Z^T S y``), the loss of the network and its gradients, the
scales of the inputs.  Each is computed block by block where the blocks live
(Dask's workers under a ``distributed.Client``, threads otherwise) by the same
numba kernels as in memory, and summed by a tree reduction; the parameters
travel once per evaluation.  The rest of a fit (solvers, starts on a bounded
subsample) runs in the calling process, as in memory, so the fitted estimator
equals the in-memory fit up to the summation order; Adam's mini-batches are
read block-wise (:meth:`DaskSamples.epoch_order`), other batches than in
memory.  Predictions on a Dask array are a lazy Dask array.

Each block task runs numba and BLAS on one thread: Dask runs one task per
worker thread, so a cluster sized to the cores is not oversubscribed.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

import numpy as np

__all__ = ["is_dask_array", "validate_samples", "block_sum", "gather_rows",
           "sample_sums", "weighted_sum", "map_samples", "map_rows", "DaskSamples"]


def is_dask_array(X) -> bool:
    """Whether ``X`` is a ``dask.array.Array`` (without importing Dask)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(X, module.Array)


def validate_samples(X, *, input_name: str = "X"):
    """A Dask array of float32 / float64 samples chunked along axis 0 only
    (other axes rechunked to one chunk, unknown chunk sizes computed), checked
    finite in one pass over the blocks."""
    import dask.array as da

    if X.ndim < 2:
        raise ValueError(
            f"X must have shape (n_samples, d_1, ..., d_N); got {X.ndim}-d input.")
    if X.dtype not in (np.float32, np.float64):
        if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
            raise ValueError(f"{input_name} must be numeric; got dtype {X.dtype}.")
        X = X.astype(np.float64)
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if X.shape[0] == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}).")
    blocks = tuple(size for size in X.chunks[0] if size > 0)  # no empty blocks
    X = X.rechunk({0: blocks, **{axis: -1 for axis in range(1, X.ndim)}})
    if not bool(da.isfinite(X).all().compute()):
        raise ValueError(f"Input {input_name} contains NaN or infinity.")
    return X


def _row_slices(X) -> list[slice]:
    bounds = np.cumsum((0, *X.chunks[0]))
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def _add(a, b):
    """Sum of two partial results: numbers, arrays, or tuples / lists of them."""
    if isinstance(a, (tuple, list)):
        return type(a)(_add(x, y) for x, y in zip(a, b))
    return a + b


def _on_block(fn, block, rows, shared):
    """``fn(block, *rows, *shared)`` on one thread for numba and BLAS (one Dask
    task per worker thread), on the CPU."""
    from . import kernels

    with kernels.limit_threads(1), kernels.single_threaded_blas(), \
            kernels.on_device("cpu"):
        return fn(np.asarray(block), *rows, *shared)


def block_sum(X, fn: Callable, per_row=(), shared=()):
    """``sum_b fn(X_b, *[a[rows_b] for a in per_row], *shared)`` over the
    sample blocks ``X_b`` of the Dask array ``X``, computed where the blocks
    are and summed by a tree reduction (``fn`` returns a number, an array, or a
    tuple of them).  An item of ``per_row`` is an array of one row per sample,
    or a list of one part per block (:func:`rows_by_block`)."""
    import dask

    shared_key = dask.delayed(tuple(shared), pure=True)  # sent once, not per task
    slices = _row_slices(X)
    per_block = [rows if isinstance(rows, list)
                 else [np.asarray(rows)[part] for part in slices]
                 for rows in per_row]
    parts = [dask.delayed(_on_block, pure=True)(
        fn, block, [rows[b] for rows in per_block], shared_key)
        for b, block in enumerate(X.to_delayed().ravel())]
    while len(parts) > 1:
        parts = [dask.delayed(_add, pure=True)(*parts[i:i + 2])
                 if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return dask.compute(parts[0])[0]


def rows_by_block(X, rows: np.ndarray) -> list:
    """The parts of ``rows`` (one row per sample of ``X``) that go with each
    block of ``X``: persisted on the cluster once when a ``distributed.Client``
    is active (an evaluation then sends their keys, not the rows), the NumPy
    slices otherwise."""
    rows = np.asarray(rows)
    if not _has_client():
        return [rows[part] for part in _row_slices(X)]
    import dask.array as da

    chunked = da.from_array(rows, chunks=(X.chunks[0], *rows.shape[1:])).persist()
    return _PersistedParts(chunked.to_delayed().ravel(), chunked)


class _PersistedParts(list):
    """The parts of a persisted Dask array, one per block, holding the array so
    that its data stays on the cluster while the parts are in use."""

    def __init__(self, parts, source):
        super().__init__(parts)
        self.source = source


def sample_sums(X, power: int) -> np.ndarray:
    """``sum_j X[i, j] ** power`` per sample ``i`` (``power`` 1 or 2, float64)
    of a Dask array, computed block by block (by 1,024 samples within a block,
    no float64 copy of a block): ``n`` numbers come back."""
    return np.asarray(X.map_blocks(
        functools.partial(_block_sample_sums, power=power), dtype=np.float64,
        drop_axis=list(range(1, X.ndim)), chunks=(X.chunks[0],)).compute())


def _block_sample_sums(block, power):
    sums = np.empty(block.shape[0])
    for start in range(0, block.shape[0], 1024):
        part = np.asarray(block[start:start + 1024], dtype=np.float64)
        part = part.reshape(part.shape[0], -1)
        sums[start:start + 1024] = (part.sum(axis=1) if power == 1
                                    else np.einsum("ij,ij->i", part, part))
    return sums


def weighted_sum(X, weights) -> np.ndarray:
    """``sum_i weights[i] X[i]`` (one sample's shape, float64) of a Dask array,
    block by block."""
    return block_sum(X, _block_weighted_sum, (weights,))


def _block_weighted_sum(block, weights):
    return np.tensordot(weights, np.asarray(block, dtype=np.float64), axes=1)


def gather_rows(X, rows) -> np.ndarray:
    """``X[rows]`` in memory (a bounded subsample of a Dask array, read in the
    blocks' order)."""
    if not is_dask_array(X):
        return X[rows]
    rows = np.asarray(rows)
    order = np.argsort(rows, kind="stable")
    gathered = np.asarray(X[rows[order]].compute())
    out = np.empty_like(gathered)
    out[order] = gathered
    return out


def map_samples(X, fn: Callable, n_columns: int, dtype=np.float64):
    """``fn`` applied to each sample block of a Dask array (as
    :func:`block_sum`'s tasks run), lazily: a Dask array ``(n, n_columns)``
    chunked as ``X`` along the samples."""
    task = functools.partial(_on_block, fn, rows=(), shared=())
    if X.ndim == 2:
        return X.map_blocks(task, dtype=dtype, chunks=(X.chunks[0], (n_columns,)))
    return X.map_blocks(task, dtype=dtype, drop_axis=list(range(2, X.ndim)),
                        chunks=(X.chunks[0], (n_columns,)))


def map_rows(outputs, fn: Callable, n_columns: int | None = None, dtype=np.float64):
    """``fn`` on the rows of outputs ``(n, n_out)``: directly for a NumPy
    array, block by block (lazily) for a Dask one; ``n_columns`` of the result
    (``None``: one value per row)."""
    if not is_dask_array(outputs):
        return fn(outputs)
    if n_columns is None:
        return outputs.map_blocks(fn, dtype=dtype, drop_axis=1)
    return outputs.map_blocks(fn, dtype=dtype,
                              chunks=(outputs.chunks[0], (n_columns,)))


def _host_method(name: str):
    def run(block, targets, weight_scale, geometry, *args):
        from .kernels import HostSamples

        # targets: the rows' targets and, last, their weights
        samples = HostSamples(block, geometry, targets[:, :-1],
                              targets[:, -1] * weight_scale, normalize=False)
        return getattr(samples, name)(*args)
    run.__name__ = f"host_{name}"
    return run


_FORWARD = _host_method("forward")
_LOSS_GRAD = _host_method("loss_grad")
_FACTORIZED_LOSS_GRAD = _host_method("factorized_loss_grad")


class DaskSamples:
    """Samples of a Dask array staged for a fit's evaluations: the protocol of
    :class:`~sktensorcnn.kernels.HostSamples`, each evaluation a
    :func:`block_sum` over the blocks (persisted on the cluster when a
    ``distributed.Client`` is active, so that the inputs are read once, with
    the targets and weights beside them: an evaluation sends the parameters
    and the keys of the blocks, nothing of size ``n``).

    Parameters
    ----------
    X : dask.array.Array
    geometry : ConvPoolGeometry
    y : ndarray of shape (n,) or (n, n_targets), optional
    sample_weight : ndarray of shape (n,), optional
    normalize : bool, default=True
        Normalize the weights of the rows of each evaluation to sum to one.
    """

    def __init__(self, X, geometry, y=None, sample_weight=None,
                 normalize: bool = True):
        from .losses import target_rows

        n = X.shape[0]
        self.X = persisted(X)
        self.geometry = geometry
        self.y = np.zeros((n, 1)) if y is None else target_rows(y)
        self._weights = (np.ones(n) if sample_weight is None
                         else np.asarray(sample_weight, np.float64))
        self.normalize = normalize
        self._targets = rows_by_block(self.X, np.column_stack([self.y, self._weights]))
        self._block_index, self._block_data = -1, None

    def __len__(self) -> int:
        return self.X.shape[0]

    @property
    def weights(self) -> np.ndarray:
        return self._weights * self._weight_scale

    @property
    def _weight_scale(self) -> float:
        total = float(self._weights.sum())
        return 1.0 / total if self.normalize and total > 0 else 1.0

    def epoch_order(self, rng) -> np.ndarray:
        """The rows in the order of a shuffled epoch, block-wise: the blocks in a
        random order, the rows of each shuffled.  Mini-batches taken along it
        (:meth:`take`) read each block once per epoch instead of gathering rows
        from every block for every batch."""
        slices = _row_slices(self.X)
        return np.concatenate([
            rng.permutation(np.arange(slices[b].start, slices[b].stop))
            for b in rng.permutation(len(slices))]).astype(np.int64)

    def take(self, rows):
        """The mini-batch ``rows`` in memory: from the block last read when they
        lie in one or two blocks (batches along :meth:`epoch_order`), gathered
        from the blocks otherwise."""
        from .kernels import HostSamples

        rows = np.asarray(rows, dtype=np.int64)
        return HostSamples(self._rows(rows), self.geometry, self.y[rows],
                           self._weights[rows], self.normalize)

    def _rows(self, rows: np.ndarray) -> np.ndarray:
        starts = np.cumsum((0, *self.X.chunks[0]))
        blocks = np.searchsorted(starts, rows, side="right") - 1
        touched = list(np.unique(blocks))
        if len(touched) > 2:
            return gather_rows(self.X, rows)
        # the block already in memory first: a batch across a boundary reads
        # only the next one
        touched.sort(key=lambda b: b != self._block_index)
        out = None
        for b in touched:
            block = self._block(int(b))
            if out is None:
                out = np.empty((len(rows), *block.shape[1:]), dtype=block.dtype)
            mine = blocks == b
            out[mine] = block[rows[mine] - starts[b]]
        return out

    def _block(self, b: int) -> np.ndarray:
        """Block ``b`` in memory; one block is kept between batches."""
        if b != self._block_index:
            self._block_data = None  # release the previous block first
            self._block_data = np.asarray(self.X.blocks[b].compute())
            self._block_index = b
        return self._block_data

    def forward(self, kernels, Bt, intercept, code):
        import dask

        shared = dask.delayed((1.0, self.geometry, kernels, Bt, intercept, code),
                              pure=True)
        parts = [dask.delayed(_on_block, pure=True)(_FORWARD, block, [targets], shared)
                 for block, targets in zip(self.X.to_delayed().ravel(), self._targets)]
        return np.concatenate(dask.compute(*parts), axis=0)

    def loss_grad(self, kernels, Bt, intercept, code, loss_code):
        return block_sum(self.X, _LOSS_GRAD, (self._targets,),
                         (self._weight_scale, self.geometry, kernels, Bt, intercept,
                          code, loss_code))

    def factorized_loss_grad(self, params, Bt, intercept, code, loss_code, kind):
        loss, grads, D, db = block_sum(
            self.X, _FACTORIZED_LOSS_GRAD, (self._targets,),
            (self._weight_scale, self.geometry, list(params), Bt, intercept, code,
             loss_code, kind))
        return loss, list(grads), D, db


def _has_client() -> bool:
    try:
        from distributed import default_client
        default_client()
    except (ImportError, ValueError):
        return False
    return True


def persisted(X):
    """``X`` persisted on the cluster when a ``distributed.Client`` is active
    (its workers spill to disk past their memory limit), else as it is."""
    return X.persist() if _has_client() else X
