"""Validation of the estimators' inputs: samples, targets, sample weights and
the convolution geometry they imply."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import (
    _check_feature_names,
    _check_sample_weight,
    check_array,
    column_or_1d,
)

from ._dask import is_dask_array, validate_samples
from .geometry import ConvPoolGeometry

__all__ = ["TensorInputMixin"]


class TensorInputMixin:
    """``X`` of shape ``(n_samples, d_1, ..., d_N)`` (a channel axis where
    ``channel_axis`` says; flattened samples with ``sample_shape``) and 1-d
    targets, or 2-d for several targets (``_multi_output``), which the task
    class encodes (``_encode_targets``)."""

    _multi_output = False

    def _validate_X(self, X, *, reset: bool) -> np.ndarray:
        """Check ``X``, unflatten it when ``sample_shape`` is given, and bring its
        channel axis, if any, to axis 1."""
        _check_feature_names(self, X, reset=reset)
        lazy = is_dask_array(X)  # checked and kept where its blocks are
        X = validate_samples(X) if lazy else check_array(
            X, allow_nd=True, dtype=[np.float64, np.float32], order="C",
            input_name="X",
        )
        if X.ndim < 2:
            raise ValueError(
                f"X must have shape (n_samples, d_1, ..., d_N); got {X.ndim}-d input."
            )
        if self.sample_shape is not None:
            X = self._unflatten(X)
        if not reset and X[0].size != self.n_features_in_:
            raise ValueError(
                f"X has {X[0].size} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input (samples of shape "
                f"{self.input_shape_})."
            )
        if self.channel_axis is not None:
            if X.ndim < 3:
                raise ValueError(
                    f"channel_axis={self.channel_axis} needs X of shape (n_samples, "
                    f"C, d_1, ...) or (n_samples, d_1, ..., C); got shape {X.shape}. "
                    "Use channel_axis=None for samples without channels."
                )
            X = np.moveaxis(X, self.channel_axis, 1)
            X = X.rechunk({0: X.chunks[0]}) if lazy else np.ascontiguousarray(X)
        if reset:
            self.input_shape_ = self._user_shape(X.shape[1:])
            self.n_features_in_ = int(np.prod(X.shape[1:]))
        elif self._user_shape(X.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"X has samples of shape {self._user_shape(X.shape[1:])}, but "
                f"{type(self).__name__} was fitted on samples of shape "
                f"{self.input_shape_}."
            )
        return X

    def _unflatten(self, X: np.ndarray) -> np.ndarray:
        """``(n, prod(sample_shape))`` -> ``(n, *sample_shape)``; N-d ``X`` of that
        shape passes."""
        shape = tuple(int(s) for s in np.atleast_1d(self.sample_shape))
        if X.shape[1:] == shape:
            return X
        if X.ndim == 2 and X.shape[1] == int(np.prod(shape)):
            return X.reshape(X.shape[0], *shape)
        raise ValueError(
            f"sample_shape={shape} needs X of shape (n_samples, {int(np.prod(shape))})"
            f" (flattened samples) or (n_samples, *{shape}); got shape {X.shape}."
        )

    def _user_shape(self, shape) -> tuple[int, ...]:
        """Sample shape with the channel axis where the user put it."""
        shape = tuple(int(s) for s in shape)
        if self.channel_axis == -1:
            return (*shape[1:], shape[0])
        return shape

    def _to_user_layout(self, array: np.ndarray) -> np.ndarray:
        """Move a leading channel axis (of one sample) back to the user's layout."""
        return np.moveaxis(array, 0, -1) if self.channel_axis == -1 else array

    def _validate_targets(self, X, y, sample_weight, *, reset: bool, classes=None):
        """Encoded targets (float64, see :mod:`sktensorcnn.losses`) and sample
        weights; the task class encodes (``_encode_targets``)."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is "
                "None."
            )
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)  # a column vector, as scikit-learn
        if not self._multi_output and y.ndim != 1:  # check_array refused ndim > 2
            raise ValueError(
                f"y must be 1-d of shape (n_samples,); got shape {y.shape}."
            )
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"X and y have different numbers of samples: {X.shape[0]} and "
                f"{y.shape[0]}."
            )
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True)
        y, sample_weight = self._encode_targets(y, sample_weight, reset=reset,
                                                classes=classes)
        if not np.any(sample_weight > 0):
            raise ValueError("sample_weight must have at least one positive entry.")
        return y, sample_weight

    def _make_geometry(self, input_shape) -> ConvPoolGeometry:
        has_channels = self.channel_axis is not None
        return ConvPoolGeometry.from_params(
            input_shape[1:] if has_channels else input_shape,
            n_channels=input_shape[0] if has_channels else None,
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            pool_size=self.pool_size,
            pool_stride=self.pool_stride,
        )
