"""Data of extreme magnitude: inputs near overflow or underflow, targets of any
size, and fits that diverge.

Sums of squares of entries beyond ~1e154 overflow float64 (and below ~1e-154
underflow), so a fit that squares the data as given returns NaN, a constant or
a numpy error.  The estimators divide such data by an exact power of two and
map the fitted network back, so a fit on ``2^k X`` predicts as the fit on
``X`` does, and one on ``2^k y`` predicts ``2^k`` times as much.
"""

import warnings

import numpy as np
import pytest

from sktensorcnn import (
    CNNClassifier,
    CNNRegressor,
    CPCNNClassifier,
    CPCNNRegressor,
    TuckerCNNRegressor,
)

# the fits here stop after a few iterations by design
pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")

COMMON = dict(kernel_size=3, pool_size=2, random_state=0, max_iter=30)


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 8, 8))
    y = X[:, 2:5, 2:5].sum(axis=(1, 2)) + 0.1 * rng.standard_normal(60)
    return X, y


ESTIMATORS = [
    lambda: CNNRegressor(**COMMON),
    lambda: TuckerCNNRegressor(2, activation="relu", **COMMON),
    lambda: CPCNNRegressor(rank=2, activation="tanh", **COMMON),
    lambda: CNNRegressor(loss="poisson", activation="relu", **COMMON),
]


@pytest.mark.parametrize("make", ESTIMATORS)
@pytest.mark.parametrize("power", [1000, -1000])
def test_inputs_near_overflow_or_underflow_fit_as_ordinary_ones(make, power):
    X, y = _data()
    if make().loss == "poisson":
        y = np.abs(y)
    reference = make().fit(X, y).predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        scaled = make().fit(X * 2.0**power, y)
        predictions = scaled.predict(X * 2.0**power)
    np.testing.assert_allclose(predictions, reference, rtol=1e-6,
                               atol=1e-9 * np.abs(reference).max())


@pytest.mark.parametrize("make", ESTIMATORS[:3])
@pytest.mark.parametrize("power", [1000, -1000])
def test_targets_of_any_magnitude_scale_the_predictions(make, power):
    """The squared loss's fits see standardized targets: exactly equivariant."""
    X, y = _data()
    reference = make().fit(X, y).predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        predictions = make().fit(X, y * 2.0**power).predict(X)
    np.testing.assert_allclose(predictions / 2.0**power, reference, rtol=1e-6,
                               atol=1e-9 * np.abs(reference).max())


@pytest.mark.parametrize("power", [1000, -1000])
def test_poisson_counts_of_any_magnitude(power):
    """The Poisson loss with an intercept matches the mean count at its optimum
    (the canonical link's normal equation ``sum(mu - y) = 0``), at any scale."""
    X, y = _data()
    counts = np.abs(y) * 2.0**power
    est = CNNRegressor(loss="poisson", activation="relu", kernel_size=3,
                       pool_size=2, random_state=0, tol=1e-12, max_iter=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        predictions = est.fit(X, counts).predict(X)
    assert np.all(np.isfinite(predictions)) and np.all(predictions > 0)
    np.testing.assert_allclose(predictions.mean(), counts.mean(), rtol=1e-4)


@pytest.mark.parametrize("activation", ["identity", "relu"])
def test_classifier_inputs_near_overflow(activation):
    X, y = _data()
    labels = np.digitize(y, [-1.0, 1.0])
    make = lambda: CNNClassifier(activation=activation, **COMMON)  # noqa: E731
    reference = make().fit(X, labels).predict_proba(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        scaled = make().fit(X * 2.0**1000, labels).predict_proba(X * 2.0**1000)
    np.testing.assert_allclose(scaled, reference, rtol=1e-6, atol=1e-9)


def test_a_diverging_step_size_is_an_error_naming_it():
    """Gradient descent at a rate far too large: the loss grows by orders of
    magnitude without becoming infinite; the fit says so instead of
    returning scores of 1e74."""
    X, y = _data()
    est = CPCNNClassifier(rank=2, solver="gd", learning_rate_init=1.0,
                          activation="relu", kernel_size=3, pool_size=2,
                          random_state=0)
    with pytest.raises(FloatingPointError,
                       match=r"lower learning_rate_init \(now 1\)"):
        est.fit(X, (y > 0).astype(int))
    assert not hasattr(est, "classes_")


def test_subnormal_inputs_are_refused_with_a_clear_error():
    """Weights for inputs below the smallest normal number would overflow."""
    X, y = _data()
    with pytest.raises(ValueError, match="X's largest magnitude is .* Scale X"):
        CNNRegressor(**COMMON).fit(X * 1e-310, y)
