"""The network with any activation: outputs, and any loss with its gradients.

Convolution -> activation -> average pooling -> fully-connected, computed by the
fused numba kernels (:mod:`sktensorcnn.kernels`).  Pooling and the FC layer are
linear, so the FC weights are spread once per call onto the convolution outputs
(``Bt = B x_j Pool_j^T``) and the FC gradient is pooled once per call.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from tensorly.tenalg import multi_mode_dot

from . import kernels
from .activations import ACTIVATIONS, activation_code
from .geometry import ConvPoolGeometry
from .losses import loss_code

__all__ = [
    "factorized_network_loss", "network_loss", "network_outputs",
    "pooled_activations",
]


def _spread(fc_weights: np.ndarray, geometry: ConvPoolGeometry) -> np.ndarray:
    """``(n_out, K, p...)`` FC weights -> ``(n_out, K, m...)`` weights on the
    convolution outputs."""
    modes = range(2, geometry.n_modes + 2)
    return multi_mode_dot(np.asarray(fc_weights, np.float64),
                          geometry.pooling_matrices(), modes=modes, transpose=True)


def _pool(D: np.ndarray, geometry: ConvPoolGeometry) -> np.ndarray:
    modes = range(2, geometry.n_modes + 2)
    return multi_mode_dot(D, geometry.pooling_matrices(), modes=modes)


def _one_blas_thread(function):
    """Run ``function`` with BLAS on one thread from start to end, the FC
    spread and pooling included: a multithreaded BLAS call between two kernel
    calls leaves OpenBLAS's threads spinning for a while, taking the cores from
    the next call's kernel threads (back-to-back calls ran 2x slower on 2
    cores).  The one place the CPU network kernels get their BLAS limit: they
    do not set it themselves."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with kernels.single_threaded_blas():
            return function(*args, **kwargs)
    return wrapper


@_one_blas_thread
def network_outputs(X, kernels_, fc_weights, intercept, geometry, activation):
    """Network outputs for validated samples ``X`` of shape ``(n, *input_shape)``.

    Parameters
    ----------
    X : ndarray of shape ``(n, *geometry.input_shape)``, float32 or float64
    kernels_ : ndarray of shape (K, [C], l_1, ..., l_N)
    fc_weights : ndarray of shape (n_out, K, p_1, ..., p_N)
        FC weights of each output (one for regression and binary classification,
        one per class otherwise).
    intercept : ndarray of shape (n_out,)
    geometry : ConvPoolGeometry
    activation : str

    Returns
    -------
    ndarray of shape (n, n_out)
    """
    return kernels.network_forward(
        X, np.asarray(kernels_, float), _spread(fc_weights, geometry),
        np.asarray(intercept, float).reshape(-1), geometry,
        activation_code(activation),
    )


@_one_blas_thread
def network_loss(X, y, weights, kernels_, fc_weights, intercept, geometry,
                 activation, loss="squared"):
    """Weighted loss ``sum_i w_i loss(f_i, y_i)`` and its gradients.

    ``y`` encoded as :mod:`sktensorcnn.losses` says; ``fc_weights`` and
    ``intercept`` as in :func:`network_outputs`.

    Returns
    -------
    loss : float
    grad_kernels : ndarray, shape of ``kernels_``
    grad_fc : ndarray, shape of ``fc_weights``
    grad_intercept : ndarray of shape (n_out,)
    """
    Bt = _spread(fc_weights, geometry)
    value, dA, D, db = kernels.network_loss_grad(
        X, y, weights, np.asarray(kernels_, float), Bt,
        np.asarray(intercept, float).reshape(-1), geometry,
        activation_code(activation), loss_code(loss),
    )
    return value, dA, _pool(D, geometry), db


@_one_blas_thread
def factorized_network_loss(X, y, weights, params, fc_weights, intercept, geometry,
                            activation, loss="squared", kind="tucker"):
    """As :func:`network_loss` for stacked kernels given by their Tucker factors
    and core (``TuckerWeight`` order) or CP factors (``kind='cp'``, ``CPWeight``
    order), convolving factor by factor; the kernel gradient is returned per
    factor.

    Returns
    -------
    loss : float
    grad_params : list of ndarray, shapes of ``params``
    grad_fc : ndarray, shape of ``fc_weights``
    grad_intercept : ndarray of shape (n_out,)
    """
    Bt = _spread(fc_weights, geometry)
    value, grads, D, db = kernels.factorized_network_loss_grad(
        X, y, weights, params, Bt, np.asarray(intercept, float).reshape(-1),
        geometry, activation_code(activation), loss_code(loss), kind,
    )
    return value, grads, _pool(D, geometry), db


def pooled_activations(X, kernels_, geometry, activation, *, pool: bool = True,
                       chunk_entries: int = 1 << 23):
    """Pooled activations ``H = avgpool(act(conv(X, A_k)))`` of every kernel.

    The network's outputs are ``H`` contracted with the FC weights, plus the
    intercept, so with the kernels held fixed the FC layer is a linear model on
    ``H``: the fits use this to start from the best FC layer for their starting
    kernels.  Plain numpy (sliding windows, one tensor product per chunk of
    samples), independent of the fused kernels.

    Parameters
    ----------
    X : ndarray of shape ``(n, *geometry.input_shape)``
    kernels_ : ndarray of shape (K, [C], l_1, ..., l_N)
    geometry : ConvPoolGeometry
    activation : str
    pool : bool, default=True
        ``False`` returns the activations before pooling, ``(n, K, m_1, ...,
        m_N)``.
    chunk_entries : int, default=2**23
        Entries of the sliding-window copy made per chunk of samples (bounds the
        memory this takes).

    Returns
    -------
    ndarray of shape (n, K, p_1, ..., p_N), float64
    """
    N = geometry.n_modes
    act = ACTIVATIONS[activation][0]
    A = np.asarray(kernels_, np.float64)
    if geometry.n_channels is None:
        X, A = X[:, None], A[:, None]
    pads = [(0, 0), (0, 0), *geometry.padding]
    spatial = tuple(range(2, N + 2))
    steps = (slice(None), slice(None),
             *(slice(None, None, s) for s in geometry.stride))
    per_sample = A[0].size * int(np.prod(geometry.conv_shape))
    chunk = max(1, chunk_entries // max(per_sample, 1))
    cells = geometry.pooled_shape if pool else geometry.conv_shape
    out = np.empty((X.shape[0], A.shape[0], *cells))
    pooling = geometry.pooling_matrices()
    for start in range(0, X.shape[0], chunk):
        Xp = np.pad(np.asarray(X[start:start + chunk], np.float64), pads)
        windows = sliding_window_view(Xp, geometry.kernel_size, axis=spatial)
        windows = windows[steps]  # (n, C, m..., l...)
        conv = np.tensordot(windows, A, axes=((1, *range(N + 2, 2 * N + 2)),
                                             (1, *range(2, N + 2))))
        conv = np.moveaxis(conv, -1, 1)  # (n, K, m...)
        out[start:start + chunk] = (multi_mode_dot(act(conv), pooling,
                                                   modes=range(2, N + 2))
                                    if pool else act(conv))
    return out
