"""Fits and predictions on Dask arrays, with Dask's default scheduler and on a
``distributed.LocalCluster`` (2 worker processes, 1 thread each).

The in-memory fit is the reference: every evaluation on a Dask array is a sum
over its blocks of the in-memory kernels, so the evaluations agree to
rounding; the linear squared-loss fits (sufficient statistics, then the same
solvers) agree to 1e-10; fits by an iterative solver agree to the solver's
tolerance.
"""

import threading
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from sktensorcnn import (
    CNNClassifier,
    CNNRegressor,
    CPCNNClassifier,
    CPCNNRegressor,
    TuckerCNNClassifier,
    TuckerCNNRegressor,
    kernels,
)
from sktensorcnn._dask import validate_samples
from sktensorcnn.activations import activation_code
from sktensorcnn.geometry import ConvPoolGeometry
from sktensorcnn.losses import loss_code
from sktensorcnn.network import _spread

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

COMMON = dict(kernel_size=3, pool_size=2, random_state=0)


def _data(n=150, seed=0, shape=(8, 8)):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, *shape))
    y = X[:, 2:5, 2:5].sum(axis=(1, 2)) + 0.1 * rng.standard_normal(n) + 3.0
    return X, y


def _fit(est, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kwargs)


def _lazy(X, chunks=(40, 50, 60)):
    """A Dask array of ``X`` in irregular sample blocks (and a second axis
    chunked too, which the estimators rechunk)."""
    sizes = [*chunks, len(X) - sum(chunks)]  # the last one may be empty
    return da.from_array(X, chunks=(tuple(sizes), 3, *X.shape[2:]))


@pytest.mark.parametrize("activation, loss, n_out", [
    ("relu", "squared", 1), ("tanh", "huber", 2), ("softplus", "multinomial", 3)])
@pytest.mark.parametrize("factorized", [False, True])
def test_evaluations_are_the_in_memory_ones(activation, loss, n_out, factorized):
    rng = np.random.default_rng(1)
    geometry = ConvPoolGeometry.from_params((9, 8), n_channels=2, kernel_size=3,
                                            pool_size=2)
    X = rng.standard_normal((130, *geometry.input_shape))
    y = (rng.integers(0, n_out, 130).astype(float) if loss == "multinomial"
         else rng.standard_normal((130, n_out)))
    w = rng.uniform(0.5, 1.5, 130)
    K = 3
    Bt = _spread(rng.standard_normal((n_out, K, *geometry.pooled_shape)), geometry)
    b = rng.standard_normal(n_out)
    lazy = da.from_array(X, chunks=(37, 2, 9, 8))
    host = kernels.stage_samples(X, geometry, y, w)
    staged = kernels.stage_samples(lazy, geometry, y, w)
    code, lcode = activation_code(activation), loss_code(loss)
    if factorized:
        params = [rng.standard_normal(s) for s in [(3, 2), (3, 2), (2, 2), (K, 2),
                                                   (2, 2, 2, 2)]]
        expected = host.factorized_loss_grad(params, Bt, b, code, lcode, "tucker")
        got = staged.factorized_loss_grad(params, Bt, b, code, lcode, "tucker")
        expected = [expected[0], *expected[1], *expected[2:]]
        got = [got[0], *got[1], *got[2:]]
    else:
        A = rng.standard_normal((K, *geometry.kernel_shape))
        expected = host.loss_grad(A, Bt, b, code, lcode)
        got = staged.loss_grad(A, Bt, b, code, lcode)
        np.testing.assert_allclose(staged.forward(A, Bt, b, code),
                                   host.forward(A, Bt, b, code), rtol=1e-12)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-11, atol=1e-13)
    rows = np.array([5, 77, 3, 129])  # a mini-batch gathers its rows
    A = rng.standard_normal((K, *geometry.kernel_shape))
    for e, g in zip(host.take(rows).loss_grad(A, Bt, b, code, lcode),
                    staged.take(rows).loss_grad(A, Bt, b, code, lcode)):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("est", [
    CNNRegressor(2, **COMMON),
    TuckerCNNRegressor((2, 2, 2), **COMMON),
    CPCNNRegressor(rank=2, **COMMON),
    CNNRegressor(2, solver="lbfgs", **COMMON),
], ids=lambda est: f"{type(est).__name__}-{est.solver}")
@pytest.mark.parametrize("n_targets", [1, 2])
def test_linear_squared_fits_equal_the_in_memory_fit(est, n_targets):
    X, y = _data()
    if n_targets == 2:
        y = np.column_stack([y, -y + np.sin(X[:, 0, 0])])
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(y))
    expected = _fit(est, X, y, sample_weight=w).predict(X)
    alpha = est.alpha_
    lazy = _lazy(X)
    prediction = _fit(est, lazy, y, sample_weight=w).predict(lazy)
    assert isinstance(prediction, da.Array)  # lazy, block by block
    np.testing.assert_allclose(prediction.compute(), expected, rtol=1e-10, atol=1e-10)
    assert est.alpha_ == pytest.approx(alpha, rel=1e-10)


