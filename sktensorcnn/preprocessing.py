"""Preprocessing that keeps (or knowingly drops) the tensor shape of the samples.

scikit-learn's transformers want 2-d ``X``.  Here:

* :class:`TensorStandardScaler` standardizes N-d samples and returns them in their
  shape, globally (one mean and scale, or one per channel) or per position;
* :class:`ConvPoolFeatures` outputs the flattened conv-pool features ``Z`` of a
  layer, so that any scikit-learn linear model can follow it (with the identity
  activation the CNN is a linear model on ``Z``);
* :func:`flatten_samples` / :func:`unflatten_samples` go between the two worlds;
  the estimators also take flattened ``X`` when given ``sample_shape``.
"""

from __future__ import annotations

import functools
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils._param_validation import Options
from sklearn.utils.validation import (
    _check_feature_names,
    _check_sample_weight,
    check_array,
    check_is_fitted,
)

from ._dask import is_dask_array, map_samples, validate_samples
from .features import conv_pool_features
from .geometry import LAYER_PARAMETER_CONSTRAINTS, ConvPoolGeometry

__all__ = [
    "ConvPoolFeatures", "TensorStandardScaler", "flatten_samples",
    "unflatten_samples",
]


def flatten_samples(X) -> np.ndarray:
    """Flatten the samples of ``X``, keeping the sample axis.

    ``(n, d_1, ..., d_N)`` -> ``(n, d_1 * ... * d_N)`` (a view when possible).

    See Also
    --------
    unflatten_samples : the inverse, given the sample shape.
    """
    X = np.asarray(X)
    if X.ndim < 2:
        raise ValueError(f"X must have shape (n_samples, ...); got {X.ndim}-d input.")
    return X.reshape(X.shape[0], -1)


def unflatten_samples(X, sample_shape) -> np.ndarray:
    """Give flattened samples their shape back.

    ``(n, prod(sample_shape))`` -> ``(n, *sample_shape)``.
    """
    X = np.asarray(X)
    shape = tuple(int(s) for s in np.atleast_1d(sample_shape))
    if X.ndim != 2 or X.shape[1] != int(np.prod(shape)):
        raise ValueError(
            f"sample_shape={shape} needs X of shape (n_samples, {int(np.prod(shape))});"
            f" got shape {X.shape}."
        )
    return X.reshape(X.shape[0], *shape)


class _TensorInput:
    """Validation of N-d samples, with an optional channel axis."""

    def _validate_tensor(self, X, *, reset: bool) -> np.ndarray:
        _check_feature_names(self, X, reset=reset)
        X = validate_samples(X) if is_dask_array(X) else check_array(
            X, allow_nd=True, dtype=[np.float64, np.float32], input_name="X")
        if X.ndim < 2:
            raise ValueError(
                f"X must have shape (n_samples, d_1, ..., d_N); got {X.ndim}-d input."
            )
        if reset:
            self.input_shape_ = X.shape[1:]
            self.n_features_in_ = int(np.prod(X.shape[1:]))
        elif X.shape[1:] != self.input_shape_:
            n_features = int(np.prod(X.shape[1:]))
            raise ValueError(
                f"X has {n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input (samples of shape "
                f"{self.input_shape_}, got {X.shape[1:]})."
            )
        return X

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


