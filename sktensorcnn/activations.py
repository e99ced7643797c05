"""Activations between convolution and pooling.

Each has a code used by the numba kernels (:func:`activation_code`) and a numpy
reference (:data:`ACTIVATIONS`) used by tests and by anyone who wants to check the
kernels.  ``'identity'`` is the theory's activation, with which the network is
linear and is fitted on the conv-pool features; the smooth ones (tanh, sigmoid,
softplus, squared ReLU) are those of [Compact nets]'s Assumption 1.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ACTIVATIONS", "activation_code"]


def _sigmoid(y):
    return 0.5 * (1.0 + np.tanh(0.5 * y))


#: name -> (value, derivative), numpy reference implementations.
ACTIVATIONS = {
    "identity": (lambda y: y, lambda y: np.ones_like(y)),
    "relu": (lambda y: np.maximum(y, 0.0), lambda y: (y > 0).astype(y.dtype)),
    "tanh": (np.tanh, lambda y: 1.0 - np.tanh(y) ** 2),
    "sigmoid": (_sigmoid, lambda y: _sigmoid(y) * (1.0 - _sigmoid(y))),
    "softplus": (lambda y: np.logaddexp(0.0, y), _sigmoid),
    "squared_relu": (lambda y: np.maximum(y, 0.0) ** 2,
                     lambda y: 2.0 * np.maximum(y, 0.0)),
}

_CODES = {name: code for code, name in enumerate(ACTIVATIONS)}


def activation_code(name: str) -> int:
    """The integer the numba kernels use for activation ``name``."""
    try:
        return _CODES[name]
    except KeyError:
        raise ValueError(
            f"activation={name!r} is unknown; use one of {sorted(_CODES)}."
        ) from None
