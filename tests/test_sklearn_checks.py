"""scikit-learn's estimator checks, on every estimator.

The checks fit 2-d ``X`` (1-d signals to us) with 1 to 10 features, so the layer
is 1 wide (``kernel_size=1, pool_size=1``): the defaults need longer signals;
a real convolution runs with ``padding='same'`` (3 taps over signals as short as
one value, zero-padded).  The factorizations are the well-posed ones (rank 1;
dense kernels) and a little ridge makes the optimum unique.  One check compares
a weighted fit with a fit on repeated samples to 1e-7: it runs on fits
converged to ``tol=1e-12``; every other check on the default stopping rule,
which is what users get (and several times faster: the checks fit thousands
of times).
"""

import functools

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

#: The checks that need fits converged far beyond the default tolerance.
EXACT_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data",
    "check_sample_weight_equivalence_on_sparse_data",
}
EXACT = dict(tol=1e-12, max_iter=2000)


def estimators(**stopping):
    """Every estimator, fitted with the stopping parameters ``stopping``."""
    layer = dict(kernel_size=1, pool_size=1, **stopping)
    regression = dict(layer, alpha=1e-3)
    classification = dict(layer, alpha=1e-1)
    convolution = dict(kernel_size=3, padding="same")
    # projected-gradient and rank-reduction fits creep at tol=1e-12: cap them
    constrained = dict(max_iter=300) if stopping else {}
    return [
        CNNRegressor(**regression),
        TuckerCNNRegressor(ranks=1, **regression),
        CPCNNRegressor(rank=1, **regression),
        CNNRegressor(activation="relu", **regression),
        CNNRegressor(loss="huber", **regression),
        # two kernels: mixing them (A M, B M^-T) leaves the network unchanged,
        # and alpha = 1e-3 leaves that direction so flat that ALS creeps along
        # it for 1,500 sweeps and the weighted and repeated fits stop 2e-6 apart
        CNNRegressor(n_kernels=2, **dict(regression, alpha=1e-2, **convolution)),
        # one start: its random starts creep through hundreds of ALS sweeps on
        # the checks' unstructured data (the starts are tested in test_starts)
        TuckerCNNRegressor(ranks=1, n_init=1, **dict(regression, **convolution)),
        CNNClassifier(n_kernels=2, **dict(classification, **convolution)),
        CNNClassifier(**classification),
        TuckerCNNClassifier(ranks=1, **classification),
        CPCNNClassifier(rank=1, **classification),
        CNNClassifier(activation="tanh", **classification),
        # constrained training: projected gradient, rank reduction
        CNNRegressor(constraint="l1", radius=10.0, **dict(regression, **constrained)),
        TuckerCNNRegressor(ranks=1, solver="lrd", **dict(regression, **constrained)),
        CNNClassifier(constraint="sparse", **dict(classification, **constrained)),
        TensorStandardScaler(),
        TensorStandardScaler(per_position=True),
        ConvPoolFeatures(kernel_size=1, pool_size=1),
    ]


def _check_name(param) -> str:
    check = getattr(param, "values", param)[1]
    return (check.func if isinstance(check, functools.partial) else check).__name__


def checks_of(estimators, keep):
    """``parametrize_with_checks`` restricted to the checks whose name ``keep``
    accepts."""
    mark = parametrize_with_checks(estimators)
    argnames, params = mark.args
    return pytest.mark.parametrize(
        argnames, [p for p in params if keep(_check_name(p))], **mark.kwargs
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@checks_of(estimators(), lambda name: name not in EXACT_CHECKS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@checks_of(estimators(**EXACT), lambda name: name in EXACT_CHECKS)
def test_sample_weights_equal_repeated_samples(estimator, check):
    check(estimator)