@pytest.mark.parametrize("est", [
    CNNRegressor(2, activation="tanh", loss="huber", tol=1e-12, max_iter=2000,
                 **COMMON),
    TuckerCNNRegressor((2, 2, 2), activation="tanh", tol=1e-12, max_iter=2000,
                       **COMMON),
    CPCNNClassifier(rank=2, activation="tanh", tol=1e-12, max_iter=2000, **COMMON),
    CNNClassifier(2, tol=1e-12, max_iter=2000, **COMMON),
    TuckerCNNClassifier((2, 2, 2), tol=1e-12, max_iter=2000, **COMMON),
    TuckerCNNRegressor((2, 2, 2), solver="pgd", tol=1e-12, max_iter=2000, **COMMON),
], ids=lambda est: f"{type(est).__name__}-{est.activation}-{est.solver}")
def test_iterative_fits_reach_the_in_memory_optimum(est):
    X, y = _data()
    target = np.digitize(y, np.quantile(y, [0.3, 0.6])) if hasattr(
        est, "predict_proba") else y
    expected = _fit(est, X, target)
    loss, scores = expected.loss_curve_[-1], _outputs(expected, X)
    lazy = _lazy(X)
    _fit(est, lazy, target)
    assert est.loss_curve_[-1] == pytest.approx(loss, rel=1e-6, abs=1e-9)
    got = _outputs(est, lazy)
    assert isinstance(got, da.Array)
    np.testing.assert_allclose(got.compute(), scores, atol=1e-4)
    if hasattr(est, "predict_proba"):
        np.testing.assert_array_equal(est.predict(lazy).compute(), est.predict(X))
        np.testing.assert_allclose(est.predict_proba(lazy).compute(),
                                   est.predict_proba(X), rtol=1e-12)


def _outputs(est, X):
    return est.decision_function(X) if hasattr(est, "predict_proba") else est.predict(X)


def test_epoch_solvers_and_partial_fit_on_a_dask_array():
    """Full batches (``batch_size='auto'`` covers the 150 samples): the same
    epochs as in memory, to rounding."""
    X, y = _data()
    est = CNNRegressor(2, activation="relu", solver="adam", max_iter=3, **COMMON)
    expected = _fit(est, X, y).predict(X)
    lazy = _lazy(X)
    np.testing.assert_allclose(_fit(est, lazy, y).predict(lazy).compute(), expected,
                               rtol=1e-8, atol=1e-8)
    est = CNNRegressor(2, activation="relu", **COMMON)
    est.partial_fit(X, y)
    est.partial_fit(X, y)
    other = CNNRegressor(2, activation="relu", **COMMON)
    other.partial_fit(lazy, y)
    other.partial_fit(lazy, y)
    np.testing.assert_allclose(other.predict(X), est.predict(X), rtol=1e-8, atol=1e-8)


