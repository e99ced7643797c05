"""Starts and data-adaptive defaults of the network fits.

The starts are checked through the public API: a momentum-GD fit with a
vanishing learning rate and one epoch returns its starting network (to ~1e-10),
whose training loss is compared with that of the trivial model (the weighted
mean, the class priors) computed directly.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV
from sklearn.metrics import log_loss

from sktensorcnn import (
    CNNClassifier,
    CNNRegressor,
    CPCNNClassifier,
    CPCNNRegressor,
    TuckerCNNClassifier,
    TuckerCNNRegressor,
)
from sktensorcnn.datafits import gcv_alpha, squared_datafit
from sktensorcnn.features import conv_pool_features
from sktensorcnn.geometry import ConvPoolGeometry
from sktensorcnn.network import network_outputs, pooled_activations
from sktensorcnn.testing import geometries

NONLINEAR = ["relu", "tanh", "sigmoid", "softplus", "squared_relu"]


def _spectra(n, rng, length=40):
    """Smooth, collinear curves (Gaussian bumps on a random-walk baseline), as
    spectra look, and a target that depends on the bump heights."""
    t = np.linspace(0.0, 1.0, length)
    heights = rng.uniform(0.0, 1.0, (n, 3))
    X = np.cumsum(rng.normal(0.0, 0.05, (n, length)), axis=1)
    for j, center in enumerate((0.25, 0.5, 0.75)):
        X += heights[:, j:j + 1] * np.exp(-(((t - center) / 0.06) ** 2))
    y = heights @ np.array([1.0, -0.7, 0.5]) + rng.normal(0.0, 0.1, n)
    return X, y, heights


def _start(est, X, y, sample_weight=None):
    """The network ``est`` starts from: one GD epoch with a vanishing rate."""
    est.set_params(solver="gd", learning_rate_init=1e-14, momentum=0.0,
                   max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, sample_weight=sample_weight)


@given(geometry=geometries(max_modes=2), activation=st.sampled_from(NONLINEAR),
       seed=st.integers(0, 2**16))
def test_pooled_activations_give_the_network_outputs(geometry, activation, seed):
    rng = np.random.default_rng(seed)
    K, n_out = 3, 2
    X = rng.normal(size=(5, *geometry.input_shape))
    kernels_ = rng.normal(size=(K, *geometry.kernel_shape))
    fc = rng.normal(size=(n_out, K, *geometry.pooled_shape))
    intercept = rng.normal(size=n_out)
    H = pooled_activations(X, kernels_, geometry, activation, chunk_entries=64)
    outputs = H.reshape(5, -1) @ fc.reshape(n_out, -1).T + intercept
    np.testing.assert_allclose(
        outputs, network_outputs(X, kernels_, fc, intercept, geometry, activation),
        rtol=1e-10, atol=1e-10)


@given(cls=st.sampled_from([CNNRegressor, TuckerCNNRegressor, CPCNNRegressor]),
       activation=st.sampled_from(NONLINEAR), x_scale=st.sampled_from([1e-3, 1.0,
                                                                       1e4]),
       y_offset=st.floats(-1e4, 1e4), y_scale=st.sampled_from([1e-3, 1.0, 1e5]),
       init=st.sampled_from(["spectral", "random"]), seed=st.integers(0, 2**16))
def test_regression_start_is_never_worse_than_the_mean(cls, activation, x_scale,
                                                       y_offset, y_scale, init,
                                                       seed):
    rng = np.random.default_rng(seed)
    X, y, _ = _spectra(60, rng)
    X, y = x_scale * X, y_offset + y_scale * y
    weights = rng.uniform(0.1, 2.0, len(y))
    est = _start(cls(kernel_size=5, pool_size=4, activation=activation, init=init,
                     random_state=seed), X, y, weights)
    mean = np.average(y, weights=weights)
    trivial = np.average((y - mean) ** 2, weights=weights)
    start = np.average((est.predict(X) - y) ** 2, weights=weights)
    assert start <= trivial * (1 + 1e-6)


@given(cls=st.sampled_from([CNNClassifier, TuckerCNNClassifier, CPCNNClassifier]),
       activation=st.sampled_from(NONLINEAR), n_classes=st.sampled_from([2, 3]),
       x_scale=st.sampled_from([1e-3, 1.0, 1e4]),
       multi_class=st.sampled_from(["multinomial", "ovr"]),
       seed=st.integers(0, 2**16))
def test_classification_start_is_never_worse_than_the_priors(
        cls, activation, n_classes, x_scale, multi_class, seed):
    rng = np.random.default_rng(seed)
    X, _, heights = _spectra(60, rng)
    labels = np.digitize(heights[:, 0] - heights[:, 1],
                         np.quantile(heights[:, 0] - heights[:, 1],
                                     np.linspace(0, 1, n_classes + 1)[1:-1]))
    est = _start(cls(kernel_size=5, pool_size=4, activation=activation,
                     multi_class=multi_class, random_state=seed), x_scale * X,
                 labels)
    priors = np.bincount(labels) / len(labels)
    trivial = log_loss(labels, np.tile(priors, (len(labels), 1)))
    if multi_class == "ovr" and n_classes > 2:
        # one logistic loss per class: compare the sum of the per-class losses
        scores = est.decision_function(x_scale * X)
        onehot = labels[:, None] == np.arange(n_classes)
        start = np.mean(np.sum(np.logaddexp(0, scores) - onehot * scores, axis=1))
        odds = np.log(priors / (1 - priors))
        trivial = np.mean(np.sum(np.logaddexp(0, odds) - onehot * odds, axis=1))
    else:
        start = log_loss(labels, est.predict_proba(x_scale * X))
    assert start <= trivial * (1 + 1e-6)


@pytest.mark.parametrize("est", [
    CNNRegressor(kernel_size=5, pool_size=4, activation="relu", alpha=0.1),
    TuckerCNNClassifier((3, 2), kernel_size=5, pool_size=4, activation="tanh"),
    CPCNNClassifier(2, kernel_size=5, pool_size=4, activation="softplus",
                    multi_class="ovr", alpha=0.05),
    CPCNNRegressor(2, kernel_size=5, pool_size=4, activation="sigmoid",
                   loss="huber"),
], ids=["dense-squared", "tucker-multinomial", "cp-ovr", "cp-huber"])
def test_the_starts_are_compared_by_forward_passes(est, monkeypatch):
    """The candidate starts are compared by ``objective.value`` (a forward
    pass; none for FC weights all zero): the penalized loss that the
    forward-backward kernels compute, at the parameters a fit sees, with zero
    FC weights and elsewhere."""
    from sktensorcnn import _fit_network

    objectives, seen = [], []

    def recording(*args, **kwargs):
        objective = make(*args, **kwargs)

        def recorded(current, rows=None):
            seen.append([np.array(p) for p in current])
            return objective(current, rows)

        recorded.value, recorded.penalty = objective.value, objective.penalty
        recorded.epoch_order = objective.epoch_order
        objectives.append(objective)
        return recorded

    make = _fit_network.network_objective
    monkeypatch.setattr(_fit_network, "network_objective", recording)
    rng = np.random.default_rng(0)
    X, y, heights = _spectra(50, rng)
    if "Classifier" in type(est).__name__:
        y = np.digitize(heights[:, 0] - heights[:, 1], [-0.3, 0.3])
    weights = rng.uniform(0.5, 2.0, len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.set_params(max_iter=3, random_state=0).fit(X, y, sample_weight=weights)
    objective, current = objectives[0], seen[-1]
    moved = [p + 0.3 * rng.standard_normal(p.shape) for p in current]
    no_head = [*current[:-2], np.zeros_like(current[-2]), current[-1]]
    for params in (current, moved, no_head):
        assert objective.value(params) == pytest.approx(objective(params)[0],
                                                        rel=1e-10)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_fit_is_equivariant_to_the_units_of_the_data(activation):
    """Inputs and targets are scaled inside the estimator: the same data in
    other units give the same network, predictions in the new units."""
    rng = np.random.default_rng(3)
    X, y, _ = _spectra(50, rng)
    params = dict(kernel_size=5, n_kernels=2, pool_size=4, activation=activation,
                  max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        unit = CNNRegressor(**params).fit(X, y)
        other = CNNRegressor(**params).fit(250.0 * X, 40.0 + 1e3 * y)
    np.testing.assert_allclose(other.predict(250.0 * X),
                               40.0 + 1e3 * unit.predict(X), rtol=1e-6)
    np.testing.assert_allclose(250.0 * other.kernels_, unit.kernels_, rtol=1e-6,
                               atol=1e-9)
    np.testing.assert_allclose(other.loss_curve_, unit.loss_curve_, rtol=1e-6)


def test_gcv_alpha_minimizes_generalized_cross_validation():
    """Against GCV computed from the hat matrix of the ridge fit on the
    features, on both representations of the data term (n > features and
    n < features)."""
    rng = np.random.default_rng(1)
    geometry = ConvPoolGeometry.from_params((30,), kernel_size=5, pool_size=5)
    for n in (300, 18):
        X = np.cumsum(rng.normal(size=(n, 30)), axis=1)
        y = X[:, 10] - X[:, 12] + rng.normal(size=n)
        Z = conv_pool_features(X, geometry).reshape(n, -1)
        Zc, yc = Z - Z.mean(axis=0), y - y.mean()

        def gcv(alpha, Zc=Zc, yc=yc, n=n):
            hat = Zc @ np.linalg.solve(Zc.T @ Zc / n + alpha * np.eye(Zc.shape[1]),
                                       Zc.T / n)
            residual = yc - hat @ yc
            return np.mean(residual**2) / (1 - (np.trace(hat) + 1) / n) ** 2

        scale = np.trace(Zc.T @ Zc / n) / Zc.shape[1]
        best = min(gcv(a) for a in scale * np.logspace(-7, 3, 200))
        for use_gram in (True, False):
            datafit = squared_datafit(X, y, geometry, use_gram=use_gram)
            alpha = gcv_alpha(datafit, n)
            assert gcv(alpha) <= 1.05 * best


def test_default_relu_network_on_collinear_curves_matches_ridge():
    """The failure that motivated the defaults: smooth collinear curves,
    standardized per position, the target in user units; a ReLU CNN with only
    its geometry given used to start at 10^3 times the target variance and to
    end worse than the mean."""
    rng = np.random.default_rng(0)
    X, y, _ = _spectra(344, rng, length=100)
    y = 18.0 + 12.7 * (y - y.mean()) / y.std()
    X = (X - X[:172].mean(axis=0)) / X[:172].std(axis=0)
    train, test = slice(0, 172), slice(172, None)
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(X[train], y[train])
    ridge_rmse = np.sqrt(np.mean((ridge.predict(X[test]) - y[test]) ** 2))
    for geometry in [(5, 4, 5), (11, 4, 10), (5, 8, 2)]:
        kernel_size, n_kernels, pool_size = geometry
        est = CNNRegressor(kernel_size=kernel_size, n_kernels=n_kernels,
                           pool_size=pool_size, activation="relu",
                           random_state=0).fit(X[train], y[train])
        assert est.loss_curve_[0] < 0.5  # below the mean's, on the scaled target
        train_rmse = np.sqrt(np.mean((est.predict(X[train]) - y[train]) ** 2))
        test_rmse = np.sqrt(np.mean((est.predict(X[test]) - y[test]) ** 2))
        assert train_rmse < 0.5 * y[train].std()
        assert test_rmse < 1.3 * ridge_rmse, geometry


def test_adam_defaults_do_not_oscillate_on_a_full_batch():
    rng = np.random.default_rng(0)
    X, y, _ = _spectra(172, rng, length=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = CNNRegressor(kernel_size=5, n_kernels=4, pool_size=5,
                           activation="relu", solver="adam", max_iter=40,
                           random_state=0).fit(X, 18.0 + 12.7 * y)
    curve = np.asarray(est.loss_curve_)
    assert np.all(np.diff(curve) <= 1e-9 * curve[:-1])


def test_linear_classifier_is_equivariant_to_shifted_and_scaled_inputs():
    """The logistic fits of the identity network run on centered, unit-scale
    inputs: raw values (pixels 0..255, reflectances in the thousands) give the
    same classifier as standardized ones, mapped back exactly."""
    rng = np.random.default_rng(0)
    X, _, heights = _spectra(120, rng)
    labels = (heights[:, 0] > heights[:, 1]).astype(int) + (heights[:, 2] > 0.5)
    params = dict(kernel_size=5, n_kernels=2, pool_size=4, max_iter=20,
                  random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        unit = CNNClassifier(**params).fit(X, labels)
        raw = CNNClassifier(**params).fit(4000.0 + 900.0 * X, labels)
    np.testing.assert_allclose(raw.decision_function(4000.0 + 900.0 * X),
                               unit.decision_function(X), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(900.0 * raw.coef_, unit.coef_, rtol=1e-8,
                               atol=1e-10)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_random_start_of_a_single_one_by_one_kernel_has_the_fan_in_scale(activation):
    """One kernel of one entry: its random start has the He / Glorot size
    ``sqrt(gain)`` (a sample of one entry has no spread to scale by; dividing
    by it gave a kernel of 1e299 and overflowing starts)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(40, 12))
    y = X @ rng.normal(size=12)
    est = CNNRegressor(kernel_size=1, pool_size=1, activation=activation,
                       init="random", alpha=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fitted = _start(est, X, y)
        # the start rescales the kernel to unit pre-activations: finite, and
        # its fitted head makes it no worse than the mean
        assert np.all(np.isfinite(fitted.kernels_))
        residual = np.mean((fitted.predict(X) - y) ** 2)
    assert residual <= np.var(y) * (1 + 1e-9)
    from sktensorcnn._network_starts import _random_kernels
    from sktensorcnn._problem import FitOptions, FitSpec

    spec = FitSpec(task=None, structure=None, geometry=fitted.geometry_,
                   activation=activation, solver="gd", constraint="rank",
                   options=FitOptions.of(est), rng=np.random.RandomState(0))
    kernel = _random_kernels(spec, fitted._kernel_structure(fitted.geometry_).kernels)
    gain = 2.0 if activation == "relu" else 1.0
    np.testing.assert_allclose(np.abs(kernel[0]).ravel(), np.sqrt(gain), rtol=1e-12)


@pytest.mark.parametrize("cls, structure", [(TuckerCNNRegressor, {"ranks": 1}),
                                             (CPCNNRegressor, {"rank": 1})])
def test_spectral_start_of_factors_of_unequal_scales_stays_finite(cls, structure):
    """Entries of 1e-169 but one of -1e-126 (drawn by hypothesis): the linear
    fit behind the spectral start has a core of about 1e38 beside unit
    factors.  Noise at the parameters' common scale made the factors 1e36 and
    the kernels 1e180, whose squares overflowed and crashed the fit in its
    FC solve; each parameter's noise is at its own scale now."""
    X = np.full((6, 1, 2, 2, 2), 9.00820720e-169)
    X[0, 0, 0, 0, 1] = -1.45775151e-126
    y = X.reshape(6, -1).sum(axis=1)
    est = cls(kernel_size=1, pool_size=1, pool_stride=(1, 2, 2), channel_axis=1,
              activation="relu", fit_intercept=False, max_iter=2, random_state=0,
              **structure)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # two iterations
        warnings.simplefilter("error", RuntimeWarning)  # no overflow anywhere
        est.fit(X, y)
        predictions = est.predict(X)
    assert np.all(np.isfinite(predictions))
    # no worse than the trivial model (without an intercept: zero)
    assert np.mean((predictions - y) ** 2) <= np.mean(y**2) * (1 + 1e-9)


@pytest.mark.filterwarnings("error")
def test_kernels_normalized_past_the_square_root_of_the_largest_float():
    """Per-kernel factors giving unit-RMS convolution outputs, for kernels
    whose outputs (about 1e200) have squares beyond the float range: the
    factors of the same kernels at unit scale, divided by their scales."""
    from sktensorcnn._network_starts import normalize_kernels

    rng = np.random.default_rng(0)
    geometry = ConvPoolGeometry.from_params((6, 5), kernel_size=2, pool_size=1)
    X = rng.standard_normal((10, 6, 5))
    kernels = rng.standard_normal((2, 2, 2))
    weights = np.r_[0.0, np.full(9, 1 / 9)]  # a sample of weight zero too
    unit = normalize_kernels(X, kernels, geometry, weights)
    scales = np.array([1e200, 3e199])
    huge = normalize_kernels(X, kernels * scales[:, None, None], geometry, weights)
    np.testing.assert_allclose(huge, unit / scales, rtol=1e-12)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("columns", ["dead", "duplicated", "tiny"])
def test_the_heads_least_squares_on_degenerate_activations(columns):
    """The squared loss's FC solve on activations that vanish, repeat or
    differ by rounding: the least-squares predictions (unique even where the
    weights are not), and no warning (the solve decides without the warnings
    machinery, whose process-wide filter concurrent fits would race on)."""
    from sklearn.linear_model import LinearRegression

    from sktensorcnn._network_starts import fit_head

    rng = np.random.default_rng(0)
    H = rng.standard_normal((50, 4))
    if columns == "dead":
        H[:, 1] = 0.0
    elif columns == "duplicated":
        H[:, 1] = H[:, 0]
    else:
        H[:, 1] = H[:, 0] * (1 + 1e-14)
    y = H @ [1.0, 0.5, -2.0, 0.0] + 0.1 * rng.standard_normal(50)
    weights = np.full(50, 1 / 50)
    fc, b = fit_head(H, y, weights, loss="squared", n_out=1, alpha=0.0,
                     fit_intercept=True, intercept0=np.zeros(1))
    reference = LinearRegression().fit(H, y).predict(H)
    np.testing.assert_allclose(H @ fc.T[:, 0] + b, reference, atol=1e-6)
