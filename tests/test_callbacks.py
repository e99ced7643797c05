"""scikit-learn's callbacks (``sklearn.callback``, scikit-learn >= 1.9) on the
fit loops: the task tree, the model at each iteration, stop requests, the
callbacks scikit-learn ships."""

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
)

callback = pytest.importorskip("sklearn.callback")

GEOMETRY = dict(kernel_size=3, pool_size=2, random_state=0)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 9, 8))
    y = X[:, 2:5, 3:6].sum(axis=(1, 2)) + 0.3 * rng.standard_normal(90)
    return X, y, (y > np.median(y)).astype(int)


class Recorder:
    """Records every hook call: (hook, task name, task depth) and, at the
    end of iterations, the fitted estimator's predictions."""

    def __init__(self, X=None, stop_at=None):
        self.X, self.stop_at = X, stop_at
        self.events, self.predictions = [], []

    def setup(self, estimator, context):
        self.events.append(("setup", None, None))

    def teardown(self, estimator, context):
        self.events.append(("teardown", None, None))

    def on_fit_task_begin(self, estimator, context):
        self.events.append(("begin", context.task_name, _depth(context)))

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        self.events.append(("end", context.task_name, _depth(context)))
        if context.task_name == "iteration" and self.X is not None:
            self.predictions.append(fitted_estimator.predict(self.X))
            return len(self.predictions) == self.stop_at
        return False

    def iterations(self):
        return sum(1 for hook, name, _ in self.events
                   if hook == "end" and name == "iteration")


def _depth(context):
    depth = 0
    while context.parent is not None:
        context, depth = context.parent, depth + 1
    return depth


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


CASES = [
    (CNNRegressor(n_kernels=2, **GEOMETRY), "als"),
    (TuckerCNNRegressor((2, 2, 1), n_kernels=2, n_init=1, **GEOMETRY), "als"),
    (CPCNNRegressor(rank=2, n_init=1, solver="lbfgs", **GEOMETRY), "lbfgs"),
    (CNNRegressor(n_kernels=2, activation="relu", max_iter=15, **GEOMETRY), "lbfgs"),
    (TuckerCNNRegressor((2, 2, 2), activation="tanh", solver="adam", max_iter=6,
                        **GEOMETRY), "adam"),
    (CPCNNRegressor(rank=2, solver="gd", max_iter=6, activation="relu",
                    **GEOMETRY), "gd"),
    (CNNRegressor(n_kernels=2, constraint="sparse", sparsity=8, max_iter=8,
                  **GEOMETRY), "pgd"),
    (TuckerCNNRegressor((3, 3, 2), solver="lrd", max_iter=8, **GEOMETRY), "lrd"),
    (TuckerCNNRegressor((3, 3, 2), solver="lrd", activation="relu", max_iter=8,
                        **GEOMETRY), "lrd"),
    (CNNRegressor(n_kernels=2, solver="pgd", activation="relu", max_iter=8,
                  **GEOMETRY), "pgd"),
    (CNNClassifier(n_kernels=2, max_iter=15, **GEOMETRY), "lbfgs"),
    (TuckerCNNClassifier((2, 2, 2), activation="relu", max_iter=15, **GEOMETRY),
     "lbfgs"),
    (CPCNNClassifier(rank=2, solver="adam", max_iter=5, **GEOMETRY), "adam"),
]
IDS = [f"{type(est).__name__}-{solver}-{est.activation}" for est, solver in CASES]


def _targets(est, data):
    X, y, labels = data
    return X, (labels if type(est).__name__.endswith("Classifier") else y)


