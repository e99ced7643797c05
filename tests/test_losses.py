"""The loss registry and the regressors' ``loss`` parameter.

Each per-sample form (what the kernels compile) against its numpy reference,
each reference's gradient against finite differences of its value, and the
Huber and Poisson regressors on data where their answers are known.
"""

import warnings

import numpy as np
import pytest
from numba import njit
from scipy import stats
from scipy.special import expit, gammaln, softmax
from sklearn.exceptions import ConvergenceWarning

from sktensorcnn import CNNRegressor, TuckerCNNRegressor, conv_pool_features
from sktensorcnn.geometry import ConvPoolGeometry
from sktensorcnn.kernels._cpu_pointwise import sample_loss
from sktensorcnn.losses import (
    HUBER_DELTA,
    REGISTRY,
    loss_and_gradient,
    loss_code,
    target_rows,
)

# the regression losses on three targets (a sum over outputs), and on one
OUTPUTS = {"squared": 3, "logistic": 1, "multinomial": 4, "ovr": 4, "huber": 3,
           "poisson": 3}


def _batch(name, rng, n=200, n_out=None):
    n_out = OUTPUTS[name] if n_out is None else n_out
    F = 3.0 * rng.standard_normal((n, n_out))
    if name in ("squared", "huber"):
        y = F + 2.0 * HUBER_DELTA * rng.standard_normal((n, n_out))
    elif name == "poisson":
        y = rng.poisson(3.0, (n, n_out)).astype(float)
    else:
        y = rng.integers(0, 2 if name == "logistic" else n_out, n)
        y = y.astype(float)
    return F, y


@njit
def _compiled_rows(code, F, Y):
    values, grads = np.empty(F.shape[0]), np.empty_like(F)
    for i in range(F.shape[0]):
        values[i] = sample_loss(code, F[i], Y[i], grads[i])
    return values, grads


def _compiled(code, F, y):
    return _compiled_rows(code, F, target_rows(y))


def _independent(name, F, y):
    """Each loss written out directly from its definition (scipy / numpy)."""
    if name == "squared":
        return 0.5 * ((F - y) ** 2).sum(axis=1)
    if name == "huber":
        r = np.abs(F - y)
        return np.where(r <= HUBER_DELTA, 0.5 * r**2,
                        HUBER_DELTA * r - 0.5 * HUBER_DELTA**2).sum(axis=1)
    if name == "poisson":  # -log-likelihood up to log(y!)
        return -stats.poisson.logpmf(y, np.exp(F)).sum(axis=1) - gammaln(y + 1).sum(
            axis=1)
    labels = y.astype(int)
    if name == "logistic":
        p = expit(F[:, 0])
        return -(labels * np.log(p) + (1 - labels) * np.log1p(-p))
    if name == "multinomial":
        return -np.log(softmax(F, axis=1)[np.arange(len(y)), labels])
    onehot = np.eye(F.shape[1])[labels]
    p = expit(F)
    return -(onehot * np.log(p) + (1 - onehot) * np.log1p(-p)).sum(axis=1)


