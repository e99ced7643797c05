import numpy as np
import pytest

from sktensorcnn.datafits import squared_datafit
from sktensorcnn.datasets import make_cnn_regression
from sktensorcnn.parametrizations import CPWeight, TuckerWeight
from sktensorcnn.solvers import alternating_least_squares, lbfgs
from sktensorcnn.solvers._result import ridge_objective


@pytest.fixture(scope="module")
def problem():
    X, y, teacher = make_cnn_regression("T1", n_samples=300, noise=0.5,
                                        random_state=0)
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=300)
    return X, y, teacher, w


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_gram_and_feature_datafits_agree(problem, fit_intercept):
    X, y, teacher, w = problem
    g = teacher.geometry
    gram = squared_datafit(X, y, g, sample_weight=w, fit_intercept=fit_intercept,
                           use_gram=True)
    feat = squared_datafit(X, y, g, sample_weight=w, fit_intercept=fit_intercept,
                           use_gram=False)
    v = np.random.default_rng(2).standard_normal(g.n_features)
    fg, gg = gram.value_and_gradient(v)
    ff, gf = feat.value_and_gradient(v)
    assert fg == pytest.approx(ff, rel=1e-9)
    np.testing.assert_allclose(gg, gf, rtol=1e-8, atol=1e-10)
    assert gram.intercept(v) == pytest.approx(feat.intercept(v))
    # the data term is the weighted mean squared error of the affine model
    from sktensorcnn.features import conv_pool_features

    Z = conv_pool_features(X, g).reshape(len(y), -1)
    pred = Z @ v + gram.intercept(v)
    expected = 0.5 * np.average((y - pred) ** 2, weights=w)
    assert fg == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    "param", [TuckerWeight((5, 5, 3, 8), (2, 2, 2, 1)), CPWeight((5, 5, 3, 8), 2),
              CPWeight((75, 8), 2)], ids=repr,
)
@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_als_never_increases_and_lbfgs_reaches_it(problem, param, alpha):
    X, y, teacher, _ = problem
    datafit = squared_datafit(X, y, teacher.geometry)
    rng = np.random.RandomState(0)
    start = param.initialize(rng)
    als = alternating_least_squares(datafit, param, [p.copy() for p in start],
                                    alpha=alpha, max_iter=500, tol=1e-12)
    curve = np.array(als.loss_curve)
    assert np.all(np.diff(curve) <= 1e-9 * curve[:-1])
    assert als.objective == curve[-1]
    # the objective read off the normal equations is the true one
    w = param.to_tensor(als.params).ravel()
    assert als.objective == pytest.approx(ridge_objective(datafit, w, alpha)[0],
                                          rel=1e-9, abs=1e-12)
    bfgs = lbfgs(datafit, param, [p.copy() for p in als.params], alpha=alpha,
                 max_iter=500, tol=1e-12)
    # ALS ends at a stationary point: L-BFGS from there finds nothing lower
    assert bfgs.objective == pytest.approx(als.objective, rel=1e-6)
    # and L-BFGS from the same start reaches an objective as low (or lower)
    cold = lbfgs(datafit, param, [p.copy() for p in start], alpha=alpha,
                 max_iter=2000, tol=1e-12)
    assert cold.objective <= als.objective * (1 + 1e-3)


def test_gradient_matches_finite_differences(problem):
    X, y, teacher, _ = problem
    datafit = squared_datafit(X, y, teacher.geometry)
    param = TuckerWeight((5, 5, 3, 8), (2, 2, 2, 1))
    params = param.initialize(np.random.RandomState(3))
    w = param.to_tensor(params).ravel()
    _, grad_w = datafit.value_and_gradient(w)
    rng = np.random.default_rng(0)
    for b in range(param.n_blocks):
        grad = param.block(params, b).apply_jacobian(grad_w[None])[0]
        direction = rng.standard_normal(params[b].size)
        eps = 1e-6
        values = []
        for sign in (1, -1):
            trial = [p.copy() for p in params]
            trial[b] = params[b] + sign * eps * direction.reshape(params[b].shape)
            values.append(datafit.value(param.to_tensor(trial).ravel()))
        fd = (values[0] - values[1]) / (2 * eps)
        assert grad @ direction == pytest.approx(fd, rel=1e-5, abs=1e-8)
