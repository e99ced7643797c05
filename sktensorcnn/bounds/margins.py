"""Classification margins: how far each training sample is from a mistake."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted, column_or_1d

__all__ = ["margin_loss", "margins"]


def _check_classifier(estimator, what: str) -> None:
    check_is_fitted(estimator)
    if not hasattr(estimator, "classes_"):
        raise TypeError(
            f"{what} needs a classifier: margins are defined for class scores. "
            f"{type(estimator).__name__} is a regressor; use noise_stability or "
            "effective_params for regressors."
        )


def margins_of_outputs(outputs: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``f[y] - max_{j != y} f[j]`` from outputs ``(n, n_out)``; one output
    (binary) is the score of class 1, so the margin is ``+-f``."""
    if outputs.shape[1] == 1:
        return np.where(codes == 1, 1.0, -1.0) * outputs[:, 0]
    n = outputs.shape[0]
    own = outputs[np.arange(n), codes]
    others = outputs.copy()
    others[np.arange(n), codes] = -np.inf
    return own - others.max(axis=1)


def label_codes(estimator, y) -> np.ndarray:
    """Positions of ``y``'s labels in ``estimator.classes_``."""
    y = column_or_1d(y, warn=True)
    classes = estimator.classes_
    codes = np.searchsorted(classes, y)
    codes = np.minimum(codes, len(classes) - 1)
    if np.any(classes[codes] != y):
        unknown = np.unique(y[classes[codes] != y]).tolist()
        raise ValueError(f"y has labels {unknown!r} the estimator was not fitted "
                         f"on (classes_ = {classes.tolist()!r}).")
    return codes


def margins(estimator, X, y) -> np.ndarray:
    """Margin of each sample: its class's score minus the best other score.

    Parameters
    ----------
    estimator : fitted sktensorcnn classifier
    X : array-like of shape ``(n_samples, *input_shape_)``
    y : array-like of shape (n_samples,)

    Returns
    -------
    ndarray of shape (n_samples,)
        Positive where the sample is classified correctly.  Binary
        classifiers have one score ``f`` (the log-odds of ``classes_[1]``):
        the margin is ``f`` for ``classes_[1]`` and ``-f`` for ``classes_[0]``.
    """
    _check_classifier(estimator, "margins")
    outputs = estimator._decision(X)
    return margins_of_outputs(outputs, label_codes(estimator, y))


def margin_loss(estimator, X, y, gamma: float) -> float:
    """``L_gamma``: the fraction of samples whose margin is at most ``gamma``
    ([Compression bounds], Section 1); ``gamma = 0`` counts the errors (ties
    included)."""
    if gamma < 0:
        raise ValueError(f"gamma={gamma!r} must be >= 0.")
    return float(np.mean(margins(estimator, X, y) <= gamma))
