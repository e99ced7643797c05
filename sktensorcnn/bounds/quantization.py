"""Rounding a fitted network's parameters onto a fixed grid.

A network whose ``q`` parameters each take one of ``r`` values is one of
``r^q`` networks, fixed before the data are seen; a union bound over them
turns its training error into a bound on its test error ([Compression
bounds], Theorem 2.1).  The grid of each parameter array is uniform on
``[-2^e, 2^e]`` with ``2^n_bits - 1`` levels; the exponent ``e`` (the smallest
power of two that covers the array) is chosen from the data, among
:data:`EXPONENTS`, and the bound pays ``log(len(EXPONENTS))`` per array for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["EXPONENTS", "Quantized", "quantize"]

#: The exponents a grid's range ``2^e`` may take.
EXPONENTS = np.arange(-64, 64)


def _round_to_grid(values: np.ndarray, n_bits: int) -> tuple[np.ndarray, int]:
    values = np.asarray(values, np.float64)
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    exponent = int(np.clip(np.ceil(np.log2(peak)) if peak > 0 else 0,
                           EXPONENTS[0], EXPONENTS[-1]))
    scale = 2.0 ** exponent
    levels = 2 ** (n_bits - 1) - 1
    rounded = np.clip(np.round(values / scale * levels), -levels, levels)
    return rounded * (scale / levels), exponent


@dataclass(frozen=True)
class Quantized:
    """A network with every parameter on its array's grid.

    Attributes
    ----------
    estimator : estimator
        The quantized network (same family; compacted first when the
        activation is the identity, so that ``q`` is the model complexity
        ``d_M`` plus the intercepts).
    n_params : int
        ``q``: the parameters that were rounded.
    n_arrays : int
        Parameter arrays, each with its own grid exponent.
    n_bits : int
        ``log2 r``.
    exponents : tuple of int
    """

    estimator: object
    n_params: int
    n_arrays: int
    n_bits: int
    exponents: tuple


def quantize(estimator, *, n_bits: int = 8) -> Quantized:
    """Round every parameter of a fitted network onto a fixed grid.

    With the identity activation a Tucker or CP estimator is first replaced by
    its :meth:`compact` equivalent (its ``R`` core kernels, the same network),
    whose output factor is the identity and is not a parameter; the rounded
    parameters are then those of the model complexity ``d_M`` ([Compressed
    CNNs], Theorems 1-2) and the intercepts.

    Parameters
    ----------
    estimator : fitted sktensorcnn estimator
    n_bits : int, default=8
        Bits per parameter, ``2 <= n_bits <= 32``.

    Returns
    -------
    Quantized
    """
    check_is_fitted(estimator)
    if not (isinstance(n_bits, (int, np.integer)) and 2 <= n_bits <= 32):
        raise ValueError(f"n_bits={n_bits!r} must be an integer in [2, 32].")
    compacted = (estimator.activation == "identity"
                 and estimator._output_factor is not None)
    if compacted:
        estimator = estimator.compact()
    kernel_params, fc, intercept = estimator._kernel_params_and_head()
    rounded, exponents, n_params = [], [], 0
    for values in kernel_params:
        values = np.asarray(values, np.float64)
        if compacted and values.ndim == 2 and np.array_equal(values,
                                                             np.eye(len(values))):
            rounded.append(values)  # the identity output factor of a compact model
            continue
        grid_values, exponent = _round_to_grid(values, n_bits)
        rounded.append(grid_values)
        exponents.append(exponent)
        n_params += np.size(values)
    fc_q, exponent = _round_to_grid(fc, n_bits)
    exponents.append(exponent)
    n_params += np.size(fc)
    if estimator.fit_intercept:
        intercept_q, exponent = _round_to_grid(intercept, n_bits)
        exponents.append(exponent)
        n_params += np.size(intercept)
    else:
        intercept_q = np.zeros_like(np.asarray(intercept, np.float64))
    structure = {"tucker": {"ranks": tuple(np.shape(kernel_params[-1]))},
                 "cp": {"rank": np.shape(kernel_params[0])[1]}}.get(
        estimator._structure_constraint, {})
    quantized = estimator._with_network(rounded, fc_q, intercept_q, **structure)
    return Quantized(quantized, int(n_params), len(exponents), int(n_bits),
                     tuple(exponents))
