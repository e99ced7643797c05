"""Regression on several targets: ``y`` of shape ``(n, n_targets)``, one output
per target, the kernels shared (as scikit-learn's ``MLPRegressor``).

Checked against independent computations: scikit-learn's ``Ridge`` on the
conv-pool features for the unconstrained linear network, the single-target fit
of each column where the outputs do not interact, the network computed
directly from the exported kernels and FC weights, and exact symmetries (two
targets that are affine images of each other are fitted as one).
"""

import warnings

import numpy as np
import pytest
from _reference import conv_pool_reference
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV

from sktensorcnn import (
    CNNClassifier,
    CNNRegressor,
    CPCNNRegressor,
    TuckerCNNRegressor,
    kernels,
)
from sktensorcnn.features import conv_pool_features
from sktensorcnn.geometry import ConvPoolGeometry
from sktensorcnn.model_selection import RankPathCV

GEOMETRY = ConvPoolGeometry.from_params((7, 7), kernel_size=3, pool_size=2)


def _data(n=60, n_targets=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 7, 7))
    Z = conv_pool_features(X, GEOMETRY).reshape(n, -1)
    W = rng.standard_normal((Z.shape[1], n_targets))
    Y = Z @ W + 0.3 * rng.standard_normal((n, n_targets)) + [1.0, -2.0, 5.0][:n_targets]
    return X, Y


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _direct(est, X):
    """The linear network of the exported attributes, computed in numpy."""
    pooled = conv_pool_reference(X, est.kernels_, GEOMETRY)
    fc = est.fc_weights_.reshape(est.n_outputs_, -1)
    return pooled.reshape(len(X), -1) @ fc.T + est.intercept_


@pytest.mark.parametrize("solver", ["als", "lbfgs"])
@pytest.mark.parametrize("n", [60, 20])  # Gram statistics; features (n < L P)
def test_unconstrained_linear_fit_is_ridge_per_target(solver, n):
    """With as many kernels as the features' rank the network is unconstrained:
    the ridge fit of each target on the conv-pool features (one alpha)."""
    X, Y = _data(n=n)
    alpha = 0.05
    est = _fit(CNNRegressor(n_kernels=9, kernel_size=3, pool_size=2, alpha=alpha,
                            solver=solver, tol=1e-12, max_iter=5000,
                            random_state=0), X, Y)
    Z = conv_pool_features(X, GEOMETRY).reshape(n, -1)
    ridge = Ridge(alpha=n * alpha).fit(Z, Y)  # ours: mean loss + alpha/2 |w|^2
    np.testing.assert_allclose(est.predict(X), ridge.predict(Z), atol=1e-5)
    assert est.predict(X).shape == (n, 3)
    assert est.n_outputs_ == 3
    assert est.coef_.shape == (3, 7, 7) and est.intercept_.shape == (3,)
    assert est.fc_weights_.shape == (3, 9, 2, 2)
    np.testing.assert_allclose(est.predict(X), _direct(est, X), atol=1e-10)


@pytest.mark.parametrize("cls, params", [
    (CNNRegressor, dict(n_kernels=2)),
    (TuckerCNNRegressor, dict(ranks=(2, 2, 2))),
    (CPCNNRegressor, dict(rank=2)),
])
def test_low_rank_linear_fits_predict_through_their_network(cls, params):
    X, Y = _data()
    est = _fit(cls(kernel_size=3, pool_size=2, random_state=0, **params), X, Y)
    pred = est.predict(X)
    np.testing.assert_allclose(pred, _direct(est, X), atol=1e-10)
    np.testing.assert_allclose(
        pred, X.reshape(len(X), -1) @ est.coef_.reshape(3, -1).T + est.intercept_,
        atol=1e-10)
    # shared kernels: better than the trivial model on every target
    assert np.all(r2_score(Y, pred, multioutput="raw_values") > 0.3)
    compact = est.compact() if cls is not CNNRegressor else est
    np.testing.assert_allclose(compact.predict(X), pred, atol=1e-8)


_NETWORKS = [
    CNNRegressor(2, activation="relu"),
    CNNRegressor(2, activation="relu", solver="adam", max_iter=30),
    CNNRegressor(2, activation="tanh", loss="huber"),
    CNNRegressor(2, solver="pgd", constraint="l1", radius=3.0),
    TuckerCNNRegressor(ranks=(2, 2, 2), activation="relu"),
    TuckerCNNRegressor(ranks=(2, 2, 2), activation="relu", solver="lrd"),
    CPCNNRegressor(rank=2, activation="softplus"),
]