def test_early_stopping_stages_its_validation_rows_once(monkeypatch):
    from sktensorcnn import _dask

    X, y = _data(n=200)
    est = CNNRegressor(2, activation="tanh", solver="gd", early_stopping=True,
                       max_iter=12, n_iter_no_change=100, **COMMON)
    expected = _fit(clone(est), X, y).validation_scores_
    staged, init = [], _dask.DaskSamples.__init__

    def counting(self, X, *args, **kwargs):
        staged.append(X.shape[0])
        init(self, X, *args, **kwargs)

    monkeypatch.setattr(_dask.DaskSamples, "__init__", counting)
    got = _fit(clone(est), _lazy(X), y).validation_scores_
    assert len(got) == len(expected) == 12
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    # the 20 validation rows are staged once, not once per epoch
    assert staged.count(20) == 1


def test_mini_batches_read_each_block_once_per_epoch():
    X, y = _data()
    geometry = ConvPoolGeometry.from_params(X.shape[1:], kernel_size=3, pool_size=2)
    staged = kernels.stage_samples(validate_samples(_lazy(X)), geometry, y)
    order = staged.epoch_order(np.random.RandomState(0))
    np.testing.assert_array_equal(np.sort(order), np.arange(len(X)))
    # blocks one after another: the block of each row changes 2 times (3 blocks)
    blocks = np.searchsorted([40, 90], order, side="right")
    assert np.count_nonzero(np.diff(blocks)) == 2
    loads = []
    read = staged._block

    def counting(b):
        if b != staged._block_index:
            loads.append(b)
        return read(b)

    staged._block = counting
    for first in range(0, len(X), 16):  # batches along the order
        rows = order[first:first + 16]
        batch = staged.take(rows)
        np.testing.assert_array_equal(batch.X, X[rows])
        np.testing.assert_array_equal(batch.y[:, 0], y[rows])
    assert sorted(loads) == [0, 1, 2]
    # rows from every block are gathered, whatever their order
    rows = np.array([149, 0, 45, 100, 1])
    np.testing.assert_array_equal(staged.take(rows).X, X[rows])


def test_adam_mini_batches_on_a_dask_array_fit_as_well():
    """Block-wise batches are other batches than in memory: the fits are
    different draws of the same method, and fit as well."""
    X, y = _data()
    est = CNNRegressor(2, activation="relu", solver="adam", max_iter=20,
                       batch_size=16, **COMMON)
    in_memory = _fit(clone(est), X, y)
    on_blocks = _fit(clone(est), _lazy(X), y)
    assert on_blocks.n_iter_ == in_memory.n_iter_ == 20
    assert on_blocks.loss_curve_[-1] < 0.96 * on_blocks.loss_curve_[0]
    assert abs(on_blocks.loss_curve_[-1] / in_memory.loss_curve_[-1] - 1) < 0.05
    assert abs(on_blocks.score(X, y) - in_memory.score(X, y)) < 0.01


def test_channels_last_and_flattened_samples():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((90, 7, 6, 3))  # channels last
    y = X[:, 1:4, 1:4, 0].sum(axis=(1, 2))
    est = TuckerCNNRegressor((2, 2, 2, 2), channel_axis=-1, **COMMON)
    expected = _fit(est, X, y).predict(X)
    lazy = da.from_array(X, chunks=(25, 7, 6, 3))
    np.testing.assert_allclose(_fit(est, lazy, y).predict(lazy).compute(), expected,
                               rtol=1e-10, atol=1e-10)
    flat = X[..., 0].reshape(90, -1)
    est = CNNRegressor(2, sample_shape=(7, 6), **COMMON)
    expected = _fit(est, flat, y).predict(flat)
    lazy = da.from_array(flat, chunks=(30, 42))
    np.testing.assert_allclose(_fit(est, lazy, y).predict(lazy).compute(), expected,
                               rtol=1e-10, atol=1e-10)


