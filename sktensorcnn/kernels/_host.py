"""Samples staged in host memory: the CPU side of the backend seam.

Every backend stages the samples of a fit once (with their targets and
weights) and evaluates the network on them, whole or by mini-batches of rows,
through the same methods: :class:`HostSamples` here for the CPU kernels,
:class:`~sktensorcnn.kernels._cuda_host.DeviceSamples` for CUDA.  The
estimators only call :func:`sktensorcnn.kernels.stage_samples` and these
methods, so a new backend (a cluster, another accelerator) is one more class
with them, registered in :data:`sktensorcnn.kernels.BACKENDS`.

The CPU's path rules live here too: which kernel computes the features
(:data:`BOX_PRODUCTS_MAX_ENTRIES`) and the network (:func:`uses_patches`, then
:func:`uses_gemm`).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from ..geometry import MAX_SPATIAL_MODES, ConvPoolGeometry
from ..losses import target_rows
from . import (
    _cpu,
    _cpu_box_products,
    _cpu_factorized,
    _cpu_gemm,
    _cpu_network,
    _cpu_patches,
)
from ._memory import CHUNK_BYTES, fresh, writable
from ._threads import n_blocks_for


def _pad_to_4(values, fill) -> np.ndarray:
    """Missing modes go first, so the kernels' innermost loops run over real modes."""
    values = list(values)
    return np.array([fill] * (MAX_SPATIAL_MODES - len(values)) + values, dtype=np.int64)


#: Values per row from which a mode is summed by box rows, one output row per
#: box, rather than by sliding sums over the flat table (see :mod:`._cpu`).
BOX_ROWS_MIN_VALUES = 16

#: Values of a group of tiny samples summed together by the features kernel.
FEATURES_GROUP_VALUES = 16384


def _feature_tables(geometry: ConvPoolGeometry) -> dict:
    """The arguments of :func:`._cpu.conv_pool_features` that depend on the
    geometry alone, in the 4-mode layout: padding, padded shape, stride and
    pool, first positions of the boxes per mode, the boxes by first position,
    which modes are summed by box rows, where each feature sits in the last
    table, and the group size.

    Kept per geometry and path settings (the kernel only reads them):
    building them takes about 0.1 ms, a tenth of a call on 10^4 small samples,
    and a fit calls the kernel once per chunk."""
    return _box_layout(geometry, BOX_ROWS_MIN_VALUES, FEATURES_GROUP_VALUES)


@functools.lru_cache(maxsize=32)
def _box_layout(geometry: ConvPoolGeometry, box_rows_min_values: int,
                group_values: int) -> dict:
    """:func:`_feature_tables` for the given settings."""
    modes = MAX_SPATIAL_MODES
    l, p = _pad_to_4(geometry.kernel_size, 1), _pad_to_4(geometry.pooled_shape, 1)
    padded = _pad_to_4(geometry.padded_shape, 1)
    n_boxes = l * p
    first = np.zeros((modes, n_boxes.max()), dtype=np.int64)
    for j, bounds in enumerate(geometry.box_bounds, modes - geometry.n_modes):
        first[j, :n_boxes[j]] = bounds[..., 0].ravel()  # box k = a_j p_j + r_j
    unused = np.arange(first.shape[1]) >= n_boxes[:, None]
    order = np.argsort(np.where(unused, np.iinfo(np.int64).max, first), axis=1,
                       kind="stable")
    # box rows for a leading run of modes with long rows, where they shrink the
    # table (overlapping pools can give more boxes than positions)
    by_rows = np.zeros(modes, dtype=np.bool_)
    for j in range(modes):
        by_rows[j] = ((j == 0 or by_rows[j - 1]) and n_boxes[j] <= padded[j]
                      and np.prod(padded[j + 1:]) >= box_rows_min_values)
    extent = np.where(by_rows, n_boxes, padded)
    a = np.indices(l).reshape(modes, -1, 1)
    r = np.indices(p).reshape(modes, 1, -1)
    source = np.zeros((a.shape[1], r.shape[2]), dtype=np.int64)
    for j in range(modes):
        k = a[j] * p[j] + r[j]
        source = source * extent[j] + (k if by_rows[j] else first[j][k])
    # features (a, c, r) in the order of Z: channel c's table comes c tables in
    C = _canonical(geometry)[1]
    source = (source[:, None, :]
              + np.arange(C)[:, None] * np.prod(extent)).ravel()
    group = group_values // (C * np.prod(padded))
    return dict(pad_before=_pad_to_4([lo for lo, _ in geometry.padding], 0),
                padded_shape=padded, stride=_pad_to_4(geometry.stride, 1),
                pool=_pad_to_4(geometry.pool_size, 1), first=first,
                order=np.ascontiguousarray(order), n_boxes=n_boxes,
                by_rows=by_rows, source=source, group=int(max(group, 1)))


