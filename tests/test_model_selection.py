"""Rank selection: grid search and the rank path pick the true ranks; the
information criteria and the energy criterion behave as documented."""

import warnings

import numpy as np
import pytest
import tensorly as tl
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline

from sktensorcnn import (
    CNNClassifier,
    CNNRegressor,
    CPCNNRegressor,
    TuckerCNNRegressor,
)
from sktensorcnn.datasets import make_cnn_regression
from sktensorcnn.model_selection import (
    RankPathCV,
    energy_ranks,
    information_criterion,
    suggest_ranks,
)
from sktensorcnn.preprocessing import TensorStandardScaler

# unpenalized, as in the papers: the ranks are the only regularizer, so the
# cross-validated choice is the teacher's ranks (a ridge lets larger ranks tie)
LAYER = dict(kernel_size=(5, 5, 3), pool_size=3, n_kernels=2, alpha=0.0,
             random_state=0)
PATH = [(1, 1, 1, 1), (2, 2, 1, 1), (2, 2, 2, 1), (3, 3, 3, 1), (2, 2, 2, 2)]


@pytest.fixture(scope="module")
def tucker_data():
    """[Compressed CNNs]'s T1: 10x10x8 volumes, stacked kernels of Tucker ranks
    (2, 2, 2, 1)."""
    X, y, teacher = make_cnn_regression("T1", n_samples=1500, random_state=0)
    assert teacher.params["ranks"] == (2, 2, 2, 1)
    return X, y


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def test_grid_search_over_ranks_in_a_pipeline_picks_the_true_ranks(tucker_data):
    X, y = tucker_data
    pipe = make_pipeline(TensorStandardScaler(), TuckerCNNRegressor(**LAYER))
    cv = KFold(3, shuffle=True, random_state=0)
    grid = GridSearchCV(pipe, {"tuckercnnregressor__ranks": PATH}, cv=cv).fit(X, y)
    assert grid.best_params_["tuckercnnregressor__ranks"] == (2, 2, 2, 1)


def test_rank_path_picks_the_true_ranks_and_refits(tucker_data):
    X, y = tucker_data
    cv = KFold(3, shuffle=True, random_state=0)
    path = RankPathCV(TuckerCNNRegressor(**LAYER), PATH, cv=cv)
    pipe = make_pipeline(TensorStandardScaler(), path).fit(X, y)
    assert path.param_name_ == "ranks"
    assert path.best_value_ == (2, 2, 2, 1)
    assert path.cv_scores_.shape == (len(PATH), 3)
    assert path.best_estimator_.ranks_ == (2, 2, 2, 1)
    assert pipe.score(X, y) == pytest.approx(path.best_estimator_.score(
        pipe[0].transform(X), y))
    # the same scores as independent fits, up to the non-convex fits' spread
    grid = GridSearchCV(TuckerCNNRegressor(**LAYER), {"ranks": PATH}, cv=cv)
    grid.fit(pipe[0].transform(X), y)
    np.testing.assert_allclose(path.mean_scores_,
                               grid.cv_results_["mean_test_score"], atol=0.01)


def test_rank_path_for_cp_dense_and_classifiers():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((240, 12, 12))
    y = X[:, 4:7, 4:7].sum(axis=(1, 2)) + 0.5 * rng.standard_normal(240)
    cp = RankPathCV(CPCNNRegressor(kernel_size=3, pool_size=2), [1, 2, 3], cv=3)
    assert cp.fit(X, y).param_name_ == "rank"
    dense = RankPathCV(CNNRegressor(kernel_size=3, pool_size=2), [1, 2], cv=3)
    assert dense.fit(X, y).predict(X).shape == (240,)
    labels = (y > np.median(y)).astype(int)
    clf = RankPathCV(CNNClassifier(kernel_size=3, pool_size=2), [1, 2], cv=3)
    assert set(clf.fit(X, labels).predict(X)) <= {0, 1}
    with pytest.raises(TypeError, match="RankPathCV takes a sktensorcnn"):
        RankPathCV(Ridge(), [1]).fit(X.reshape(240, -1), y)
    with pytest.raises(ValueError, match="path is empty"):
        RankPathCV(CNNRegressor(), []).fit(X, y)


def test_bic_picks_the_true_ranks(tucker_data):
    X, y = tucker_data
    bic = [information_criterion(TuckerCNNRegressor(ranks=r, **LAYER).fit(X, y),
                                 X, y) for r in PATH]
    assert PATH[int(np.argmin(bic))] == (2, 2, 2, 1)
    est = TuckerCNNRegressor(ranks=(2, 2, 2, 1), **LAYER).fit(X, y)
    aic = information_criterion(est, X, y, "aic")
    # BIC's penalty log(n) d exceeds AIC's 2 d for n > e^2
    assert information_criterion(est, X, y, "bic") - aic == pytest.approx(
        (np.log(len(y)) - 2) * (est.model_complexity_ + 1))
    with pytest.raises(ValueError, match="criterion='hqc'"):
        information_criterion(est, X, y, "hqc")


def test_information_criterion_for_classifiers():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 8, 8))
    y = (X[:, 3:6, 3:6].sum(axis=(1, 2)) > 0).astype(int)
    est = CNNClassifier(kernel_size=3, pool_size=2).fit(X, y)
    proba = est.predict_proba(X)[np.arange(300), y]
    expected = -2 * np.log(proba).sum() + np.log(300) * (est.model_complexity_ + 1)
    assert information_criterion(est, X, y) == pytest.approx(expected)


def test_energy_ranks_of_an_exact_tucker_tensor():
    rng = np.random.default_rng(0)
    core = rng.standard_normal((2, 3, 2))
    factors = [np.linalg.qr(rng.standard_normal((n, r)))[0]
               for n, r in zip((5, 6, 7), (2, 3, 2))]
    W = tl.tucker_to_tensor((core, factors))
    assert energy_ranks(W, energy=1 - 1e-9) == (2, 3, 2)
    assert energy_ranks(W, energy=1e-3) == (1, 1, 1)
    with pytest.raises(ValueError, match="energy=1.5"):
        energy_ranks(W, energy=1.5)


def test_suggest_ranks_bounds_the_true_ranks(tucker_data):
    X, y = tucker_data
    ranks = suggest_ranks(TuckerCNNRegressor(**LAYER), X, y, energy=0.9)
    assert len(ranks) == 4
    # noise spreads energy: an upper bound of the true ranks, not below them
    assert all(r >= t for r, t in zip(ranks, (2, 2, 2, 1)))


def test_rank_path_refuses_sparse_input_as_the_estimators_do():
    import scipy.sparse as sp

    X, y = sp.csr_matrix(np.ones((12, 16))), np.arange(12.0)
    path = RankPathCV(TuckerCNNRegressor(**LAYER, sample_shape=(4, 4)),
                      [(1, 1, 1)], cv=3)
    with pytest.raises(TypeError, match="Sparse data was passed for X") as ours:
        path.fit(X, y)
    with pytest.raises(TypeError) as theirs:
        TuckerCNNRegressor(**LAYER, sample_shape=(4, 4)).fit(X, y)
    assert str(ours.value) == str(theirs.value)
