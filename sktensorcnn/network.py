"""The network with any activation: outputs and squared-loss gradients.

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

__all__ = [
    "factorized_network_squared_loss", "network_predict", "network_squared_loss",
]


def _spread(fc_weights: np.ndarray, geometry: ConvPoolGeometry) -> np.ndarray:
    """``(K, p...)`` FC weights -> ``(K, m...)`` weights on convolution outputs."""
    modes = range(1, geometry.n_modes + 1)
    return multi_mode_dot(fc_weights, geometry.pooling_matrices(), modes=modes,
                          transpose=True)


def _pool(D: np.ndarray, geometry: ConvPoolGeometry) -> np.ndarray:
    modes = range(1, geometry.n_modes + 1)
    return multi_mode_dot(D, geometry.pooling_matrices(), modes=modes)


def network_predict(X, kernels_, fc_weights, intercept, geometry, activation):
    """Network outputs for validated samples ``X`` of shape ``(n, *input_shape)``.

    Parameters
    ----------
    X : ndarray of shape (n, *geometry.input_shape), float32 or float64
    kernels_ : ndarray of shape (K, [C], l_1, ..., l_N)
    fc_weights : ndarray of shape (K, p_1, ..., p_N)
    intercept : float
    geometry : ConvPoolGeometry
    activation : str

    Returns
    -------
    ndarray of shape (n,)
    """
    Bt = _spread(np.asarray(fc_weights, float), geometry)
    return kernels.network_forward(
        X, np.asarray(kernels_, float), Bt, float(intercept), geometry,
        activation_code(activation),
    )


def network_squared_loss(X, y, weights, kernels_, fc_weights, intercept, geometry,
                         activation):
    """Weighted squared loss and its gradients.

    Loss ``1/2 sum_i w_i (yhat_i - y_i)^2`` with ``w`` summing to 1.

    Returns
    -------
    loss : float
    grad_kernels : ndarray, shape of ``kernels_``
    grad_fc : ndarray, shape of ``fc_weights``
    grad_intercept : float
    """
    Bt = _spread(np.asarray(fc_weights, float), geometry)
    loss, dA, D, db = kernels.network_squared_loss_grad(
        X, y, weights, np.asarray(kernels_, float), Bt, float(intercept), geometry,
        activation_code(activation),
    )
    return loss, dA, _pool(D, geometry), db


def factorized_network_squared_loss(X, y, weights, params, fc_weights, intercept,
                                    geometry, activation, kind="tucker"):
    """As :func:`network_squared_loss` for stacked kernels given by their Tucker
    factors and core (``TuckerWeight`` order) or CP factors (``kind='cp'``,
    ``CPWeight`` order), convolving factor by factor; the kernel gradient is
    returned per factor.

    Returns
    -------
    loss : float
    grad_params : list of ndarray, shapes of ``params``
    grad_fc : ndarray, shape of ``fc_weights``
    grad_intercept : float
    """
    Bt = _spread(np.asarray(fc_weights, float), geometry)
    loss, grads, D, db = kernels.factorized_network_squared_loss_grad(
        X, y, weights, params, Bt, float(intercept), geometry, activation, kind
    )
    return loss, grads, _pool(D, geometry), db
