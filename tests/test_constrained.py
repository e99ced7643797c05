"""Constrained training through the estimators: ``solver='pgd'`` with every
constraint, ``solver='lrd'``, the covering dimension and the parameter errors."""

import math
import warnings

import numpy as np
import pytest
import tensorly as tl
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from sktensorcnn import (
    CNNClassifier,
    CNNRegressor,
    CPCNNClassifier,
    CPCNNRegressor,
    TuckerCNNClassifier,
    TuckerCNNRegressor,
)
from sktensorcnn.constraints import covering_dimension
from sktensorcnn.network import network_outputs

LAYER = dict(kernel_size=3, pool_size=3)  # 12 x 12 -> conv 10 x 10 -> pooled 3 x 3
# (kernels no wider than the pooling window: W is identifiable, [Compressed CNNs])


def _teacher_data(kernel, fc, n, rng, activation="identity", noise=0.01):
    geometry = CNNRegressor(**LAYER)._make_geometry((12, 12))
    X = rng.standard_normal((n, 12, 12))
    y = network_outputs(X, kernel, fc[None], np.zeros(1), geometry, activation)[:, 0]
    return X, y + noise * rng.standard_normal(n)


def _cosine(a, b):
    return abs(float(np.vdot(a, b))) / (np.linalg.norm(a) * np.linalg.norm(b))


def _sparse_teacher(rng, n_nonzero=3):
    kernel = np.zeros(9)
    support = rng.choice(9, n_nonzero, replace=False)
    kernel[support] = rng.choice([-1.0, 1.0], n_nonzero) * (1 + rng.random(n_nonzero))
    return kernel.reshape(1, 3, 3), rng.standard_normal((1, 3, 3))


# projected steps approach a point on the boundary of the norm balls slowly:
# the fit may stop at max_iter, and the recovery is what is checked
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("constraint", ["sparse", "l1", "nuclear"])
def test_pgd_kernel_constraints_recover_a_teacher_inside_the_set(constraint):
    rng = np.random.default_rng(0)
    kernel, fc = _sparse_teacher(rng)
    X, y = _teacher_data(kernel, fc, 300, rng)
    X_test, y_test = _teacher_data(kernel, fc, 500, rng, noise=0.0)
    # the teacher in the estimator's normalization (unit-norm FC per kernel)
    scaled = kernel * np.linalg.norm(fc)
    size = {"sparse": dict(sparsity=3),
            "l1": dict(radius=float(np.abs(scaled).sum())),
            "nuclear": dict(radius=float(np.linalg.norm(scaled)))}[constraint]
    est = CNNRegressor(1, constraint=constraint, max_iter=3000, tol=1e-12,
                       **LAYER, **size).fit(X, y)
    assert est.solver == "auto" and est.constraint_ == constraint
    fitted = est.kernels_[0]
    assert _cosine(fitted, kernel[0]) > 0.999
    assert est.score(X_test, y_test) > 0.999
    if constraint == "sparse":
        assert np.count_nonzero(fitted) == 3
        np.testing.assert_array_equal(fitted != 0, kernel[0] != 0)
        assert est.n_params_ == 3 + 9 + 1  # nonzero kernel entries, FC, intercept
    else:  # on the ball, FC weights at unit norm
        norm = (np.abs(fitted).sum() if constraint == "l1"
                else np.linalg.svd(fitted.reshape(-1, 1), compute_uv=False).sum())
        assert norm <= size["radius"] * (1 + 1e-9)
        np.testing.assert_allclose(np.linalg.norm(est.fc_weights_), 1.0)
    curve = np.asarray(est.loss_curve_)
    assert np.all(np.diff(curve) <= 1e-12 * np.abs(curve[:-1]) + 1e-15)


@pytest.mark.parametrize("make", [
    lambda: CNNRegressor(1, solver="pgd", **LAYER),
    lambda: TuckerCNNRegressor((2, 2, 1), solver="pgd", **LAYER),
    lambda: CPCNNRegressor(1, solver="pgd", **LAYER),
], ids=["rank", "tucker", "cp"])
def test_pgd_on_the_structure_reaches_the_als_fit(make):
    """Identity activation: PGD on the composite weight, projected on the
    estimator's own set, ends where ALS does on a teacher inside that set."""
    rng = np.random.default_rng(1)
    kernel = np.outer(rng.standard_normal(3), rng.standard_normal(3))[None]
    X, y = _teacher_data(kernel, rng.standard_normal((1, 3, 3)), 400, rng)
    # no ridge on either: the constraint set alone, as in the papers
    est = make().set_params(max_iter=3000, tol=1e-15, alpha=0.0).fit(X, y)
    als = make().set_params(solver="als", tol=1e-15, max_iter=2000,
                            alpha=0.0).fit(X, y)
    assert est.constraint_ == est._structure_constraint
    # SVD is the exact projection: the same optimum; HOSVD and CP-ALS are
    # quasi-projections, whose fixed points are near it
    exact = est.constraint_ == "rank"
    assert est.loss_curve_[-1] <= als.loss_curve_[-1] * (1 + (1e-6 if exact else
                                                            1e-2))
    np.testing.assert_allclose(est.predict(X), als.predict(X),
                               atol=1e-4 if exact else 3e-3)
    assert _cosine(est.coef_, als.coef_) > 1 - (1e-6 if exact else 1e-4)
    # the fitted factors represent the fitted weight exactly
    np.testing.assert_allclose(est.predict(X), est._decision(X)[:, 0])


