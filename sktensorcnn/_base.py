"""The tensor CNN estimators' base class.

An estimator is thin: it validates the input (:mod:`sktensorcnn._validation`),
builds a :class:`~sktensorcnn._problem.FitSpec` (the task, the kernel
structure, the geometry, the solver and its options), runs the fit routine the
solver table gives (:mod:`sktensorcnn._solver_table`) and publishes what it
returns as fitted attributes (:mod:`sktensorcnn._export`).  A kernel-structure
mixin (:mod:`sktensorcnn.kernel_structures`) says how the kernel tensor is
constrained; the task class (regression, classification) says what is
predicted: its loss, how targets are encoded, how many outputs the network has
(``n_out``: one, or one per class with the kernels shared) and how the fitted
output layer is exposed.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import kernels, losses
from ._callbacks import CallbackSupportMixin, start_progress, with_callbacks
from ._dask import is_dask_array, map_samples
from ._export import FittedNetworkMixin, fc_by_output
from ._fit_network import fit_epoch
from ._problem import FitOptions, FitSpec, Fitted, Task, WarmState
from ._scaling import MagnitudeScaling
from ._solver_table import SOLVERS, resolve_solver
from ._validation import TensorInputMixin
from .activations import ACTIVATIONS
from .constraints import (
    CONSTRAINTS,
    KERNEL_ENTRY_CONSTRAINTS,
    make_constraint,
    resolve_constraint,
)
from .geometry import LAYER_PARAMETER_CONSTRAINTS
from .network import network_outputs


class BaseTensorCNN(CallbackSupportMixin, TensorInputMixin, FittedNetworkMixin,
                    BaseEstimator):
    """Base class of the convolution -> pooling -> fully-connected estimators."""

    _parameter_constraints: dict = {
        **LAYER_PARAMETER_CONSTRAINTS,
        "sample_shape": [Interval(Integral, 1, None, closed="left"), tuple, list,
                         None],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions({"auto", *SOLVERS})],
        "constraint": [StrOptions(set(CONSTRAINTS)), None],
        "sparsity": [Interval(Integral, 1, None, closed="left"), None],
        "radius": [Interval(Real, 0, None, closed="neither"), None],
        "alpha": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "max_iter": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_init": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"auto", "spectral", "random"})],
        "batch_size": [
            StrOptions({"auto"}), Interval(Integral, 1, None, closed="left"),
        ],
        "shuffle": ["boolean"],
        "learning_rate_init": [
            StrOptions({"auto"}), Interval(Real, 0, None, closed="neither"),
        ],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "n_jobs": [Integral, None],
        "device": [StrOptions({"cpu", "cuda", "auto"})],
    }

    def __init__(
        self,
        *,
        kernel_size=3,
        stride=1,
        padding="valid",
        pool_size=2,
        pool_stride=None,
        channel_axis=None,
        sample_shape=None,
        activation="identity",
        solver="auto",
        alpha="auto",
        fit_intercept=True,
        max_iter="auto",
        tol=1e-6,
        n_init="auto",
        init="auto",
        batch_size="auto",
        shuffle=True,
        learning_rate_init="auto",
        momentum=0.9,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=None,
        verbose=0,
        warm_start=False,
        n_jobs=None,
        constraint=None,
        sparsity=None,
        radius=None,
        device="cpu",
    ):
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.pool_size = pool_size
        self.pool_stride = pool_stride
        self.channel_axis = channel_axis
        self.sample_shape = sample_shape
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.init = init
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.learning_rate_init = learning_rate_init
        self.momentum = momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.constraint = constraint
        self.sparsity = sparsity
        self.radius = radius
        self.device = device

    # ------------------------------------------------------------ what a fit reads
    def _resolve_constraint(self) -> str:
        """The constraint in force: the kernel structure's own unless
        ``constraint`` names a kernel-entry constraint (dense estimators)."""
        return resolve_constraint(self.constraint, self._structure_constraint,
                                  sparsity=self.sparsity, radius=self.radius,
                                  estimator=type(self).__name__)

    def _task(self) -> Task:
        return Task(self._loss(), self._n_out, bool(self.fit_intercept),
                    self._initial_intercept, self._indicator_targets,
                    self._validation_score, self._validation_order)

    def _warm_state(self) -> WarmState:
        """The fit that a warm start or ``partial_fit`` continues."""
        return WarmState(getattr(self, "_weight_params", None),
                         getattr(self, "_network_params", None),
                         getattr(self, "_optimizer_state", None),
                         getattr(self, "_scaling", None))

    def _warm_start(self, fitted_shapes, geometry) -> WarmState | None:
        """The fit ``warm_start`` continues: the previous one, unless it was
        fitted on samples of another shape (or another geometry) or with
        another number of outputs (classes), which a network cannot continue
        from; the fit then starts afresh, with a warning."""
        if not self.warm_start or fitted_shapes[0] is None:
            return None
        if fitted_shapes != (geometry, self._n_out):
            warnings.warn(
                f"warm_start=True continues a fit on samples of the same shape "
                f"and geometry with as many outputs; the previous fit saw samples "
                f"{fitted_shapes[0].input_shape} and {fitted_shapes[1]} output(s), "
                f"this one {geometry.input_shape} and {self._n_out}, so it "
                "starts afresh.", UserWarning, stacklevel=4)
            return None
        return self._warm_state()

    def _fit_spec(self, geometry, solver: str, rng, **extra) -> FitSpec:
        return FitSpec(
            task=self._task(),
            structure=self._kernel_structure(geometry, self._n_out),
            geometry=geometry, activation=self.activation, solver=solver,
            constraint=self._resolve_constraint(), options=FitOptions.of(self),
            rng=rng, energy=getattr(self, "energy", None),
            kernels_follow_rank=self.n_kernels is None, **extra)

    def _validation_order(self, y, n_val, rng):
        """Sample order whose first ``n_val`` are held out (random; classifiers
        stratify)."""
        return rng.permutation(len(y))

    # ------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, d_1, ..., d_N)
            Samples, with a channel axis where ``channel_axis`` says.  A 2-d ``X``
            is a batch of 1-d signals.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets: class labels (classifiers), or values, one column per
            target (regressors).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the loss.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        # scikit-learn's callbacks (set_callbacks, scikit-learn >= 1.9) see
        # the fit as a task per solver run and a leaf per iteration
        progress = start_progress(self, "fit", X, y, sample_weight)
        with self._compute(), _all_or_nothing(self):
            self._fit(X, y, sample_weight, progress=progress)
        if progress is not None:
            progress.end()
        return self

    def _compute(self):
        """Where the kernels run: ``n_jobs`` threads, on ``device`` (resolved:
        ``'auto'`` is CUDA when a GPU is available)."""
        stack = contextlib.ExitStack()
        stack.enter_context(kernels.limit_threads(self.n_jobs))
        stack.enter_context(kernels.on_device(kernels.resolve_device(self.device)))
        return stack

    def _fit(self, X, y, sample_weight, path_cache=None, previous=None,
             progress=None):
        """``fit``'s work.  ``path_cache`` (a dict) and ``previous`` (the fit at
        the previous point of a rank path) serve
        :class:`~sktensorcnn.model_selection.RankPathCV`, ``progress`` the
        callbacks (see :class:`~sktensorcnn._problem.FitSpec`)."""
        fitted_shapes = (getattr(self, "geometry_", None),
                         getattr(self, "_n_out", None))
        X = self._validate_X(X, reset=True)
        y, sample_weight = self._validate_targets(X, y, sample_weight, reset=True)
        geometry = self._make_geometry(X.shape[1:])
        constraint = self._resolve_constraint()
        solver = resolve_solver(self.solver, activation=self.activation,
                                loss=self._loss(), constraint=constraint,
                                structure=self._structure_constraint,
                                estimator=type(self).__name__)
        spec = self._fit_spec(
            geometry, solver, check_random_state(self.random_state),
            warm=self._warm_start(fitted_shapes, geometry),
            path_cache=path_cache, previous=previous, progress=progress)
        magnitude = MagnitudeScaling.of(
            X, y, scale_targets=spec.task.scales_targets,
            log_link=losses.BY_NAME[spec.task.loss].link == "log")
        if not magnitude.identity:
            spec = spec.but(warm=None, path_cache=None)  # both in the data's units
        if progress is not None:
            progress.to_attributes = functools.partial(
                self._snapshot_attributes, magnitude=magnitude, geometry=geometry,
                solver=solver, constraint=constraint)
        fitted = SOLVERS[solver].routine(self.activation)(
            spec, magnitude.samples(X), magnitude.targets(y), sample_weight)
        fitted = magnitude.to_user(fitted)
        _check_finite(fitted, solver, spec.options)
        if not fitted.result.converged:
            network_lbfgs = solver == "lbfgs" and self.activation != "identity"
            warnings.warn(
                f"{type(self).__name__} did not converge in max_iter="
                f"{spec.options.iterations(network_lbfgs)} iterations of solver "
                f"'{solver}'; increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.device_ = kernels.current_device()
        self._publish(fitted, geometry, solver, constraint)
        return self

    def _snapshot_attributes(self, fitted: Fitted, *, magnitude, geometry,
                             solver, constraint) -> dict:
        """The fitted attributes of ``fitted``, a model at an iteration of a
        fit (``fitted_estimator`` of scikit-learn's callbacks), published on a
        copy: the estimator itself is fitted at the end or not at all."""
        copy = self.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.device_ = kernels.current_device()
        copy._publish(magnitude.to_user(fitted), geometry, solver, constraint)
        return {name: value for name, value in copy.__dict__.items()
                if self.__dict__.get(name, copy) is not value}

    @with_callbacks
    def _partial_fit(self, X, y, sample_weight, first, classes=None):
        """One epoch of ``'adam'`` (or ``'gd'``); see the task classes'
        ``partial_fit``."""
        progress = start_progress(self, "partial_fit", X, y, sample_weight)
        with self._compute(), _all_or_nothing(self):
            self._partial_fit_epoch(X, y, sample_weight, first, classes, progress)
        if progress is not None:
            progress.end()
        return self

    def _partial_fit_epoch(self, X, y, sample_weight, first, classes,
                           progress=None):
        solver = "adam" if self.solver == "auto" else self.solver
        if first:
            self._validate_params()
        X = self._validate_X(X, reset=first)
        y, sample_weight = self._validate_targets(X, y, sample_weight, reset=first,
                                                  classes=classes)
        geometry = (self._make_geometry(X.shape[1:]) if first
                    else self.geometry_)
        constraint = self._resolve_constraint() if first else self.constraint_
        spec = self._fit_spec(geometry, solver,
                              check_random_state(self.random_state),
                              warm=None if first else self._warm_state(),
                              progress=progress)
        entry = None
        if constraint in KERNEL_ENTRY_CONSTRAINTS:
            entry = (make_constraint(constraint, None, on_weight=False,
                                     n_kernels=spec.structure.n_kernels, rng=None,
                                     sparsity=self.sparsity, radius=self.radius)
                     if first else self._constraint)
        from_linear = None
        if not first and self._network_params is None:  # after a linear fit
            kernel_params, fc = self._network_of(self._weight_params, geometry)
            from_linear = [*kernel_params, fc_by_output(fc, self._n_out),
                           self._head()[1]]
        fitted = fit_epoch(spec, X, y, sample_weight, first=first,
                           alpha=None if first else self.alpha_,
                           params_from_linear=from_linear, constraint=entry)
        curve = [] if first else self.loss_curve_
        if first:
            self.device_ = kernels.current_device()
        self._publish(fitted, geometry, solver, constraint)
        self.loss_curve_ = [*curve, *fitted.result.loss_curve]
        self.n_iter_ = len(self.loss_curve_)
        return self

    # ------------------------------------------------------------ predicting
    def _decision(self, X) -> np.ndarray:
        """Network outputs ``(n, n_out)`` (lazy, block by block, for a Dask
        array)."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        fc, intercept = self._head()
        if self.activation != "identity":
            outputs = functools.partial(
                network_outputs, kernels_=self.kernels_, fc_weights=fc,
                intercept=intercept, geometry=self.geometry_,
                activation=self.activation)
            if is_dask_array(X):
                return map_samples(X, outputs, self._n_out)
            with self._compute():
                return outputs(X)
        coef = np.asarray(self.coef_).reshape(self._n_out, *self.input_shape_)
        if self.channel_axis == -1:
            coef = np.moveaxis(coef, -1, 1)
        return X.reshape(X.shape[0], -1) @ coef.reshape(self._n_out, -1).T + intercept

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.target_tags.multi_output = self._multi_output
        return tags


def _check_finite(fitted: Fitted, solver: str, options) -> None:
    """Refuse to publish a diverged fit: non-finite weights are an error that
    names the step size (epoch solvers) or the data."""
    params = (fitted.linear[0] + [fitted.linear[1]] if fitted.linear is not None
              else fitted.network[0])
    if all(np.all(np.isfinite(p)) for p in params):
        return
    if SOLVERS[solver].epochs:
        fix = (f"lower learning_rate_init (now {options.learning_rate_init!r})")
    else:
        # e.g. features of about 1e-155 (the inputs the pools read) beside
        # larger entries that no feature reads: their squares are subnormal
        fix = ("check the inputs and targets for values near overflow or "
               "underflow (squares beyond 1e308 or below 1e-308), also among "
               "the inputs the features read")
    raise FloatingPointError(
        f"solver={solver!r} diverged: the fitted weights are not finite; {fix}.")


@contextlib.contextmanager
def _all_or_nothing(estimator):
    """A fit publishes its fitted attributes all at once or not at all: on any
    error or interrupt the estimator is left as it was before (unfitted, or
    fitted as before), never half-fitted.  An interrupt that numba reports as a
    ``SystemError`` (Ctrl-C during a compiled kernel) arrives as the
    ``KeyboardInterrupt`` it is."""
    saved = dict(estimator.__dict__)
    try:
        yield
    except BaseException as error:
        estimator.__dict__.clear()
        estimator.__dict__.update(saved)
        cause = error.__cause__ or error.__context__
        if isinstance(error, SystemError) and isinstance(cause, KeyboardInterrupt):
            raise cause from None
        raise


def _stochastic_solver(estimator) -> bool:
    """``partial_fit`` exists for the epoch solvers (and ``'auto'``: Adam), as
    for ``MLPRegressor``."""
    if estimator.solver != "auto" and not SOLVERS[estimator.solver].epochs:
        raise AttributeError(
            f"partial_fit is only available for solver='adam', 'gd' or 'auto', "
            f"not {estimator.solver!r}."
        )
    return True