def test_bad_dask_input_gets_clear_errors():
    X, y = _data(n=40)
    X[3, 1, 1] = np.nan
    est = CNNRegressor(**COMMON)
    with pytest.raises(ValueError, match="NaN or infinity"):
        est.fit(da.from_array(X, chunks=10), y)
    X, y = _data(n=40)
    with pytest.raises(ValueError, match="got 1-d"):
        est.fit(da.from_array(X[:, 0, 0], chunks=10), y)
    with pytest.raises(ValueError, match="numeric"):
        est.fit(da.from_array(X.astype(str), chunks=10), y)
    est.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        est.predict(da.from_array(X[:, :6, :6], chunks=10))


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        # the cluster's own start-up notes (ports, temporary directories)
        warnings.simplefilter("ignore", UserWarning)
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                           processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        yield client


def test_fits_on_a_local_cluster(client):
    X, y = _data(n=200)
    lazy = _lazy(X, chunks=(50, 50, 50))
    linear = TuckerCNNRegressor((2, 2, 2), **COMMON)
    expected = _fit(linear, X, y).predict(X)
    np.testing.assert_allclose(_fit(linear, lazy, y).predict(lazy).compute(),
                               expected, rtol=1e-10, atol=1e-10)
    network = CNNRegressor(2, activation="tanh", tol=1e-12, max_iter=2000, **COMMON)
    loss = _fit(network, X, y).loss_curve_[-1]
    _fit(network, lazy, y)
    assert network.loss_curve_[-1] == pytest.approx(loss, rel=1e-7)
    # the blocks were reduced on the workers: both took part
    assert all(n > 0 for n in client.run(_tasks_done).values())


