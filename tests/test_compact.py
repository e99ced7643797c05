"""compact(): the network with R_{N+1} (Tucker) or R (CP) kernels is the same
network ([Compressed CNNs], Corollary 1), with the parameter count the formula gives."""

import warnings

import numpy as np
import pytest
from _reference import conv_pool_reference
from sklearn.exceptions import ConvergenceWarning

from sktensorcnn import (
    CNNRegressor,
    CPCNNClassifier,
    CPCNNRegressor,
    TuckerCNNClassifier,
    TuckerCNNRegressor,
)
from sktensorcnn.datasets import make_cnn_regression

LAYER = dict(kernel_size=(5, 5, 3), pool_size=3, random_state=0)


def _direct_outputs(est, X):
    """The network of ``kernels_``, ``fc_weights_`` and ``intercept_`` computed
    directly (numpy convolution and pooling), outputs ``(n, n_out)``: checks the
    exported layers themselves, not ``coef_``."""
    pooled = conv_pool_reference(X, est.kernels_, est.geometry_)  # (n, K, p...)
    n, K = pooled.shape[:2]
    fc = np.asarray(est.fc_weights_).reshape(-1, K * est.geometry_.n_cells)
    return pooled.reshape(n, -1) @ fc.T + np.asarray(est.intercept_).reshape(-1)


@pytest.fixture(scope="module")
def data():
    X, y, _ = make_cnn_regression("T1", n_samples=400, random_state=0)
    return X, y


@pytest.mark.parametrize("make, R", [
    (lambda: TuckerCNNRegressor(ranks=(2, 2, 2, 2), n_kernels=5, **LAYER), 2),
    (lambda: CPCNNRegressor(rank=2, n_kernels=6, **LAYER), 2),
    # trained as a network: the output factor is a general K x R matrix
    (lambda: TuckerCNNRegressor(ranks=(2, 2, 2, 2), n_kernels=5, solver="adam",
                                max_iter=5, **LAYER), 2),
    (lambda: CPCNNRegressor(rank=3, n_kernels=4, solver="gd", max_iter=5,
                            init="random", **LAYER), 3),
], ids=["tucker-als", "cp-als", "tucker-adam", "cp-gd"])
def test_compact_regressors(data, make, R):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = make().fit(X, y)
    K = est.n_kernels_
    assert est.expansion_ratio_ == K / R
    small = est.compact()
    assert small.n_kernels_ == R and small.kernels_.shape[0] == R
    assert small.expansion_ratio_ == 1
    np.testing.assert_allclose(small.predict(X), est.predict(X), rtol=1e-10,
                               atol=1e-10)
    # the compacted layers, run as a network, give the original predictions
    np.testing.assert_allclose(_direct_outputs(small, X)[:, 0], est.predict(X),
                               rtol=1e-9, atol=1e-9 * np.abs(y).max())
    np.testing.assert_allclose(small.coef_, est.coef_, atol=1e-12)
    P = est.geometry_.n_cells
    # the output factor shrinks from K x R to R x R, the FC layer from K to R maps
    assert est.n_params_ - small.n_params_ == (K - R) * R + (K - R) * P
    assert small.model_complexity_ == est.model_complexity_  # d_M sees R, not K
    assert est.n_kernels_ == K  # the original is untouched


def test_compact_multiclass(data):
    X, y = data
    labels = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))
    for est in (TuckerCNNClassifier(ranks=(2, 2, 2, 2), n_kernels=4, **LAYER),
                CPCNNClassifier(rank=2, n_kernels=5, **LAYER)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, labels)
        small = est.compact()
        np.testing.assert_allclose(small.decision_function(X),
                                   est.decision_function(X), atol=1e-10)
        np.testing.assert_allclose(_direct_outputs(small, X),
                                   est.decision_function(X), atol=1e-9)
        np.testing.assert_array_equal(small.classes_, est.classes_)
        K, R, P = est.n_kernels_, 2, est.geometry_.n_cells
        assert est.n_params_ - small.n_params_ == (K - R) * R + (K - R) * P * 3


def test_compact_refuses_what_it_cannot_do(data):
    X, y = data
    with pytest.raises(TypeError, match="dense kernels"):
        CNNRegressor(n_kernels=2, **LAYER).fit(X, y).compact()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        relu = TuckerCNNRegressor(ranks=(2, 2, 2, 1), n_kernels=2, activation="relu",
                                  max_iter=3, **LAYER).fit(X, y)
    with pytest.raises(ValueError, match="exact for activation='identity' only"):
        relu.compact()
