"""Regressors: dense, Tucker and CP convolution -> pooling -> fully-connected nets."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import tensorly as tl
from sklearn.base import RegressorMixin
from sklearn.utils._param_validation import Interval

from ._base import BaseTensorCNN
from .geometry import ConvPoolGeometry
from .parametrizations import CPWeight, TuckerWeight

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
    activation : {'identity'}, default='identity'
        Activation between convolution and pooling.  With the identity the network
        is linear: it is fitted on the conv-pool features ``Z`` (see
        :mod:`sktensorcnn.features`).
    solver : {'auto', 'als', 'lbfgs'}, default='auto'
        ``'als'``: alternating least squares over the factors, each block an exact
        ridge solve, so the objective never increases.  ``'lbfgs'``: scipy's
        L-BFGS-B on all factors with analytic gradients.  ``'auto'`` picks ``'als'``
        for the identity activation with the squared loss.
    alpha : float, default=0.0
        Ridge penalty on the composite weight: the objective is
        ``1/2 * mean_i s_i (y_i - y_hat_i)^2 + alpha/2 * ||W||_F^2`` (weights ``s``
        normalized to mean 1), as in scikit-learn's ``ElasticNet`` scaling.  The
        intercept is not penalized.
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
        solves reliably.
    random_state : int, RandomState instance or None, default=None
        Seeds the random starts and the CP-ALS initialization.
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
        Composite weight ``W = sum_k A_k (outer) vec(B_k)`` on the conv-pool
        features: ``predict(X) == conv_pool_features(X) . W + intercept_``.
    coef_ : ndarray of the shape of one input sample
        The network's weight in input space: ``predict(X)[i] ==
        <X[i], coef_> + intercept_``.  The picture to look at.
    geometry_ : ConvPoolGeometry
        Validated shapes of the layer (conv and pooled sizes, ...).
    input_shape_ : tuple of int
        Shape of one sample seen in ``fit``; ``predict`` requires it.
    n_features_in_ : int
        Number of input values per sample, ``prod(input_shape_)``.
    n_iter_ : int
        Iterations run by the solver.
    loss_curve_ : list of float
        Objective after each iteration.
    n_params_ : int
        Stored weights of the fitted network (kernels or their factors, FC weights,
        intercept).
    n_kernels_ : int
        Number of kernels ``K`` of the fitted network.
    model_complexity_ : int
        ``d_M`` of seed 000 (Theorems 1-2): the dimension that sets the estimation
        error, ``||W_hat - W|| ~ sqrt(d_M / n)``.
"""


def _resolve_output_rank(requested: int, n_kernels, n_cells: int, exact: bool):
    """Output rank and number of kernels."""
    if n_kernels is None:
        rank = min(requested, n_cells) if not exact else requested
        return rank, rank
    rank = requested if exact else min(requested, n_kernels, n_cells)
    return rank, n_kernels


class CNNRegressor(RegressorMixin, BaseTensorCNN):
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
        "n_kernels": [Interval(Integral, 1, None, closed="left")],
    }
    _auto_n_init = 1

    def __init__(
        self, n_kernels=1, *, kernel_size=3, stride=1, padding="valid",
        pool_size=2, pool_stride=None, channel_axis=None, activation="identity",
        solver="auto", alpha=0.0, fit_intercept=True, max_iter=200, tol=1e-6,
        n_init="auto", random_state=None, verbose=0, warm_start=False,
    ):
        super().__init__(
            kernel_size=kernel_size, stride=stride, padding=padding,
            pool_size=pool_size, pool_stride=pool_stride, channel_axis=channel_axis,
            activation=activation, solver=solver, alpha=alpha,
            fit_intercept=fit_intercept, max_iter=max_iter, tol=tol, n_init=n_init,
            random_state=random_state, verbose=verbose, warm_start=warm_start,
        )
        self.n_kernels = n_kernels

    def _make_parametrization(self, geometry: ConvPoolGeometry):
        self.n_kernels_ = self.n_kernels
        return CPWeight((geometry.n_kernel_entries, geometry.n_cells), self.n_kernels)

    def _export_network(self, params, geometry):
        kernels, fc = params
        stacked = kernels.reshape(*geometry.kernel_modes, self.n_kernels_)
        self.kernels_ = self._kernel_layout(stacked, geometry)
        self.fc_weights_ = self._fc_layout(fc, geometry)

    def _count_params(self, geometry):
        return self.n_kernels_ * (geometry.n_kernel_entries + geometry.n_cells)

    def _model_complexity(self, geometry):
        return self.n_kernels_ * (geometry.n_cells + geometry.n_kernel_entries + 1)

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


