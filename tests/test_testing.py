"""The exported testing toolkit (sktensorcnn.testing): its strategies draw what
they say, and its checks pass on the estimators and fail on estimators that
break the properties they check."""

import warnings

import numpy as np
import pytest
from _reference import network_reference
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline

from sktensorcnn import CNNClassifier, CNNRegressor, CPCNNRegressor, TuckerCNNRegressor
from sktensorcnn.preprocessing import TensorStandardScaler
from sktensorcnn.testing import (
    check_batch_splits,
    check_coef_reproduces_predict,
    check_float32,
    check_memory_layouts,
    check_sample_order,
    check_tensor_estimator,
    estimator_params,
    geometries,
    geometry_params,
    teacher_problems,
    tensor_samples,
    tucker_ranks,
)

ESTIMATORS = {"dense": CNNRegressor, "tucker": TuckerCNNRegressor,
              "cp": CPCNNRegressor}


@settings(max_examples=15)
@given(data=st.data(), channels_last=st.booleans())
def test_drawn_geometries_build_estimators_that_fit(data, channels_last):
    """A geometry, its estimator parameters and samples in the user's layout
    give a fit whose fitted geometry is the drawn one."""
    geometry = data.draw(geometries(max_modes=3))
    params, shape = geometry_params(geometry, channels_last=channels_last)
    X = data.draw(tensor_samples(shape, n=6))
    assert X.shape == (6, *shape) and np.all(np.isfinite(X))
    y = X.reshape(6, -1).sum(axis=1)
    kind = data.draw(st.sampled_from(sorted(ESTIMATORS)))
    extra = data.draw(estimator_params(kind, geometry))
    est = ESTIMATORS[kind](**params, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few iterations
        est.fit(X, y)
    assert est.geometry_ == geometry
    assert np.all(np.isfinite(est.predict(X)))


@settings(max_examples=20)
@given(geometry=geometries(), data=st.data())
def test_tucker_ranks_are_valid(geometry, data):
    ranks = data.draw(tucker_ranks(geometry))
    assert len(ranks) == len(geometry.kernel_modes) + 1
    assert all(1 <= r <= m for r, m in zip(ranks, geometry.kernel_modes))
    assert 1 <= ranks[-1] <= geometry.n_cells


@settings(max_examples=10)
@given(problem=teacher_problems())
def test_teacher_problems_come_from_their_network(problem):
    """The targets are the teacher network's outputs: checked against the
    direct numpy network where the teacher is linear."""
    assert problem.y.shape == (len(problem.X),)
    assert np.all(np.isfinite(problem.y))
    assert problem.X.shape[1:] == problem.sample_shape
    if problem.activation == "identity":
        expected = network_reference(problem.X, problem.kernels,
                                     problem.fc_weights, problem.intercept,
                                     problem.geometry)
        np.testing.assert_allclose(problem.y, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("make", [
    lambda: CNNRegressor(kernel_size=3, pool_size=2, random_state=0),
    lambda: TuckerCNNRegressor(2, kernel_size=3, pool_size=2, activation="relu",
                               max_iter=20, random_state=0),
    lambda: make_pipeline(TensorStandardScaler(),
                          CPCNNRegressor(rank=2, kernel_size=3, pool_size=2,
                                         activation="tanh", max_iter=20,
                                         random_state=0)),
])
def test_the_estimators_pass_every_check(make):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 7, 7))
    y = X[:, 1:4, 1:4].sum(axis=(1, 2))
    check_tensor_estimator(make(), X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_classifiers_pass_every_check():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((45, 7, 7))
    y = np.digitize(X[:, 1:4, 1:4].sum(axis=(1, 2)), [-1.0, 1.0])
    check_tensor_estimator(CNNClassifier(kernel_size=3, pool_size=2, max_iter=30,
                                         random_state=0), X, y)


class _Broken(RegressorMixin, BaseEstimator):
    """A regressor that breaks the property named by ``flaw``."""

    def __init__(self, flaw="batch"):
        self.flaw = flaw

    def fit(self, X, y):
        self.coef_ = np.ones(X[0].shape)
        self.intercept_ = 0.0
        self.offset_ = 0.5 if X.dtype == np.float32 else 0.0
        return self

    def predict(self, X):
        out = X.reshape(len(X), -1).sum(axis=1) + self.offset_
        if self.flaw == "batch":
            out = out - out.mean()  # depends on the other samples
        if self.flaw == "order":
            out = np.sort(out)
        if self.flaw == "layout" and not X.flags.c_contiguous:
            out = out + 1.0
        if self.flaw == "coef":
            out = out * 2.0
        return out


@pytest.mark.parametrize("flaw, check", [
    ("batch", check_batch_splits), ("order", check_sample_order),
    ("layout", check_memory_layouts), ("coef", check_coef_reproduces_predict),
])
def test_each_check_fails_on_an_estimator_with_that_flaw(flaw, check):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 4, 4))
    est = _Broken(flaw).fit(X, X.sum(axis=(1, 2)))
    with pytest.raises(AssertionError):
        check(est, X)
    if flaw != "coef":
        check_coef_reproduces_predict(_Broken("none").fit(X, None), X)


def test_float32_check_fails_when_precision_changes_the_model():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 4, 4))
    with pytest.raises(AssertionError, match="float32 fit differs"):
        check_float32(_Broken("none"), X, X.sum(axis=(1, 2)))


def test_float32_tolerance_is_loosened_exactly_for_activations_with_a_kink():
    """check_tensor_estimator loosens its float32 tolerance for activations
    whose slope jumps at zero (fits may settle on either side of the kink),
    judged here from the activations' numpy slopes on either side of 0."""
    from sktensorcnn.activations import REGISTRY
    from sktensorcnn.testing import _has_kink

    for activation in REGISTRY:
        below, above = activation.slope(np.array([-1e-9, 1e-9]))
        jumps = not np.isclose(below, above, rtol=0, atol=1e-6)
        assert _has_kink(CNNRegressor(activation=activation.name)) == jumps, \
            activation.name