@pytest.mark.parametrize("est, factorized", [
    (est, factorized) for est in _NETWORKS
    for factorized in ((False,) if isinstance(est, CNNRegressor) else (False, True))
], ids=lambda p: (f"{type(p).__name__}-{p.activation}-{p.solver}-{p.loss}"
                  if not isinstance(p, bool) else f"factorized={p}"))
def test_targets_that_standardize_alike_are_fitted_as_one(est, factorized):
    """Targets ``y`` and ``4 y`` (a power of two: exactly) standardize to the
    same values when each target gets its own offset and scale, and the outputs
    are then symmetric in the fit (same start, same gradients): the second
    prediction is exactly 4 times the first, whatever the activation, loss,
    solver and convolution path, and the first beats the mean."""
    X, Y = _data(n_targets=1)
    y = Y[:, 0]  # of mean about 1: a shared offset would break the symmetry
    est.set_params(kernel_size=3, pool_size=2, random_state=0)
    rule = kernels.uses_factorized
    if factorized:
        kernels.uses_factorized = lambda *args, **kwargs: True
    try:
        _fit(est, X, np.column_stack([y, 4.0 * y]))
    finally:
        kernels.uses_factorized = rule
    pred = est.predict(X)
    assert pred.shape == (len(y), 2)
    np.testing.assert_array_equal(pred[:, 1], 4.0 * pred[:, 0])
    assert r2_score(y, pred[:, 0]) > 0.2


def test_poisson_targets_each_get_their_own_mean():
    """Poisson (canonical log link) with an unpenalized intercept: at the
    optimum the mean prediction of each target is its mean count, for targets
    of different scales (a smooth activation, so that L-BFGS converges)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 7, 7))
    Y = np.column_stack([rng.poisson(2.0, 300), rng.poisson(30.0, 300)])
    est = _fit(CNNRegressor(1, kernel_size=3, pool_size=2, loss="poisson",
                            activation="tanh", tol=1e-12, max_iter=3000,
                            random_state=0), X, Y)
    np.testing.assert_allclose(est.predict(X).mean(axis=0), Y.mean(axis=0),
                               rtol=1e-5)


def test_partial_fit_keeps_the_number_of_targets():
    X, Y = _data()
    est = CNNRegressor(2, kernel_size=3, pool_size=2, activation="relu",
                       random_state=0)
    est.partial_fit(X, Y)
    first = est.loss_curve_[-1]
    for _ in range(20):
        est.partial_fit(X, Y)
    assert est.loss_curve_[-1] < first
    assert est.predict(X).shape == (len(X), 3)
    with pytest.raises(ValueError, match="y has 2 target.*fitted with 3"):
        est.partial_fit(X, Y[:, :2])
    assert est.predict(X).shape == (len(X), 3)  # unchanged by the refusal


def test_target_shapes():
    X, Y = _data(n_targets=2)
    est = CNNRegressor(kernel_size=3, pool_size=2)
    with pytest.raises(ValueError, match="dim 3"):
        est.fit(X, Y[:, :, None])
    with pytest.raises(ValueError, match="0 feature"):
        est.fit(X, Y[:, :0])
    # one column: one target, as scikit-learn (a DataConversionWarning)
    with pytest.warns(UserWarning, match="column-vector y"):
        est.fit(X, Y[:, :1])
    assert est.predict(X).shape == (len(X),) and est.n_outputs_ == 1
    assert isinstance(est.intercept_, float)
    # a refit on two targets after one: new output layer, no leftover axis
    est.set_params(warm_start=True)
    with pytest.warns(UserWarning, match="starts afresh"):
        est.fit(X, Y)
    assert est.predict(X).shape == (len(X), 2) and est.intercept_.shape == (2,)
    with pytest.raises(ValueError, match="1-d"):
        CNNClassifier(kernel_size=3, pool_size=2).fit(X, (Y > 0).astype(int))


def test_rank_path_and_grid_search_on_several_targets():
    X, Y = _data(n=90)
    path = RankPathCV(TuckerCNNRegressor(kernel_size=3, pool_size=2, random_state=0),
                      path=[(1, 1, 1), (2, 2, 2), (3, 3, 3)], cv=3).fit(X, Y)
    assert path.best_estimator_.predict(X).shape == (90, 3)
    grid = GridSearchCV(CNNRegressor(kernel_size=3, pool_size=2, random_state=0),
                        {"n_kernels": [1, 4]}, cv=3).fit(X, Y)
    assert grid.best_params_ == {"n_kernels": 4}