def test_an_evaluation_on_the_cluster_sends_parameters_not_rows(client, monkeypatch):
    # The targets and weights are persisted beside the blocks when the samples
    # are staged: each loss-and-gradient evaluation's graph holds the
    # parameters and the blocks' keys, so its size does not grow with n.
    import cloudpickle
    import dask

    compute, sent = dask.compute, []

    def recording(*collections, **kwargs):
        sent.append(len(cloudpickle.dumps(dict(collections[0].__dask_graph__()))))
        return compute(*collections, **kwargs)

    geometry = ConvPoolGeometry.from_params((8, 8), kernel_size=3, pool_size=2)
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 3, 3))
    Bt = _spread(rng.standard_normal((1, 2, 3, 3)), geometry)
    for n in (400, 10_000):
        X, y = _data(n=n)
        staged = kernels.stage_samples(da.from_array(X, chunks=(n // 4, 8, 8)),
                                       geometry, y, rng.uniform(0.5, 1.5, n))
        monkeypatch.setattr(dask, "compute", recording)
        got = staged.loss_grad(A, Bt, np.zeros(1), activation_code("relu"),
                               loss_code("squared"))
        monkeypatch.setattr(dask, "compute", compute)
        expected = kernels.stage_samples(X, geometry, y, staged.weights * n).loss_grad(
            A, Bt, np.zeros(1), activation_code("relu"), loss_code("squared"))
        for e, g in zip(expected, got):
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-13)
    # 10,000 rows of targets and weights would be 160 kB
    assert sent[1] - sent[0] < 2_000


def _tasks_done(dask_worker):
    return len(dask_worker.state.log)


def test_grid_search_under_the_dask_joblib_backend(client):
    """GridSearchCV's fits run in the workers' tasks, numba on one thread each
    (Dask runs a task per worker thread)."""
    import joblib

    X, y = _data(n=120)
    grid = GridSearchCV(CNNRegressor(activation="relu", **COMMON),
                        {"n_kernels": [1, 3]}, cv=3, n_jobs=-1)
    with joblib.parallel_backend("dask"):
        _fit(grid, X, y)
    assert grid.best_params_ == {"n_kernels": 3}
    assert client.submit(_numba_threads_in_a_task, pure=False).result() == 1


def _numba_threads_in_a_task():
    import numba

    from sktensorcnn import kernels

    with kernels.limit_threads(None):  # what a fit in a task runs on
        return numba.get_num_threads()


def test_a_worker_killed_during_a_fit(client):
    """A worker process dies in the middle of a fit: Dask recomputes its blocks
    elsewhere (their graph holds the data) and the fit ends as it would have,
    or the fit raises; never a silently different model."""
    import os
    import time

    X, y = _data(n=200)
    est = CNNRegressor(2, activation="tanh", tol=1e-12, max_iter=300, **COMMON)
    loss = _fit(est, X, y).loss_curve_[-1]
    pids = client.run(os.getpid)
    victim = sorted(pids)[0]
    killed = []

    def kill():
        time.sleep(0.5)
        killed.append(time.perf_counter())
        try:
            client.run(os._exit, 1, workers=[victim])
        except Exception:  # the worker never answers: it is gone
            pass

    killer = threading.Thread(target=kill)
    killer.start()
    try:
        _fit(est, _lazy(X, chunks=(50, 50, 50)), y)
        ended = time.perf_counter()
    except distributed.KilledWorker:
        return
    finally:
        killer.join()
    assert killed[0] < ended, "the fit ended before the worker was killed"
    assert est.loss_curve_[-1] == pytest.approx(loss, rel=1e-6)
    assert pids[victim] not in client.run(os.getpid).values()  # it did die


def test_model_selection_takes_lazy_folds():
    from sklearn.model_selection import cross_val_score

    from sktensorcnn.model_selection import RankPathCV

    X, y = _data(n=150)
    lazy = da.from_array(X, chunks=50)
    est = TuckerCNNRegressor((1, 1, 1), **COMMON)
    np.testing.assert_allclose(cross_val_score(est, lazy, y, cv=3),
                               cross_val_score(est, X, y, cv=3), rtol=1e-10)
    path = [(1, 1, 1), (2, 2, 2)]
    expected = RankPathCV(est, path=path, cv=3).fit(X, y)
    got = RankPathCV(est, path=path, cv=3).fit(lazy, y)
    # the first candidate starts as a plain fit: equal to rounding; the next
    # warm-starts from it padded by an SVD whose extra vectors rounding
    # decides (a different local optimum of the same quality)
    np.testing.assert_allclose(got.cv_scores_[0], expected.cv_scores_[0], rtol=1e-8)
    np.testing.assert_allclose(got.cv_scores_[1], expected.cv_scores_[1], atol=2e-2)
    assert got.best_value_ == expected.best_value_
    assert isinstance(got.predict(lazy), da.Array)


def test_transformers_and_a_pipeline_stay_lazy():
    from sklearn.pipeline import make_pipeline

    from sktensorcnn.preprocessing import ConvPoolFeatures, TensorStandardScaler

    rng = np.random.default_rng(5)
    X = rng.standard_normal((120, 3, 7, 6)) * np.array([1.0, 10.0, 100.0])[
        None, :, None, None]
    y = (X[:, 0, 2:5, 2:5].sum(axis=(1, 2)) > 0).astype(int)
    w = rng.uniform(0.5, 2.0, len(y))
    lazy = da.from_array(X, chunks=(35, 3, 7, 6))
    scaler = TensorStandardScaler(channel_axis=1)
    expected = scaler.fit(X, sample_weight=w).transform(X)
    got = scaler.fit(lazy, sample_weight=w).transform(lazy)
    assert isinstance(got, da.Array)
    np.testing.assert_allclose(got.compute(), expected, rtol=1e-12, atol=1e-12)
    features = ConvPoolFeatures(kernel_size=3, pool_size=2, channel_axis=1).fit(X)
    Z = features.transform(lazy)
    assert isinstance(Z, da.Array)
    np.testing.assert_array_equal(Z.compute(), features.transform(X))
    pipe = make_pipeline(TensorStandardScaler(channel_axis=1),
                         CNNClassifier(2, channel_axis=1, tol=1e-12, max_iter=2000,
                                       **COMMON))
    expected = _fit(pipe, X, y).predict_proba(X)
    proba = _fit(pipe, lazy, y).predict_proba(lazy)
    assert isinstance(proba, da.Array)
    np.testing.assert_allclose(proba.compute(), expected, atol=1e-5)
