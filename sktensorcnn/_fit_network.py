"""The network with any activation, trained through the numba (or CUDA)
forward / backward kernels: L-BFGS on full batches, momentum GD and Adam by
epochs (``fit`` and ``partial_fit``).

The fits see the data on a unit scale (:mod:`sktensorcnn._scaling`) and map the
network back to the user's units at the end.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from ._network_starts import network_start
from ._problem import FitSpec, Fitted, best_of
from ._scaling import DataScaling
from .kernel_structures import _kernel_layout, _stacked_layout
from .losses import loss_and_gradient
from .network import factorized_network_loss, network_loss, network_outputs
from .parametrizations import CPWeight, TuckerWeight
from .solvers import minimize_lbfgs, train_by_epochs

__all__ = ["factorized_kind", "fit_epoch", "fit_network",
           "network_objective"]

#: Solvers that train by epochs (and have ``partial_fit``).
EPOCH_SOLVERS = ("gd", "adam")


def factorized_kind(geometry, kernel_param, n_kernels: int):
    """``(kind, factorized)``: Tucker / CP kernels convolve factor by factor
    when that is clearly cheaper (:func:`sktensorcnn.kernels.uses_factorized`)."""
    if isinstance(kernel_param, TuckerWeight):
        return "tucker", kernels.uses_factorized(geometry, kernel_param.ranks,
                                                 n_kernels)
    if isinstance(kernel_param, CPWeight):
        return "cp", kernels.uses_factorized(geometry, kernel_param.rank, n_kernels,
                                             "cp")
    return None, False


def network_objective(spec: FitSpec, X, y, sample_weight, kernel_param,
                      alpha: float):
    """``objective(params, rows)``: weighted mean loss over ``rows`` (all rows
    when ``None``) plus the ridge penalty, and its gradients; ``params`` are
    ``[*kernel_params, fc, intercept]``.  ``objective.value(params)``: the same
    over all rows without the gradients (a forward pass only, none when the
    FC weights are zero); ``objective.penalty(params)``: its ridge term.
    ``objective.epoch_order`` is the staged samples' order of a shuffled
    epoch, or ``None`` for any order
    (:func:`~sktensorcnn.solvers.train_by_epochs`)."""
    geometry, task, activation = spec.geometry, spec.task, spec.activation
    n_kernel_params = len(kernel_param.param_shapes)
    pooled = geometry.pooled_shape
    K, n_out, fit_intercept = spec.structure.n_kernels, task.n_out, task.fit_intercept
    kind, factorized = factorized_kind(geometry, kernel_param, K)
    if (kernels.current_device() == "cpu" and isinstance(X, np.ndarray)
            and not factorized and not kernels.uses_gemm(geometry, K)
            and not (X.dtype in (np.float32, np.float64) and X.flags.writeable)):
        # the fused loops read writable float32 / float64 samples: copy once
        # per fit, not at every evaluation (see kernels._host._sample_chunks)
        X = np.array(X, dtype=X.dtype if X.dtype == np.float32 else np.float64)
    # samples, targets and weights staged once per fit on the current
    # device; each evaluation normalizes the weights of its rows
    samples = kernels.stage_samples(X, geometry, y, sample_weight)

    total = float(np.sum(sample_weight))
    weights = sample_weight / total if total > 0 else np.asarray(sample_weight, float)

    def penalty(current):
        # on the kernels and FC weights, not the intercept
        return 0.5 * alpha * sum(np.sum(p**2) for p in current[:n_kernel_params + 1])

    def split(current):
        """``(kernel_params, fc, b)``: ``b`` the intercept in force."""
        fc, intercept = current[n_kernel_params], current[n_kernel_params + 1]
        return (current[:n_kernel_params], fc,
                intercept if fit_intercept else np.zeros(n_out))

    def value(current):
        kernel_params, fc, b = split(current)
        if np.any(fc):
            stacked = kernel_param.to_tensor(kernel_params)
            outputs = network_outputs(samples, _kernel_layout(stacked, geometry),
                                      fc.reshape(n_out, K, *pooled), b, geometry,
                                      activation)
        else:  # every output is the intercept: nothing to convolve
            outputs = np.tile(np.asarray(b, dtype=float), (len(weights), 1))
        with np.errstate(over="ignore", invalid="ignore"):  # inf, as the kernels
            values = loss_and_gradient(task.loss, outputs, y)[0]
        return float(weights @ values + penalty(current))

    def objective(current, rows=None):
        Xr = samples if rows is None else samples.take(rows)
        kernel_params, fc, b = split(current)
        fc_weights = fc.reshape(n_out, K, *pooled)
        if factorized:
            loss, grads, d_fc, d_intercept = factorized_network_loss(
                Xr, None, None, kernel_params, fc_weights, b, geometry,
                activation, task.loss, kind,
            )
        else:
            stacked = kernel_param.to_tensor(kernel_params)
            loss, d_kernels, d_fc, d_intercept = network_loss(
                Xr, None, None, _kernel_layout(stacked, geometry),
                fc_weights, b, geometry, activation, task.loss,
            )
            d_stacked = _stacked_layout(d_kernels, geometry).reshape(1, -1)
            grads = [
                kernel_param.block(kernel_params, j).apply_jacobian(d_stacked)[0]
                for j in range(kernel_param.n_blocks)
            ]
        grads = [g.reshape(p.shape) for g, p in zip(grads, kernel_params)]
        grads += [d_fc.reshape(fc.shape),
                  d_intercept if fit_intercept else np.zeros(n_out)]
        if alpha > 0:
            loss += penalty(current)
            for j in range(n_kernel_params + 1):
                grads[j] = grads[j] + alpha * current[j]
        return loss, grads

    objective.value, objective.penalty = value, penalty
    objective.epoch_order = getattr(samples, "epoch_order", None)
    return objective


def _data_scaling(spec: FitSpec, X, y, sample_weight) -> DataScaling:
    """Scales of a network fit; a warm start keeps those of the fit it
    continues."""
    warm = spec.warm
    if warm is not None and warm.scaling is not None \
            and warm.network_params is not None:
        return warm.scaling
    task = spec.task
    return DataScaling.from_data(X, y, sample_weight,
                                 scale_targets=task.scales_targets,
                                 fit_intercept=task.fit_intercept,
                                 robust=task.loss == "huber")


def fit_network(spec: FitSpec, X, y, sample_weight) -> Fitted:
    """Train the stacked-kernel factors, FC weights and intercept by
    ``spec.solver`` (``'lbfgs'``, ``'gd'`` or ``'adam'``)."""
    options, solver = spec.options, spec.solver
    kernel_param = spec.structure.kernels
    scaling = _data_scaling(spec, X, y, sample_weight)
    X, y = scaling.samples(X), scaling.targets(y)
    validation = None
    if solver in EPOCH_SOLVERS and options.early_stopping:
        X, y, sample_weight, validation = _split_validation(spec, X, y,
                                                            sample_weight)
    alpha = spec.penalty(sample_weight)
    objective = network_objective(spec, X, y, sample_weight, kernel_param, alpha)
    # one start by default: each costs full passes of the network over X
    n_init = 1 if options.n_init == "auto" or options.warm_start else options.n_init
    starts = (network_start(spec, X, y, sample_weight, kernel_param, objective,
                            init=options.init if start == 0 else "random",
                            alpha=alpha, scaling=scaling)
              for start in range(n_init))

    def finish(result):
        result.params = scaling.to_user(result.params)
        return Fitted(result, alpha, spec.structure.n_kernels,
                      network=(result.params, kernel_param), scaling=scaling,
                      optimizer_state=getattr(result, "state", None))

    if solver == "lbfgs":
        stopping = spec.task.stopping_scale(y, sample_weight)
        max_iter = options.iterations(True)

        def run(params):
            return minimize_lbfgs(objective, params, max_iter=max_iter,
                                  tol=options.tol, verbose=options.verbose,
                                  scale=stopping,
                                  monitor=spec.monitor(finish, max_iter))
    else:
        state = spec.warm.optimizer_state if spec.warm is not None else None

        def run(params):
            return _train_epochs(spec, objective, params, len(y), kernel_param,
                                 validation, state, options.iterations(),
                                 monitor=spec.monitor(finish, options.iterations()))
    # every path parallelizes over samples on the kernels' threads; BLAS
    # threads left spinning after its thin products would take their cores
    with kernels.single_threaded_blas():
        result = best_of(starts, run)
    return finish(result)


def fit_epoch(spec: FitSpec, X, y, sample_weight, *, first: bool, alpha,
              params_from_linear=None, constraint=None) -> Fitted:
    """One epoch of ``spec.solver`` (``'adam'`` or ``'gd'``) for ``partial_fit``.

    The first call starts the network (as ``fit`` would) and sets the scales;
    later calls continue from ``spec.warm`` (the network and optimizer state),
    or from a fitted linear network's parameters (``params_from_linear``, in the
    user's units).  With a kernel-entry constraint the data keep their units
    (the constraint's size is in them) and the kernels are projected after the
    epoch (projected stochastic gradient), by ``constraint`` once it is sized.
    """
    kernel_param = spec.structure.kernels
    task, warm = spec.task, spec.warm
    entry = constraint is not None
    if entry:
        scaling = DataScaling()
    elif first or warm.scaling is None:  # the first batch sets the scales
        scaling = DataScaling.from_data(
            X, y, sample_weight, scale_targets=task.scales_targets,
            fit_intercept=task.fit_intercept, robust=task.loss == "huber")
    else:
        scaling = warm.scaling
    X, y = scaling.samples(X), scaling.targets(y)
    alpha = spec.penalty(sample_weight) if first else alpha
    objective = network_objective(spec, X, y, sample_weight, kernel_param, alpha)
    state = None
    if first:
        params = network_start(spec, X, y, sample_weight, kernel_param, objective,
                               init=spec.options.init, alpha=alpha, scaling=scaling)
    elif params_from_linear is not None:
        params = scaling.to_internal(params_from_linear)
    else:
        params = scaling.to_internal(warm.network_params)
        state = warm.optimizer_state
    # every path parallelizes over samples on the kernels' threads; BLAS
    # threads left spinning after its thin products would take their cores
    with kernels.single_threaded_blas():
        result = _train_epochs(spec, objective, params, len(y), kernel_param, None,
                               state, 1, monitor=spec.monitor(None, 1))
    if entry:
        A, fc = result.params[0], result.params[1]
        if first:
            constraint, A, fc = constraint.sized(A, fc)
        result.params = [constraint.project(A), constraint.project_fc(fc),
                         *result.params[2:]]
    result.params = scaling.to_user(result.params)
    return Fitted(result, alpha, spec.structure.n_kernels,
                  network=(result.params, kernel_param), scaling=scaling,
                  optimizer_state=result.state, constraint=constraint)


def _train_epochs(spec: FitSpec, objective, params, n, kernel_param, validation,
                  state, max_iter, monitor=None):
    """Epochs of ``'gd'`` or ``'adam'`` (see :mod:`sktensorcnn.solvers`)."""
    options, solver, task = spec.options, spec.solver, spec.task
    rate = options.learning_rate_init
    if rate == "auto":  # the papers' 0.01 for momentum GD; MLP's 0.001 for Adam
        rate = 0.01 if solver == "gd" else 0.001
    validation_score = None
    if validation is not None:
        X_val, y_val, w_val = validation
        # staged once for the whole fit: a Dask array's validation rows are
        # gathered (persisted on a cluster) once, not at every epoch
        X_val = kernels.stage_samples(X_val, spec.geometry)
        n_kernel_params = len(kernel_param.param_shapes)
        geometry = spec.geometry

        def validation_score(current):
            kernel_params = current[:n_kernel_params]
            fc, intercept = current[n_kernel_params:]
            outputs = network_outputs(
                X_val, _kernel_layout(kernel_param.to_tensor(kernel_params),
                                      geometry),
                fc.reshape(task.n_out, -1, *geometry.pooled_shape),
                intercept if task.fit_intercept else 0.0 * intercept,
                geometry, spec.activation,
            )
            return task.validation_score(y_val, outputs, w_val)

    return train_by_epochs(
        objective, params, n, method=solver, learning_rate=rate,
        momentum=options.momentum,
        batch_size=options.samples_per_step("adam", n), shuffle=options.shuffle,
        max_iter=max_iter, tol=options.tol, n_iter_no_change=options.n_iter_no_change,
        validation_score=validation_score, rng=spec.rng, state=state,
        verbose=options.verbose, epoch_order=getattr(objective, "epoch_order", None),
        monitor=monitor,
    )


def _split_validation(spec: FitSpec, X, y, sample_weight):
    """Hold out ``validation_fraction`` of the samples for early stopping."""
    n = len(y)
    fraction = spec.options.validation_fraction
    n_val = int(np.ceil(fraction * n))
    if n_val < 2 or n - n_val < 2:
        raise ValueError(
            f"early_stopping with validation_fraction={fraction} leaves {n_val} "
            f"validation and {n - n_val} training samples out of {n}; use more "
            "samples or another validation_fraction."
        )
    order = spec.task.validation_order(y, n_val, spec.rng)
    val, train = order[:n_val], order[n_val:]
    return (X[train], y[train], sample_weight[train],
            (X[val], y[val], sample_weight[val]))
