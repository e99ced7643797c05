"""Regressors: dense, Tucker and CP convolution -> pooling -> fully-connected nets."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_array

from . import losses
from ._base import BaseTensorCNN, _stochastic_solver
from ._docstrings import COMMON_ATTRS_DOC, append_common_docs
from ._scaling import weighted_median
from .kernel_structures import CPKernels, DenseKernels, TuckerKernels

__all__ = ["CNNRegressor", "TuckerCNNRegressor", "CPCNNRegressor"]

class _TensorCNNRegressor(RegressorMixin, BaseTensorCNN):
    """Squared, Huber or Poisson loss; one output per target (the prediction,
    or its log for the Poisson loss), the kernels shared across targets as in
    scikit-learn's ``MLPRegressor``."""

    _regressor_constraints: dict = {
        "loss": [StrOptions({name for name, loss in losses.BY_NAME.items()
                             if loss.regression})],
    }
    _multi_output = True

    def _loss(self) -> str:
        return self.loss

    def _encode_targets(self, y, sample_weight, *, reset, classes=None):
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        if self.loss == "poisson":
            positive = np.any(y[sample_weight > 0] > 0, axis=0)
            if np.any(y < 0) or not np.all(positive):
                raise ValueError(
                    "loss='poisson' models counts or rates: y must be >= 0 with "
                    "at least one positive value (of positive weight) per target; "
                    f"got min(y)={y.min():g}, max(y)={y.max():g}.  Use "
                    "loss='squared' or 'huber' for targets of any sign."
                )
        n_out = 1 if y.ndim == 1 else y.shape[1]
        if reset:
            self._n_out = self.n_outputs_ = n_out
        elif n_out != self._n_out:
            raise ValueError(
                f"y has {n_out} target(s) but {type(self).__name__} was fitted "
                f"with {self._n_out}; partial_fit continues a fit on targets of "
                "the same shape (call fit to start afresh)."
            )
        return y, sample_weight

    def _initial_intercept(self, y, sample_weight):
        """The best constant output per target, or near it: the weighted mean
        (its log for the Poisson loss; the median for the Huber loss, which
        outliers do not move)."""
        if not self.fit_intercept:
            return np.zeros(self._n_out)
        columns = y.reshape(len(y), -1).T
        if self.loss == "huber":
            weights = sample_weight / sample_weight.sum()
            return np.array([weighted_median(column, weights) for column in columns])
        mean = np.array([np.average(column, weights=sample_weight)
                         for column in columns])
        return np.log(mean) if self.loss == "poisson" else mean

    def _indicator_targets(self, y):
        """Targets ``(n, n_out)`` of the least squares start of the linear fits:
        ``y``, or for the Poisson loss ``log(y + mean(y))`` (the output models a
        log)."""
        y = y.reshape(len(y), -1)
        if self.loss == "poisson":
            return np.log(y + np.maximum(np.mean(y, axis=0), 1e-12))
        return y

    def _predictions(self, outputs):
        """Predictions from the network's outputs ``(n, n_out)``: the inverse
        link, one column per target (the column itself for one target)."""
        f = outputs[:, 0] if self._n_out == 1 else outputs
        return np.exp(f) if losses.BY_NAME[self.loss].link == "log" else f

    def _validation_score(self, y_true, outputs, sample_weight):
        """R^2 of the predictions (averaged over the targets), the score early
        stopping tracks."""
        return r2_score(y_true, self._predictions(outputs),
                        sample_weight=sample_weight)

    def _set_outputs(self, name, values):
        """One target: drop the leading output axis (``intercept_`` a float);
        several: keep it, as ``MLPRegressor`` and ``LinearRegression`` do."""
        if self._n_out > 1:
            setattr(self, name, values)
        else:
            setattr(self, name,
                    float(values[0]) if name == "intercept_" else values[0])

    @available_if(_stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None):
        """Run one epoch of ``'adam'`` (or ``'gd'``) on ``(X, y)``.

        The first call initializes the network (as ``fit`` would, with
        ``init``); later calls, and calls after ``fit``, continue from the current
        weights (and optimizer state).  ``solver='auto'`` means ``'adam'`` here;
        with another solver (``'lbfgs'``, ...) there is no ``partial_fit``.  With a
        kernel-entry ``constraint`` the kernels are projected after each epoch
        (projected stochastic gradient).

        Parameters
        ----------
        X : array-like of shape ``(n_samples, *input_shape)``
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            As many targets as the first call's.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        first = not hasattr(self, "kernels_")
        return self._partial_fit(X, y, sample_weight, first)

    def predict(self, X):
        """Predict targets.

        Parameters
        ----------
        X : array-like of shape ``(n_samples, *input_shape_)``

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            The network's outputs (their exponential for ``loss='poisson'``),
            one column per target when fitted on several.
        """
        return self._predictions(self._decision(X))


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
        **_TensorCNNRegressor._regressor_constraints,
    }

    def __init__(
        self, n_kernels=1, *, kernel_size=3, stride=1, padding="valid",
        pool_size=2, pool_stride=None, channel_axis=None, sample_shape=None,
        activation="identity", loss="squared",
        solver="auto", alpha="auto", fit_intercept=True, max_iter="auto", tol=1e-6,
        n_init="auto", init="auto", batch_size="auto", shuffle=True,
        learning_rate_init="auto", momentum=0.9, early_stopping=False,
        validation_fraction=0.1, n_iter_no_change=10, random_state=None, verbose=0,
        warm_start=False, n_jobs=None, constraint=None, sparsity=None,
        radius=None, device="cpu",
    ):
        super().__init__(
            kernel_size=kernel_size, stride=stride, padding=padding,
            pool_size=pool_size, pool_stride=pool_stride, channel_axis=channel_axis,
            sample_shape=sample_shape, activation=activation, solver=solver,
            alpha=alpha, fit_intercept=fit_intercept, max_iter=max_iter, tol=tol,
            n_init=n_init, init=init, batch_size=batch_size, shuffle=shuffle,
            learning_rate_init=learning_rate_init, momentum=momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, random_state=random_state,
            verbose=verbose, warm_start=warm_start, n_jobs=n_jobs,
            constraint=constraint, sparsity=sparsity, radius=radius, device=device,
        )
        self.loss = loss
        self.n_kernels = n_kernels


class TuckerCNNRegressor(TuckerKernels, _TensorCNNRegressor):
    """CNN regressor whose stacked kernel tensor has low Tucker rank.

    The kernels, stacked into ``A_stack`` of shape ``(l_1, ..., l_N, [C], K)``, are
    ``G x_1 H_1 ... x_N H_N [x H_C] x H_{N+1}`` ([Compressed CNNs], eq. 8).  Predictions
    depend on ``H_{N+1}`` only through ``B H_{N+1}``: the network equals one with
    ``R_{N+1}`` kernels ([Compressed CNNs], Corollary 1).  The fitted ``H_{N+1}`` is
    the first
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
        Number of kernels ``K``; ``None`` means ``R_{N+1}`` (with ``solver='lrd'``,
        the output rank it settles on).
    energy : float in (0, 1], default=0.95
        ``solver='lrd'`` only: the compression keeps, per mode, the smallest rank
        whose leading singular values hold this share of the unfolding's squared
        norm (``ranks`` are then the caps).
    """

    _parameter_constraints = {
        **BaseTensorCNN._parameter_constraints,
        **TuckerKernels._structure_constraints,
        **_TensorCNNRegressor._regressor_constraints,
    }

    def __init__(
        self, ranks=2, *, n_kernels=None, energy=0.95, kernel_size=3, stride=1,
        padding="valid",
        pool_size=2, pool_stride=None, channel_axis=None, sample_shape=None,
        activation="identity", loss="squared",
        solver="auto", alpha="auto", fit_intercept=True, max_iter="auto", tol=1e-6,
        n_init="auto", init="auto", batch_size="auto", shuffle=True,
        learning_rate_init="auto", momentum=0.9, early_stopping=False,
        validation_fraction=0.1, n_iter_no_change=10, random_state=None, verbose=0,
        warm_start=False, n_jobs=None, constraint=None, sparsity=None,
        radius=None, device="cpu",
    ):
        super().__init__(
            kernel_size=kernel_size, stride=stride, padding=padding,
            pool_size=pool_size, pool_stride=pool_stride, channel_axis=channel_axis,
            sample_shape=sample_shape, activation=activation, solver=solver,
            alpha=alpha, fit_intercept=fit_intercept, max_iter=max_iter, tol=tol,
            n_init=n_init, init=init, batch_size=batch_size, shuffle=shuffle,
            learning_rate_init=learning_rate_init, momentum=momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, random_state=random_state,
            verbose=verbose, warm_start=warm_start, n_jobs=n_jobs,
            constraint=constraint, sparsity=sparsity, radius=radius, device=device,
        )
        self.loss = loss
        self.ranks = ranks
        self.n_kernels = n_kernels
        self.energy = energy


class CPCNNRegressor(CPKernels, _TensorCNNRegressor):
    """CNN regressor whose stacked kernel tensor has low CP rank.

    ``A_stack = sum_r u_1r (outer) ... (outer) u_Nr [(outer) u_Cr] (outer) h_r``:
    each kernel is a combination of ``R`` separable (rank-one) kernels.  As for
    Tucker, predictions depend only on ``R`` combinations of kernels
    ([Compressed CNNs], Corollary 1); ``h_r`` is the ``r``-th unit vector, so kernels
    beyond
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
        **_TensorCNNRegressor._regressor_constraints,
    }

    def __init__(
        self, rank=2, *, n_kernels=None, kernel_size=3, stride=1, padding="valid",
        pool_size=2, pool_stride=None, channel_axis=None, sample_shape=None,
        activation="identity", loss="squared",
        solver="auto", alpha="auto", fit_intercept=True, max_iter="auto", tol=1e-6,
        n_init="auto", init="auto", batch_size="auto", shuffle=True,
        learning_rate_init="auto", momentum=0.9, early_stopping=False,
        validation_fraction=0.1, n_iter_no_change=10, random_state=None, verbose=0,
        warm_start=False, n_jobs=None, constraint=None, sparsity=None,
        radius=None, device="cpu",
    ):
        super().__init__(
            kernel_size=kernel_size, stride=stride, padding=padding,
            pool_size=pool_size, pool_stride=pool_stride, channel_axis=channel_axis,
            sample_shape=sample_shape, activation=activation, solver=solver,
            alpha=alpha, fit_intercept=fit_intercept, max_iter=max_iter, tol=tol,
            n_init=n_init, init=init, batch_size=batch_size, shuffle=shuffle,
            learning_rate_init=learning_rate_init, momentum=momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, random_state=random_state,
            verbose=verbose, warm_start=warm_start, n_jobs=n_jobs,
            constraint=constraint, sparsity=sparsity, radius=radius, device=device,
        )
        self.loss = loss
        self.rank = rank
        self.n_kernels = n_kernels