class TuckerCNNRegressor(CNNRegressor):
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
        "ranks": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "n_kernels": [Interval(Integral, 1, None, closed="left"), None],
    }
    _auto_n_init = BaseTensorCNN._auto_n_init

    def __init__(
        self, ranks=2, *, n_kernels=None, kernel_size=3, stride=1, padding="valid",
        pool_size=2, pool_stride=None, channel_axis=None, activation="identity",
        solver="auto", alpha=0.0, fit_intercept=True, max_iter=200, tol=1e-6,
        n_init="auto", random_state=None, verbose=0, warm_start=False,
    ):
        super().__init__(
            n_kernels=n_kernels, kernel_size=kernel_size, stride=stride,
            padding=padding, pool_size=pool_size, pool_stride=pool_stride,
            channel_axis=channel_axis, activation=activation, solver=solver,
            alpha=alpha, fit_intercept=fit_intercept, max_iter=max_iter, tol=tol,
            n_init=n_init, random_state=random_state, verbose=verbose,
            warm_start=warm_start,
        )
        self.ranks = ranks

    def _resolved_ranks(self, geometry: ConvPoolGeometry):
        """Tucker ranks of ``W`` (kernel modes, then output) and ``K``."""
        modes = geometry.kernel_modes
        names = [f"l_{j + 1}={m}" for j, m in enumerate(geometry.kernel_size)]
        if geometry.n_channels is not None:
            names.append(f"C={geometry.n_channels}")
        if isinstance(self.ranks, Integral):
            ranks = [min(int(self.ranks), m) for m in modes]
            out, K = _resolve_output_rank(
                int(self.ranks), self.n_kernels, geometry.n_cells, exact=False
            )
            return (*ranks, out), K
        ranks = tuple(int(r) for r in self.ranks)
        if len(ranks) != len(modes) + 1:
            raise ValueError(
                f"ranks={tuple(self.ranks)!r} has {len(ranks)} entries; give "
                f"{len(modes) + 1}: one per kernel mode ({', '.join(names)}) and the "
                "output rank R_{N+1} last."
            )
        if any(r < 1 for r in ranks):
            raise ValueError(f"ranks={ranks!r}: every rank must be >= 1.")
        for j, (r, m) in enumerate(zip(ranks, modes)):
            if r > m:
                raise ValueError(
                    f"ranks[{j}]={r} exceeds the size of kernel mode {names[j]}; "
                    f"use ranks[{j}] <= {m}."
                )
        out, K = _resolve_output_rank(
            ranks[-1], self.n_kernels, geometry.n_cells, exact=True
        )
        if out > K:
            raise ValueError(
                f"ranks[-1]={out} (output rank R_{{N+1}}) exceeds "
                f"n_kernels={K}; use ranks[-1] <= n_kernels."
            )
        if out > geometry.n_cells:
            raise ValueError(
                f"ranks[-1]={out} exceeds the P={geometry.n_cells} pooled cells, "
                "beyond which extra kernels are pure redundancy; use ranks[-1] <= "
                f"{geometry.n_cells}."
            )
        return ranks, K

    def _make_parametrization(self, geometry: ConvPoolGeometry):
        ranks, self.n_kernels_ = self._resolved_ranks(geometry)
        return TuckerWeight(geometry.weight_shape, ranks)

    def _export_network(self, params, geometry):
        *factors, fc, core = params
        out_rank = core.shape[-1]
        mixing = np.eye(self.n_kernels_, out_rank)
        stacked = tl.tucker_to_tensor((core, [*factors, mixing]))
        self.kernels_ = self._kernel_layout(stacked, geometry)
        self.fc_weights_ = self._fc_layout(fc @ mixing.T, geometry)
        self.core_ = core
        self.factors_ = [*factors, mixing]
        self.ranks_ = tuple(core.shape)

    def _count_params(self, geometry):
        ranks, K = self.ranks_, self.n_kernels_
        kernel = int(np.prod(ranks)) + sum(
            m * r for m, r in zip((*geometry.kernel_modes, K), ranks)
        )
        return kernel + K * geometry.n_cells

    def _model_complexity(self, geometry):
        ranks = self.ranks_
        return (
            int(np.prod(ranks))
            + sum(m * r for m, r in zip(geometry.kernel_modes, ranks))
            + ranks[-1] * geometry.n_cells
        )


