"""Regressors: dense, Tucker and CP convolution -> pooling -> fully-connected nets."""

from __future__ import annotations

from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score

from ._base import BaseTensorCNN
from .kernel_structures import CPKernels, DenseKernels, TuckerKernels

__all__ = ["CNNRegressor", "TuckerCNNRegressor", "CPCNNRegressor"]

_COMMON_PARAMS_DOC = """
    kernel_size : int or tuple of int, default=3
        Kernel extent per spatial mode (an int applies to every mode).
    stride : int or tuple of int, default=1
        Convolution stride per spatial mode.
    padding : {'valid', 'same'}, int or tuple of int, default='valid'
        Zero padding: none; enough for ``ceil(d_j / stride_j)`` outputs (TensorFlow's
        rule); or that many zeros on both sides of each spatial mode.
    pool_size : int or tuple of int, default=2
        Average-pooling window per spatial mode.  Convolution outputs that do not
        fill a whole window are dropped (floor mode).
    pool_stride : int or tuple of int, default=None
        Pooling stride; ``None`` means ``pool_size`` (non-overlapping windows).
    channel_axis : {1, -1} or None, default=None
        Axis of ``X`` that indexes input channels: ``1`` for ``(n, C, d_1, ...)``,
        ``-1`` for ``(n, d_1, ..., C)``, ``None`` for samples without channels.
        Declared, never guessed from shapes; kernels span all channels.
    activation : {'identity', 'relu', 'tanh', 'sigmoid', 'softplus', \
'squared_relu'}, default='identity'
        Activation between convolution and pooling.  With the identity the network
        is linear: it is fitted on the conv-pool features ``Z`` (see
        :mod:`sktensorcnn.features`), and ``coef_`` / ``weight_`` exist.  With any
        other it is trained through numba forward/backward kernels.
    solver : {'auto', 'als', 'lbfgs', 'gd', 'adam'}, default='auto'
        ``'als'``: alternating least squares over the factors, each block an exact
        ridge solve, so the objective never increases (identity activation only).
        ``'lbfgs'``: scipy's L-BFGS-B on all factors with analytic gradients
        (full batch).  ``'gd'``: full-batch gradient descent with momentum, as in
        the papers' experiments.  ``'adam'``: mini-batch Adam.  ``'auto'`` picks
        ``'als'`` for the identity activation and ``'lbfgs'`` otherwise.  With the
        identity activation, ``'als'`` and ``'lbfgs'`` run on the conv-pool
        features; ``'gd'`` and ``'adam'`` always run the network.
    alpha : float, default=0.0
        Ridge penalty.  Identity activation: on the composite weight, the
        objective being ``1/2 * mean_i s_i (y_i - y_hat_i)^2 + alpha/2 * ||W||_F^2``
        (weights ``s`` normalized to mean 1), as in scikit-learn's ``ElasticNet``
        scaling.  Other activations: on the squared norms of the trained kernel
        factors and FC weights, as in ``MLPRegressor``.  Never on the intercept.
    fit_intercept : bool, default=True
        Whether to fit the bias of the fully-connected layer.
    max_iter : int, default=200
        Maximum ALS sweeps or L-BFGS iterations.
    tol : float, default=1e-6
        Stop when an iteration lowers the objective by less than
        ``tol * max(|objective|, 1)``.
    n_init : int or 'auto', default='auto'
        Number of starts; the fit with the lowest objective is kept (low-rank fits
        are non-convex and a single start can end in a spurious local minimum).
        The first start is the unconstrained ridge fit truncated to the ranks
        (truncated HOSVD / SVD / CP-ALS) when ``L * P`` is small enough to solve
        it, the others random.  ``'auto'``: 4 when the fit runs on the sufficient
        statistics ``Z^T Z`` (a start then costs nothing in ``n``), else 1; always 1
        for :class:`CNNRegressor`, whose rank-K matrix problem the spectral start
        solves reliably, and for activations other than the identity.
    init : {'spectral', 'random'}, default='spectral'
        First start.  ``'spectral'``: identity activation, the unconstrained ridge
        fit truncated to the ranks; other activations, the fitted linear network
        (plus 1% noise to break symmetry).  ``'random'``: random factors, scaled
        to the kernels' fan-in (He scaling for the ReLU family).  Further starts
        (``n_init``) are random.
    batch_size : int or 'auto', default='auto'
        Samples per Adam step; ``'auto'`` is ``min(200, n_samples)``.
    shuffle : bool, default=True
        Reshuffle the samples each epoch (Adam).
    learning_rate_init : float or 'auto', default='auto'
        Step size of ``'gd'`` and ``'adam'``; ``'auto'`` is 0.01 for ``'gd'`` (the
        papers' setting) and 0.001 for ``'adam'`` (``MLPRegressor``'s).
    momentum : float, default=0.9
        Heavy-ball momentum of ``'gd'``.
    early_stopping : bool, default=False
        ``'gd'`` / ``'adam'``: hold out ``validation_fraction`` of the samples,
        stop when their R^2 has not improved by ``tol`` for ``n_iter_no_change``
        epochs, and keep the best weights seen.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
        Without early stopping, ``'gd'`` / ``'adam'`` stop when the training loss
        has not improved by ``tol`` for this many epochs (``MLPRegressor``'s rule;
        1 gives the papers' rule).
    random_state : int, RandomState instance or None, default=None
        Seeds the random starts, the CP-ALS initialization, shuffling and the
        validation split.
    verbose : int, default=0
        Print the objective after each iteration when positive.
    warm_start : bool, default=False
        Start from the previous fit's factors (a single start) when their shapes
        still fit.
"""