_REGRESSOR_ATTRS_DOC = """
    kernels_ : ndarray of shape (n_kernels, [C], l_1, ..., l_N)
        Convolution kernels ``A_k``, shared by the targets.
    fc_weights_ : ndarray of shape (n_kernels, p_1, ..., p_N)
        Fully-connected weights ``B_k`` applied to each pooled map; with
        ``n_targets`` targets ``(n_targets, n_kernels, p_1, ..., p_N)``, one
        set per target.
    intercept_ : float or ndarray of shape (n_targets,)
        Bias of the fully-connected layer (one per target for several).
    weight_ : ndarray of shape (l_1, ..., l_N, [C], P)
        Identity activation only.  Composite weight
        ``W = sum_k A_k (outer) vec(B_k)`` on the conv-pool features:
        ``predict(X) == conv_pool_features(X) . W + intercept_``; a leading
        axis of ``n_targets`` for several targets.
    coef_ : ndarray of the shape of one input sample
        Identity activation only: the network's weight in input space,
        ``predict(X)[i] == <X[i], coef_> + intercept_`` (``(n_targets,
        *input_shape_)`` for several targets).  The picture to look at.
    n_outputs_ : int
        Number of targets (1 for ``y`` of shape ``(n_samples,)``).""" \
    + COMMON_ATTRS_DOC

