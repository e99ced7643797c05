"""The one dispatch point for compute kernels.

Everything else in the library calls the functions here, never a backend
directly.  The network's evaluations go through staged samples
(:func:`stage_samples`): one class per backend (:data:`BACKENDS`: host memory
for the CPU kernels, device memory for CUDA), each with ``take`` (a mini-batch),
``forward``, ``loss_grad`` and ``factorized_loss_grad``, chosen from the
current device (:func:`on_device`).  A new backend is one more such class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..geometry import MAX_SPATIAL_MODES, ConvPoolGeometry

# _cache first: it installs the cache locators before any kernel is declared
from . import _cache, _cpu, _cpu_box_products, _cpu_factorized, _cpu_gemm, _cpu_network  # noqa: F401, E501
from ._device import cuda_available, current_device, on_device, resolve_device
from ._host import HostSamples
from ._threads import (
    limit_threads,
    n_blocks_for,
    resolve_n_jobs,
    single_threaded_blas,
)

__all__ = [
    "conv_pool_features", "network_forward", "network_loss_grad", "uses_gemm",
    "uses_factorized", "factorized_network_loss_grad", "single_threaded_blas",
    "limit_threads", "resolve_n_jobs", "stage_samples", "device_samples",
    "BACKENDS", "Backend", "HostSamples", "on_device",
    "resolve_device", "current_device", "cuda_available",
]


@dataclass(frozen=True)
class Backend:
    """What a device provides: staged samples for the network's evaluations
    and the conv-pool features of the linear fits.

    Attributes
    ----------
    stage : callable
        ``(X, geometry, y, sample_weight, normalize) -> samples`` with ``take``,
        ``forward``, ``loss_grad`` and ``factorized_loss_grad`` (see
        :class:`HostSamples`).
    features : callable
        ``(X, geometry, out) -> Z`` (``out`` may be ``None``).
    """

    stage: Callable
    features: Callable


def _cuda_samples(*args, **kwargs):
    from ._cuda_host import DeviceSamples  # numba.cuda only when a GPU is used

    return DeviceSamples(*args, **kwargs)


def _cuda_features(X, geometry, out):
    from ._cuda_host import conv_pool_features as on_gpu

    Z = on_gpu(X, geometry).astype(X.dtype, copy=False)
    if out is None:
        return Z
    out[...] = Z
    return out


#: device name -> :class:`Backend`.
BACKENDS: dict[str, Backend] = {}


def stage_samples(X, geometry: ConvPoolGeometry, y=None, sample_weight=None,
                  normalize: bool = True):
    """Samples (and targets, weights) staged once for the evaluations of a fit,
    on the current device: pass the result as ``X`` to :func:`network_loss_grad`
    / :func:`network_forward` / :func:`factorized_network_loss_grad`
    (``.take(rows)`` for a mini-batch; the weights of the rows evaluated are
    normalized to sum to 1 unless ``normalize=False``)."""
    return BACKENDS[current_device()].stage(X, geometry, y, sample_weight, normalize)


#: The CUDA spelling kept for callers that stage on the GPU explicitly.
def device_samples(X, geometry: ConvPoolGeometry, y=None, sample_weight=None,
                   normalize: bool = True):
    """Samples staged on the GPU (see :func:`stage_samples`)."""
    return _cuda_samples(X, geometry, y, sample_weight, normalize)


def _staged(X, geometry, y=None, weights=None):
    """``X`` itself when already staged, else staged on the current device with
    ``y`` and ``weights`` taken as they are."""
    if isinstance(X, np.ndarray):
        return stage_samples(X, geometry, y, weights, normalize=False)
    return X


def _pad_to_4(values, fill) -> np.ndarray:
    """Missing modes go first, so the kernels' innermost loops run over real modes."""
    values = list(values)
    return np.array([fill] * (MAX_SPATIAL_MODES - len(values)) + values, dtype=np.int64)


