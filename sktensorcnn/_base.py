"""Shared machinery of the tensor CNN estimators.

An estimator is thin: it validates the input, builds the geometry, the weight
parametrization, the data term and the solver, runs the solver and exposes the
fitted network.  A kernel-structure mixin (:mod:`sktensorcnn.kernel_structures`)
says how the kernel tensor is constrained and how fitted parameters map back to
kernels; the task class (regression, classification) says what is predicted:
its loss, how targets are encoded, how many outputs the network has (``n_out``:
one, or one per class with the kernels shared) and how the fitted output layer is
exposed.  With the identity activation the network is linear and is fitted on the
conv-pool features (``_fit_linear``); with any other it is trained through the
numba forward/backward kernels (``_fit_network``).

Internally the output layer is always ``fc`` ``(n_out, K, P)`` and ``intercept``
``(n_out,)``.
"""

from __future__ import annotations

import contextlib
import itertools
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_feature_names,
    _check_sample_weight,
    check_array,
    check_is_fitted,
    column_or_1d,
)

from . import activations, kernels, losses
from ._constrained import CONSTRAINTS, KERNEL_ENTRY_CONSTRAINTS, ConstrainedFitMixin
from ._scaling import DataScaling, input_shift_and_scale, target_offset_and_scale
from ._starts import fit_head, head_rows, normalize_kernels, spectral_rows
from .activations import ACTIVATIONS
from .datafits import (
    GRAM_MAX_FEATURES,
    FeatureLoss,
    GramSquared,
    gcv_alpha,
    ridge_solution,
    ridge_statistics,
    squared_datafit,
)
from .features import conv_pool_features, features_to_input_space
from .geometry import LAYER_PARAMETER_CONSTRAINTS, ConvPoolGeometry
from .kernel_structures import _kernel_layout, _stacked_layout
from .network import (
    factorized_network_loss,
    network_loss,
    network_outputs,
    pooled_activations,
)
from .parametrizations import CPWeight, TuckerWeight
from .solvers import (
    alternating_least_squares,
    lbfgs,
    minimize_lbfgs,
    train_by_epochs,
)
from .solvers._result import ridge_objective, trivial_scale
from .solvers.als import solve_psd

_SOLVERS = {"als": alternating_least_squares, "lbfgs": lbfgs}

#: Largest ``L * P`` for which fitting starts from the truncated ridge solution.



def _best_multiple(params, parametrization, datafit, alpha, spread=False):
    """A start times the multiple ``c`` of its weight ``W`` that fits the data
    best (the objective is quadratic along ``c W``), so that it is no worse
    than the trivial model (``c = 0``) whatever the targets' units.  ``W`` is
    multilinear in the parameter blocks: scaling one block by ``c`` scales it,
    and so does scaling each of the ``B`` blocks by ``|c|^(1/B)`` (``spread``,
    for random starts: blocks of equal scale keep L-BFGS well conditioned)."""
    w = parametrization.to_tensor(params).ravel()
    f0, g0 = ridge_objective(datafit, np.zeros_like(w), alpha)
    curvature = 2.0 * (ridge_objective(datafit, w, alpha)[0] - f0 - g0 @ w)
    if curvature <= 0:
        return params
    c = -(g0 @ w) / curvature
    if spread and c != 0:
        root = abs(c) ** (1.0 / len(params))
        params = [p * root for p in params]
        params[-1] = params[-1] * np.sign(c)
    else:
        params[-1] = params[-1] * c
    return params