class CPCNNRegressor(CNNRegressor):
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
        "rank": [Interval(Integral, 1, None, closed="left")],
        "n_kernels": [Interval(Integral, 1, None, closed="left"), None],
    }
    _auto_n_init = BaseTensorCNN._auto_n_init

    def __init__(
        self, rank=2, *, n_kernels=None, kernel_size=3, stride=1, padding="valid",
        pool_size=2, pool_stride=None, channel_axis=None, activation="identity",
        solver="auto", alpha=0.0, fit_intercept=True, max_iter=200, tol=1e-6,
        n_init="auto", random_state=None, verbose=0, warm_start=False,
    ):
        super().__init__(
            n_kernels=n_kernels, kernel_size=kernel_size, stride=stride,
            padding=padding, pool_size=pool_size, pool_stride=pool_stride,
            channel_axis=channel_axis, activation=activation, solver=solver,
            alpha=alpha, fit_intercept=fit_intercept, max_iter=max_iter, tol=tol,
            n_init=n_init, random_state=random_state, verbose=verbose,
            warm_start=warm_start,
        )
        self.rank = rank

    def _make_parametrization(self, geometry: ConvPoolGeometry):
        K = self.rank if self.n_kernels is None else self.n_kernels
        if self.rank > K:
            raise ValueError(
                f"rank={self.rank} exceeds n_kernels={K}; use rank <= n_kernels "
                "(or n_kernels=None for n_kernels=rank)."
            )
        self.n_kernels_ = K
        return CPWeight(geometry.weight_shape, self.rank)

    def _export_network(self, params, geometry):
        *factors, fc = params
        mixing = np.eye(self.n_kernels_, self.rank)
        stacked = tl.cp_to_tensor((None, [*factors, mixing]))
        self.kernels_ = self._kernel_layout(stacked, geometry)
        self.fc_weights_ = self._fc_layout(fc @ mixing.T, geometry)
        self.factors_ = [*factors, mixing]

    def _count_params(self, geometry):
        K = self.n_kernels_
        return self.rank * (sum(geometry.kernel_modes) + K) + K * geometry.n_cells

    def _model_complexity(self, geometry):
        n_modes = len(geometry.kernel_modes)
        return self.rank ** (n_modes + 1) + self.rank * (
            sum(geometry.kernel_modes) + geometry.n_cells
        )


for _cls in (CNNRegressor, TuckerCNNRegressor, CPCNNRegressor):
    _cls.__doc__ = (
        _cls.__doc__.rstrip()
        + "\n"
        + _COMMON_PARAMS_DOC
        + "\n    Attributes\n    ----------"
        + _COMMON_ATTRS_DOC
    )