_REGRESSOR_PARAMS_DOC = """
    loss : {'squared', 'huber', 'poisson'}, default='squared'
        ``'squared'``: ``1/2 (f - y)^2``.  ``'huber'``: quadratic for residuals
        up to 1.35 robust standard deviations of the training targets (1.4826
        times their median absolute deviation), linear beyond: robust to
        outlying targets (the fits see the targets centered on their median
        and divided by that spread; not with ``solver='pgd'`` or ``'lrd'``).
        ``'poisson'``: the output is the log of the predicted mean,
        ``predict`` returns its exponential, and the loss is the Poisson
        negative log-likelihood ``e^f - y f``; for counts and rates (``y >= 0``).
        Only ``'squared'`` has sufficient statistics: the others fit the
        identity network by L-BFGS on the features, not by ALS.
"""

_REGRESSOR_EXAMPLES = {
    CNNRegressor: """
    Data from a teacher network with one 2 x 2 x 2 kernel on 7 x 5 x 7 volumes
    ([Compressed CNNs], setting S1); the identity network is fitted by
    alternating least squares on the conv-pool features.

    >>> from sktensorcnn import CNNRegressor
    >>> from sktensorcnn.datasets import make_cnn_regression
    >>> X, y, teacher = make_cnn_regression("S1", n_samples=500, noise=0.1,
    ...                                     random_state=0)
    >>> est = CNNRegressor(n_kernels=1, kernel_size=2, pool_size=(3, 2, 3))
    >>> est.fit(X[:400], y[:400]).score(X[400:], y[400:]) > 0.99
    True
    >>> est.kernels_.shape, est.coef_.shape
    ((1, 2, 2, 2), (7, 5, 7))

    A ReLU network on the same data (L-BFGS by default):

    >>> relu = CNNRegressor(n_kernels=2, kernel_size=2, pool_size=(3, 2, 3),
    ...                     activation="relu", random_state=0).fit(X, y)
    >>> relu.predict(X[:3]).shape
    (3,)
""",
    TuckerCNNRegressor: """
    Data from a Tucker teacher (ranks (2, 2, 2, 1), two 5 x 5 x 3 kernels on
    10 x 10 x 8 volumes: [Compressed CNNs], setting T1):

    >>> from sktensorcnn import TuckerCNNRegressor
    >>> from sktensorcnn.datasets import make_cnn_regression
    >>> X, y, teacher = make_cnn_regression("T1", n_samples=600, noise=0.1,
    ...                                     random_state=0)
    >>> est = TuckerCNNRegressor((2, 2, 2, 1), n_kernels=2, kernel_size=(5, 5, 3),
    ...                          pool_size=3, random_state=0)
    >>> est.fit(X[:500], y[:500]).score(X[500:], y[500:]) > 0.99
    True
    >>> est.core_.shape, [H.shape for H in est.factors_]
    ((2, 2, 2, 1), [(5, 2), (5, 2), (3, 2), (2, 1)])
    >>> est.n_params_  # 75-entry kernels, 8 pooled cells: 167 for dense ones
    53
""",
    CPCNNRegressor: """
    >>> from sktensorcnn import CPCNNRegressor
    >>> from sktensorcnn.datasets import make_cnn_regression
    >>> X, y, teacher = make_cnn_regression("T1", n_samples=600, noise=0.1,
    ...                                     random_state=0)
    >>> est = CPCNNRegressor(rank=3, kernel_size=(5, 5, 3), pool_size=3,
    ...                      random_state=0).fit(X[:500], y[:500])
    >>> est.score(X[500:], y[500:]) > 0.9
    True
    >>> [A.shape for A in est.factors_]  # one factor per kernel mode, then K
    [(5, 3), (5, 3), (3, 3), (3, 3)]
""",
}

for _cls in (CNNRegressor, TuckerCNNRegressor, CPCNNRegressor):
    append_common_docs(_cls, _REGRESSOR_ATTRS_DOC, _REGRESSOR_PARAMS_DOC,
                       _REGRESSOR_EXAMPLES[_cls])