def test_every_loss_is_tested():
    assert set(OUTPUTS) == {loss.name for loss in REGISTRY}


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_compiled_loss_matches_its_numpy_reference(name):
    F, y = _batch(name, np.random.default_rng(0))
    values, grads = _compiled(loss_code(name), F, y)
    ref_values, ref_grads = loss_and_gradient(name, F, y)
    np.testing.assert_allclose(values, ref_values, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads, ref_grads, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_reference_value_matches_the_definition(name):
    F, y = _batch(name, np.random.default_rng(3), n=50)
    np.testing.assert_allclose(loss_and_gradient(name, F, y)[0],
                               _independent(name, F, y), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", ["squared", "huber", "poisson"])
def test_a_regression_loss_of_several_targets_is_the_sum_over_targets(name):
    F, y = _batch(name, np.random.default_rng(4), n=30)
    values, grads = _compiled(loss_code(name), F, y)
    for o in range(F.shape[1]):
        one, one_grad = _compiled(loss_code(name), F[:, [o]], y[:, o])
        values -= one
        np.testing.assert_array_equal(grads[:, [o]], one_grad)
    np.testing.assert_allclose(values, 0.0, atol=1e-10)


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_reference_gradient_is_the_derivative_of_the_value(name):
    F, y = _batch(name, np.random.default_rng(1), n=50)
    _, grads = loss_and_gradient(name, F, y)
    direction = np.random.default_rng(2).standard_normal(F.shape)
    eps = 1e-6
    fd = (loss_and_gradient(name, F + eps * direction, y)[0]
          - loss_and_gradient(name, F - eps * direction, y)[0]) / (2 * eps)
    np.testing.assert_allclose(fd, np.sum(grads * direction, axis=1), rtol=1e-6,
                               atol=1e-6)


def test_a_code_outside_the_registry_is_nan_not_another_loss():
    F, y = _batch("squared", np.random.default_rng(0), n=3)
    values, grads = _compiled(len(REGISTRY), F, y)
    assert np.all(np.isnan(values)) and np.all(np.isnan(grads))
    with pytest.raises(ValueError, match="loss='hinge' is unknown"):
        loss_code("hinge")


@pytest.fixture(scope="module")
def linear_problem():
    """A one-kernel linear conv-pool teacher, standardized: two ReLU kernels
    represent it exactly (``relu(z) - relu(-z) = z``, and pooling is linear)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 10, 10))
    g = ConvPoolGeometry.from_params((10, 10), kernel_size=3, pool_size=2)
    Z = conv_pool_features(X, g).reshape(len(X), g.n_kernel_entries, g.n_cells)
    f = np.einsum("nlp,l,p->n", Z, rng.standard_normal(Z.shape[1]),
                  rng.standard_normal(Z.shape[2]))
    return X, (f - f.mean()) / f.std()


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


@pytest.mark.parametrize("activation", ["identity", "relu"])
def test_huber_resists_outlying_targets(linear_problem, activation):
    X, f = linear_problem
    rng = np.random.default_rng(1)
    y = 50 + 100 * f + 5 * rng.standard_normal(len(f))
    y_train = y[:400].copy()
    y_train[rng.choice(400, 40, replace=False)] += 5000 * rng.standard_normal(40)

    def test_rmse(loss):
        est = _fit(CNNRegressor(n_kernels=2, kernel_size=3, pool_size=2, loss=loss,
                                activation=activation, random_state=0),
                   X[:400], y_train)
        return np.sqrt(np.mean((est.predict(X[400:]) - y[400:]) ** 2))

    squared, huber = test_rmse("squared"), test_rmse("huber")
    assert huber < 0.5 * squared
    assert huber < 0.7 * np.std(y)  # it learned the signal, not just the level


@pytest.mark.parametrize("activation", ["identity", "relu"])
def test_poisson_fit_balances_its_predictions(linear_problem, activation):
    """With the log link and an unpenalized intercept, the optimum predicts the
    training total exactly (the intercept's gradient is sum(mean - y))."""
    X, f = linear_problem
    y = np.random.default_rng(2).poisson(np.exp(1.0 + 0.5 * f)).astype(float)
    est = _fit(CNNRegressor(n_kernels=2, kernel_size=3, pool_size=2,
                            loss="poisson", activation=activation, tol=1e-10,
                            max_iter=2000, random_state=0), X[:400], y[:400])
    prediction = est.predict(X[:400])
    assert prediction.min() > 0
    assert np.mean(prediction) == pytest.approx(np.mean(y[:400]), rel=1e-3)
    # and it beats the constant model on held-out counts
    from sklearn.metrics import mean_poisson_deviance

    constant = np.full(100, np.mean(y[:400]))
    assert (mean_poisson_deviance(y[400:], est.predict(X[400:]))
            < 0.8 * mean_poisson_deviance(y[400:], constant))


def test_poisson_linear_fit_is_log_linear(linear_problem):
    """Identity activation: ``predict == exp(<X, coef_> + intercept_)``."""
    X, f = linear_problem
    y = np.random.default_rng(3).poisson(np.exp(1.0 + 0.5 * f)).astype(float)
    est = _fit(TuckerCNNRegressor(ranks=(2, 2, 1), kernel_size=3, pool_size=2,
                                  loss="poisson"), X, y)
    linear = X.reshape(len(X), -1) @ est.coef_.ravel() + est.intercept_
    np.testing.assert_allclose(est.predict(X), np.exp(linear), rtol=1e-9)


def test_loss_errors(linear_problem):
    X, f = linear_problem
    with pytest.raises(ValueError, match="loss='poisson' models counts"):
        CNNRegressor(kernel_size=3, loss="poisson").fit(X, f)
    with pytest.raises(ValueError, match="loss='huber' measures residuals"):
        CNNRegressor(kernel_size=3, loss="huber", solver="pgd",
                     constraint="rank").fit(X, f)
    with pytest.raises(ValueError, match="loss"):
        CNNRegressor(kernel_size=3, loss="logistic").fit(X, f)
    with pytest.raises(ValueError, match="solver='als' fits the linear network"):
        CNNRegressor(kernel_size=3, loss="huber", solver="als").fit(X, f)
