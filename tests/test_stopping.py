"""Stopping rules and starts that do not depend on the targets' units.

The linear fits run on the targets as given (no standardization), so each
solver's stopping rule takes its unit from the trivial model's loss, and random
starts are scaled to the data.  Multiplying ``y`` by ``c`` must then multiply
the predictions by ``c`` and leave the iterations unchanged.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sktensorcnn import (
    CNNClassifier,
    CNNRegressor,
    CPCNNRegressor,
    TuckerCNNRegressor,
    datafits,
)
from sktensorcnn.datasets import make_cnn_regression

LAYER = dict(kernel_size=(5, 5, 3), pool_size=3, random_state=0)


@pytest.fixture(scope="module")
def data():
    X, y, _ = make_cnn_regression("T1", n_samples=400, random_state=0)
    return X, y


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


EQUIVARIANT = {
    "tucker-als": lambda: TuckerCNNRegressor(ranks=(2, 2, 2, 1), **LAYER),
    "cp-als": lambda: CPCNNRegressor(rank=2, **LAYER),
    "dense-pgd": lambda: CNNRegressor(n_kernels=2, solver="pgd", constraint="rank",
                                      **LAYER),
    "tanh-network": lambda: CNNRegressor(n_kernels=2, activation="tanh",
                                         max_iter=60, **LAYER),
    "tucker-lrd": lambda: TuckerCNNRegressor(ranks=(3, 3, 2, 2), solver="lrd",
                                             max_iter=60, **LAYER),
}


@pytest.mark.parametrize("name", sorted(EQUIVARIANT))
def test_fit_is_equivariant_to_the_targets_units(data, name):
    X, y = data
    reference = _fit(EQUIVARIANT[name](), X, y)
    for c in (1e-4, 1e4):
        scaled = _fit(EQUIVARIANT[name](), X, c * y)
        assert scaled.n_iter_ == reference.n_iter_
        np.testing.assert_allclose(scaled.predict(X) / c, reference.predict(X),
                                   rtol=1e-6, atol=1e-6 * np.std(y))


def test_lbfgs_from_random_starts_is_nearly_unit_free(data):
    """L-BFGS's gradient test is not exactly unit-free; its fit nearly is."""
    X, y = data

    def score(c):
        est = _fit(TuckerCNNRegressor(ranks=(2, 2, 2, 1), solver="lbfgs",
                                      init="random", **LAYER), X, c * y)
        return est.score(X, c * y)

    assert score(1e-4) == pytest.approx(score(1.0), abs=2e-3)
    assert score(1.0) > 0.8


@pytest.mark.parametrize("init", ["spectral", "random"])
def test_starts_are_never_worse_than_the_mean(data, init):
    """PGD's first recorded objective (after one descent step from the start)
    is at most the trivial model's, 1/2 var(y), in any units; with n < L P the
    spectral start is the minimum-norm ridge fit, from the samples' side."""
    X, y = data
    for c in (1e-4, 1.0):
        est = _fit(CNNRegressor(n_kernels=2, solver="pgd", constraint="rank",
                                init=init, max_iter=3, **LAYER), X, c * y)
        assert est.loss_curve_[0] <= 0.5 * np.var(c * y) * (1 + 1e-9)


@pytest.mark.parametrize("make, target", [
    (lambda init: TuckerCNNRegressor(ranks=(2, 2, 2, 1), init=init, max_iter=3,
                                     **LAYER), "y"),
    (lambda init: CNNClassifier(init=init, max_iter=3, **LAYER), "labels"),
    (lambda init: CNNRegressor(activation="relu", init=init, max_iter=3, **LAYER),
     "y"),
], ids=["tucker-linear", "classifier", "relu-network"])
def test_spectral_start_warns_only_when_asked_for(data, monkeypatch, make, target):
    """Features too many for the spectral start's least squares fit: an
    explicit init='spectral' says so and starts at random; the default 'auto'
    goes on quietly (the linear fits as with init='random'; the network still
    has the linear network, fitted from random factors, among its candidates)."""
    X, y = data
    y = (y > np.median(y)).astype(int) if target == "labels" else y
    monkeypatch.setattr(datafits, "GRAM_MAX_FEATURES", 50)  # both sides exceed it
    with pytest.warns(UserWarning, match="init='spectral' needs the least squares"):
        _fit(make("spectral"), X, y)
    fits = {}
    for init in ("auto", "random"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            fits[init] = _fit(make(init), X, y)
    if make("auto").activation == "identity":
        np.testing.assert_array_equal(fits["auto"].loss_curve_,
                                      fits["random"].loss_curve_)


def test_negative_sample_weights_are_refused(data):
    X, y = data
    weights = np.ones(len(y))
    weights[5] = -1.0
    with pytest.raises(ValueError, match="Negative values in data passed to "
                                         "`sample_weight`"):
        CNNRegressor(**LAYER).fit(X, y, sample_weight=weights)


@pytest.mark.parametrize("params", [
    dict(activation="relu"),                  # L-BFGS
    dict(activation="identity"),              # ALS on the statistics
    dict(activation="relu", solver="adam", early_stopping=False),
])
def test_epoch_curves_belong_to_the_fit_that_made_them(data, params):
    # A refit after an early-stopped Adam fit keeps none of its curves: the
    # epoch attributes are those of the last fit, None where it has no epochs
    # (as MLPRegressor's are).
    X, y = data
    est = CNNRegressor(2, kernel_size=3, pool_size=2, activation="relu",
                       solver="adam", early_stopping=True, max_iter=4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert len(est.fit(X, y).validation_scores_) == 4
        est.set_params(**{"solver": "auto", "max_iter": "auto", **params}).fit(X, y)
    assert est.validation_scores_ is None
    assert est.best_validation_score_ is None
    if params.get("solver") == "adam":
        assert est.best_loss_ == min(est.loss_curve_)
    else:
        assert est.best_loss_ is None
