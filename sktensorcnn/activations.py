"""Activations between convolution and pooling, each written once, here.

An activation is an :class:`Activation`: its scalar form ``y -> (value,
slope)``, written with :mod:`math` so that both the numba CPU kernels and the
CUDA kernels compile it (:func:`sktensorcnn.kernels._pointwise.compile_activations`),
and a numpy reference (``value``, ``slope``) that the tests check the kernels
against.  The kernels know an activation by its position in :data:`REGISTRY`,
given by :func:`activation_code`; adding one is appending an entry here.

``'identity'`` is the theory's activation, with which the network is linear and
is fitted on the conv-pool features; the smooth ones (tanh, sigmoid, softplus,
squared ReLU) are those of [Compact nets]'s Assumption 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Activation", "REGISTRY", "BY_NAME", "ACTIVATIONS", "activation_code"]

#: Slope of ``'leaky_relu'`` below zero (PyTorch's and Keras' default).
LEAKY_SLOPE = 0.01


@dataclass(frozen=True)
class Activation:
    """One activation: the scalar form the kernels compile and its numpy reference.

    Attributes
    ----------
    name : str
        The value of the estimators' ``activation`` parameter.
    scalar : callable
        ``y -> (act(y), act'(y))`` on one float, with :mod:`math` functions only
        (numba compiles it for the CPU and for CUDA).
    value, slope : callable
        numpy references of ``act`` and ``act'``, elementwise on arrays.
    gain : float, default=1.0
        Variance gain of random starts: kernels are drawn with variance
        ``gain / fan_in`` (2 for the ReLU family, as He et al. do).
    degree : int or None, default=None
        ``d`` when the activation is positively homogeneous, ``act(c z) = c^d
        act(z)`` for ``c > 0``: scale can then move between a kernel and its FC
        weights without changing the network (the fits use this to balance the
        ridge penalty).
    """

    name: str
    scalar: Callable[[float], tuple[float, float]]
    value: Callable[[np.ndarray], np.ndarray]
    slope: Callable[[np.ndarray], np.ndarray]
    gain: float = 1.0
    degree: int | None = None


def _sigmoid(y):
    return 0.5 * (1.0 + np.tanh(0.5 * y))


def _identity_scalar(y):
    return y, 1.0


def _relu_scalar(y):
    if y > 0.0:
        return y, 1.0
    return 0.0, 0.0


def _tanh_scalar(y):
    v = math.tanh(y)
    return v, 1.0 - v * v


def _sigmoid_scalar(y):
    v = 0.5 * (1.0 + math.tanh(0.5 * y))  # no overflow for large |y|
    return v, v * (1.0 - v)


def _softplus_scalar(y):
    s = 0.5 * (1.0 + math.tanh(0.5 * y))
    return max(y, 0.0) + math.log1p(math.exp(-abs(y))), s


def _squared_relu_scalar(y):
    if y > 0.0:
        return y * y, 2.0 * y
    return 0.0, 0.0


def _leaky_relu_scalar(y):
    if y > 0.0:
        return y, 1.0
    return LEAKY_SLOPE * y, LEAKY_SLOPE


#: Every activation, in code order (append new ones: codes are positions).
REGISTRY: tuple[Activation, ...] = (
    Activation("identity", _identity_scalar, lambda y: y, np.ones_like, degree=1),
    Activation("relu", _relu_scalar, lambda y: np.maximum(y, 0.0),
               lambda y: (y > 0).astype(y.dtype), gain=2.0, degree=1),
    Activation("tanh", _tanh_scalar, np.tanh, lambda y: 1.0 - np.tanh(y) ** 2),
    Activation("sigmoid", _sigmoid_scalar, _sigmoid,
               lambda y: _sigmoid(y) * (1.0 - _sigmoid(y))),
    Activation("softplus", _softplus_scalar, lambda y: np.logaddexp(0.0, y),
               _sigmoid),
    Activation("squared_relu", _squared_relu_scalar,
               lambda y: np.maximum(y, 0.0) ** 2, lambda y: 2.0 * np.maximum(y, 0.0),
               gain=2.0, degree=2),
    Activation("leaky_relu", _leaky_relu_scalar,
               lambda y: np.where(y > 0, y, LEAKY_SLOPE * y),
               lambda y: np.where(y > 0, 1.0, LEAKY_SLOPE).astype(y.dtype),
               gain=2.0 / (1.0 + LEAKY_SLOPE**2), degree=1),
)

#: name -> :class:`Activation`.
BY_NAME = {a.name: a for a in REGISTRY}

#: name -> (value, derivative): the numpy references, by name.
ACTIVATIONS = {a.name: (a.value, a.slope) for a in REGISTRY}

_CODES = {a.name: code for code, a in enumerate(REGISTRY)}


def activation_code(name: str) -> int:
    """The integer the kernels use for activation ``name`` (its registry position)."""
    try:
        return _CODES[name]
    except KeyError:
        raise ValueError(
            f"activation={name!r} is unknown; use one of {sorted(_CODES)}."
        ) from None
