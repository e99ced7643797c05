"""scikit-learn's callbacks on the fit loops (``sklearn.callback``, scikit-learn
1.9 and later).

A fit is reported as a tree of tasks, as scikit-learn's callback API asks:

* the root task, ``fit`` or ``partial_fit``;
* one task per solver run: each start of a multi-start fit (``n_init``), each
  epoch pass of ``partial_fit``;
* one leaf per iteration of that run (an ALS sweep, an L-BFGS iteration, an
  epoch, a PGD or rank-reduction step).

``ProgressBar`` therefore draws one bar per solver run, advancing per
iteration; ``ScoringMonitor`` scores the estimator as it stands after each
iteration of ``fit`` (the linear fit that starts a network is not reported)
and, for ``partial_fit``, after the epoch (the root task).  A callback that
asks to stop (``on_fit_task_end`` returns True) ends the solver run there, as
a converged one.

The solvers know nothing of estimators: a fit routine hands its solver a
*monitor* (:meth:`FitProgress.monitor`), a callable on the current parameters
that returns whether to stop; the routine also says how parameters become a
fitted model (its ``snapshot``), and the estimator how that model becomes
fitted attributes, so that the model at an iteration is built only when a
callback asks for it.
"""

from __future__ import annotations

from collections.abc import Callable

try:
    from sklearn.callback import CallbackSupportMixin, with_callbacks
except ImportError:  # scikit-learn < 1.9 has no callback API

    class CallbackSupportMixin:  # type: ignore[no-redef]
        """Without ``sklearn.callback`` estimators take no callbacks."""

    def with_callbacks(method):  # type: ignore[no-redef]
        return method


__all__ = ["CallbackSupportMixin", "FitProgress", "start_progress", "with_callbacks"]


class FitProgress:
    """The callback tasks of one fit.

    Parameters
    ----------
    estimator : estimator
        The estimator being fitted (what the hooks receive).
    context : sklearn.callback.CallbackContext
        The fit's root task.
    X, y, metadata
        The training data and metadata the hooks receive (``metadata``: the
        sample weights).

    Attributes
    ----------
    to_attributes : callable or None
        ``Fitted -> dict``: the fitted attributes of a model that a fit routine
        snapshots (``fitted_estimator`` of the hooks); set by the estimator
        once it knows the fit's geometry and scales.
    """

    def __init__(self, estimator, context, X, y, metadata) -> None:
        self._estimator = estimator
        self._context = context
        self._data = dict(X=X, y=y, metadata=metadata)
        self.to_attributes = None
        self._run = None
        self._run_monitor = None

    def begin(self) -> None:
        self._context.call_on_fit_task_begin(estimator=self._estimator,
                                             **self._data)

    def end(self) -> None:
        """End the open solver run and the fit (the estimator is fitted)."""
        self._end_run()
        self._context.call_on_fit_task_end(estimator=self._estimator,
                                           reconstruction_attributes={},
                                           **self._data)

    def monitor(self, name: str, max_iter: int | None,
                snapshot: Callable | None = None) -> Callable[[list], bool]:
        """A solver run's monitor: ``monitor(params) -> stop``, called after
        each iteration with the current parameters.

        Parameters
        ----------
        name : str
            The solver (the run's task name).
        max_iter : int or None
            The run's most iterations (its number of subtasks).
        snapshot : callable, optional
            ``params -> Fitted``: the model at these parameters, built only
            when a callback asks for the fitted estimator.
        """

        def monitor(params) -> bool:
            if self._run_monitor is not monitor:  # the run's first iteration
                self._end_run()
                self._run = self._context.subcontext(
                    task_name=name, max_subtasks=max_iter)
                self._run.call_on_fit_task_begin(estimator=self._estimator,
                                                 **self._data)
                self._run_monitor = monitor
            leaf = self._run.subcontext(task_name="iteration")
            leaf.call_on_fit_task_begin(estimator=self._estimator, **self._data)
            attributes = None
            if snapshot is not None and self.to_attributes is not None:
                def attributes():
                    return self.to_attributes(snapshot(params))
            return bool(leaf.call_on_fit_task_end(
                estimator=self._estimator, reconstruction_attributes=attributes,
                **self._data))

        return monitor

    def _end_run(self) -> None:
        if self._run is not None:
            self._run.call_on_fit_task_end(estimator=self._estimator, **self._data)
            self._run = self._run_monitor = None


def start_progress(estimator, task_name: str, X, y,
                   sample_weight) -> FitProgress | None:
    """Open the callback tasks of a fit of ``estimator``, or ``None`` when no
    callback listens (no ``sklearn.callback``, none set, none propagated from
    a meta-estimator)."""
    if not hasattr(estimator, "_init_callback_context"):
        return None
    context = estimator._init_callback_context(task_name=task_name,
                                               max_subtasks=None)
    if not getattr(estimator, "_skl_callbacks", None):
        return None
    metadata = {} if sample_weight is None else {"sample_weight": sample_weight}
    progress = FitProgress(estimator, context, X, y, metadata)
    progress.begin()
    return progress