@pytest.mark.parametrize("activation", ["relu", "tanh", "softplus"])
@pytest.mark.parametrize("make", [
    lambda **kw: CNNRegressor(2, constraint="sparse", sparsity=6, **kw),
    lambda **kw: CNNRegressor(2, constraint="l1", **kw),
    lambda **kw: CNNRegressor(2, constraint="nuclear", radius=1.0, **kw),
    lambda **kw: TuckerCNNRegressor((2, 2, 1), n_kernels=2, solver="pgd", **kw),
    lambda **kw: CPCNNRegressor(1, n_kernels=2, solver="pgd", **kw),
], ids=["sparse", "l1", "nuclear", "tucker", "cp"])
def test_pgd_trains_any_activation_inside_the_set(make, activation):
    rng = np.random.default_rng(2)
    kernel, fc = _sparse_teacher(rng)
    X, y = _teacher_data(kernel, fc, 150, rng, activation=activation)
    est = make(activation=activation, max_iter=40, random_state=0, **LAYER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    curve = np.asarray(est.loss_curve_)
    assert np.all(np.diff(curve) <= 1e-12 * np.abs(curve[:-1]) + 1e-15)
    assert curve[-1] < curve[0]
    stacked = np.moveaxis(est.kernels_, 0, -1)  # (3, 3, K)
    constraint = est.constraint_
    if constraint == "sparse":
        assert np.count_nonzero(stacked) <= 6
    elif constraint == "nuclear":
        assert np.linalg.svd(stacked.reshape(9, -1), compute_uv=False).sum() \
            <= 1.0 + 1e-9
    elif constraint == "tucker":
        assert est.ranks_ == (2, 2, 1)
        for mode, r in enumerate((2, 2, 1)):
            assert np.linalg.matrix_rank(tl.unfold(stacked, mode), tol=1e-8) <= r
    elif constraint == "cp":
        assert np.linalg.matrix_rank(stacked.reshape(9, 2), tol=1e-8) <= 1
    if constraint in ("l1", "nuclear"):
        norms = np.linalg.norm(est.fc_weights_.reshape(2, -1), axis=1)
        np.testing.assert_allclose(norms, 1.0)
    assert np.all(np.isfinite(est.predict(X)))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_pgd_classifiers():  # 100 steps: the fits stop at max_iter
    rng = np.random.default_rng(3)
    kernel, fc = _sparse_teacher(rng)
    X, score = _teacher_data(kernel, fc, 400, rng)
    y = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    for est in (CNNClassifier(1, constraint="sparse", sparsity=3, max_iter=500,
                              random_state=0, **LAYER),
                TuckerCNNClassifier((2, 2, 1), solver="pgd", max_iter=500,
                                    random_state=0, **LAYER),
                CPCNNClassifier(1, solver="pgd", activation="relu", max_iter=300,
                                random_state=0, **LAYER)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        # about as good as L-BFGS on the same model (same start)
        lbfgs = clone(est).set_params(solver="lbfgs", constraint=None,
                                      sparsity=None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            lbfgs.fit(X, y)
        assert est.score(X, y) > min(lbfgs.score(X, y) - 0.05, 0.95), est
        proba = est.predict_proba(X)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.count_nonzero(CNNClassifier(
        1, constraint="sparse", sparsity=3, max_iter=100, **LAYER).fit(
            X, y).kernels_) <= 3


def test_lrd_settles_on_the_teacher_ranks():
    """[Rank reduction]'s rank reduction from generous caps finds the true Tucker ranks
    (2, 2, 1) of a teacher and records the way there."""
    rng = np.random.default_rng(4)
    kernel = (np.outer(rng.standard_normal(3), rng.standard_normal(3))
              + np.outer(rng.standard_normal(3), rng.standard_normal(3)))[None]
    X, y = _teacher_data(kernel, rng.standard_normal((1, 3, 3)), 600, rng)
    est = TuckerCNNRegressor((3, 3, 3), solver="lrd", energy=0.999, max_iter=500,
                             **LAYER).fit(X, y)
    assert est.ranks_ == (2, 2, 1)
    assert est.n_kernels_ == 1
    assert est.rank_history_[-1] == (2, 2, 1)
    assert len(est.rank_history_) == est.n_iter_
    assert est.score(X, y) > 0.999
    assert est.n_params_ < TuckerCNNRegressor((3, 3, 3), **LAYER).fit(X, y).n_params_
    # with any activation too: ranks within the caps, objective decreasing overall
    relu = TuckerCNNRegressor((3, 3, 2), n_kernels=2, solver="lrd",
                              activation="relu", energy=0.9, max_iter=30,
                              random_state=0, **LAYER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        relu.fit(X, y)
    assert all(r <= c for r, c in zip(relu.ranks_, (3, 3, 2)))
    assert relu.loss_curve_[-1] < relu.loss_curve_[0]
    assert relu.rank_history_[-1] == relu.ranks_


def test_covering_dimension_follows_table_1():
    rng = np.random.default_rng(5)
    stacked = rng.standard_normal((3, 3, 4))  # L = 9, K = 4
    assert covering_dimension("rank", stacked) == 36
    sparse = stacked * (rng.random(stacked.shape) < 0.3)
    s = np.count_nonzero(sparse)
    assert covering_dimension("sparse", sparse) == pytest.approx(
        s * math.log(6 * 36 / s))
    low_rank = (rng.standard_normal((9, 2)) @ rng.standard_normal((2, 4))).reshape(
        3, 3, 4)
    assert covering_dimension("nuclear", low_rank) == 2 * (9 + 4 - 2)
    assert covering_dimension("tucker", stacked, ranks=(2, 2, 1)) == \
        4 + 2 * 1 + 2 * 1 + 1 * 3
    assert covering_dimension("cp", stacked, rank=2) == 2 * (3 + 3 + 4 - 2)
    # on fitted estimators
    X = rng.standard_normal((60, 12, 12))
    y = X[:, :3, :3].sum(axis=(1, 2))
    assert CNNRegressor(2, **LAYER).fit(X, y).covering_dimension_ == 2 * 9
    est = CNNRegressor(2, constraint="sparse", sparsity=5, **LAYER).fit(X, y)
    assert est.covering_dimension_ == pytest.approx(5 * math.log(6 * 18 / 5))
    tucker = TuckerCNNRegressor((2, 2, 1), **LAYER).fit(X, y)
    assert tucker.constraint_ == "tucker"
    assert tucker.covering_dimension_ == 4 + 2 * 1 + 2 * 1 + 0


@pytest.mark.parametrize("est, match", [
    (TuckerCNNRegressor(constraint="sparse"), "entries of dense kernels"),
    (CNNRegressor(constraint="tucker"), "structure of Tucker kernels"),
    (CPCNNClassifier(constraint="rank"), "structure of dense kernels"),
    (CNNRegressor(sparsity=3), "sparsity=3 is the size of constraint='sparse'"),
    (CNNRegressor(constraint="sparse", radius=1.0), "radius=1.0 is the size"),
    (CNNRegressor(constraint="l1", solver="lbfgs"), "use solver='pgd'"),
    (CNNRegressor(solver="lrd"), "solver='lrd' reduces Tucker ranks"),
    (CPCNNRegressor(solver="lrd"), "TuckerCNNRegressor"),
])
def test_constraint_errors_name_the_fix(est, match):
    X = np.random.default_rng(0).standard_normal((20, 8, 8))
    y = X.sum(axis=(1, 2)) > 0
    with pytest.raises(ValueError, match=match):
        est.fit(X, y.astype(int))


def test_partial_fit_projects_after_each_epoch():
    rng = np.random.default_rng(0)
    kernel, fc = _sparse_teacher(rng)
    X, y = _teacher_data(kernel, fc, 200, rng)
    est = CNNRegressor(2, constraint="sparse", sparsity=4, random_state=0, **LAYER)
    for _ in range(3):
        est.partial_fit(X, y)
        assert np.count_nonzero(est.kernels_) <= 4
    assert est.constraint_ == "sparse" and est.n_iter_ == 3
    ball = CNNRegressor(2, constraint="l1", radius=2.0, random_state=0, **LAYER)
    for _ in range(2):
        ball.partial_fit(X, y)
        assert np.abs(ball.kernels_).sum() <= 2.0 * (1 + 1e-12)
        np.testing.assert_allclose(
            np.linalg.norm(ball.fc_weights_.reshape(2, -1), axis=1), 1.0)
