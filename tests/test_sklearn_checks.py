"""scikit-learn's estimator checks, on every estimator.

The checks fit 2-d ``X`` (1-d signals to us) with 1 to 10 features, so the layer
is 1 wide (``kernel_size=1, pool_size=1``): the defaults need longer signals;
a real convolution runs with ``padding='same'`` (3 taps over signals as short as
one value, zero-padded).  The
factorizations are the well-posed ones (rank 1; dense kernels), a little ridge
makes the optimum unique, and the tolerance is tight, because one check compares
a weighted fit with a fit on repeated samples to 1e-7.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from sktensorcnn import (
    CNNClassifier,
    CNNRegressor,
    CPCNNClassifier,
    CPCNNRegressor,
    TuckerCNNClassifier,
    TuckerCNNRegressor,
)
from sktensorcnn.preprocessing import ConvPoolFeatures, TensorStandardScaler

LAYER = dict(kernel_size=1, pool_size=1, tol=1e-12, max_iter=2000)
REGRESSION = dict(LAYER, alpha=1e-3)
CLASSIFICATION = dict(LAYER, alpha=1e-1)
CONVOLUTION = dict(kernel_size=3, padding="same")

ESTIMATORS = [
    CNNRegressor(**REGRESSION),
    TuckerCNNRegressor(ranks=1, **REGRESSION),
    CPCNNRegressor(rank=1, **REGRESSION),
    CNNRegressor(activation="relu", **REGRESSION),
    CNNRegressor(loss="huber", **REGRESSION),
    # two kernels: mixing them (A M, B M^-T) leaves the network unchanged, and
    # alpha = 1e-3 leaves that direction so flat that ALS creeps along it for
    # 1,500 sweeps and the weighted and repeated fits stop 2e-6 apart
    CNNRegressor(n_kernels=2, **dict(REGRESSION, alpha=1e-2, **CONVOLUTION)),
    TuckerCNNRegressor(ranks=1, **dict(REGRESSION, **CONVOLUTION)),
    CNNClassifier(n_kernels=2, **dict(CLASSIFICATION, **CONVOLUTION)),
    CNNClassifier(**CLASSIFICATION),
    TuckerCNNClassifier(ranks=1, **CLASSIFICATION),
    CPCNNClassifier(rank=1, **CLASSIFICATION),
    CNNClassifier(activation="tanh", **CLASSIFICATION),
    # constrained training: projected gradient, rank reduction
    CNNRegressor(constraint="l1", radius=10.0, **dict(REGRESSION, max_iter=300)),
    TuckerCNNRegressor(ranks=1, solver="lrd", **dict(REGRESSION, max_iter=300)),
    CNNClassifier(constraint="sparse", **dict(CLASSIFICATION, max_iter=300)),
    TensorStandardScaler(),
    TensorStandardScaler(per_position=True),
    ConvPoolFeatures(kernel_size=1, pool_size=1),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
