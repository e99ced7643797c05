"""The estimators inside scikit-learn's tools: preprocessing that keeps shapes,
flattened input, pipelines, persistence, thread settings."""

import pickle
import warnings

import joblib
import numba
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import cross_val_score, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktensorcnn import (
    CNNClassifier,
    CNNRegressor,
    CPCNNRegressor,
    TuckerCNNClassifier,
    TuckerCNNRegressor,
    conv_pool_features,
)
from sktensorcnn.datasets import make_cnn_regression
from sktensorcnn.kernels import resolve_n_jobs
from sktensorcnn.preprocessing import (
    ConvPoolFeatures,
    TensorStandardScaler,
    flatten_samples,
    unflatten_samples,
)


@pytest.fixture(scope="module")
def volumes():
    X, y, teacher = make_cnn_regression("T1", n_samples=600, random_state=0)
    return X, y, teacher


def test_tensor_scaler_global_per_channel_and_per_position():
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, (40, 2, 5, 6))
    X[:, 1] = 10 + 5 * X[:, 1]
    glob = TensorStandardScaler().fit(X)
    assert glob.mean_.shape == (1, 1, 1)
    Xt = glob.transform(X)
    assert Xt.shape == X.shape
    assert Xt.mean() == pytest.approx(0, abs=1e-12) and Xt.std() == pytest.approx(1)
    per_channel = TensorStandardScaler(channel_axis=1).fit(X)
    Xc = per_channel.transform(X)
    np.testing.assert_allclose(Xc.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(Xc.std(axis=(0, 2, 3)), 1)
    per_position = TensorStandardScaler(per_position=True).fit(X)
    np.testing.assert_allclose(per_position.transform(X).reshape(40, -1),
                               StandardScaler().fit_transform(X.reshape(40, -1)),
                               atol=1e-12)
    np.testing.assert_allclose(per_position.inverse_transform(
        per_position.transform(X)), X)
    w = rng.uniform(0, 2, 40)
    weighted = TensorStandardScaler().fit(X, sample_weight=w)
    assert weighted.mean_ == pytest.approx(np.average(X.reshape(40, -1).mean(1),
                                                      weights=w))
    with pytest.raises(ValueError, match="expecting 60 features"):
        glob.transform(X[:, :1])


def test_conv_pool_features_transformer_is_the_linear_cnn(volumes):
    X, y, _ = volumes
    layer = dict(kernel_size=(5, 5, 3), pool_size=3)
    features = ConvPoolFeatures(**layer).fit(X)
    Z = features.transform(X)
    np.testing.assert_allclose(
        Z, conv_pool_features(X, features.geometry_).reshape(len(X), -1))
    assert len(features.get_feature_names_out()) == Z.shape[1]
    # unconstrained linear CNN = ridge on Z; the low-rank CNN is never better in
    # sample but close out of sample
    ridge = make_pipeline(ConvPoolFeatures(**layer), RidgeCV()).fit(X[:400], y[:400])
    cnn = CNNRegressor(n_kernels=2, **layer).fit(X[:400], y[:400])
    assert ridge.score(X[400:], y[400:]) > 0.5
    assert cnn.score(X[400:], y[400:]) > 0.5


def test_flattened_input_with_sample_shape(volumes):
    X, y, _ = volumes
    flat = flatten_samples(X)
    np.testing.assert_array_equal(unflatten_samples(flat, X.shape[1:]), X)
    layer = dict(kernel_size=(5, 5, 3), pool_size=3, random_state=0)
    est = TuckerCNNRegressor(ranks=(2, 2, 2, 1), **layer).fit(X, y)
    # after a 2-d-only transformer: StandardScaler on flattened voxels
    pipe = make_pipeline(StandardScaler(with_mean=False, with_std=False),
                         TuckerCNNRegressor(ranks=(2, 2, 2, 1),
                                            sample_shape=X.shape[1:], **layer))
    pipe.fit(flat, y)
    np.testing.assert_allclose(pipe.predict(flat), est.predict(X), atol=1e-10)
    with pytest.raises(ValueError, match=r"sample_shape=\(10, 10, 8\) needs X"):
        pipe[-1].predict(flat[:, :-1])


def test_pipeline_of_tensor_scaler_and_classifier_in_cross_validation():
    rng = np.random.default_rng(1)
    X = rng.normal(5.0, 3.0, (240, 8, 8))
    y = (X[:, 2:5, 2:5].mean(axis=(1, 2)) > 5.0).astype(int)
    pipe = make_pipeline(TensorStandardScaler(),
                         CNNClassifier(n_kernels=2, kernel_size=3, pool_size=2))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.8


@pytest.mark.parametrize("make", [
    lambda: TuckerCNNRegressor(ranks=(2, 2, 2, 1), kernel_size=(5, 5, 3),
                               pool_size=3),
    lambda: CPCNNRegressor(rank=2, kernel_size=(5, 5, 3), pool_size=3,
                           activation="relu", max_iter=20),
    lambda: TuckerCNNClassifier(ranks=2, kernel_size=(5, 5, 3), pool_size=3),
], ids=["tucker", "cp-relu", "tucker-classifier"])
def test_pickle_and_skops_round_trips(volumes, make, tmp_path):
    X, y, _ = volumes
    if "Classifier" in type(make()).__name__:
        y = np.where(y > np.median(y), "high", "low")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = make().fit(X, y)
    expected = est.predict(X)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict(X), expected)
    import skops.io as sio  # in the test extra: a broken skops must fail here

    path = tmp_path / "model.skops"
    sio.dump(est, path)
    untrusted = sio.get_untrusted_types(file=path)
    # nothing but our own classes needs trusting
    assert all(name.startswith("sktensorcnn.") for name in untrusted), untrusted
    loaded = sio.load(path, trusted=untrusted)
    np.testing.assert_array_equal(loaded.predict(X), expected)


def test_n_jobs_sets_numba_threads_during_fit(monkeypatch):
    seen = []
    from sktensorcnn import kernels

    original = kernels.conv_pool_features

    def spy(*args, **kwargs):
        seen.append(numba.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(kernels, "conv_pool_features", spy)
    X = np.random.default_rng(0).standard_normal((50, 9, 9))
    y = X[:, 3, 3]
    before = numba.get_num_threads()
    CNNRegressor(n_jobs=1).fit(X, y)
    assert set(seen) == {1}
    assert numba.get_num_threads() == before  # restored
    assert resolve_n_jobs(-1) == numba.config.NUMBA_NUM_THREADS
    assert resolve_n_jobs(None) == numba.get_num_threads()
    with pytest.raises(ValueError, match="n_jobs=0"):
        resolve_n_jobs(0)


class _ThreadRecorder(CNNRegressor):
    def fit(self, X, y, sample_weight=None):
        super().fit(X, y, sample_weight)
        self.threads_seen_ = numba.get_num_threads()
        return self


def test_process_workers_do_not_oversubscribe():
    """Under cross_validate / GridSearchCV(n_jobs=2) joblib's process workers get
    NUMBA_NUM_THREADS lowered to cores // 2; the default n_jobs=None follows it,
    and an explicit n_jobs is capped by it."""
    X = np.random.default_rng(0).standard_normal((80, 9, 9))
    y = X[:, 3, 3] + X[:, 4, 4]
    expected = max(joblib.cpu_count() // 2, 1)
    for n_jobs in (None, -1, 64):
        result = cross_validate(_ThreadRecorder(n_jobs=n_jobs), X, y, cv=2,
                                n_jobs=2, return_estimator=True)
        assert [e.threads_seen_ for e in result["estimator"]] == [expected] * 2
