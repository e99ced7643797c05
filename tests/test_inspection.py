"""Displays of sktensorcnn.inspection draw what the fitted estimator holds."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from sktensorcnn import (
    CNNClassifier,
    CNNRegressor,
    CPCNNRegressor,
    TuckerCNNRegressor,
)
from sktensorcnn.model_selection import RankPathCV
from sktensorcnn.preprocessing import TensorStandardScaler

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sktensorcnn.inspection import (  # noqa: E402
    KernelDisplay,
    LossCurveDisplay,
    RankScoreDisplay,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _data(shape, n=48, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, *shape))
    return X, X.reshape(n, -1)[:, :5].sum(axis=1) + 0.1 * rng.standard_normal(n)


def test_kernels_of_volumes_with_channels_last_are_sliced_per_channel():
    X, y = _data((6, 6, 4, 2))  # 3 spatial modes, 2 channels last
    est = CNNRegressor(kernel_size=3, n_kernels=3, pool_size=2,
                       channel_axis=-1).fit(X, y)
    display = KernelDisplay.from_estimator(est)
    # kernels_ is (K, C, l1, l2, l3); one panel per kernel and channel, the
    # third mode sliced at its middle
    assert len(display.images) == 3 * 2
    for c in range(2):
        for k in range(3):
            np.testing.assert_array_equal(display.images[c * 3 + k],
                                          est.kernels_[k, c, :, :, 1])
    assert display.axes_.shape == (6,)
    # one colour scale centred on zero for every panel
    limits = {artist.get_clim() for artist in display.artists_}
    peak = np.abs(est.kernels_[:, :, :, :, 1]).max()
    assert limits == {(-peak, peak)}


def test_one_channel_and_slice_index():
    X, y = _data((2, 6, 6, 4))  # channels first
    est = CNNRegressor(kernel_size=3, n_kernels=2, pool_size=2,
                       channel_axis=1).fit(X, y)
    display = KernelDisplay.from_estimator(est, channel=1, slice_index=0)
    assert len(display.images) == 2
    np.testing.assert_array_equal(display.images[1], est.kernels_[1, 1, :, :, 0])
    with pytest.raises(ValueError, match="channel=2 is out of range"):
        KernelDisplay.from_estimator(est, channel=2)
    with pytest.raises(ValueError, match="slice_index=3"):
        KernelDisplay.from_estimator(est, slice_index=3)


def test_coef_is_the_input_space_weight_in_the_sample_layout():
    X, y = _data((7, 7, 2))
    est = TuckerCNNRegressor((2, 2, 1, 1), kernel_size=3, pool_size=2,
                             channel_axis=-1).fit(X, y)
    # coef_ is what the network computes: predict = <coef_, x> + intercept_
    direct = X.reshape(len(X), -1) @ est.coef_.ravel() + est.intercept_
    np.testing.assert_allclose(est.predict(X), direct, rtol=1e-8, atol=1e-10)
    pipeline = make_pipeline(TensorStandardScaler(), clone(est)).fit(X, y)
    display = KernelDisplay.from_estimator(pipeline, weights="coef")
    # channels last in the samples, one panel per channel
    assert [t for t in display.titles] == ["coef_, channel 0", "coef_, channel 1"]
    np.testing.assert_array_equal(display.images[1], pipeline[-1].coef_[:, :, 1])


def test_coef_of_one_class_and_signals_as_curves():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((90, 12))
    y = np.argmax(X[:, [1, 5, 9]], axis=1)
    est = CNNClassifier(kernel_size=3, n_kernels=2, pool_size=2).fit(X, y)
    display = KernelDisplay.from_estimator(est, weights="coef", output=2)
    assert display.images[0].ndim == 1
    np.testing.assert_array_equal(display.artists_[0].get_ydata(), est.coef_[2])
    with pytest.raises(ValueError, match="output=3 is out of range"):
        KernelDisplay.from_estimator(est, weights="coef", output=3)


def test_coef_needs_the_identity_network_and_axes_must_suffice():
    X, y = _data((6, 6))
    est = CNNRegressor(kernel_size=3, n_kernels=2, pool_size=2, activation="relu",
                       max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    with pytest.raises(ValueError, match="only the identity activation"):
        KernelDisplay.from_estimator(est, weights="coef")
    with pytest.raises(ValueError, match="weights='bias'"):
        KernelDisplay.from_estimator(est, weights="bias")
    _, axes = plt.subplots(1, 1)
    with pytest.raises(ValueError, match="ax holds 1 Axes but there are 2"):
        KernelDisplay.from_estimator(est, ax=axes)
    _, axes = plt.subplots(1, 2)
    display = KernelDisplay.from_estimator(est, ax=axes)
    assert list(display.axes_) == list(axes)


def test_kernel_display_refuses_an_unfitted_estimator():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        KernelDisplay.from_estimator(CNNRegressor())


def test_loss_curve_and_validation_scores():
    X, y = _data((6, 6), n=120)
    est = CPCNNRegressor(2, kernel_size=3, pool_size=2, activation="relu",
                         solver="adam", early_stopping=True, max_iter=15,
                         random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    display = LossCurveDisplay.from_estimator(est)
    np.testing.assert_array_equal(display.line_.get_ydata(), est.loss_curve_)
    np.testing.assert_array_equal(display.validation_line_.get_ydata(),
                                  est.validation_scores_)
    assert display.ax_.get_yscale() == "log"
    # without early stopping there is no validation line
    lbfgs = CNNRegressor(kernel_size=3, n_kernels=2, pool_size=2,
                         activation="relu").fit(X, y)
    assert LossCurveDisplay.from_estimator(lbfgs).validation_line_ is None


def test_rank_path_scores_against_the_fitted_complexity():
    X, y = _data((8, 8), n=60)
    path = [1, (2, 2, 1), (2, 2, 2)]
    search = RankPathCV(TuckerCNNRegressor(1, kernel_size=3, pool_size=2),
                        path=path, cv=3).fit(X, y)
    display = RankScoreDisplay.from_cv_results(search, x="d_M")
    # d_M computed without fitting equals the d_M of each candidate fitted
    fitted = [TuckerCNNRegressor(r, kernel_size=3, pool_size=2).fit(X, y)
              .model_complexity_ for r in path]
    assert display.complexities.tolist() == fitted
    np.testing.assert_array_equal(display.line_.lines[0].get_ydata(),
                                  search.mean_scores_)
    np.testing.assert_allclose(display.std_scores, search.cv_scores_.std(axis=1))
    assert display.best_index == search.best_index_


def test_grid_search_over_two_parameters_in_a_pipeline():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((60, 8, 8))
    y = (X[:, 2:5, 2:5].mean(axis=(1, 2)) > 0).astype(int)
    pipe = make_pipeline(TensorStandardScaler(),
                         CNNClassifier(kernel_size=3, pool_size=2))
    grid = {"cnnclassifier__n_kernels": [1, 2, 3],
            "cnnclassifier__alpha": [1e-3, 1.0]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    with pytest.raises(ValueError, match="varies 2 parameters"):
        RankScoreDisplay.from_cv_results(search)
    with pytest.raises(ValueError, match="param='n_kernels' is not a parameter"):
        RankScoreDisplay.from_cv_results(search, param="n_kernels")
    display = RankScoreDisplay.from_cv_results(
        search, param="cnnclassifier__n_kernels", x="d_M")
    best_alpha = search.best_params_["cnnclassifier__alpha"]
    rows = [i for i, p in enumerate(search.cv_results_["params"])
            if p["cnnclassifier__alpha"] == best_alpha]
    np.testing.assert_array_equal(display.mean_scores,
                                  search.cv_results_["mean_test_score"][rows])
    assert display.values == [1, 2, 3]
    # K dense kernels of 9 entries, 9 cells each, one output, and a bias per
    # kernel: d_M = K (P + L + 1)
    assert display.complexities.tolist() == [19, 38, 57]
    assert display.values[display.best_index] == search.best_params_[
        "cnnclassifier__n_kernels"]
    tick_labels = [t.get_text() for t in
                   RankScoreDisplay.from_cv_results(
                       search, param="cnnclassifier__n_kernels").ax_.get_xticklabels()]
    assert tick_labels == ["1", "2", "3"]


def test_rank_score_display_refuses_what_is_not_a_search():
    with pytest.raises(TypeError, match="fitted GridSearchCV or RankPathCV"):
        RankScoreDisplay.from_cv_results(CNNRegressor())
