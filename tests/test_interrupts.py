"""Interrupted and failed fits leave the estimator as it was.

A fit publishes its fitted attributes all at once at the end or not at all:
after Ctrl-C (or any error) during ``fit`` or ``partial_fit``, an estimator
that was not fitted raises ``NotFittedError`` and one that was fitted predicts
as before, whatever shapes the interrupted fit saw.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from sktensorcnn import CNNClassifier, CNNRegressor, _solver_table

# the fits here stop after a few iterations by design
pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")

SIGINT_DURING_FIT = textwrap.dedent(
    """
    import os, signal, threading, warnings
    import numpy as np
    from sklearn.exceptions import NotFittedError
    from sktensorcnn import CNNRegressor

    from sklearn.exceptions import ConvergenceWarning

    warnings.simplefilter("ignore", ConvergenceWarning)  # the compiling fit
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 16, 16))
    y = X[:, 4:9, 4:9].sum(axis=(1, 2))
    small, y_small = X[:50, :10, :10], y[:50]

    def make(max_iter=5000):
        return CNNRegressor(kernel_size=3, pool_size=2, n_kernels=4,
                            activation="relu", max_iter=max_iter, tol=0.0,
                            random_state=0)

    make(2).fit(X[:100], y[:100])  # compiled before the clock starts

    def interrupted_fit(est, delay):
        timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            est.fit(X, y)
        except KeyboardInterrupt:
            return
        finally:
            timer.cancel()
        raise AssertionError("the fit ended before the interrupt")

    for delay in (0.3, 1.5):
        est = make()
        interrupted_fit(est, delay)
        try:
            est.predict(X[:3])
            raise AssertionError("a half-fitted estimator predicts")
        except NotFittedError:
            pass
        assert not [k for k in vars(est) if k.endswith("_")], vars(est).keys()

    est = make(3).fit(small, y_small).set_params(max_iter=5000)
    before = est.predict(small)
    interrupted_fit(est, 1.0)
    np.testing.assert_array_equal(est.predict(small), before)
    print("interrupts ok")
    """
)


def test_ctrl_c_during_fit_is_a_keyboard_interrupt_and_leaves_no_half_fit():
    """A real SIGINT, in a subprocess (pytest stops on a stray interrupt)."""
    result = subprocess.run([sys.executable, "-c", SIGINT_DURING_FIT],
                            capture_output=True, text=True, timeout=600,
                            env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "interrupts ok" in result.stdout


def _failing_routine(error):
    def routine(spec, X, y, sample_weight):
        raise error
    return routine


def _with_failing_solver(monkeypatch, error):
    failing = _failing_routine(error)
    monkeypatch.setitem(_solver_table.SOLVERS, "lbfgs", _solver_table.Solver(
        failing, failing))


@pytest.mark.parametrize("error", [
    KeyboardInterrupt(),
    # numba reports Ctrl-C inside a compiled kernel as a SystemError
    # caused by the interrupt
    SystemError("CPUDispatcher(<function ...>) returned a result with an "
                "exception set"),
    ValueError("some step failed"),
])
def test_a_failed_refit_keeps_the_previous_fit(monkeypatch, error):
    if isinstance(error, SystemError):
        error.__cause__ = KeyboardInterrupt()
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 8, 8)), rng.integers(0, 3, 40)
    est = CNNClassifier(kernel_size=3, pool_size=2, activation="relu",
                        max_iter=5, random_state=0).fit(X, y)
    fitted = {k: v for k, v in vars(est).items()}
    before = est.decision_function(X)
    _with_failing_solver(monkeypatch, error)
    expected = ValueError if isinstance(error, ValueError) else KeyboardInterrupt
    with pytest.raises(expected):
        est.fit(X[:, :6, :6], (y + 1) % 2)  # a new shape and new classes
    assert vars(est).keys() == fitted.keys()
    assert all(vars(est)[k] is v for k, v in fitted.items())
    np.testing.assert_array_equal(est.decision_function(X), before)


def test_an_interrupted_first_partial_fit_leaves_the_estimator_unfitted(
        monkeypatch):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 8, 8)), rng.standard_normal(40)
    est = CNNRegressor(kernel_size=3, pool_size=2, random_state=0)
    from sktensorcnn import _base

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_base, "fit_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        est.partial_fit(X, y)
    with pytest.raises(NotFittedError):
        est.predict(X)
    assert not [k for k in vars(est) if k.endswith("_")]