def _box_tables(geometry: ConvPoolGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Box corners per mode, pairs ``(a_j, r_j)`` flattened, in the 4-mode layout."""
    width = max(l * p for l, p in zip(geometry.kernel_size, geometry.pooled_shape))
    last = np.zeros((MAX_SPATIAL_MODES, width), dtype=np.int64)
    before = np.full((MAX_SPATIAL_MODES, width), -1, dtype=np.int64)
    offset = MAX_SPATIAL_MODES - geometry.n_modes
    for j, (bounds, s) in enumerate(zip(geometry.box_bounds, geometry.stride), offset):
        k = bounds.shape[0] * bounds.shape[1]
        last[j, :k] = bounds[..., 1].ravel()
        before[j, :k] = bounds[..., 0].ravel() - s
    return last, before


#: Scratch values per sample below which samples are processed side by side.
_SMALL_SAMPLE = 4096


def _batch(geometry: ConvPoolGeometry) -> int:
    """Samples per kernel pass (interleaved along the last axis by the feature
    and fused network kernels): 16 for tiny samples (short rows), 1 for large."""
    return int(np.clip(_SMALL_SAMPLE // np.prod(geometry.padded_shape), 1, 16))


#: Input entries of a call (samples times entries per sample) up to which the
#: features are mode products with box matrices (see :mod:`._cpu_box_products`):
#: a few milliseconds at most, where compiling the numba kernel would take
#: seconds the first time; beyond, the numba kernel (up to 4x faster).
BOX_PRODUCTS_MAX_ENTRIES = 2**20


def conv_pool_features(
    X: np.ndarray, geometry: ConvPoolGeometry, out: np.ndarray | None = None
) -> np.ndarray:
    """Conv-pool features of a validated batch (see :func:`sktensorcnn.features`).

    Parameters
    ----------
    X : ndarray of shape (n, *geometry.input_shape), float32 or float64, C-contiguous
    geometry : ConvPoolGeometry
    out : ndarray of shape (n, *geometry.feature_shape), optional
        Written in place when given (same dtype as ``X``, C-contiguous).

    Returns
    -------
    Z : ndarray of shape (n, *geometry.feature_shape), dtype of ``X``
    """
    return BACKENDS[current_device()].features(X, geometry, out)


def _cpu_conv_pool_features(X, geometry, out=None):
    n = X.shape[0]
    N = geometry.n_modes
    ones = (1,) * (MAX_SPATIAL_MODES - N)
    C = geometry.n_channels or 1
    if out is None:
        out = np.empty((n, *geometry.feature_shape), dtype=X.dtype)
    if n * C * int(np.prod(geometry.sample_shape)) <= BOX_PRODUCTS_MAX_ENTRIES:
        return _cpu_box_products.conv_pool_features(
            np.asarray(X).reshape(n, C, *geometry.sample_shape), geometry, out)
    X6 = _writable(X).reshape(n, C, *ones, *geometry.sample_shape)
    Z10 = out.reshape(n, *ones, *geometry.kernel_size, C, *ones, *geometry.pooled_shape)
    if not np.shares_memory(Z10, out):
        raise ValueError("out must be C-contiguous")
    last, before = _box_tables(geometry)
    batch = _batch(geometry)
    # mode 4 in the interleaved layout of the kernel: position x -> x * batch + b
    k4 = geometry.kernel_size[-1] * geometry.pooled_shape[-1]
    lanes = np.arange(batch)
    last4 = (last[3, :k4, None] * batch + lanes).ravel()
    before4 = np.where(before[3, :k4, None] >= 0,
                       before[3, :k4, None] * batch + lanes, -1).ravel()
    _cpu.conv_pool_features(
        X6,
        _pad_to_4([lo for lo, _ in geometry.padding], 0),
        _pad_to_4(geometry.padded_shape, 1),
        _pad_to_4(geometry.stride, 1),
        last,
        before,
        last4,
        before4,
        1.0 / float(np.prod(geometry.pool_size)),
        n_blocks_for(n, C * np.prod(geometry.padded_shape)
                     * (1 + np.prod(geometry.kernel_size))),
        batch,
        Z10,
    )
    return out


def _fresh(a) -> np.ndarray:
    """A contiguous, writable float64 copy of a small array (targets, weights,
    parameters), so that every call meets the kernels' one compiled signature."""
    return np.array(a, dtype=np.float64, order="C")


def _writable(X: np.ndarray, dtype=None) -> np.ndarray:
    """``X`` itself, or a copy when it is read-only (joblib's memory maps) or of
    another dtype: numba compiles a separate kernel for each array type, and each
    costs tens of seconds the first time."""
    if X.flags.writeable and (dtype is None or X.dtype == dtype):
        return X
    return np.array(X, dtype=dtype or X.dtype, order="C")


#: Bytes of samples copied at a time for the fused loops.
_CHUNK_BYTES = 64 * 2**20


def _sample_chunks(X6: np.ndarray):
    """Row chunks of ``X6`` that the fused loops can read: the whole array when
    it is writable float32 / float64 (the two precisions they are compiled
    for), else writable copies, chunk by chunk (read-only memory maps, other
    dtypes become float64)."""
    if X6.flags.writeable and X6.dtype in (np.float32, np.float64):
        yield slice(0, X6.shape[0]), X6
        return
    dtype = X6.dtype if X6.dtype in (np.float32, np.float64) else np.float64
    size = max(1, _CHUNK_BYTES // max(X6[0].size * 8, 1))
    for start in range(0, X6.shape[0], size):
        rows = slice(start, min(start + size, X6.shape[0]))
        yield rows, _writable(X6[rows], dtype)


def _canonical(geometry: ConvPoolGeometry):
    """Shapes of the 4-mode layout: leading size-1 modes, channel axis always."""
    ones = (1,) * (MAX_SPATIAL_MODES - geometry.n_modes)
    C = geometry.n_channels or 1
    return ones, C


def _network_args(X, kernels, Bt, geometry):
    ones, C = _canonical(geometry)
    n, K = X.shape[0], kernels.shape[0]
    X6 = np.ascontiguousarray(X).reshape(n, C, *ones, *geometry.sample_shape)
    A6 = _fresh(kernels).reshape(K, C, *ones, *geometry.kernel_size)
    Bt6 = _fresh(Bt).reshape(Bt.shape[0], K, *ones, *geometry.conv_shape)
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

#: Multiply-adds of the convolution products of one evaluation (all samples)
#: below which BLAS runs on one thread during training (see ``_blas_threads``).
BLAS_THREADS_MIN_MACS = 2**27


def uses_gemm(geometry: ConvPoolGeometry, n_kernels: int) -> bool:
    """Path rule: BLAS (im2col + GEMM) when each convolution output costs at least
    ``GEMM_MIN_MACS_PER_OUTPUT`` multiply-adds, the fused numba loops otherwise.

    Below that the matrices are too thin for BLAS and gathering patches costs more
    than it saves; above it the numba loops' short rows waste the vector units.
    """
    return geometry.n_kernel_entries * n_kernels >= GEMM_MIN_MACS_PER_OUTPUT


def network_forward(
    X: np.ndarray, kernels: np.ndarray, Bt: np.ndarray, intercept: np.ndarray,
    geometry: ConvPoolGeometry, code: int,
) -> np.ndarray:
    """Outputs ``<Bt[o], act(conv(X_i, kernels))> + intercept[o]``, ``(n, n_out)``.

    ``kernels`` ``(K, [C], l...)`` float64, ``Bt`` ``(n_out, K, m...)`` the FC
    weights of each output spread onto the convolution outputs (see
    :mod:`sktensorcnn.network`), ``intercept`` ``(n_out,)``, ``code`` the
    activation's (:func:`~sktensorcnn.activations.activation_code`).  ``X`` may
    be :func:`device_samples`; on the ``'cuda'`` device it is copied there.
    """
    return _staged(X, geometry).forward(kernels, Bt, intercept, code)


def _cpu_network_forward(X, kernels, Bt, intercept, geometry, code):
    X6, A6, Bt6, (pad, padded, stride, n_blocks) = _network_args(
        X, kernels, Bt, geometry
    )
    b = _fresh(intercept)
    if uses_gemm(geometry, kernels.shape[0]):
        return _cpu_gemm.network_forward(X6, A6, Bt6, b, code, pad, padded, stride)
    out = np.empty((X6.shape[0], Bt6.shape[0]))
    for rows, chunk in _sample_chunks(X6):
        out[rows] = _cpu_network.network_forward(chunk, A6.astype(chunk.dtype),
                                                 Bt6, b, code, pad,
                                                 padded, stride, n_blocks,
                                                 _batch(geometry))
    return out


def network_loss_grad(
    X: np.ndarray, y: np.ndarray, weights: np.ndarray, kernels: np.ndarray,
    Bt: np.ndarray, intercept: np.ndarray, geometry: ConvPoolGeometry, code: int,
    loss_code: int,
):
    """Weighted loss (``loss_code``: :func:`~sktensorcnn.losses.loss_code`),
    ``dkernels``, ``D`` (unpooled FC gradient, shape of ``Bt``) and ``db``.

    ``X`` may be :func:`device_samples` (its targets and weights, normalized over
    its rows, are then used: ``y`` and ``weights`` are ignored); on the ``'cuda'``
    device an array is copied there.
    """
    return _staged(X, geometry, y, weights).loss_grad(kernels, Bt, intercept, code,
                                                      loss_code)


def _cpu_network_loss_grad(X, y, weights, kernels, Bt, intercept, geometry, code,
                           loss_code):
    X6, A6, Bt6, (pad, padded, stride, n_blocks) = _network_args(
        X, kernels, Bt, geometry
    )
    y, weights, b = _fresh(y), _fresh(weights), _fresh(intercept)
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
            loss, dA, D, db = (total + p for total, p in zip((loss, dA, D, db), part))
    return loss, dA.reshape(kernels.shape), D.reshape(Bt.shape), db


def uses_factorized(geometry: ConvPoolGeometry, ranks, n_kernels: int,
                    kind: str = "tucker") -> bool:
    """Path rule for Tucker (``ranks`` a tuple) or CP (``kind='cp'``, ``ranks``
    the rank) kernels: convolve factor by factor when that takes at most half the
    multiply-adds of the dense convolution (the factorized steps run as several
    smaller array operations, so it must win clearly)."""
    dense = geometry.n_kernel_entries * n_kernels * int(np.prod(geometry.conv_shape))
    if kind == "cp":
        macs = _cpu_factorized.cp_factorized_macs(geometry, ranks, n_kernels)
    else:
        macs = _cpu_factorized.factorized_macs(geometry, ranks, n_kernels)
    return 2 * macs <= dense


def factorized_network_loss_grad(
    X: np.ndarray, y: np.ndarray, weights: np.ndarray, params: list[np.ndarray],
    Bt: np.ndarray, intercept: np.ndarray, geometry: ConvPoolGeometry, code: int,
    loss_code: int, kind: str = "tucker",
):
    """Loss of a network whose stacked kernels are given by Tucker
    (``[H_1..H_N, [H_C], H_K, G]``) or CP (``[U_1..U_N, [U_C], H]``, ``kind='cp'``)
    factors, by factorized convolution: the loss, the gradients of ``params``,
    ``D`` (unpooled FC gradient, shape of ``Bt``) and ``db``."""
    return _staged(X, geometry, y, weights).factorized_loss_grad(
        params, Bt, intercept, code, loss_code, kind)


def _cpu_factorized_loss_grad(X, y, weights, params, Bt, intercept, geometry, code,
                              loss_code, kind):
    C = geometry.n_channels or 1
    Xc = np.ascontiguousarray(X).reshape(X.shape[0], C, *geometry.sample_shape)
    return _cpu_factorized.network_loss_grad(
        Xc, _fresh(y), _fresh(weights), params, _fresh(Bt), _fresh(intercept), code,
        loss_code, geometry, kind,
    )


BACKENDS.update(
    cpu=Backend(stage=HostSamples, features=_cpu_conv_pool_features),
    cuda=Backend(stage=_cuda_samples, features=_cuda_features),
)