#: Scratch values per sample below which samples are processed side by side.
_SMALL_SAMPLE = 4096


def _batch(geometry: ConvPoolGeometry) -> int:
    """Samples per pass of the fused network kernels (interleaved along the last
    axis): 16 for tiny samples (short rows), 1 for large."""
    return int(np.clip(_SMALL_SAMPLE // np.prod(geometry.padded_shape), 1, 16))


#: Input entries of a call (samples times entries per sample) up to which the
#: features are mode products with box matrices (see :mod:`._cpu_box_products`):
#: about 12 ms at most on two cores, where compiling the numba kernel takes
#: seconds the first time; beyond, the numba kernel (2-18x faster at this size:
#: least for 1-d signals, most for tiny images).
BOX_PRODUCTS_MAX_ENTRIES = 2**20


def _sample_chunks(X6: np.ndarray):
    """Row chunks of ``X6`` that the fused loops can read: the whole array when
    it is writable float32 / float64 (the two precisions they are compiled
    for), else writable copies, chunk by chunk (read-only memory maps, other
    dtypes become float64)."""
    if X6.flags.writeable and X6.dtype in (np.float32, np.float64):
        yield slice(0, X6.shape[0]), X6
        return
    dtype = X6.dtype if X6.dtype in (np.float32, np.float64) else np.float64
    size = max(1, CHUNK_BYTES // max(X6[0].size * 8, 1))
    for start in range(0, X6.shape[0], size):
        rows = slice(start, min(start + size, X6.shape[0]))
        yield rows, writable(X6[rows], dtype)


def _canonical(geometry: ConvPoolGeometry):
    """Shapes of the 4-mode layout: leading size-1 modes, channel axis always."""
    ones = (1,) * (MAX_SPATIAL_MODES - geometry.n_modes)
    C = geometry.n_channels or 1
    return ones, C


def _network_args(X, kernels, Bt, geometry):
    ones, C = _canonical(geometry)
    n, K = X.shape[0], kernels.shape[0]
    X6 = np.ascontiguousarray(X).reshape(n, C, *ones, *geometry.sample_shape)
    A6 = fresh(kernels).reshape(K, C, *ones, *geometry.kernel_size)
    Bt6 = fresh(Bt).reshape(Bt.shape[0], K, *ones, *geometry.conv_shape)
    # per sample: the convolution forward and back, and the head
    work = int(np.prod(geometry.conv_shape)) * K * (
        2 * C * int(np.prod(geometry.kernel_size)) + 3 * Bt.shape[0])
    common = (
        _pad_to_4([lo for lo, _ in geometry.padding], 0),
        _pad_to_4(geometry.padded_shape, 1),
        _pad_to_4(geometry.stride, 1),
        n_blocks_for(n, work),
    )
    return X6, A6, Bt6, common


#: Multiply-adds per output position (``C L K``) from which the BLAS path is used.
GEMM_MIN_MACS_PER_OUTPUT = 256

#: Bytes of the patches of a call (all of a fit's samples, when staged) up to
#: which the network runs on patches gathered once (see :mod:`._cpu_patches`):
#: the fused loops' kernels, whose compilation is most of a first nonlinear
#: fit, are then never compiled, and each evaluation is as fast or faster;
#: beyond, gathering and reading the patches costs more than it saves.
PATCHES_MAX_BYTES = 16 * 2**20


def uses_patches(n: int, geometry: ConvPoolGeometry, dtype) -> bool:
    """Path rule: the network on patches gathered once when the patches of ``n``
    samples of ``dtype`` fit in ``PATCHES_MAX_BYTES``."""
    return _cpu_patches.patch_bytes(n, geometry, dtype) <= PATCHES_MAX_BYTES


def uses_gemm(geometry: ConvPoolGeometry, n_kernels: int) -> bool:
    """Path rule: BLAS (im2col + GEMM) when each convolution output costs at least
    ``GEMM_MIN_MACS_PER_OUTPUT`` multiply-adds, the fused numba loops otherwise.

    Below that the matrices are too thin for BLAS and gathering patches costs more
    than it saves; above it the numba loops' short rows waste the vector units.
    """
    return geometry.n_kernel_entries * n_kernels >= GEMM_MIN_MACS_PER_OUTPUT


class _FeatureShapes(NamedTuple):
    """What a features call reads off its geometry."""

    feature_shape: tuple  #: of one sample's features
    sample: tuple  #: one sample in the 4-mode layout, channels first
    entries: int  #: input entries per sample
    features: int  #: features per sample
    scale: float  #: ``1 / prod(pool)``
    work: int  #: the kernel's work per sample, for :func:`n_blocks_for`


@functools.lru_cache(maxsize=32)
def _feature_shapes(geometry: ConvPoolGeometry) -> _FeatureShapes:
    """:class:`_FeatureShapes` of ``geometry``, kept because the geometry
    computes its properties on each access: reading them took 50 us per call,
    140 us when other work had just flushed the caches, against a call of
    about 1 ms on 10^4 small samples."""
    ones, C = _canonical(geometry)
    sample = (C, *ones, *geometry.sample_shape)
    work = C * np.prod(geometry.padded_shape) * (1 + np.prod(geometry.kernel_size))
    return _FeatureShapes(
        feature_shape=geometry.feature_shape, sample=sample,
        entries=int(np.prod(sample)),
        features=geometry.n_kernel_entries * geometry.n_cells,
        scale=1.0 / float(np.prod(geometry.pool_size)), work=int(work))


def conv_pool_features(X, geometry: ConvPoolGeometry, out=None) -> np.ndarray:
    """Conv-pool features on the CPU (see
    :func:`sktensorcnn.kernels.conv_pool_features`): mode products with box
    matrices for small calls, the numba kernel beyond."""
    n = X.shape[0]
    shapes = _feature_shapes(geometry)
    if out is None:
        out = np.empty((n, *shapes.feature_shape), dtype=X.dtype)
    if n * shapes.entries <= BOX_PRODUCTS_MAX_ENTRIES:
        C = shapes.sample[0]
        return _cpu_box_products.conv_pool_features(
            np.asarray(X).reshape(n, C, *geometry.sample_shape), geometry, out)
    Z2 = out.reshape(n, shapes.features)
    if not np.shares_memory(Z2, out):
        raise ValueError("out must be C-contiguous")
    _cpu.conv_pool_features(
        writable(np.ascontiguousarray(X)).reshape(n, *shapes.sample),
        **_feature_tables(geometry),
        # in the features' precision: float32 is read off in float32
        scale=Z2.dtype.type(shapes.scale),
        n_blocks=n_blocks_for(n, shapes.work),
        Z=Z2,
    )
    return out


class HostSamples:
    """Samples ``(n, *input_shape)`` in host memory, with targets and weights.

    Parameters
    ----------
    X : ndarray
    geometry : ConvPoolGeometry
    y : ndarray of shape (n,) or (n, n_targets), optional
        Encoded targets (:mod:`sktensorcnn.losses`), kept as rows.
    sample_weight : ndarray of shape (n,), optional
    normalize : bool, default=True
        Normalize the weights of the rows of each evaluation to sum to one
        (``False``: taken as they are).
    """

    def __init__(self, X, geometry: ConvPoolGeometry, y=None, sample_weight=None,
                 normalize: bool = True):
        n = X.shape[0]
        self.X = X
        self.geometry = geometry
        self.y = np.zeros((n, 1)) if y is None else target_rows(y)
        self._weights = (np.ones(n) if sample_weight is None
                         else np.asarray(sample_weight, np.float64))
        self.normalize = normalize
        # the rule is decided on all the samples, so that a fit's mini-batches
        # take the path (and compiled kernels) of the whole
        self._on_patches = uses_patches(n, geometry, X.dtype)
        self._patches = None
        self._taken_from = None  # (samples, rows) of a mini-batch

    @property
    def patches(self) -> np.ndarray:
        """The samples' patches (see :mod:`._cpu_patches`), gathered at first use;
        a mini-batch's are rows of those of all the samples, gathered once."""
        if self._patches is None:
            if self._taken_from is None:
                self._patches = _cpu_patches.patches(self.X, self.geometry)
            else:
                samples, rows = self._taken_from
                self._patches = samples.patches[rows]
        return self._patches

    def __len__(self) -> int:
        return self.X.shape[0]

    @property
    def weights(self) -> np.ndarray:
        total = float(self._weights.sum())
        if self.normalize and total > 0:
            return self._weights / total
        return self._weights

    def take(self, rows) -> HostSamples:
        """The mini-batch ``rows`` (indices into the samples)."""
        rows = np.asarray(rows, dtype=np.int64)
        view = HostSamples.__new__(HostSamples)
        view.X, view.geometry = self.X[rows], self.geometry
        view.y, view._weights = self.y[rows], self._weights[rows]
        view.normalize = self.normalize
        view._on_patches, view._patches = self._on_patches, None
        view._taken_from = (self, rows)
        return view

    def forward(self, kernels, Bt, intercept, code):
        if self._on_patches:
            return _cpu_patches.network_forward(self.patches, kernels, fresh(Bt),
                                                fresh(intercept), code)
        X, geometry = self.X, self.geometry
        X6, A6, Bt6, (pad, padded, stride, n_blocks) = _network_args(
            X, kernels, Bt, geometry
        )
        b = fresh(intercept)
        if uses_gemm(geometry, kernels.shape[0]):
            return _cpu_gemm.network_forward(X6, A6, Bt6, b, code, pad, padded, stride)
        out = np.empty((X6.shape[0], Bt6.shape[0]))
        for rows, chunk in _sample_chunks(X6):
            out[rows] = _cpu_network.network_forward(chunk, A6.astype(chunk.dtype),
                                                     Bt6, b, code, pad,
                                                     padded, stride, n_blocks,
                                                     _batch(geometry))
        return out

    def loss_grad(self, kernels, Bt, intercept, code, loss_code):
        X, y, weights, geometry = self.X, self.y, self.weights, self.geometry
        if self._on_patches:
            return _cpu_patches.network_loss_grad(
                self.patches, fresh(y), fresh(weights), kernels, fresh(Bt),
                fresh(intercept), code, loss_code)
        X6, A6, Bt6, (pad, padded, stride, n_blocks) = _network_args(
            X, kernels, Bt, geometry
        )
        y, weights, b = fresh(y), fresh(weights), fresh(intercept)
        if uses_gemm(geometry, kernels.shape[0]):
            loss, dA, D, db = _cpu_gemm.network_loss_grad(
                X6, y, weights, A6, Bt6, b, code, loss_code, pad, padded, stride)
        else:
            loss, dA, D, db = 0.0, 0.0, 0.0, 0.0
            for rows, chunk in _sample_chunks(X6):
                part = _cpu_network.network_loss_grad(
                    chunk, y[rows], weights[rows], A6.astype(chunk.dtype), Bt6, b,
                    code, loss_code, pad,
                    padded, stride, n_blocks, _batch(geometry))
                loss, dA, D, db = (total + p for total, p
                                   in zip((loss, dA, D, db), part))
        return loss, dA.reshape(kernels.shape), D.reshape(Bt.shape), db

    def factorized_loss_grad(self, params, Bt, intercept, code, loss_code, kind):
        X, y, weights, geometry = self.X, self.y, self.weights, self.geometry
        C = geometry.n_channels or 1
        Xc = np.ascontiguousarray(X).reshape(X.shape[0], C, *geometry.sample_shape)
        return _cpu_factorized.network_loss_grad(
            Xc, fresh(y), fresh(weights), params, fresh(Bt), fresh(intercept), code,
            loss_code, geometry, kind,
        )
