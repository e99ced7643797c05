"""The network with any activation: outputs, and any loss with its gradients.

Convolution -> activation -> average pooling -> fully-connected, computed by the
fused numba kernels (:mod:`sktensorcnn.kernels`).  Pooling and the FC layer are
linear, so the FC weights are spread once per call onto the convolution outputs
(``Bt = B x_j Pool_j^T``) and the FC gradient is pooled once per call.
"""

from __future__ import annotations

import numpy as np
from tensorly.tenalg import multi_mode_dot

from . import kernels
from .activations import activation_code
from .geometry import ConvPoolGeometry
from .losses import loss_code

__all__ = ["factorized_network_loss", "network_loss", "network_outputs"]


def _spread(fc_weights: np.ndarray, geometry: ConvPoolGeometry) -> np.ndarray:
    """``(n_out, K, p...)`` FC weights -> ``(n_out, K, m...)`` weights on the
    convolution outputs."""
    modes = range(2, geometry.n_modes + 2)
    return multi_mode_dot(np.asarray(fc_weights, np.float64),
                          geometry.pooling_matrices(), modes=modes, transpose=True)


def _pool(D: np.ndarray, geometry: ConvPoolGeometry) -> np.ndarray:
    modes = range(2, geometry.n_modes + 2)
    return multi_mode_dot(D, geometry.pooling_matrices(), modes=modes)


def network_outputs(X, kernels_, fc_weights, intercept, geometry, activation):
    """Network outputs for validated samples ``X`` of shape ``(n, *input_shape)``.

    Parameters
    ----------
    X : ndarray of shape (n, *geometry.input_shape), float32 or float64
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