class TensorStandardScaler(OneToOneFeatureMixin, TransformerMixin, _TensorInput,
                           BaseEstimator):
    """Standardize N-d samples, keeping their shape.

    Parameters
    ----------
    per_position : bool, default=False
        ``False``: one mean and one scale over all samples and positions (per
        channel when ``channel_axis`` is set) -- what images and volumes usually
        want, since it keeps the relative intensities the convolution sees.
        ``True``: a mean and a scale per position, as ``StandardScaler`` on the
        flattened samples.
    channel_axis : {1, -1} or None, default=None
        With ``per_position=False``, standardize each channel separately.
    with_mean : bool, default=True
    with_std : bool, default=True

    Attributes
    ----------
    mean_ : ndarray
        Broadcastable against one sample: shape ``()``, per channel, or the
        sample's shape.
    scale_ : ndarray
        Same shape as ``mean_``; constant parts get scale 1.
    input_shape_ : tuple of int
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sktensorcnn.preprocessing import TensorStandardScaler
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(5.0, 2.0, size=(100, 6, 6, 3))  # 3 channels last
    >>> scaler = TensorStandardScaler(channel_axis=-1).fit(X)
    >>> scaler.mean_.shape  # one mean per channel, broadcast over a sample
    (1, 1, 3)
    >>> Xt = scaler.transform(X)
    >>> Xt.shape, bool(np.allclose(Xt.mean(axis=(0, 1, 2)), 0.0))
    ((100, 6, 6, 3), True)
    """

    _parameter_constraints: dict = {
        "per_position": ["boolean"],
        "channel_axis": [Options(Integral, {1, -1}), None],
        "with_mean": ["boolean"],
        "with_std": ["boolean"],
    }

    def __init__(self, *, per_position=False, channel_axis=None, with_mean=True,
                 with_std=True):
        self.per_position = per_position
        self.channel_axis = channel_axis
        self.with_mean = with_mean
        self.with_std = with_std

    def _reduced_axes(self, ndim):
        """Axes of ``X`` the statistics are taken over."""
        if self.per_position:
            return (0,)
        if self.channel_axis is None:
            return tuple(range(ndim))
        if ndim < 3:
            raise ValueError(
                f"channel_axis={self.channel_axis} needs X of shape (n_samples, C, "
                f"d_1, ...) or (n_samples, d_1, ..., C); got {ndim}-d X."
            )
        channel = self.channel_axis % ndim
        return tuple(a for a in range(ndim) if a != channel)

    def fit(self, X, y=None, sample_weight=None):
        """Compute the means and scales.

        Parameters
        ----------
        X : array-like of shape (n_samples, d_1, ..., d_N)
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        self._validate_params()
        X = self._validate_tensor(X, reset=True)
        w = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                 ensure_non_negative=True)
        axes = self._reduced_axes(X.ndim)
        wx = w.reshape(-1, *([1] * (X.ndim - 1)))
        total = np.broadcast_to(wx, X.shape).sum(axis=axes, keepdims=True)
        # a Dask array: two reductions over its blocks, means first
        mean = np.asarray((wx * X).sum(axis=axes, keepdims=True) / total)
        var = np.asarray((wx * (X - mean) ** 2).sum(axis=axes, keepdims=True) / total)
        scale = np.sqrt(var)
        # constant features keep their scale (as StandardScaler): no division by 0
        scale[scale < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1)] = 1
        self.mean_ = mean[0] if self.with_mean else np.zeros_like(mean[0])
        self.scale_ = scale[0] if self.with_std else np.ones_like(scale[0])
        return self

    def transform(self, X, copy=None):
        """Standardize ``X``; same shape and dtype.

        Parameters
        ----------
        X : array-like of shape ``(n_samples, *input_shape_)``
        copy : None
            Ignored (a new array is always returned).

        Returns
        -------
        X_scaled : ndarray of shape ``(n_samples, *input_shape_)``
        """
        check_is_fitted(self)
        X = self._validate_tensor(X, reset=False)
        return ((X - self.mean_) / self.scale_).astype(X.dtype, copy=False)

    def inverse_transform(self, X, copy=None):
        """Undo :meth:`transform`.

        Parameters
        ----------
        X : array-like of shape ``(n_samples, *input_shape_)``
        copy : None
            Ignored.

        Returns
        -------
        X_original : ndarray of shape ``(n_samples, *input_shape_)``
        """
        check_is_fitted(self)
        X = self._validate_tensor(X, reset=False)
        return (X * self.scale_ + self.mean_).astype(X.dtype, copy=False)


class ConvPoolFeatures(TransformerMixin, _TensorInput, BaseEstimator):
    """The flattened conv-pool features ``Z`` of a convolution -> average pooling
    layer, for any scikit-learn estimator to use.

    ``Z_i[a, r]`` is the mean over pooling cell ``r`` of the input seen at kernel
    offset ``a`` (see :func:`sktensorcnn.conv_pool_features`): a linear model on
    ``Z`` is a linear CNN with any number of kernels, so
    ``make_pipeline(ConvPoolFeatures(...), RidgeCV())`` is the unconstrained
    linear CNN.  The layer parameters are the estimators'.

    Parameters
    ----------
    kernel_size, stride, padding, pool_size, pool_stride, channel_axis
        As for :class:`sktensorcnn.CNNRegressor`.

    Attributes
    ----------
    geometry_ : ConvPoolGeometry
    input_shape_ : tuple of int
    n_features_in_ : int

    Examples
    --------
    The unconstrained linear CNN, cross-validated ridge on the features:

    >>> from sklearn.linear_model import RidgeCV
    >>> from sklearn.pipeline import make_pipeline
    >>> from sktensorcnn.datasets import make_cnn_regression
    >>> from sktensorcnn.preprocessing import ConvPoolFeatures
    >>> X, y, _ = make_cnn_regression("S1", n_samples=300, noise=0.1,
    ...                               random_state=0)
    >>> features = ConvPoolFeatures(kernel_size=2, pool_size=(3, 2, 3))
    >>> features.fit_transform(X).shape  # L = 8 kernel entries x P = 8 cells
    (300, 64)
    >>> model = make_pipeline(features, RidgeCV()).fit(X[:200], y[:200])
    >>> model.score(X[200:], y[200:]) > 0.95
    True
    """

    _parameter_constraints: dict = dict(LAYER_PARAMETER_CONSTRAINTS)

    def __init__(self, *, kernel_size=3, stride=1, padding="valid", pool_size=2,
                 pool_stride=None, channel_axis=None):
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.pool_size = pool_size
        self.pool_stride = pool_stride
        self.channel_axis = channel_axis

    def _channels_first(self, X):
        if self.channel_axis is None:
            return X
        if X.ndim < 3:
            raise ValueError(
                f"channel_axis={self.channel_axis} needs X of shape (n_samples, C, "
                f"d_1, ...) or (n_samples, d_1, ..., C); got shape {X.shape}."
            )
        X = np.moveaxis(X, self.channel_axis, 1)
        return X.rechunk({0: X.chunks[0]}) if is_dask_array(X) else \
            np.ascontiguousarray(X)

    def fit(self, X, y=None):
        """Validate the layer against the sample shape.

        Parameters
        ----------
        X : array-like of shape (n_samples, d_1, ..., d_N)
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        self._validate_params()
        X = self._channels_first(self._validate_tensor(X, reset=True))
        shape = X.shape[1:]
        has_channels = self.channel_axis is not None
        self.geometry_ = ConvPoolGeometry.from_params(
            shape[1:] if has_channels else shape,
            n_channels=shape[0] if has_channels else None,
            kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
            pool_size=self.pool_size, pool_stride=self.pool_stride,
        )
        return self

    def transform(self, X):
        """``Z`` of each sample, flattened.

        Parameters
        ----------
        X : array-like of shape ``(n_samples, *input_shape_)``

        Returns
        -------
        Z : ndarray of shape ``(n_samples, L * P)``
            In ``X``'s precision, in the order of ``geometry_.feature_shape``.
        """
        check_is_fitted(self)
        X = self._channels_first(self._validate_tensor(X, reset=False))
        if is_dask_array(X):  # lazily, block by block
            return map_samples(X, functools.partial(
                _flat_features, geometry=self.geometry_), self.geometry_.n_features,
                dtype=X.dtype)
        return _flat_features(np.ascontiguousarray(X), self.geometry_)

    def get_feature_names_out(self, input_features=None):
        """``z<offset>_<cell>`` names: kernel offset (and channel), then pooled
        cell, as multi-indices.

        Returns
        -------
        feature_names_out : ndarray of str
        """
        check_is_fitted(self)
        g = self.geometry_
        n_kernel = len(g.kernel_modes)
        names = [
            "z" + "-".join(map(str, index[:n_kernel])) + "_"
            + "-".join(map(str, index[n_kernel:]))
            for index in np.ndindex(*g.feature_shape)
        ]
        return np.asarray(names, dtype=object)


def _flat_features(X, geometry) -> np.ndarray:
    return conv_pool_features(X, geometry).reshape(X.shape[0], -1)
