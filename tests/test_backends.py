"""The backend seam: estimators reach the kernels only through staged samples
(:func:`sktensorcnn.kernels.stage_samples`), so a backend registered in
``kernels.BACKENDS`` runs a whole fit without any change to the estimators."""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sktensorcnn import CNNClassifier, CNNRegressor, kernels
from sktensorcnn.kernels import HostSamples


class RecordingSamples(HostSamples):
    """A stand-in backend: host memory, counting what the estimators ask for."""

    calls: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        RecordingSamples.calls.append("stage")

    def take(self, rows):
        view = super().take(rows)
        view.__class__ = RecordingSamples
        return view

    def loss_grad(self, *args):
        RecordingSamples.calls.append("loss_grad")
        return super().loss_grad(*args)

    def factorized_loss_grad(self, *args):
        RecordingSamples.calls.append("factorized_loss_grad")
        return super().factorized_loss_grad(*args)


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def test_a_registered_backend_runs_whole_fits(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 7, 7))
    y = np.tanh(X[:, 2:4, 2:4].sum(axis=(1, 2)))
    labels = (y > 0).astype(int)
    cases = [
        (CNNRegressor(n_kernels=2, kernel_size=2, activation="tanh", max_iter=5,
                      random_state=0), y),
        (CNNRegressor(n_kernels=2, kernel_size=2, activation="relu", solver="adam",
                      batch_size=20, max_iter=2, random_state=0), y),
        (CNNClassifier(n_kernels=2, kernel_size=2, activation="relu", max_iter=5,
                       random_state=0), labels),
    ]
    expected = [_fit(est, X, target).predict(X) for est, target in cases]
    cpu = kernels.BACKENDS["cpu"]
    monkeypatch.setitem(kernels.BACKENDS, "cpu",
                        kernels.Backend(stage=RecordingSamples, features=cpu.features))
    for (est, target), reference in zip(cases, expected):
        RecordingSamples.calls = []
        got = _fit(est, X, target).predict(X)
        # the fit stages its samples, then evaluates the network through the
        # backend only, and computes what the built-in one computes
        assert RecordingSamples.calls.count("stage") >= 1
        assert RecordingSamples.calls.count("loss_grad") >= 2
        np.testing.assert_array_equal(got, reference)


def test_staged_minibatches_normalize_their_weights():
    rng = np.random.default_rng(1)
    from sktensorcnn import ConvPoolGeometry
    from sktensorcnn.activations import activation_code
    from sktensorcnn.losses import loss_code

    g = ConvPoolGeometry.from_params((6, 6), kernel_size=2, pool_size=2)
    X = rng.standard_normal((10, 6, 6))
    y = rng.standard_normal(10)
    w = rng.uniform(0.5, 2.0, 10)
    A = rng.standard_normal((2, 2, 2))
    Bt = rng.standard_normal((1, 2, 5, 5))
    b = np.zeros(1)
    rows = np.array([1, 4, 7])
    staged = kernels.stage_samples(X, g, y, w).take(rows)
    direct = kernels.network_loss_grad(X[rows], y[rows], w[rows] / w[rows].sum(), A,
                                       Bt, b, g, activation_code("tanh"),
                                       loss_code("squared"))
    via_stage = kernels.network_loss_grad(staged, None, None, A, Bt, b, g,
                                          activation_code("tanh"),
                                          loss_code("squared"))
    for d, s in zip(direct, via_stage):
        np.testing.assert_allclose(s, d, rtol=1e-12)


def test_the_linear_fits_take_their_features_from_the_backend(monkeypatch):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((80, 7, 7))
    y = X[:, 1:4, 1:4].sum(axis=(1, 2))
    reference = CNNRegressor(kernel_size=2).fit(X, y).predict(X)
    cpu = kernels.BACKENDS["cpu"]
    seen = []

    def features(X, geometry, out=None):
        seen.append(X.shape[0])
        return cpu.features(X, geometry, out)

    monkeypatch.setitem(kernels.BACKENDS, "cpu",
                        kernels.Backend(stage=cpu.stage, features=features))
    np.testing.assert_array_equal(CNNRegressor(kernel_size=2).fit(X, y).predict(X),
                                  reference)
    assert sum(seen) >= len(X)  # every sample's features came through it