class BaseTensorCNN(ConstrainedFitMixin, BaseEstimator):
    """Base class of the convolution -> pooling -> fully-connected estimators."""

    #: Starts used by ``n_init='auto'`` when the fit runs on sufficient statistics
    #: (set by the kernel structure, see :mod:`sktensorcnn.kernel_structures`).
    _auto_n_init = 4

    _parameter_constraints: dict = {
        **LAYER_PARAMETER_CONSTRAINTS,
        "sample_shape": [Interval(Integral, 1, None, closed="left"), tuple, list,
                         None],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions({"auto", "als", "lbfgs", "gd", "adam", "pgd", "lrd"})],
        "constraint": [StrOptions(set(CONSTRAINTS)), None],
        "sparsity": [Interval(Integral, 1, None, closed="left"), None],
        "radius": [Interval(Real, 0, None, closed="neither"), None],
        "alpha": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "max_iter": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_init": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"spectral", "random"})],
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
        init="spectral",
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

    # ------------------------------------------------------------ validation
    def _validate_X(self, X, *, reset: bool) -> np.ndarray:
        """Check ``X``, unflatten it when ``sample_shape`` is given, and bring its
        channel axis, if any, to axis 1."""
        _check_feature_names(self, X, reset=reset)
        X = check_array(
            X, allow_nd=True, dtype=[np.float64, np.float32], order="C",
            input_name="X",
        )
        if X.ndim < 2:
            raise ValueError(
                f"X must have shape (n_samples, d_1, ..., d_N); got {X.ndim}-d input."
            )
        if self.sample_shape is not None:
            X = self._unflatten(X)
        if not reset and X[0].size != self.n_features_in_:
            raise ValueError(
                f"X has {X[0].size} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input (samples of shape "
                f"{self.input_shape_})."
            )
        if self.channel_axis is not None:
            if X.ndim < 3:
                raise ValueError(
                    f"channel_axis={self.channel_axis} needs X of shape (n_samples, "
                    f"C, d_1, ...) or (n_samples, d_1, ..., C); got shape {X.shape}. "
                    "Use channel_axis=None for samples without channels."
                )
            X = np.ascontiguousarray(np.moveaxis(X, self.channel_axis, 1))
        if reset:
            self.input_shape_ = self._user_shape(X.shape[1:])
            self.n_features_in_ = int(np.prod(X.shape[1:]))
        elif self._user_shape(X.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"X has samples of shape {self._user_shape(X.shape[1:])}, but "
                f"{type(self).__name__} was fitted on samples of shape "
                f"{self.input_shape_}."
            )
        return X

    def _unflatten(self, X: np.ndarray) -> np.ndarray:
        """``(n, prod(sample_shape))`` -> ``(n, *sample_shape)``; N-d ``X`` of that
        shape passes."""
        shape = tuple(int(s) for s in np.atleast_1d(self.sample_shape))
        if X.shape[1:] == shape:
            return X
        if X.ndim == 2 and X.shape[1] == int(np.prod(shape)):
            return X.reshape(X.shape[0], *shape)
        raise ValueError(
            f"sample_shape={shape} needs X of shape (n_samples, {int(np.prod(shape))})"
            f" (flattened samples) or (n_samples, *{shape}); got shape {X.shape}."
        )

    def _user_shape(self, shape) -> tuple[int, ...]:
        """Sample shape with the channel axis where the user put it."""
        shape = tuple(int(s) for s in shape)
        if self.channel_axis == -1:
            return (*shape[1:], shape[0])
        return shape

    def _to_user_layout(self, array: np.ndarray) -> np.ndarray:
        """Move a leading channel axis (of one sample) back to the user's layout."""
        return np.moveaxis(array, 0, -1) if self.channel_axis == -1 else array

    def _validate_targets(self, X, y, sample_weight, *, reset: bool, classes=None):
        """Encoded targets (float64, see :mod:`sktensorcnn.losses`) and sample
        weights; the task class encodes (``_encode_targets``)."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is "
                "None."
            )
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)  # a column vector, as scikit-learn
        if y.ndim != 1:
            raise ValueError(
                f"y must be 1-d of shape (n_samples,); got shape {y.shape}."
            )
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"X and y have different numbers of samples: {X.shape[0]} and "
                f"{y.shape[0]}."
            )
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True)
        y, sample_weight = self._encode_targets(y, sample_weight, reset=reset,
                                                classes=classes)
        if not np.any(sample_weight > 0):
            raise ValueError("sample_weight must have at least one positive entry.")
        return y, sample_weight

    def _make_geometry(self, input_shape) -> ConvPoolGeometry:
        has_channels = self.channel_axis is not None
        return ConvPoolGeometry.from_params(
            input_shape[1:] if has_channels else input_shape,
            n_channels=input_shape[0] if has_channels else None,
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            pool_size=self.pool_size,
            pool_stride=self.pool_stride,
        )

    # ------------------------------------------------------------ fitting
    def _resolve_solver(self) -> str:
        """``'auto'``: ALS for the identity activation with the squared loss (a
        linear least squares network fitted on the features), projected gradient
        descent for the kernel-entry constraints (``'sparse'``, ``'l1'``,
        ``'nuclear'``), L-BFGS otherwise."""
        linear_squares = self.activation == "identity" and self._loss() == "squared"
        constraint = self._resolve_constraint()
        entry = constraint in KERNEL_ENTRY_CONSTRAINTS
        if self._loss() == "huber" and (entry or self.solver in ("pgd", "lrd")):
            raise ValueError(
                "loss='huber' measures residuals in standard deviations of the "
                "targets, which the projected and rank-reducing solvers do not "
                "standardize; use loss='squared' with them, or loss='huber' "
                "with solver='lbfgs' / 'adam' and no kernel-entry constraint."
            )
        if self.solver == "auto":
            if entry:
                return "pgd"
            return "als" if linear_squares else "lbfgs"
        if entry and self.solver != "pgd":
            raise ValueError(
                f"constraint={constraint!r} is enforced by projected gradient "
                f"descent; use solver='pgd' (or 'auto'), not {self.solver!r}."
            )
        if self.solver == "lrd" and self._structure_constraint != "tucker":
            raise ValueError(
                f"solver='lrd' reduces Tucker ranks during training; "
                f"{type(self).__name__} has no Tucker ranks. Use TuckerCNNRegressor "
                "or TuckerCNNClassifier, or another solver."
            )
        if self.solver == "als" and not linear_squares:
            what = (f"activation={self.activation!r}" if self.activation != "identity"
                    else f"the {self._loss()} loss")
            raise ValueError(
                f"solver='als' fits the linear network with the squared loss only, "
                f"not {what}; use solver='lbfgs' or 'auto'."
            )
        return self.solver

    def _penalty(self, sample_weight, datafit=None, constrained=False) -> float:
        """``alpha`` as used, recorded as ``alpha_``.

        ``alpha='auto'``: for the linear network with the squared loss
        (``datafit`` given), the ridge penalty that minimizes generalized
        cross-validation of the unconstrained fit on the conv-pool features
        (:func:`~sktensorcnn.datafits.gcv_alpha`; the mean Gram eigenvalue over
        ``n`` when the features are too many for it); otherwise ``1 / n``: the
        penalty of scikit-learn's ``LogisticRegression(C=1)`` written per sample,
        which for the network fits (on scaled data, see
        :mod:`sktensorcnn._scaling`) is a unit Gaussian prior on each weight;
        ``n`` is the sum of the sample weights, so that integer weights act as
        repeated samples.  The projected and rank-reducing solvers
        (``constrained``) regularize by their constraint set: no ridge for the
        squared loss there, as in the papers.
        """
        n_samples = float(np.sum(sample_weight))
        if self.alpha != "auto":
            alpha = float(self.alpha)
        elif constrained and self._loss() == "squared":
            alpha = 0.0
        elif datafit is None:
            alpha = 1.0 / n_samples
        else:
            alpha = gcv_alpha(datafit, n_samples, self.fit_intercept)
            if alpha is None:
                alpha = _mean_eigenvalue(datafit) / n_samples
        self.alpha_ = alpha
        return alpha

    def _stopping_scale(self, y, sample_weight) -> float:
        """The unit of the stopping rule (see
        :func:`~sktensorcnn.solvers._result.relative_decrease`), which makes
        ``tol`` mean the same whatever the targets' units: for the squared loss
        twice the trivial model's loss on the targets as the fit sees them
        (their weighted variance: 1 on the standardized targets of the network
        fits, as scipy's floor), for the Poisson loss the mean count, and 1 for
        the Huber loss (whose fits always see standardized targets) and the
        classification losses, which have no unit."""
        loss = losses.BY_NAME[self._loss()]
        if not loss.regression or loss.name == "huber":
            return 1.0
        if loss.link == "log":
            return trivial_scale(np.average(y, weights=sample_weight))
        b = self._initial_intercept(y, sample_weight)
        values = loss.reference(np.broadcast_to(b, (len(y), 1)), y)[0]
        return trivial_scale(2.0 * np.average(values, weights=sample_weight))

    def _iterations(self, network_lbfgs: bool = False) -> int:
        """``max_iter`` as used: ``'auto'`` is 1000 L-BFGS iterations for a
        network with a nonlinear activation (each is one or two passes over the
        data, and the loss keeps falling well past 200 on real data) and 200
        otherwise (ALS sweeps, epochs, PGD steps, L-BFGS on the linear network)."""
        if self.max_iter != "auto":
            return int(self.max_iter)
        return 1000 if network_lbfgs else 200

    def _starts(self, parametrization, datafit, rng, path_cache=None, alpha=0.0):
        """Starting parameters, one per start.

        ``warm_start`` with a previous fit of the same shapes: that fit alone.
        Otherwise the unconstrained ridge fit truncated to the ranks (when the
        sufficient statistics are small enough to solve it), then random starts,
        ``n_init`` in all.  ``n_init='auto'`` is 4 with sufficient statistics, where
        a start costs nothing in ``n``, and 1 otherwise (1 always for dense
        kernels, whose rank-K matrix problem is reliably solved from the spectral
        start).
        """
        previous = getattr(self, "_weight_params", None)
        if self.warm_start and previous is not None:
            if [p.shape for p in previous] == parametrization.param_shapes:
                yield [p.copy() for p in previous]
                return
        gram = isinstance(datafit, GramSquared)
        n_init = self.n_init
        if n_init == "auto":
            n_init = self._auto_n_init if gram else 1
        start = 0
        if self.init == "spectral":
            key = ("ridge", alpha)
            if path_cache is not None and key in path_cache:
                W0 = path_cache[key]
            else:
                W0 = ridge_solution(datafit, alpha)
                if path_cache is not None:
                    path_cache[key] = W0
            if W0 is not None:
                # truncated to the ranks, the ridge fit can fit worse than a
                # constant (an interpolant with alpha = 0): rescaled, never
                yield _best_multiple(
                    parametrization.initialize(rng, W0.reshape(parametrization.shape)),
                    parametrization, datafit, alpha)
                start = 1
            else:
                warnings.warn(
                    f"init='spectral' needs the ridge fit on the conv-pool features, "
                    f"computed when min(n_samples, L * P) <= {GRAM_MAX_FEATURES}; "
                    f"here n_samples = {datafit.features.shape[0]} and L * P = "
                    f"{datafit.features.shape[1]}, so the fit starts from random "
                    "factors scaled to the data.  Pass init='random' to choose that.",
                    UserWarning, stacklevel=4,
                )
        for _ in range(start, n_init):
            yield _best_multiple(parametrization.initialize(rng), parametrization,
                                 datafit, alpha, spread=True)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, d_1, ..., d_N)
            Samples, with a channel axis where ``channel_axis`` says.  A 2-d ``X``
            is a batch of 1-d signals.
        y : array-like of shape (n_samples,)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the loss.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with self._compute():
            return self._fit(X, y, sample_weight)

    def _compute(self):
        """Where the kernels run: ``n_jobs`` threads, on ``device`` (resolved:
        ``'auto'`` is CUDA when a GPU is available)."""
        stack = contextlib.ExitStack()
        stack.enter_context(kernels.limit_threads(self.n_jobs))
        stack.enter_context(kernels.on_device(kernels.resolve_device(self.device)))
        return stack

    def _fit(self, X, y, sample_weight, path_cache=None, previous=None):
        """``fit``'s work.  ``path_cache`` (a dict) and ``previous`` (the fit at
        the previous point of a rank path) serve
        :class:`~sktensorcnn.model_selection.RankPathCV`: the squared loss's
        sufficient statistics are computed once per data set and shared, and the
        previous weight is one more start."""
        X = self._validate_X(X, reset=True)
        y, sample_weight = self._validate_targets(X, y, sample_weight, reset=True)
        self._network_params = None if not self.warm_start else getattr(
            self, "_network_params", None)

        geometry = self._make_geometry(X.shape[1:])
        solver = self._resolve_solver()
        rng = check_random_state(self.random_state)
        self.geometry_ = geometry
        self.device_ = kernels.current_device()
        self.constraint_ = self._resolve_constraint()
        self.__dict__.pop("rank_history_", None)
        if solver == "pgd":
            result = self._fit_projected(X, y, sample_weight, geometry, rng)
        elif solver == "lrd":
            result = self._fit_rank_reduction(X, y, sample_weight, geometry, rng)
        elif self.activation == "identity" and solver in ("als", "lbfgs"):
            result = self._fit_linear(X, y, sample_weight, geometry, solver, rng,
                                      path_cache, previous)
        else:
            result = self._fit_network(X, y, sample_weight, geometry, solver, rng)
        if not result.converged:
            network_lbfgs = solver == "lbfgs" and self.activation != "identity"
            warnings.warn(
                f"{type(self).__name__} did not converge in max_iter="
                f"{self._iterations(network_lbfgs)} iterations of solver "
                f"'{solver}'; increase "
                "max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.n_iter_ = result.n_iter
        self.loss_curve_ = list(result.loss_curve)
        self._set_sizes(geometry)
        return self

    def _set_sizes(self, geometry):
        n_out = self._n_out
        n_params = self._count_params(geometry, n_out)
        if self.constraint_ in ("sparse", "l1"):  # only nonzero kernel entries
            n_params -= int(np.size(self.kernels_) - np.count_nonzero(self.kernels_))
        self.n_params_ = n_params + n_out * int(self.fit_intercept)
        self.model_complexity_ = self._model_complexity(geometry, n_out)

    # ------------------------------------------------------------ linear network
    def _fit_linear(self, X, y, sample_weight, geometry, solver, rng,
                    path_cache=None, previous=None):
        """Identity activation: low-rank regression on the conv-pool features,
        by ALS / L-BFGS on the squared loss's data term, or L-BFGS on any other
        loss (:meth:`_fit_linear_loss`)."""
        if self._loss() != "squared":
            return self._fit_linear_loss(X, y, sample_weight, geometry, rng)
        parametrization = self._make_parametrization(geometry)
        key = ("squared", self.fit_intercept)
        if path_cache is not None and key in path_cache:
            datafit = path_cache[key]
        else:
            datafit = squared_datafit(
                X, y, geometry, sample_weight=sample_weight,
                fit_intercept=self.fit_intercept,
            )
            if path_cache is not None:
                path_cache[key] = datafit
        alpha = self._penalty(sample_weight, datafit)
        starts = self._starts(parametrization, datafit, rng, path_cache, alpha)
        if previous is not None and getattr(previous, "weight_", None) is not None:
            warm = parametrization.initialize(
                rng, previous.weight_.reshape(parametrization.shape))
            starts = itertools.chain([warm], starts)
        result = None
        for params in starts:
            candidate = _SOLVERS[solver](
                datafit, parametrization, params, alpha=alpha,
                max_iter=self._iterations(), tol=self.tol, verbose=self.verbose,
            )
            # Low-rank fits are non-convex: keep the start that ends lowest.
            if result is None or candidate.objective < result.objective:
                result = candidate
        W = parametrization.to_tensor(result.params)
        intercept = datafit.intercept(W.ravel()) if self.fit_intercept else 0.0
        self._set_linear(result.params, np.array([intercept]), parametrization,
                         geometry)
        return result

    def _fit_linear_loss(self, X, y, sample_weight, geometry, rng):
        """Identity activation, a loss without sufficient statistics (logistic,
        multinomial, one-vs-rest): L-BFGS over the factors of ``W`` and the
        intercepts, the outputs ``Z W + b`` computed from the features."""
        n_out = self._n_out
        parametrization = self._make_parametrization(geometry, n_out)
        fit_intercept = self.fit_intercept
        # centered, unit-scale inputs (see input_shift_and_scale): L-BFGS is
        # well conditioned on raw pixel or reflectance values too, and alpha
        # acts on a standardized problem, as for the network fits
        shift, scale = input_shift_and_scale(X, sample_weight, fit_intercept)
        X = (X - X.dtype.type(shift)) * X.dtype.type(1.0 / scale)
        # standardized targets where the loss has a scale of its own (Huber's
        # threshold: median and MAD, which outliers do not inflate); W and b
        # are linear in the output, so they map back exactly
        offset, spread = (target_offset_and_scale(y, sample_weight, fit_intercept,
                                                  robust=True)
                          if self._scales_targets() else (0.0, 1.0))
        y = (y - offset) / spread
        datafit = FeatureLoss(X, y, geometry, sample_weight, loss=self._loss(),
                              n_out=n_out)
        alpha = self._penalty(sample_weight)

        def objective(current):
            params, b = current[:-1], current[-1]
            w = parametrization.to_tensor(params).ravel()
            value, grad_w, grad_b = datafit.value_and_gradient(w, b)
            value += 0.5 * alpha * float(w @ w)
            grad_w = grad_w + alpha * w
            grads = [parametrization.block(params, j).apply_jacobian(grad_w[None])[0]
                     .reshape(p.shape) for j, p in enumerate(params)]
            return value, [*grads, grad_b if fit_intercept else np.zeros(n_out)]

        b0 = self._initial_intercept(y, sample_weight)
        stopping = self._stopping_scale(y, sample_weight)
        result = None
        for params in self._loss_starts(X, y, sample_weight, parametrization,
                                        geometry, rng, alpha, scale):
            candidate = minimize_lbfgs(objective, [*params, b0.copy()],
                                       max_iter=self._iterations(), tol=self.tol,
                                       verbose=self.verbose, scale=stopping)
            if result is None or candidate.objective < result.objective:
                result = candidate
        params, b = list(result.params[:-1]), result.params[-1]
        params[-1] = params[-1] * (spread / scale)  # W is multilinear in its factors
        b = b * spread + offset
        if shift:
            constant = np.full((1, *X.shape[1:]), shift)
            z_shift = conv_pool_features(constant, geometry).reshape(-1)
            W = parametrization.to_tensor(params).reshape(-1, n_out)
            b = b - z_shift @ W
        result.params = params
        self._set_linear(params, b, parametrization, geometry)
        return result

    def _loss_starts(self, X, y, sample_weight, parametrization, geometry, rng,
                     alpha=0.0, scale=1.0):
        """Starts of :meth:`_fit_linear_loss`, as :meth:`_starts`: a previous fit
        (``warm_start``); else the least squares fit of the task's indicator
        targets truncated to the ranks (when ``L P`` allows a Gram matrix), then
        random starts; ``n_init='auto'`` is 1.  ``scale``: the input scale of
        the fit (a previous fit is in the data's units)."""
        previous = getattr(self, "_weight_params", None)
        if self.warm_start and previous is not None:
            if [p.shape for p in previous] == parametrization.param_shapes:
                params = [p.copy() for p in previous]
                params[-1] = params[-1] * scale
                yield params
                return
        n_init = 1 if self.n_init == "auto" else self.n_init
        start = 0
        if self.init == "spectral":
            stats = ridge_statistics(X, self._indicator_targets(y), geometry,
                                     sample_weight, self.fit_intercept)
            if stats is not None:
                gram, zy = stats
                lhs = gram + max(alpha, 1e-8 * np.trace(gram) / len(gram)) \
                    * np.eye(len(gram))
                W0 = solve_psd(lhs, zy)  # (L P, n_out), outputs innermost
                yield parametrization.initialize(rng, W0.reshape(parametrization.shape))
                start = 1
        for _ in range(start, n_init):
            yield parametrization.initialize(rng)

    def _set_linear(self, params, intercept, parametrization, geometry):
        """Expose a fitted linear network: kernels, FC layer, ``weight_``,
        ``coef_``."""
        n_out = self._n_out
        self._weight_params = params
        self._network_params = None
        kernel_params, fc = self._linear_to_network(params, geometry)
        self._export_kernels(kernel_params, geometry)
        self._set_head(_fc_by_output(fc, n_out), intercept, geometry)
        W = parametrization.to_tensor(params)
        self._set_linear_weight(W.reshape(*geometry.weight_shape, n_out), geometry)

    def _set_linear_weight(self, W, geometry):
        """``weight_`` and its input-space image ``coef_`` (identity activation)
        from ``W`` ``(l..., [C], P, n_out)``."""
        weights = np.moveaxis(W, -1, 0)
        coefs = np.stack([
            self._to_user_layout(features_to_input_space(
                w.reshape(geometry.feature_shape), geometry))
            for w in weights
        ])
        self._set_outputs("weight_", weights)
        self._set_outputs("coef_", coefs)

    def _set_head(self, fc, intercept, geometry):
        """``fc_weights_`` and ``intercept_`` from ``fc`` ``(n_out, K, P)``."""
        self._set_outputs("fc_weights_",
                          fc.reshape(*fc.shape[:2], *geometry.pooled_shape))
        self._set_outputs("intercept_", np.asarray(intercept, float).reshape(-1))

    def _head(self):
        """``(fc (n_out, K, p...), intercept (n_out,))`` of the fitted network."""
        n_out = self._n_out
        fc = np.asarray(self.fc_weights_).reshape(n_out, self.n_kernels_,
                                                  *self.geometry_.pooled_shape)
        return fc, np.asarray(self.intercept_, float).reshape(n_out)

    # ------------------------------------------------------------ any activation
    def _network_start(self, X, y, sample_weight, kernel_param, geometry, rng, init,
                       *, alpha, objective=None, scaling=None):
        """Stacked-kernel parameters, FC weights ``(n_out, K, P)`` and intercepts
        ``(n_out,)``, on the data as the fit sees them (``scaling``).

        ``warm_start``: the previous network.  Otherwise candidate kernels (with
        ``init='spectral'`` the fitted linear network's kernels, [Compact nets]: the
        starting point matters; always kernels drawn at random), each rescaled
        to unit pre-activations and given the best FC layer for it (see
        :mod:`sktensorcnn._starts`), and the trivial model (FC weights zero);
        the candidate with the lowest training objective is the start, so a
        start is never worse than predicting the mean or the class priors.
        """
        scaling = DataScaling() if scaling is None else scaling
        previous = getattr(self, "_network_params", None)
        if self.warm_start and previous is not None:
            shapes = [p.shape for p in previous[:-2]]
            if shapes == kernel_param.param_shapes:
                return scaling.to_internal(previous)
        if objective is None:
            objective = self._network_objective(X, y, sample_weight, kernel_param,
                                                geometry, alpha)
        candidates = []
        if init == "spectral":
            candidates.append(self._spectral_kernels(X, y, sample_weight, geometry,
                                                     rng))
        candidates.append(self._random_kernels(kernel_param, geometry, rng))
        starts = [self._with_fitted_head(X, y, sample_weight, kernel_params,
                                         kernel_param, geometry, rng, alpha)
                  for kernel_params in candidates]
        starts.append([*starts[0][:-2], np.zeros_like(starts[0][-2]),
                       self._initial_intercept(y, sample_weight)])
        values = np.array([objective(start)[0] for start in starts])
        # the data term alone (the penalty is on kernels and FC weights) of no
        # start may exceed the trivial model's; among those, the lowest objective
        penalties = np.array([0.5 * alpha * sum(np.sum(p**2) for p in start[:-1])
                              for start in starts])
        data_terms = values - penalties
        allowed = data_terms <= data_terms[-1] * (1 + 1e-12) + 1e-300
        return starts[int(np.argmin(np.where(allowed, values, np.inf)))]

    def _spectral_kernels(self, X, y, sample_weight, geometry, rng):
        """Kernels of the fitted linear network (on at most
        :data:`~sktensorcnn._starts.SPECTRAL_MAX_SAMPLES` samples), with a
        little noise to break the symmetry of kernels that the linear fit
        leaves at zero."""
        rows = spectral_rows(len(y), rng)
        if len(rows) < len(y):
            X, y, sample_weight = X[rows], y[rows], sample_weight[rows]
        linear = clone(self).set_params(
            activation="identity", solver="auto", warm_start=False, verbose=0,
            constraint=None, sparsity=None, radius=None,
        )
        linear._n_out = self._n_out  # the targets are encoded already
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            linear._fit_encoded(X, y, sample_weight)
        kernel_params, _ = linear._linear_to_network(linear._weight_params, geometry)
        scale = np.sqrt(np.mean([np.mean(p**2) for p in kernel_params]))
        return [p + 1e-2 * scale * rng.standard_normal(p.shape)
                for p in kernel_params]

    def _random_kernels(self, kernel_param, geometry, rng):
        """Stacked kernels at random, scaled to the fan-in and the activation's
        gain (He for the ReLU family)."""
        kernel_params = kernel_param.initialize(rng)
        stacked = kernel_param.to_tensor(kernel_params)
        gain = activations.BY_NAME[self.activation].gain
        target = np.sqrt(gain / geometry.n_kernel_entries)
        kernel_params[-1] = kernel_params[-1] * (target / (stacked.std() + 1e-300))
        return kernel_params

    def _with_fitted_head(self, X, y, sample_weight, kernel_params, kernel_param,
                          geometry, rng, alpha):
        """``[*kernel_params, fc, intercept]``: the kernels rescaled to unit
        pre-activations and the FC layer and intercept that minimize the
        penalized loss with those kernels, on at most
        :data:`~sktensorcnn._starts.HEAD_MAX_ENTRIES` pooled activations."""
        K, P, n_out = self.n_kernels_, geometry.n_cells, self._n_out
        rows = head_rows(len(y), K * P, rng)
        X_rows = X[rows]
        weights = sample_weight[rows] / sample_weight[rows].sum()
        stacked = kernel_param.to_tensor(kernel_params)
        factors = normalize_kernels(X_rows, _kernel_layout(stacked, geometry),
                                    geometry, weights)
        kernel_params = self._scale_kernels(kernel_params, factors)
        H = pooled_activations(
            X_rows, _kernel_layout(kernel_param.to_tensor(kernel_params), geometry),
            geometry, self.activation,
        ).reshape(len(rows), K * P)
        fc, intercept = fit_head(
            H, y[rows], weights, loss=self._loss(), n_out=n_out, alpha=alpha,
            fit_intercept=self.fit_intercept,
            intercept0=self._initial_intercept(y, sample_weight),
        )
        kernel_params, fc = self._balance(kernel_params, fc.reshape(n_out, K, P))
        return [*kernel_params, fc, intercept]

    def _balance(self, kernel_params, fc):
        """Move scale between each kernel and its FC weights so that the ridge
        penalty is smallest for the same network: possible for the positively
        homogeneous activations (``act(c z) = c^d act(z)``, ``c > 0``)."""
        degree = activations.BY_NAME[self.activation].degree
        if degree is None:
            return kernel_params, fc
        index = getattr(self, "_output_factor", None)
        scaled = kernel_params[0] if index is None else kernel_params[index].T
        a = np.sqrt(np.sum(scaled.reshape(-1, scaled.shape[-1]) ** 2, axis=0))
        b = np.sqrt(np.sum(fc**2, axis=(0, 2)))
        ok = (a > 0) & (b > 0)
        # minimizes (c a)^2 + (b / c^d)^2 over c > 0
        c = np.where(ok, (degree * b**2 / np.where(ok, a, 1.0) ** 2)
                     ** (1.0 / (2 * degree + 2)), 1.0)
        return (self._scale_kernels(kernel_params, c),
                fc / (c**degree)[None, :, None])

    def _scale_kernels(self, kernel_params, factors):
        """Kernel ``k`` times ``factors[k]``: through the kernels' output factor
        ``(K, R)`` (Tucker, CP) or the stacked kernels' last axis (dense)."""
        kernel_params = [np.array(p, dtype=float) for p in kernel_params]
        index = getattr(self, "_output_factor", None)
        if index is None:
            kernel_params[0] = kernel_params[0] * factors
        else:
            kernel_params[index] = kernel_params[index] * factors[:, None]
        return kernel_params

    def _data_scaling(self, X, y, sample_weight) -> DataScaling:
        """Scales of a network fit (:mod:`sktensorcnn._scaling`); a warm start
        keeps those of the fit it continues."""
        previous = getattr(self, "_scaling", None)
        if (self.warm_start and previous is not None
                and getattr(self, "_network_params", None) is not None):
            return previous
        return DataScaling.from_data(X, y, sample_weight,
                                     scale_targets=self._scales_targets(),
                                     fit_intercept=self.fit_intercept,
                                     robust=self._loss() == "huber")

    def _scales_targets(self) -> bool:
        """Whether the fits see standardized targets: regression losses whose
        output is the target itself (squared, Huber), not a log (Poisson) or
        class scores."""
        loss = losses.BY_NAME[self._loss()]
        return loss.regression and loss.link == "identity"

    def _fit_encoded(self, X, y, sample_weight):
        """Fit on validated samples and encoded targets (used for the spectral
        start of the network, whose targets are already encoded)."""
        self._validate_params()
        geometry = self._make_geometry(X.shape[1:])
        self.geometry_ = geometry
        solver = self._resolve_solver()
        return self._fit_linear(X, y, sample_weight, geometry, solver,
                                check_random_state(self.random_state))

    def _network_objective(self, X, y, sample_weight, kernel_param, geometry,
                           alpha):
        """``objective(params, rows)``: weighted mean loss over ``rows`` (all rows
        when ``None``) plus the ridge penalty, and its gradients."""
        n_kernel_params = len(kernel_param.param_shapes)
        pooled = geometry.pooled_shape
        K, n_out, loss_name = self.n_kernels_, self._n_out, self._loss()
        kind, factorized = self._factorized_kind(geometry, kernel_param)
        if (kernels.current_device() == "cpu" and not factorized
                and not kernels.uses_gemm(geometry, K)
                and not (X.dtype in (np.float32, np.float64) and X.flags.writeable)):
            # the fused loops read writable float32 / float64 samples: copy once
            # per fit, not at every evaluation (see kernels._sample_chunks)
            X = np.array(X, dtype=X.dtype if X.dtype == np.float32 else np.float64)
        # samples, targets and weights staged once per fit on the current
        # device; each evaluation normalizes the weights of its rows
        samples = kernels.stage_samples(X, geometry, y, sample_weight)

        def objective(current, rows=None):
            Xr = samples if rows is None else samples.take(rows)
            kernel_params = current[:n_kernel_params]
            fc, intercept = current[n_kernel_params], current[n_kernel_params + 1]
            b = intercept if self.fit_intercept else np.zeros(n_out)
            fc_weights = fc.reshape(n_out, K, *pooled)
            if factorized:
                loss, grads, d_fc, d_intercept = factorized_network_loss(
                    Xr, None, None, kernel_params, fc_weights, b, geometry,
                    self.activation, loss_name, kind,
                )
            else:
                stacked = kernel_param.to_tensor(kernel_params)
                loss, d_kernels, d_fc, d_intercept = network_loss(
                    Xr, None, None, _kernel_layout(stacked, geometry),
                    fc_weights, b, geometry, self.activation, loss_name,
                )
                d_stacked = _stacked_layout(d_kernels, geometry).reshape(1, -1)
                grads = [
                    kernel_param.block(kernel_params, j).apply_jacobian(d_stacked)[0]
                    for j in range(kernel_param.n_blocks)
                ]
            grads = [g.reshape(p.shape) for g, p in zip(grads, kernel_params)]
            grads += [d_fc.reshape(fc.shape),
                      d_intercept if self.fit_intercept else np.zeros(n_out)]
            if alpha > 0:
                penalized = range(n_kernel_params + 1)  # not the intercept
                loss += 0.5 * alpha * sum(np.sum(current[j] ** 2)
                                          for j in penalized)
                for j in penalized:
                    grads[j] = grads[j] + alpha * current[j]
            return loss, grads

        return objective

    def _fit_network(self, X, y, sample_weight, geometry, solver, rng):
        """Any activation: train the stacked-kernel factors, FC weights and
        intercept through the fused numba forward/backward kernels."""
        kernel_param = self._make_kernel_parametrization(geometry, self._n_out)
        scaling = self._data_scaling(X, y, sample_weight)
        X, y = scaling.samples(X), scaling.targets(y)
        if solver in ("gd", "adam") and self.early_stopping:
            X, y, sample_weight, validation = self._split_validation(
                X, y, sample_weight, rng)
        else:
            validation = None
        alpha = self._penalty(sample_weight)
        objective = self._network_objective(X, y, sample_weight, kernel_param,
                                            geometry, alpha)
        with self._blas_threads(geometry, kernel_param,
                                self._samples_per_step(solver, len(y))):
            result = self._run_network_solver(X, y, sample_weight, geometry,
                                              kernel_param, solver, objective, rng,
                                              validation, alpha, scaling)
        result.params = scaling.to_user(result.params)
        self._scaling = scaling
        self._set_network(result, kernel_param, geometry, solver)
        return result

    def _samples_per_step(self, solver, n):
        """Samples in one evaluation: a mini-batch for Adam, all for the others."""
        if solver != "adam":
            return n
        return min(200, n) if self.batch_size == "auto" else min(self.batch_size, n)

    def _blas_threads(self, geometry, kernel_param, n_samples):
        """BLAS keeps its threads on the BLAS (im2col) path, when the products of
        one evaluation are large enough to pay for them; elsewhere the numba
        kernels' threads do the work (see
        :func:`sktensorcnn.kernels.single_threaded_blas`: BLAS threads spinning
        after a small product slow the numba head down 5-15x)."""
        if self._factorized_kind(geometry, kernel_param)[1] or not kernels.uses_gemm(
                geometry, self.n_kernels_):
            return kernels.single_threaded_blas()
        macs = (n_samples * int(np.prod(geometry.conv_shape))
                * geometry.n_kernel_entries * self.n_kernels_)
        if macs < kernels.BLAS_THREADS_MIN_MACS:
            return kernels.single_threaded_blas()
        return contextlib.nullcontext()

    def _factorized_kind(self, geometry, kernel_param):
        """``(kind, factorized)``: Tucker / CP kernels convolve factor by factor
        when that is clearly cheaper (:func:`sktensorcnn.kernels.uses_factorized`)."""
        K = self.n_kernels_
        if isinstance(kernel_param, TuckerWeight):
            return "tucker", kernels.uses_factorized(geometry, kernel_param.ranks, K)
        if isinstance(kernel_param, CPWeight):
            return "cp", kernels.uses_factorized(geometry, kernel_param.rank, K, "cp")
        return None, False

    def _run_network_solver(self, X, y, sample_weight, geometry, kernel_param,
                            solver, objective, rng, validation, alpha, scaling):
        # one start by default: each costs full passes of the network over X
        n_init = 1 if self.n_init == "auto" or self.warm_start else self.n_init
        result = None
        for start in range(n_init):
            params = self._network_start(
                X, y, sample_weight, kernel_param, geometry, rng,
                init=self.init if start == 0 else "random", alpha=alpha,
                objective=objective, scaling=scaling,
            )
            if solver == "lbfgs":
                candidate = minimize_lbfgs(
                    objective, params, max_iter=self._iterations(True), tol=self.tol,
                    verbose=self.verbose,
                    scale=self._stopping_scale(y, sample_weight))
            else:
                state = getattr(self, "_optimizer_state", None)
                candidate = self._train_epochs(
                    objective, params, len(y), solver, geometry, kernel_param, rng,
                    validation, state if self.warm_start else None,
                    self._iterations(),
                )
            if result is None or candidate.objective < result.objective:
                result = candidate
        return result

    def _train_epochs(self, objective, params, n, solver, geometry, kernel_param,
                      rng, validation, state, max_iter):
        """Epochs of ``'gd'`` or ``'adam'`` (see :mod:`sktensorcnn.solvers`)."""
        rate = self.learning_rate_init
        if rate == "auto":  # the papers' 0.01 for momentum GD; MLP's 0.001 for Adam
            rate = 0.01 if solver == "gd" else 0.001
        validation_score = None
        if validation is not None:
            X_val, y_val, w_val = validation
            n_kernel_params = len(kernel_param.param_shapes)

            def validation_score(current):
                kernel_params = current[:n_kernel_params]
                fc, intercept = current[n_kernel_params:]
                outputs = network_outputs(
                    X_val, _kernel_layout(kernel_param.to_tensor(kernel_params),
                                          geometry),
                    fc.reshape(self._n_out, -1, *geometry.pooled_shape),
                    intercept if self.fit_intercept else 0.0 * intercept,
                    geometry, self.activation,
                )
                return self._validation_score(y_val, outputs, w_val)

        batch_size = self._samples_per_step("adam", n)
        return train_by_epochs(
            objective, params, n, method=solver, learning_rate=rate,
            momentum=self.momentum, batch_size=batch_size, shuffle=self.shuffle,
            max_iter=max_iter, tol=self.tol, n_iter_no_change=self.n_iter_no_change,
            validation_score=validation_score, rng=rng, state=state,
            verbose=self.verbose,
        )

    def _split_validation(self, X, y, sample_weight, rng):
        """Hold out ``validation_fraction`` of the samples for early stopping."""
        n = len(y)
        n_val = int(np.ceil(self.validation_fraction * n))
        if n_val < 2 or n - n_val < 2:
            raise ValueError(
                f"early_stopping with validation_fraction={self.validation_fraction}"
                f" leaves {n_val} validation and {n - n_val} training samples out "
                f"of {n}; use more samples or another validation_fraction."
            )
        order = self._validation_order(y, n_val, rng)
        val, train = order[:n_val], order[n_val:]
        return (X[train], y[train], sample_weight[train],
                (X[val], y[val], sample_weight[val]))

    def _validation_order(self, y, n_val, rng):
        """Sample order whose first ``n_val`` are held out (random; classifiers
        stratify)."""
        return rng.permutation(len(y))

    def _set_network(self, result, kernel_param, geometry, solver):
        n_kernel_params = len(kernel_param.param_shapes)
        kernel_params = result.params[:n_kernel_params]
        fc, intercept = result.params[n_kernel_params:]
        if not self.fit_intercept:
            intercept = np.zeros_like(intercept)
        self._network_params = [p.copy() for p in result.params]
        self._weight_params = None
        self._export_kernels(kernel_params, geometry)
        self._set_head(fc, intercept, geometry)
        if self.activation == "identity":  # linear: W_o = sum_k A_k (outer) B_ko
            stacked = kernel_param.to_tensor(kernel_params)
            W = np.einsum("ak,okp->apo", stacked.reshape(-1, self.n_kernels_), fc)
            self._set_linear_weight(W.reshape(*geometry.weight_shape, self._n_out),
                                    geometry)
        else:
            for name in ("coef_", "weight_"):  # linear-only attributes
                self.__dict__.pop(name, None)
        if solver in ("gd", "adam"):
            self._optimizer_state = result.state
            early = bool(self.early_stopping)
            self.validation_scores_ = list(result.validation_scores) if early else None
            self.best_validation_score_ = (max(result.validation_scores)
                                           if early else None)
            self.best_loss_ = None if early else result.best_loss
        else:
            self._optimizer_state = None

    def _partial_fit(self, X, y, sample_weight, first, classes=None):
        """One epoch of ``'adam'`` (or ``'gd'``); see the task classes'
        ``partial_fit``."""
        with self._compute():
            return self._partial_fit_epoch(X, y, sample_weight, first, classes)

    def _partial_fit_epoch(self, X, y, sample_weight, first, classes):
        solver = "adam" if self.solver == "auto" else self.solver
        if first:
            self._validate_params()
        X = self._validate_X(X, reset=first)
        y, sample_weight = self._validate_targets(X, y, sample_weight, reset=first,
                                                  classes=classes)
        rng = check_random_state(self.random_state)
        if first:
            self.geometry_ = self._make_geometry(X.shape[1:])
            self.device_ = kernels.current_device()
            self.constraint_ = self._resolve_constraint()
        geometry = self.geometry_
        kernel_param = self._make_kernel_parametrization(geometry, self._n_out)
        scaling = getattr(self, "_scaling", None)
        if self.constraint_ in KERNEL_ENTRY_CONSTRAINTS:
            # sparsity and radius are in the data's units, as for 'pgd'
            scaling = DataScaling()
        elif first or scaling is None:  # the first batch sets the scales
            scaling = DataScaling.from_data(
                X, y, sample_weight, scale_targets=self._scales_targets(),
                fit_intercept=self.fit_intercept, robust=self._loss() == "huber")
        X, y = scaling.samples(X), scaling.targets(y)
        alpha = self._penalty(sample_weight) if first else self.alpha_
        objective = self._network_objective(X, y, sample_weight, kernel_param,
                                            geometry, alpha)
        if first:
            params = self._network_start(X, y, sample_weight, kernel_param, geometry,
                                         rng, init=self.init, alpha=alpha,
                                         objective=objective, scaling=scaling)
            state, curve = None, []
        elif self._network_params is None:  # continue from a linear fit
            kernel_params, fc = self._linear_to_network(self._weight_params, geometry)
            params = scaling.to_internal([*kernel_params,
                                          _fc_by_output(fc, self._n_out),
                                          self._head()[1]])
            state, curve = None, self.loss_curve_
        else:
            params = scaling.to_internal(self._network_params)
            state = getattr(self, "_optimizer_state", None)
            curve = self.loss_curve_
        with self._blas_threads(geometry, kernel_param,
                                self._samples_per_step(solver, len(y))):
            result = self._train_epochs(objective, params, len(y), solver, geometry,
                                        kernel_param, rng, None, state, 1)
        if self.constraint_ in KERNEL_ENTRY_CONSTRAINTS:
            result.params = self._project_epoch(result.params, first)
        result.params = scaling.to_user(result.params)
        self._scaling = scaling
        self._set_network(result, kernel_param, geometry, solver)
        self.loss_curve_ = [*curve, *result.loss_curve]
        self.n_iter_ = len(self.loss_curve_)
        self._set_sizes(geometry)
        return self

    def _decision(self, X) -> np.ndarray:
        """Network outputs ``(n, n_out)``."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        fc, intercept = self._head()
        if self.activation != "identity":
            with self._compute():
                return network_outputs(X, self.kernels_, fc, intercept,
                                       self.geometry_, self.activation)
        coef = np.asarray(self.coef_).reshape(self._n_out, *self.input_shape_)
        if self.channel_axis == -1:
            coef = np.moveaxis(coef, -1, 1)
        return X.reshape(X.shape[0], -1) @ coef.reshape(self._n_out, -1).T + intercept

    def compact(self):
        """The equivalent fitted estimator with ``R_{N+1}`` (Tucker) or ``R`` (CP)
        kernels.

        Predictions depend on the kernels' output factor ``H`` ``(K, R)`` only
        through ``B H`` ([Compressed CNNs], Corollary 1): the ``R`` core (or rank-one)
        kernels with FC weights ``sum_k H[k, r] B_k`` give the same network,
        exactly, when the activation is the identity.  ``K / R`` is reported as
        ``expansion_ratio_``.

        Returns
        -------
        compact : estimator
            A fitted copy with ``n_kernels = R``; predictions equal to rounding.
        """
        check_is_fitted(self)
        if not hasattr(self, "_output_factor"):
            raise TypeError(
                f"{type(self).__name__} has dense kernels: its K kernels have no "
                "lower output rank to compact to."
            )
        if self.activation != "identity":
            raise ValueError(
                f"compact() is exact for activation='identity' only; with "
                f"activation={self.activation!r} mixing kernels before the "
                "activation changes the network."
            )
        geometry = self.geometry_
        if self._network_params is not None:
            params = self._network_params
            kernel_params, fc, intercept = params[:-2], params[-2], params[-1]
        else:
            kernel_params, fc = self._linear_to_network(self._weight_params, geometry)
            fc, intercept = _fc_by_output(fc, self._n_out), self._head()[1]
        mixing = kernel_params[self._output_factor]  # (K, R)
        R = mixing.shape[1]
        kernel_params = list(kernel_params)
        kernel_params[self._output_factor] = np.eye(R)
        fc = np.einsum("okp,kr->orp", fc.reshape(self._n_out, self.n_kernels_, -1),
                       mixing)
        compact = clone(self).set_params(n_kernels=R)
        compact.__dict__.update({k: v for k, v in self.__dict__.items()
                                 if k.endswith("_") and not k.startswith("__")})
        compact._n_out = self._n_out
        compact.n_kernels_ = R
        compact._weight_params = self._weight_params  # W's factors do not see K
        compact._network_params = (None if self._network_params is None
                                   else [*kernel_params, fc, intercept])
        compact._export_kernels(kernel_params, geometry)
        compact._set_head(fc, intercept, geometry)
        compact._set_sizes(geometry)
        return compact

    @property
    def expansion_ratio_(self) -> float:
        """``K / R``: kernels per unit of output rank ([Compressed CNNs]'s ``t``);
        above 1
        the extra kernels are redundant (see :meth:`compact`)."""
        check_is_fitted(self)
        if not hasattr(self, "_output_factor"):
            return 1.0
        kernel_params = (self._network_params[:-2] if self._network_params
                         is not None else
                         self._linear_to_network(self._weight_params,
                                                 self.geometry_)[0])
        return self.n_kernels_ / kernel_params[self._output_factor].shape[1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


def _mean_eigenvalue(datafit) -> float:
    """Mean eigenvalue of the weighted Gram matrix of a squared data term."""
    if isinstance(datafit, GramSquared):
        return float(np.trace(datafit.gram)) / datafit.gram.shape[0]
    Z = datafit.features
    return float(datafit.weights @ np.einsum("ij,ij->i", Z, Z)) / Z.shape[1]


def _stochastic_solver(estimator) -> bool:
    """``partial_fit`` exists for the epoch solvers (and ``'auto'``: Adam), as
    for ``MLPRegressor``."""
    if estimator.solver not in ("auto", "gd", "adam"):
        raise AttributeError(
            f"partial_fit is only available for solver='adam', 'gd' or 'auto', "
            f"not {estimator.solver!r}."
        )
    return True


def _fc_by_output(fc: np.ndarray, n_out: int) -> np.ndarray:
    """``(K, P * n_out)`` FC weights (outputs innermost) -> ``(n_out, K, P)``."""
    K = fc.shape[0]
    return np.ascontiguousarray(np.moveaxis(fc.reshape(K, -1, n_out), -1, 0))
