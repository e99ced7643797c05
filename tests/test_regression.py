import warnings

import numpy as np
import pytest
from _reference import network_reference
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from sktensorcnn import CNNRegressor, CPCNNRegressor, TuckerCNNRegressor
from sktensorcnn.datasets import make_cnn_regression
from sktensorcnn.features import conv_pool_features, features_to_input_space
from sktensorcnn.testing import geometries

ESTIMATORS = [CNNRegressor, TuckerCNNRegressor, CPCNNRegressor]


def _geometry_params(g):
    return dict(kernel_size=g.kernel_size, stride=g.stride,
                padding=tuple(lo for lo, _ in g.padding), pool_size=g.pool_size,
                pool_stride=g.pool_stride)


@given(geometry=geometries(), seed=st.integers(0, 2**16),
       cls=st.sampled_from(ESTIMATORS), channels_last=st.booleans())
def test_predict_is_input_space_dot_and_network(geometry, seed, cls, channels_last):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((12, *geometry.input_shape))
    y = rng.standard_normal(12)
    channel_axis = None
    if geometry.n_channels is not None:
        channel_axis = -1 if channels_last else 1
        if channels_last:
            X = np.moveaxis(X, 1, -1)
    est = cls(channel_axis=channel_axis, max_iter=5, tol=0, random_state=0,
              **_geometry_params(geometry))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est.coef_.shape == X.shape[1:]
    pred = est.predict(X)
    np.testing.assert_allclose(
        pred, X.reshape(12, -1) @ est.coef_.ravel() + est.intercept_, atol=1e-10
    )
    # the exported kernels and FC weights are the network that predicts
    X_cf = np.moveaxis(X, -1, 1) if channel_axis == -1 else X
    direct = network_reference(X_cf, est.kernels_, est.fc_weights_, est.intercept_,
                               geometry)
    np.testing.assert_allclose(pred, direct, atol=1e-10)
    assert est.kernels_.shape == (est.n_kernels_, *geometry.kernel_shape)
    assert est.fc_weights_.shape == (est.n_kernels_, *geometry.pooled_shape)


def _input_space_error(est, teacher):
    truth = features_to_input_space(teacher.weight, teacher.geometry)
    return np.linalg.norm(est.coef_ - truth) / np.linalg.norm(truth)


@pytest.mark.parametrize("setting", ["S1", "S2", "S3", "S4", "T1", "T2", "T3", "T4"])
def test_estimation_error_falls_as_n_grows(setting):
    sizes = (300, 1200, 4800)
    errors = []
    for n in sizes:
        per_seed = []
        for seed in range(3):
            X, y, teacher = make_cnn_regression(setting, n_samples=n, noise=1.0,
                                                random_state=seed)
            params = dict(teacher.params)
            cls = TuckerCNNRegressor if "ranks" in params else CNNRegressor
            # the spectral start alone: the estimator's consistency is under
            # test here, and the random starts (tested in test_starts) triple
            # the time of the Tucker fits without ever ending lower on these
            est = cls(**params, n_init=1, random_state=seed).fit(X, y)
            per_seed.append(_input_space_error(est, teacher))
            if teacher.geometry.identifiable:
                # then W itself is identifiable and converges too
                rel = np.linalg.norm(est.weight_ - teacher.weight) / np.linalg.norm(
                    teacher.weight)
                per_seed[-1] = max(per_seed[-1], rel)
            curve = np.asarray(est.loss_curve_)
            assert np.all(np.diff(curve) <= 1e-9 * curve[:-1])
        errors.append(np.mean(per_seed))
    assert errors[0] > errors[1] > errors[2]
    # root-n rate: 16x the data should cut the error about 4x
    assert errors[2] < 0.4 * errors[0]


def test_tucker_recovery_is_accurate_with_enough_data():
    X, y, teacher = make_cnn_regression("T1", n_samples=5000, noise=0.5,
                                        random_state=1)
    est = TuckerCNNRegressor(**teacher.params, random_state=0).fit(X, y)
    assert _input_space_error(est, teacher) < 0.1
    assert est.ranks_ == (2, 2, 2, 1)
    assert est.n_kernels_ == 2
    # Corollary 1: one output rank means one effective kernel
    assert np.allclose(est.kernels_[1], 0) and np.allclose(est.fc_weights_[1], 0)
    assert est.model_complexity_ == 8 + (10 + 10 + 6) + 8
    assert est.n_params_ == 8 + (10 + 10 + 6 + 2) + 2 * 8 + 1


def test_clone_params_and_grid_search_over_ranks():
    X, y, teacher = make_cnn_regression("T1", n_samples=1500, noise=0.5,
                                        random_state=2)
    est = TuckerCNNRegressor(kernel_size=(5, 5, 3), pool_size=3, random_state=0)
    assert clone(est).get_params() == est.get_params()
    est.set_params(ranks=(1, 1, 1, 1))
    assert est.get_params()["ranks"] == (1, 1, 1, 1)
    grid = GridSearchCV(
        est, {"ranks": [(1, 1, 1, 1), (2, 2, 2, 1), (2, 2, 2, 2)]}, cv=3
    ).fit(X, y)
    assert grid.best_params_["ranks"] == (2, 2, 2, 1)
    assert grid.best_estimator_.predict(X[:3]).shape == (3,)


