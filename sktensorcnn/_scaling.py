"""How the network fits see the data: inputs and targets on a unit scale.

The gradient-trained fits (L-BFGS, momentum GD and Adam on the network) work on
``X / s_x`` (``s_x`` the root mean square of the training samples' entries) and,
for regressors, on standardized targets ``(y - m_y) / s_y``, so that ``alpha``,
the learning rates, the tolerances and the starting scale mean the same thing
whatever units a user's data come in.  The network is then mapped back exactly:
convolution is linear in ``X``, so kernels ``A / s_x`` on ``X`` give the same
pre-activations as ``A`` on ``X / s_x``, whatever the activation, and the FC
layer and intercept are linear in the output, so ``s_y B`` and ``s_y b + m_y``
give predictions in the user's units.  Fitted attributes are always in the
user's units; only ``loss_curve_`` (and ``best_loss_``) stay on the scaled
problem, where predicting the mean costs ``0.5``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._dask import is_dask_array, sample_sums

__all__ = ["DataScaling", "input_shift_and_scale", "target_offset_and_scale"]


@dataclass(frozen=True)
class DataScaling:
    """Scalar input scale and target offset / scale of a network fit.

    Attributes
    ----------
    x_scale : float
        Root mean square of the training inputs' entries.
    y_offset, y_scale : float or ndarray of shape (n_targets,)
        Weighted mean (zero without an intercept) and root mean square deviation
        of the targets, per target for several; ``0`` and ``1`` for classifiers.
    """

    x_scale: float = 1.0
    y_offset: float | np.ndarray = 0.0
    y_scale: float | np.ndarray = 1.0

    @classmethod
    def from_data(cls, X, y, sample_weight, *, scale_targets: bool,
                  fit_intercept: bool, robust: bool = False) -> DataScaling:
        """Scales of the training data (``scale_targets`` for regressors;
        ``robust``: median and median absolute deviation of the targets, see
        :func:`target_offset_and_scale`), weighted so that integer weights act
        as repeated samples."""
        weights = sample_weight / sample_weight.sum()
        x_scale = _root_mean_square(X, weights)
        if not scale_targets:
            return cls(x_scale=x_scale)
        return cls(x_scale, *target_offset_and_scale(y, sample_weight, fit_intercept,
                                                     robust))

    def samples(self, X: np.ndarray) -> np.ndarray:
        """``X / s_x``, in ``X``'s floating dtype (a new array)."""
        return X * X.dtype.type(1.0 / self.x_scale)

    def targets(self, y: np.ndarray) -> np.ndarray:
        return (y - self.y_offset) / self.y_scale

    def to_user(self, params: list[np.ndarray]) -> list[np.ndarray]:
        """Network parameters ``[*kernel_params, fc, intercept]`` fitted on the
        scaled data -> the same network on the user's data.  The kernels are
        multilinear in their parameters, so the last kernel parameter carries
        the input scale."""
        *kernel_params, fc, intercept = params
        kernel_params[-1] = kernel_params[-1] / self.x_scale
        return [*kernel_params, fc * _per_output(self.y_scale, fc.ndim),
                intercept * self.y_scale + self.y_offset]

    def to_internal(self, params: list[np.ndarray]) -> list[np.ndarray]:
        """Inverse of :meth:`to_user` (a previous fit continued by
        ``warm_start`` or ``partial_fit``)."""
        *kernel_params, fc, intercept = [np.array(p, dtype=float) for p in params]
        kernel_params[-1] = kernel_params[-1] * self.x_scale
        return [*kernel_params, fc / _per_output(self.y_scale, fc.ndim),
                (intercept - self.y_offset) / self.y_scale]


def _per_output(value, ndim: int) -> np.ndarray:
    """A scalar or per-output ``value`` shaped to scale weights ``(n_out, ...)``
    of ``ndim`` axes output by output."""
    return np.reshape(value, (-1,) + (1,) * (ndim - 1))


def target_offset_and_scale(y: np.ndarray, sample_weight: np.ndarray,
                            center: bool, robust: bool = False) -> tuple:
    """Weighted mean of the targets (zero unless ``center``) and the root mean
    square of their deviations from it (``1`` for constant targets).

    ``robust``: the weighted median and ``1.4826`` times the weighted median
    absolute deviation instead (both unmoved by a minority of outlying targets;
    the factor makes the second a standard deviation under Gaussian noise).
    Targets ``(n, n_targets)`` get one of each per target (arrays).
    """
    if np.ndim(y) == 2:
        pairs = [target_offset_and_scale(column, sample_weight, center, robust)
                 for column in np.asarray(y).T]
        return (np.array([offset for offset, _ in pairs]),
                np.array([spread for _, spread in pairs]))
    weights = sample_weight / sample_weight.sum()
    if robust:
        offset = weighted_median(y, weights) if center else 0.0
        spread = 1.4826 * weighted_median(np.abs(y - offset), weights)
        if spread > 0:
            return offset, spread
    offset = float(weights @ y) if center else 0.0
    spread = float(np.sqrt(weights @ (y - offset) ** 2))
    return offset, spread if spread > 0 else 1.0


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def input_shift_and_scale(X: np.ndarray, sample_weight: np.ndarray,
                          center: bool) -> tuple[float, float]:
    """Weighted mean of the entries of ``X`` (zero unless ``center``) and the
    root mean square of their deviations from it.

    The linear fits of the classifiers run on ``(X - shift) / scale``: with the
    identity activation the network is linear, so a constant shift of every
    input entry moves each output by a constant that the intercept absorbs, and
    the fitted network maps back exactly (``coef / scale``, the intercept less
    the outputs of the constant input ``shift``).
    """
    weights = sample_weight / sample_weight.sum()
    shift = 0.0
    if center and is_dask_array(X):
        shift = float(weights @ sample_sums(X, 1)) / max(X[0].size, 1)
    elif center:
        for start in range(0, X.shape[0], 1024):
            block = np.asarray(X[start:start + 1024], dtype=np.float64)
            shift += float(weights[start:start + 1024]
                           @ block.reshape(block.shape[0], -1).mean(axis=1))
    mean_square = _root_mean_square(X, weights) ** 2 - shift**2
    scale = float(np.sqrt(max(mean_square, 0.0)))
    return shift, scale if scale > 0 and np.isfinite(scale) else 1.0