@pytest.mark.parametrize(("est", "solver"), CASES, ids=IDS)
def test_task_tree_and_model_at_each_iteration(est, solver, data):
    """A root task, one task per solver run named by the solver, one leaf per
    iteration; the model a callback gets after the last iteration predicts
    as the fitted estimator does, and a fit with callbacks ends where one
    without them does."""
    X, y = _targets(est, data)
    plain = _fit(clone(est), X, y)
    recorder = Recorder(X)
    watched = _fit(clone(est).set_callbacks(recorder), X, y)

    events = recorder.events
    assert events[0] == ("setup", None, None)
    assert events[-1] == ("teardown", None, None)
    assert events[1] == ("begin", "fit", 0)
    assert events[-2] == ("end", "fit", 0)
    runs = {name for hook, name, depth in events if depth == 1}
    assert runs == {solver}
    begins = [e[1:] for e in events if e[0] == "begin"]
    ends = [e[1:] for e in events if e[0] == "end"]
    assert sorted(begins) == sorted(ends)
    assert all(depth == 2 for _, name, depth in events if name == "iteration")
    # one start: the run's iterations are the fit's
    assert recorder.iterations() == watched.n_iter_ == len(watched.loss_curve_)
    np.testing.assert_allclose(recorder.predictions[-1], watched.predict(X),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(watched.predict(X), plain.predict(X))


@pytest.mark.parametrize(("est", "solver"), [CASES[1], CASES[2], CASES[10]],
                         ids=[IDS[1], IDS[2], IDS[10]])
def test_model_at_iteration_k_is_the_fit_with_max_iter_k(est, solver, data):
    """ALS and L-BFGS iterates do not depend on ``max_iter``: the model the
    callbacks get after iteration ``k`` of a linear fit is the one a fit with
    ``max_iter=k`` returns.  (A network's start is a linear fit with the same
    ``max_iter``, so there the equality does not hold.)"""
    X, y = _targets(est, data)
    recorder = Recorder(X)
    _fit(clone(est).set_params(max_iter=6).set_callbacks(recorder), X, y)
    for k in (1, 3):
        short = _fit(clone(est).set_params(max_iter=k), X, y)
        np.testing.assert_allclose(recorder.predictions[k - 1], short.predict(X),
                                   rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize(("est", "solver"), [CASES[0], CASES[3], CASES[4],
                                             CASES[6], CASES[7]],
                         ids=[IDS[0], IDS[3], IDS[4], IDS[6], IDS[7]])
def test_a_callback_stops_the_fit(est, solver, data):
    """``on_fit_task_end`` returning True ends the run at that iteration, as
    converged: no ConvergenceWarning, the model is the one at that iteration."""
    X, y = _targets(est, data)
    recorder = Recorder(X, stop_at=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        stopped = clone(est).set_params(max_iter=50).set_callbacks(recorder).fit(X, y)
    assert stopped.n_iter_ == 2 == recorder.iterations()
    np.testing.assert_allclose(recorder.predictions[-1], stopped.predict(X),
                               rtol=1e-10, atol=1e-10)


def test_several_starts_are_several_runs(data):
    X, y, _ = data
    recorder = Recorder()
    est = TuckerCNNRegressor((2, 2, 1), n_kernels=2, n_init=3, **GEOMETRY)
    _fit(est.set_callbacks(recorder), X, y)
    runs = [e for e in recorder.events if e[0] == "begin" and e[2] == 1]
    assert len(runs) == 3


def test_partial_fit_is_one_epoch_task(data):
    X, y, _ = data
    recorder = Recorder()
    est = CNNRegressor(n_kernels=2, solver="adam", **GEOMETRY).set_callbacks(recorder)
    est.partial_fit(X, y).partial_fit(X, y)
    roots = [e for e in recorder.events if e[1] == "partial_fit"]
    assert roots == [("begin", "partial_fit", 0), ("end", "partial_fit", 0)] * 2
    assert recorder.iterations() == 2
    assert recorder.events.count(("teardown", None, None)) == 2


def test_failed_fit_tears_callbacks_down(data):
    X, y, _ = data
    recorder = Recorder()
    est = CNNRegressor(n_kernels=2, **GEOMETRY).set_callbacks(recorder)
    with pytest.raises(ValueError):
        est.fit(X[:, :1, :1], y)  # smaller than the kernel
    assert recorder.events[-1] == ("teardown", None, None)
    assert not hasattr(est, "kernels_")


def test_scoring_monitor_scores_every_iteration(data):
    X, y, _ = data
    monitor = callback.ScoringMonitor(scoring="r2")
    est = CNNRegressor(n_kernels=2, activation="relu", max_iter=10, **GEOMETRY)
    _fit(est.set_callbacks(monitor), X, y)
    rows = monitor.get_logs().data
    scores = [row["r2"] for row in rows if row["task_name"] == "iteration"]
    assert len(scores) == est.n_iter_
    final = [row["r2"] for row in rows if row["task_name"] == "fit"]
    assert final == [pytest.approx(est.score(X, y), abs=1e-12)]
    assert scores[-1] == pytest.approx(est.score(X, y), abs=1e-10)
    assert scores[-1] > scores[0]


def test_progress_bar_and_grid_search(data):
    """scikit-learn's ProgressBar on a fit and propagated from a grid search."""
    pytest.importorskip("rich")
    X, y, _ = data
    est = CPCNNRegressor(rank=1, activation="relu", max_iter=10, **GEOMETRY)
    _fit(clone(est).set_callbacks(callback.ProgressBar()), X, y)
    search = GridSearchCV(est, {"rank": [1, 2]}, cv=2)
    _fit(search.set_callbacks(callback.ProgressBar(max_propagation_depth=None)), X, y)
    assert search.best_params_["rank"] in (1, 2)
    assert not hasattr(search.best_estimator_, "_skl_callbacks")