def test_one_dimensional_signals_from_2d_X(rng):
    X = rng.standard_normal((200, 30))
    w = np.sin(np.arange(30) / 3)
    y = X @ w
    est = CPCNNRegressor(rank=2, kernel_size=5, pool_size=2).fit(X, y)
    assert est.coef_.shape == (30,)
    assert est.n_features_in_ == 30
    assert est.predict(X).shape == (200,)


def test_sample_weight_equals_repetition(rng):
    X, y, teacher = make_cnn_regression("S2", n_samples=200, random_state=3)
    weights = rng.integers(1, 4, size=200)
    kw = dict(teacher.params, tol=1e-12, max_iter=500)
    a = CNNRegressor(**kw).fit(X, y, sample_weight=weights)
    b = CNNRegressor(**kw).fit(np.repeat(X, weights, 0), np.repeat(y, weights))
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-6, atol=1e-8)
    assert a.intercept_ == pytest.approx(b.intercept_, rel=1e-6, abs=1e-8)


def test_float32_input(rng):
    X, y, teacher = make_cnn_regression("S1", n_samples=500, random_state=0)
    a = CNNRegressor(**teacher.params).fit(X, y)
    b = CNNRegressor(**teacher.params).fit(X.astype(np.float32), y)
    np.testing.assert_allclose(a.predict(X), b.predict(X.astype(np.float32)),
                               rtol=1e-4, atol=1e-4)


def test_large_feature_count_uses_features_path(monkeypatch):
    """L * P above the Gram limit: fitted on Z itself, same answers."""
    from sktensorcnn import datafits

    X, y, teacher = make_cnn_regression("S3", n_samples=300, random_state=0)
    kw = dict(teacher.params, tol=1e-12, max_iter=300, random_state=0)
    a = CNNRegressor(**kw).fit(X, y)
    monkeypatch.setattr(datafits, "GRAM_MAX_FEATURES", 1)
    with warnings.catch_warnings():  # init='auto': random starts, quietly
        warnings.simplefilter("error", UserWarning)
        b = CNNRegressor(**kw).fit(X, y)
    # both stop on a 1e-12 relative objective decrease: weights agree to ~1e-6
    assert a.alpha_ == pytest.approx(b.alpha_, rel=1e-10)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-5,
                               atol=1e-5 * np.std(y))


def test_warm_start_resumes(rng):
    X, y, teacher = make_cnn_regression("T1", n_samples=800, random_state=0)
    est = TuckerCNNRegressor(**teacher.params, warm_start=True, tol=1e-10,
                             max_iter=500, random_state=0).fit(X, y)
    first = est.n_iter_
    est.fit(X, y)
    assert est.n_iter_ < first
    assert est.n_iter_ <= 2


def test_convergence_warning_at_max_iter():
    X, y, teacher = make_cnn_regression("T1", n_samples=300, random_state=0)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        TuckerCNNRegressor(**teacher.params, max_iter=1, tol=0).fit(X, y)
    with pytest.warns(ConvergenceWarning):
        TuckerCNNRegressor(**teacher.params, solver="lbfgs", max_iter=2,
                           tol=0).fit(X, y)


def test_lbfgs_and_als_agree():
    X, y, teacher = make_cnn_regression("S2", n_samples=600, random_state=0)
    kw = dict(teacher.params, tol=1e-12, max_iter=2000)
    a = CNNRegressor(**kw, solver="als").fit(X, y)
    b = CNNRegressor(**kw, solver="lbfgs").fit(X, y)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-4, atol=1e-4)


def test_alpha_shrinks(rng):
    X, y, teacher = make_cnn_regression("S1", n_samples=300, random_state=0)
    norms = [np.linalg.norm(CNNRegressor(**teacher.params, alpha=a).fit(X, y).weight_)
             for a in (0.0, 1.0, 100.0)]
    assert norms[0] > norms[1] > norms[2]


@pytest.mark.parametrize(
    "est, match",
    [
        (TuckerCNNRegressor(ranks=(2, 2, 1), kernel_size=2), r"ranks=.*has 3 entries"),
        (TuckerCNNRegressor(ranks=(3, 2, 2, 1), kernel_size=2),
         r"ranks\[0\]=3 exceeds the size of kernel mode l_1=2"),
        (TuckerCNNRegressor(ranks=(2, 2, 2, 3), n_kernels=2, kernel_size=2),
         r"ranks\[-1\]=3 .* exceeds n_kernels=2"),
        (CPCNNRegressor(rank=3, n_kernels=2, kernel_size=2),
         r"rank=3 exceeds n_kernels"),
        (CNNRegressor(kernel_size=9), r"kernel_size\[0\]=9 is larger"),
    ],
)
def test_bad_configuration_errors(est, match):
    X = np.random.default_rng(0).standard_normal((20, 7, 5, 7))
    with pytest.raises(ValueError, match=match):
        est.fit(X, np.zeros(20))


