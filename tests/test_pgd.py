"""Projected gradient descent recovers a teacher that satisfies its constraint."""

import numpy as np
import pytest

from sktensorcnn import ConvPoolGeometry, conv_pool_features
from sktensorcnn.datafits import squared_datafit
from sktensorcnn.projections import (
    project_cp,
    project_l1_ball,
    project_nuclear_ball,
    project_rank,
    project_sparse,
    project_tucker,
)
from sktensorcnn.solvers import projected_gradient

GEOMETRY = ConvPoolGeometry.from_params((24, 24), kernel_size=3, pool_size=3)
SHAPE = GEOMETRY.weight_shape  # (3, 3, 49)


def _teachers(rng):
    u = rng.standard_normal((9, 1))
    v = rng.standard_normal((1, 49))
    low_rank = (u @ v).reshape(SHAPE)
    sparse = np.zeros(np.prod(SHAPE))
    sparse[rng.choice(sparse.size, 12, replace=False)] = rng.standard_normal(12) * 3
    sparse = sparse.reshape(SHAPE)
    a, b, c = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(49)
    cp = np.einsum("i,j,k->ijk", a, b, c)
    return {
        "rank": (low_rank, lambda w: project_rank(w.reshape(SHAPE), 1)),
        "nuclear": (low_rank, lambda w: project_nuclear_ball(
            w.reshape(SHAPE), np.linalg.svd(low_rank.reshape(9, 49),
                                            compute_uv=False).sum())),
        "sparse": (sparse, lambda w: project_sparse(w.reshape(SHAPE), 12)),
        "l1": (sparse, lambda w: project_l1_ball(w.reshape(SHAPE),
                                                 np.abs(sparse).sum())),
        "tucker": (cp, lambda w: project_tucker(w.reshape(SHAPE), (1, 1, 1))),
        "cp": (cp, lambda w: project_cp(w.reshape(SHAPE), 1)),
    }


@pytest.mark.parametrize("constraint", ["rank", "nuclear", "sparse", "l1", "tucker",
                                        "cp"])
def test_pgd_recovers_a_constrained_teacher(constraint):
    rng = np.random.default_rng(0)
    assert GEOMETRY.identifiable
    W, project = _teachers(rng)[constraint]
    # n well below L P = 441 (where the unconstrained problem is ill-posed) but
    # above the constraint's degrees of freedom
    n = 400
    X = rng.standard_normal((n, 24, 24))
    Z = conv_pool_features(X, GEOMETRY).reshape(n, -1)
    y = Z @ W.ravel() + 0.01 * rng.standard_normal(n)
    datafit = squared_datafit(X, y, GEOMETRY, use_gram=True)
    result = projected_gradient(datafit, lambda w: project(w).ravel(),
                                np.zeros(W.size), max_iter=2000, tol=1e-12)
    fitted = result.params[0].reshape(SHAPE)
    np.testing.assert_allclose(project(fitted), fitted, atol=1e-8)  # feasible
    error = np.linalg.norm(fitted - W) / np.linalg.norm(W)
    # the balls are convex relaxations: they need more samples for the same error
    assert error < (0.1 if constraint in ("nuclear", "l1") else 0.05), error
    curve = np.asarray(result.loss_curve)
    assert np.all(np.diff(curve) <= 1e-12 * np.abs(curve[:-1]) + 1e-15)
    # the unconstrained least squares on the same data is far off
    ridge = np.linalg.lstsq(Z, y, rcond=None)[0]
    assert np.linalg.norm(ridge - W.ravel()) / np.linalg.norm(W) > 5 * error


def test_pgd_on_features_constant_over_the_samples():
    """The data term is flat (a zero Gram matrix): the step is finite and the
    fit predicts the mean."""
    from sktensorcnn import TuckerCNNRegressor

    X = np.ones((10, 4, 4))
    y = np.arange(10.0)
    est = TuckerCNNRegressor((1, 1, 1), kernel_size=2, pool_size=2,
                             solver="pgd", max_iter=5).fit(X, y)
    np.testing.assert_allclose(est.predict(X), y.mean())