_COMMON_ATTRS_DOC = """
    kernels_ : ndarray of shape (n_kernels, [C], l_1, ..., l_N)
        Convolution kernels ``A_k``.
    fc_weights_ : ndarray of shape (n_kernels, p_1, ..., p_N)
        Fully-connected weights ``B_k`` applied to each pooled map.
    intercept_ : float
        Bias of the fully-connected layer.
    weight_ : ndarray of shape (l_1, ..., l_N, [C], P)
        Identity activation only.  Composite weight
        ``W = sum_k A_k (outer) vec(B_k)`` on the conv-pool features:
        ``predict(X) == conv_pool_features(X) . W + intercept_``.
    coef_ : ndarray of the shape of one input sample
        Identity activation only: the network's weight in input space,
        ``predict(X)[i] == <X[i], coef_> + intercept_``.  The picture to look at.
    geometry_ : ConvPoolGeometry
        Validated shapes of the layer (conv and pooled sizes, ...).
    input_shape_ : tuple of int
        Shape of one sample seen in ``fit``; ``predict`` requires it.
    n_features_in_ : int
        Number of input values per sample, ``prod(input_shape_)``.
    n_iter_ : int
        Iterations run by the solver.
    loss_curve_ : list of float
        Objective after each iteration (epoch, for ``'gd'`` / ``'adam'``).
    best_loss_ : float or None
        ``'gd'`` / ``'adam'`` without early stopping: the lowest epoch loss.
    validation_scores_ : list of float or None
        ``'gd'`` / ``'adam'`` with early stopping: validation R^2 per epoch.
    best_validation_score_ : float or None
        The best of ``validation_scores_``; its weights are the fitted ones.
    n_params_ : int
        Stored weights of the fitted network (kernels or their factors, FC weights,
        intercept).
    n_kernels_ : int
        Number of kernels ``K`` of the fitted network.
    model_complexity_ : int
        ``d_M`` of seed 000 (Theorems 1-2): the dimension that sets the estimation
        error, ``||W_hat - W|| ~ sqrt(d_M / n)``.
"""



