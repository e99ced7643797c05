"""Losses of the network's outputs, each written once, here.

A loss is a :class:`Loss`: its per-sample form ``sample(f, target, grad) ->
loss`` over one sample's outputs ``f`` (writing ``dloss/df`` into ``grad``),
written with :mod:`math` and loops so that both the numba CPU kernels and the
CUDA kernels compile it (:func:`sktensorcnn.kernels._pointwise.compile_losses`),
and a numpy reference over a batch that the linear fits use and the tests
check the kernels against.  The kernels know a loss by its position in
:data:`REGISTRY` (:func:`loss_code`); adding one is appending an entry here.

Targets are float64 rows, one per sample: for the regression losses one
target per output (the loss is the sum over outputs: several outputs share the
kernels, as for scikit-learn's ``MLPRegressor``), for classification ones the
class index (``target[0]``).

* ``'squared'``: ``1/2 (f - y)^2``;
* ``'logistic'``: one output, ``y`` in {0, 1}, ``log(1 + e^f) - y f`` ([Compressed
  CNNs], eq. 24);
* ``'multinomial'``: one output per class, ``y`` the class index,
  ``logsumexp(f) - f_y`` (softmax cross-entropy);
* ``'ovr'``: one output per class, ``y`` the class index, the sum of the
  logistic losses of ``f_m`` for the targets ``[y == m]`` ([Compressed CNNs], App. A.4);
* ``'huber'``: ``1/2 r^2`` for ``|r| <= delta`` and ``delta (|r| -
  delta / 2)`` beyond, ``r = f - y``, ``delta =`` :data:`HUBER_DELTA` in the
  units the fits see the targets in (standardized: standard deviations of the
  training targets);
* ``'poisson'``: the output is the log of the mean, ``e^f - y f`` (the Poisson
  negative log-likelihood up to a term in ``y`` alone), ``y >= 0``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, log_softmax, softmax

__all__ = ["Loss", "REGISTRY", "BY_NAME", "LOSSES", "loss_code", "loss_and_gradient",
           "target_rows"]

#: Where the Huber loss turns from quadratic to linear (as scikit-learn's
#: ``HuberRegressor``'s ``epsilon``: 95% efficiency under Gaussian noise).
HUBER_DELTA = 1.35


def _softplus(z):
    """``log(1 + e^z)`` without overflow."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def _expit(z):
    return 0.5 * (1.0 + math.tanh(0.5 * z))


def _squared_sample(f, target, grad):
    total = 0.0
    for o in range(f.shape[0]):
        r = f[o] - target[o]
        grad[o] = r
        total += 0.5 * r * r
    return total


def _logistic_sample(f, target, grad):
    y = target[0]
    grad[0] = _expit(f[0]) - y
    return _softplus(f[0]) - y * f[0]


def _multinomial_sample(f, target, grad):
    label = int(target[0])
    top = f[0]
    for o in range(1, f.shape[0]):
        top = max(top, f[o])
    total = 0.0
    for o in range(f.shape[0]):
        grad[o] = math.exp(f[o] - top)
        total += grad[o]
    for o in range(f.shape[0]):
        grad[o] /= total
    grad[label] -= 1.0
    return top + math.log(total) - f[label]


def _ovr_sample(f, target, grad):
    label = int(target[0])
    total = 0.0
    for o in range(f.shape[0]):
        t = 1.0 if o == label else 0.0
        grad[o] = _expit(f[o]) - t
        total += _softplus(f[o]) - t * f[o]
    return total


def _huber_sample(f, target, grad):
    total = 0.0
    for o in range(f.shape[0]):
        r = f[o] - target[o]
        if abs(r) <= HUBER_DELTA:
            grad[o] = r
            total += 0.5 * r * r
        else:
            grad[o] = HUBER_DELTA if r > 0.0 else -HUBER_DELTA
            total += HUBER_DELTA * (abs(r) - 0.5 * HUBER_DELTA)
    return total