def test_input_errors(rng):
    X = rng.standard_normal((20, 6, 6))
    y = rng.standard_normal(20)
    est = CNNRegressor(kernel_size=2).fit(X, y)
    size_msg = r"X has 30 features, but CNNRegressor is expecting 36 .*\(6, 6\)"
    with pytest.raises(ValueError, match=size_msg):
        est.predict(X[:, :, :5])
    shape_msg = r"samples of shape \(4, 9\).*fitted on .*\(6, 6\)"
    with pytest.raises(ValueError, match=shape_msg):
        est.predict(X.reshape(20, 4, 9))
    bad = X.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        CNNRegressor(kernel_size=2).fit(bad, y)
    with pytest.raises(ValueError, match="different numbers of samples"):
        CNNRegressor(kernel_size=2).fit(X, y[:10])
    with pytest.raises(ValueError, match="channel_axis=1 needs X of shape"):
        CNNRegressor(kernel_size=2, channel_axis=1).fit(X[:, 0], y)
    with pytest.raises(ValueError, match="activation"):
        CNNRegressor(activation="swish").fit(X, y)
    with pytest.raises(ValueError, match="n_kernels"):
        CNNRegressor(n_kernels=0).fit(X, y)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        CNNRegressor().predict(X)


def test_custom_setting_dict():
    setting = dict(input_shape=(9, 9), kernel_size=(3, 3), pool_size=(3, 3),
                   n_kernels=2, ranks=(2, 2, 1))
    X, y, teacher = make_cnn_regression(setting, n_samples=400, noise=0.1,
                                        random_state=0)
    assert X.shape == (400, 9, 9) and teacher.ranks == (2, 2, 1)
    est = TuckerCNNRegressor(**teacher.params).fit(X, y)
    assert est.score(X, y) > 0.9
    with pytest.raises(ValueError, match="missing the key"):
        make_cnn_regression(dict(input_shape=(9, 9)))
    with pytest.raises(ValueError, match="setting='S9' is unknown"):
        make_cnn_regression("S9")


def test_cp_teacher_is_recovered():
    setting = dict(input_shape=(10, 10, 8), kernel_size=(5, 5, 3), pool_size=3,
                   n_kernels=3, rank=2)
    X, y, teacher = make_cnn_regression(setting, n_samples=3000, noise=0.5,
                                        random_state=0)
    assert teacher.params["rank"] == 2
    est = CPCNNRegressor(**teacher.params, random_state=0).fit(X, y)
    assert _input_space_error(est, teacher) < 0.1
    with pytest.raises(ValueError, match="both 'ranks'"):
        make_cnn_regression(dict(setting, ranks=(2, 2, 2, 1)))


def test_make_cnn_regression_draws_new_data_from_a_given_teacher():
    X, y, teacher = make_cnn_regression("S2", n_samples=50, noise=0.0,
                                        random_state=0)
    X2, y2, same = make_cnn_regression("S2", n_samples=80, noise=0.0,
                                       teacher=teacher, random_state=1)
    assert same is teacher and X2.shape == (80, 7, 5, 7)
    assert not np.allclose(X2[:50], X)
    Z = conv_pool_features(X2, teacher.geometry).reshape(80, -1)
    np.testing.assert_allclose(y2, Z @ teacher.weight.ravel())
    with pytest.raises(ValueError, match="another setting"):
        make_cnn_regression("S3", n_samples=10, teacher=teacher)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("activation", ["identity", "relu"])
def test_warm_start_on_a_new_sample_shape_or_new_classes_starts_afresh(activation):
    """A network cannot continue a fit on samples of another shape or with
    another number of outputs: it warns and fits as a cold start would."""
    from sktensorcnn import TuckerCNNClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 8, 8))
    y = X[:, 2:5, 2:5].sum(axis=(1, 2))
    common = dict(kernel_size=3, pool_size=2, activation=activation, max_iter=5,
                  random_state=0)
    est = CNNRegressor(warm_start=True, **common).fit(X, y)
    with pytest.warns(UserWarning, match="starts afresh"):
        est.fit(X[:, :6, :6], y)
    cold = CNNRegressor(**common).fit(X[:, :6, :6], y)
    np.testing.assert_array_equal(est.predict(X[:, :6, :6]),
                                  cold.predict(X[:, :6, :6]))
    two, three = (y > 0).astype(int), np.digitize(y, [-1.0, 1.0])
    clf = TuckerCNNClassifier(2, warm_start=True, **common).fit(X, two)
    with pytest.warns(UserWarning, match="1 output"):
        clf.fit(X, three)
    cold = TuckerCNNClassifier(2, **common).fit(X, three)
    np.testing.assert_array_equal(clf.predict_proba(X), cold.predict_proba(X))