class _TensorCNNRegressor(RegressorMixin, BaseTensorCNN):
    """Squared loss; predictions are the network's output."""

    @staticmethod
    def _validation_score(y_true, y_pred, sample_weight):
        """R^2, the score early stopping tracks."""
        return r2_score(y_true, y_pred, sample_weight=sample_weight)

    def predict(self, X):
        """Predict targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, *input_shape_)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self._decision(X)


class CNNRegressor(DenseKernels, _TensorCNNRegressor):
    """Convolution -> average pooling -> fully-connected regressor, dense kernels.

    ``y_hat = sum_k <avgpool(conv(X, A_k)), B_k> + b`` with ``n_kernels`` dense
    kernels.  With identity activation this is reduced-rank regression on the
    conv-pool features: the ``L x P`` composite weight has rank ``<= n_kernels``.

    Parameters
    ----------
    n_kernels : int, default=1
        Number of kernels ``K``.
    """

    _parameter_constraints = {
        **BaseTensorCNN._parameter_constraints,
        **DenseKernels._structure_constraints,
    }

    def __init__(
        self, n_kernels=1, *, kernel_size=3, stride=1, padding="valid",
        pool_size=2, pool_stride=None, channel_axis=None, activation="identity",
        solver="auto", alpha=0.0, fit_intercept=True, max_iter=200, tol=1e-6,
        n_init="auto", init="spectral", batch_size="auto", shuffle=True,
        learning_rate_init="auto", momentum=0.9, early_stopping=False,
        validation_fraction=0.1, n_iter_no_change=10, random_state=None, verbose=0,
        warm_start=False,
    ):
        super().__init__(
            kernel_size=kernel_size, stride=stride, padding=padding,
            pool_size=pool_size, pool_stride=pool_stride, channel_axis=channel_axis,
            activation=activation, solver=solver, alpha=alpha,
            fit_intercept=fit_intercept, max_iter=max_iter, tol=tol, n_init=n_init,
            init=init, batch_size=batch_size, shuffle=shuffle,
            learning_rate_init=learning_rate_init, momentum=momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, random_state=random_state,
            verbose=verbose, warm_start=warm_start,
        )
        self.n_kernels = n_kernels


class TuckerCNNRegressor(TuckerKernels, _TensorCNNRegressor):
    """CNN regressor whose stacked kernel tensor has low Tucker rank.

    The kernels, stacked into ``A_stack`` of shape ``(l_1, ..., l_N, [C], K)``, are
    ``G x_1 H_1 ... x_N H_N [x H_C] x H_{N+1}`` (seed 000, eq. 8).  Predictions
    depend on ``H_{N+1}`` only through ``B H_{N+1}``: the network equals one with
    ``R_{N+1}`` kernels (seed 000, Corollary 1).  The fitted ``H_{N+1}`` is the first
    ``R_{N+1}`` columns of the identity, so kernels beyond the ``R_{N+1}``-th are
    zero, with zero FC weights -- the exact, minimum-norm form of that redundancy.

    Parameters
    ----------
    ranks : int or tuple of int, default=2
        ``(R_1, ..., R_N, [R_C], R_{N+1})``: Tucker ranks of the stacked kernels
        along each kernel mode, the channel mode if any, and the kernel (output)
        mode.  A tuple must satisfy ``R_j <= l_j``, ``R_C <= C`` and
        ``R_{N+1} <= min(n_kernels, P)``.  An int ``r`` means ``min(r, size)`` for
        every mode.
    n_kernels : int or None, default=None
        Number of kernels ``K``; ``None`` means ``R_{N+1}``.
    """

    _parameter_constraints = {
        **BaseTensorCNN._parameter_constraints,
        **TuckerKernels._structure_constraints,
    }

    def __init__(
        self, ranks=2, *, n_kernels=None, kernel_size=3, stride=1, padding="valid",
        pool_size=2, pool_stride=None, channel_axis=None, activation="identity",
        solver="auto", alpha=0.0, fit_intercept=True, max_iter=200, tol=1e-6,
        n_init="auto", init="spectral", batch_size="auto", shuffle=True,
        learning_rate_init="auto", momentum=0.9, early_stopping=False,
        validation_fraction=0.1, n_iter_no_change=10, random_state=None, verbose=0,
        warm_start=False,
    ):
        super().__init__(
            kernel_size=kernel_size, stride=stride, padding=padding,
            pool_size=pool_size, pool_stride=pool_stride, channel_axis=channel_axis,
            activation=activation, solver=solver, alpha=alpha,
            fit_intercept=fit_intercept, max_iter=max_iter, tol=tol, n_init=n_init,
            init=init, batch_size=batch_size, shuffle=shuffle,
            learning_rate_init=learning_rate_init, momentum=momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, random_state=random_state,
            verbose=verbose, warm_start=warm_start,
        )
        self.ranks = ranks
        self.n_kernels = n_kernels


class CPCNNRegressor(CPKernels, _TensorCNNRegressor):
    """CNN regressor whose stacked kernel tensor has low CP rank.

    ``A_stack = sum_r u_1r (outer) ... (outer) u_Nr [(outer) u_Cr] (outer) h_r``:
    each kernel is a combination of ``R`` separable (rank-one) kernels.  As for
    Tucker, predictions depend only on ``R`` combinations of kernels
    (seed 000, Corollary 1); ``h_r`` is the ``r``-th unit vector, so kernels beyond
    the ``R``-th are zero.

    Parameters
    ----------
    rank : int, default=2
        CP rank ``R`` of the stacked kernels; at most ``n_kernels``.
    n_kernels : int or None, default=None
        Number of kernels ``K``; ``None`` means ``rank``.
    """

    _parameter_constraints = {
        **BaseTensorCNN._parameter_constraints,
        **CPKernels._structure_constraints,
    }

    def __init__(
        self, rank=2, *, n_kernels=None, kernel_size=3, stride=1, padding="valid",
        pool_size=2, pool_stride=None, channel_axis=None, activation="identity",
        solver="auto", alpha=0.0, fit_intercept=True, max_iter=200, tol=1e-6,
        n_init="auto", init="spectral", batch_size="auto", shuffle=True,
        learning_rate_init="auto", momentum=0.9, early_stopping=False,
        validation_fraction=0.1, n_iter_no_change=10, random_state=None, verbose=0,
        warm_start=False,
    ):
        super().__init__(
            kernel_size=kernel_size, stride=stride, padding=padding,
            pool_size=pool_size, pool_stride=pool_stride, channel_axis=channel_axis,
            activation=activation, solver=solver, alpha=alpha,
            fit_intercept=fit_intercept, max_iter=max_iter, tol=tol, n_init=n_init,
            init=init, batch_size=batch_size, shuffle=shuffle,
            learning_rate_init=learning_rate_init, momentum=momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, random_state=random_state,
            verbose=verbose, warm_start=warm_start,
        )
        self.rank = rank
        self.n_kernels = n_kernels


for _cls in (CNNRegressor, TuckerCNNRegressor, CPCNNRegressor):
    _cls.__doc__ = (
        _cls.__doc__.rstrip()
        + "\n"
        + _COMMON_PARAMS_DOC
        + "\n    Attributes\n    ----------"
        + _COMMON_ATTRS_DOC
    )