def _poisson_sample(f, target, grad):
    total = 0.0
    for o in range(f.shape[0]):
        mean = math.exp(f[o])
        grad[o] = mean - target[o]
        total += mean - target[o] * f[o]
    return total


def _onehot(Y: np.ndarray, n_out: int) -> np.ndarray:
    return np.arange(n_out) == Y[:, 0].astype(np.intp)[:, None]


def _squared(F, Y):
    residual = F - Y
    return 0.5 * (residual**2).sum(axis=1), residual


def _logistic(F, Y):
    f, y = F[:, 0], Y[:, 0]
    return np.logaddexp(0.0, f) - y * f, (expit(f) - y)[:, None]


def _multinomial(F, Y):
    onehot = _onehot(Y, F.shape[1])
    return -log_softmax(F, axis=1)[onehot], softmax(F, axis=1) - onehot


def _ovr(F, Y):
    onehot = _onehot(Y, F.shape[1])
    return (np.logaddexp(0.0, F) - onehot * F).sum(axis=1), expit(F) - onehot


def _huber(F, Y):
    r = F - Y
    inside = np.abs(r) <= HUBER_DELTA
    values = np.where(inside, 0.5 * r**2, HUBER_DELTA * (np.abs(r) - 0.5 * HUBER_DELTA))
    return values.sum(axis=1), np.clip(r, -HUBER_DELTA, HUBER_DELTA)


def _poisson(F, Y):
    mean = np.exp(F)
    return (mean - Y * F).sum(axis=1), mean - Y


@dataclass(frozen=True)
class Loss:
    """One loss: the per-sample form the kernels compile and its numpy reference.

    Attributes
    ----------
    name : str
    sample : callable
        ``(f, target, grad) -> loss`` for one sample's outputs ``f``
        ``(n_out,)`` and target row, writing ``dloss/df`` into ``grad``;
        :mod:`math` functions and loops only (numba compiles it for the CPU and
        for CUDA).
    reference : callable
        ``(F, Y) -> (losses (n,), dloss/dF (n, n_out))``, numpy, ``Y`` the
        target rows ``(n, n_targets)``.
    regression : bool
        A regression loss (one output per target, in the user's units).
    link : {'identity', 'log'}
        What the output models: the target itself, or the log of its mean
        (the prediction is then ``exp(f)``).
    """

    name: str
    sample: Callable
    reference: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
    regression: bool
    link: str = "identity"


#: Every loss, in code order (append new ones: codes are positions).
REGISTRY: tuple[Loss, ...] = (
    Loss("squared", _squared_sample, _squared, regression=True),
    Loss("logistic", _logistic_sample, _logistic, regression=False),
    Loss("multinomial", _multinomial_sample, _multinomial, regression=False),
    Loss("ovr", _ovr_sample, _ovr, regression=False),
    Loss("huber", _huber_sample, _huber, regression=True),
    Loss("poisson", _poisson_sample, _poisson, regression=True, link="log"),
)

#: name -> :class:`Loss`.
BY_NAME = {loss.name: loss for loss in REGISTRY}

#: Loss names in code order.
LOSSES = tuple(BY_NAME)


def loss_code(name: str) -> int:
    """The integer the kernels use for loss ``name`` (its registry position)."""
    try:
        return LOSSES.index(name)
    except ValueError:
        raise ValueError(f"loss={name!r} is unknown; use one of {LOSSES}.") from None


def target_rows(y: np.ndarray) -> np.ndarray:
    """Encoded targets ``(n,)`` or ``(n, n_targets)`` as rows ``(n, n_targets)``,
    float64: what the losses read."""
    y = np.asarray(y, dtype=np.float64)
    return y.reshape(y.shape[0], -1)


def loss_and_gradient(name: str, F: np.ndarray, y: np.ndarray):
    """Per-sample losses ``(n,)`` and ``dloss/dF`` ``(n, n_out)`` (float64) for
    targets ``y`` ``(n,)`` or ``(n, n_targets)``."""
    return BY_NAME[LOSSES[loss_code(name)]].reference(
        np.asarray(F, dtype=np.float64), target_rows(y))
