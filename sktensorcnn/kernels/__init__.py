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

from .._dask import DaskSamples, is_dask_array
from ..geometry import ConvPoolGeometry

# _cache first: it installs the cache locators before any kernel is declared
from . import _cache, _cpu_factorized, _host  # noqa: F401
from ._device import cuda_available, current_device, on_device, resolve_device
from ._host import HostSamples, uses_gemm
from ._threads import (
    limit_threads,
    resolve_n_jobs,
    single_threaded_blas,
)

__all__ = [
    "conv_pool_features", "network_forward", "network_loss_grad", "uses_gemm",
    "uses_factorized", "factorized_network_loss_grad", "single_threaded_blas",
    "limit_threads", "resolve_n_jobs", "stage_samples",
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
    normalized to sum to 1 unless ``normalize=False``).  Samples in a Dask
    array stay where their blocks are (:class:`~sktensorcnn._dask.DaskSamples`:
    each evaluation is a sum over the blocks, computed by the CPU kernels)."""
    if is_dask_array(X):
        return DaskSamples(X, geometry, y, sample_weight, normalize)
    return BACKENDS[current_device()].stage(X, geometry, y, sample_weight, normalize)


def _staged(X, geometry, y=None, weights=None):
    """``X`` itself when already staged, else staged on the current device with
    ``y`` and ``weights`` taken as they are."""
    if isinstance(X, np.ndarray) or is_dask_array(X):
        return stage_samples(X, geometry, y, weights, normalize=False)
    return X


def conv_pool_features(
    X: np.ndarray, geometry: ConvPoolGeometry, out: np.ndarray | None = None
) -> np.ndarray:
    """Conv-pool features of a validated batch (see :func:`sktensorcnn.features`).

    Parameters
    ----------
    X : ndarray of shape ``(n, *geometry.input_shape)``, float32 or float64
        C-contiguous.
    geometry : ConvPoolGeometry
    out : ndarray of shape ``(n, *geometry.feature_shape)``, optional
        Written in place when given (same dtype as ``X``, C-contiguous).

    Returns
    -------
    Z : ndarray of shape ``(n, *geometry.feature_shape)``, dtype of ``X``
    """
    return BACKENDS[current_device()].features(X, geometry, out)


def network_forward(
    X: np.ndarray, kernels: np.ndarray, Bt: np.ndarray, intercept: np.ndarray,
    geometry: ConvPoolGeometry, code: int,
) -> np.ndarray:
    """Outputs ``<Bt[o], act(conv(X_i, kernels))> + intercept[o]``, ``(n, n_out)``.

    ``kernels`` ``(K, [C], l...)`` float64, ``Bt`` ``(n_out, K, m...)`` the FC
    weights of each output spread onto the convolution outputs (see
    :mod:`sktensorcnn.network`), ``intercept`` ``(n_out,)``, ``code`` the
    activation's (:func:`~sktensorcnn.activations.activation_code`).  ``X`` may
    be staged samples (:func:`stage_samples`); on the ``'cuda'`` device an
    array is copied there.
    """
    return _staged(X, geometry).forward(kernels, Bt, intercept, code)


def network_loss_grad(
    X: np.ndarray, y: np.ndarray, weights: np.ndarray, kernels: np.ndarray,
    Bt: np.ndarray, intercept: np.ndarray, geometry: ConvPoolGeometry, code: int,
    loss_code: int,
):
    """Weighted loss (``loss_code``: :func:`~sktensorcnn.losses.loss_code`),
    ``dkernels``, ``D`` (unpooled FC gradient, shape of ``Bt``) and ``db``.

    ``X`` may be staged samples (:func:`stage_samples`: their targets and
    weights, normalized over their rows, are then used; ``y`` and ``weights``
    are ignored); on the ``'cuda'`` device an array is copied there.
    """
    return _staged(X, geometry, y, weights).loss_grad(kernels, Bt, intercept, code,
                                                      loss_code)


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


BACKENDS.update(
    cpu=Backend(stage=HostSamples, features=_host.conv_pool_features),
    cuda=Backend(stage=_cuda_samples, features=_cuda_features),
)