def _root_mean_square(X: np.ndarray, weights: np.ndarray,
                      chunk: int = 1024) -> float:
    """Weighted root mean square of the entries (``weights`` summing to one),
    accumulated in float64 by chunks of samples (no float64 copy of a float32
    ``X``; by blocks where they are for a Dask array)."""
    if is_dask_array(X):
        total = float(weights @ sample_sums(X, 2))
    else:
        total = 0.0
        for start in range(0, X.shape[0], chunk):
            block = np.asarray(X[start:start + chunk], dtype=np.float64)
            block = block.reshape(block.shape[0], -1)
            total += float(weights[start:start + chunk]
                           @ np.einsum("ij,ij->i", block, block))
    rms = float(np.sqrt(total / max(X[0].size, 1)))
    return rms if rms > 0 and np.isfinite(rms) else 1.0


def _peak(values) -> float:
    """Largest magnitude of an array (NumPy or Dask), ``0`` when empty."""
    return float(np.max(np.abs(values))) if values.size else 0.0


def _power_of_two_exponent(values: np.ndarray, dtype) -> int:
    """``0``, or the exponent ``k`` of the power of two nearest ``max |values|``
    when that is so large that squares and sums of squares overflow ``dtype`` or
    so small that they underflow (beyond ``max ** 1/4`` or ``tiny ** 1/4``)."""
    finfo = np.finfo(dtype)
    peak = _peak(values)
    if peak == 0.0 or finfo.tiny ** 0.25 <= peak <= finfo.max ** 0.25:
        return 0
    return int(np.round(np.log2(peak)))


@dataclass(frozen=True)
class MagnitudeScaling:
    """Exact scaling of inputs and targets of extreme magnitude.

    Data beyond about ``1e77`` or below ``1e-77`` (float64; ``1e9`` and
    ``3e-10`` for float32 inputs) overflow or underflow the sums of squares
    every fit computes.  Such data are multiplied by ``2^-k``, ``2^k`` a power
    of two near their largest magnitude (exact), and the fitted network is
    mapped back: kernels times ``2^-k_x``, and for the regression losses whose
    output is the target (a log for the Poisson loss) FC weights and
    intercepts times ``2^k_y`` (the intercept plus ``k_y log 2``).  Data of
    ordinary magnitude are left as they are (both exponents 0).  Inputs whose
    largest magnitude is subnormal are refused: the kernels of any model on
    them would exceed float64's range.
    """

    x_exponent: int = 0
    y_exponent: int = 0
    log_link: bool = False

    @classmethod
    def of(cls, X, y, *, scale_targets: bool, log_link: bool) -> MagnitudeScaling:
        peak = _peak(X)
        if 0.0 < peak < np.finfo(X.dtype).tiny:
            raise ValueError(
                f"X's largest magnitude is {peak:.3g}, below the smallest normal "
                f"{X.dtype} number: weights for such inputs would exceed the "
                "floating-point range.  Scale X (say, multiply it by 1e300) or "
                "pass float64 data.")
        x_exponent = _power_of_two_exponent(np.array([peak]), X.dtype)
        y_exponent = (_power_of_two_exponent(y, np.float64)
                      if scale_targets or log_link else 0)
        return cls(x_exponent, y_exponent, log_link)

    @property
    def identity(self) -> bool:
        return self.x_exponent == 0 and self.y_exponent == 0

    def samples(self, X: np.ndarray) -> np.ndarray:
        if self.x_exponent == 0:
            return X
        if is_dask_array(X):  # exact: a power of two, in X's dtype
            return X * X.dtype.type(2.0 ** -self.x_exponent)
        return np.ldexp(X, -self.x_exponent).astype(X.dtype, copy=False)

    def targets(self, y: np.ndarray) -> np.ndarray:
        return y if self.y_exponent == 0 else np.ldexp(y, -self.y_exponent)

    def _fc(self, fc):
        """Weights on the output: times ``2^k_y`` (none under a log link)."""
        return fc if self.log_link else np.ldexp(fc, self.y_exponent)

    def _intercept(self, intercept):
        intercept = np.asarray(intercept, float)
        if self.log_link:
            return intercept + self.y_exponent * np.log(2.0)
        return np.ldexp(intercept, self.y_exponent)

    def to_user(self, fitted):
        """A :class:`~sktensorcnn._problem.Fitted` on the scaled data -> the same
        model on the user's data (the loss curve stays on the scaled data)."""
        if self.identity:
            return fitted
        if fitted.linear is not None:
            params, intercept, parametrization = fitted.linear
            params = list(params)
            # W is multilinear in its factors: the last one carries both scales
            params[-1] = self._fc(np.ldexp(params[-1], -self.x_exponent))
            fitted.linear = (params, self._intercept(intercept), parametrization)
        else:
            (*kernel_params, fc, intercept), kernel_param = fitted.network
            kernel_params[-1] = np.ldexp(kernel_params[-1], -self.x_exponent)
            fitted.network = ([*kernel_params, self._fc(fc),
                               self._intercept(intercept)], kernel_param)
            fitted.scaling = None  # a warm start rescales from the data
        return fitted
