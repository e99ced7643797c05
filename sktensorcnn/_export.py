"""How a fit becomes fitted attributes, and what a fitted network offers:
``compact()``, ``expansion_ratio_`` and ``covering_dimension_``.

Internally the output layer is ``fc`` ``(n_out, K, P)`` and ``intercept``
``(n_out,)``; the task class says how they are exposed (``_set_outputs``).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from ._problem import Fitted
from .constraints import KERNEL_ENTRY_CONSTRAINTS, covering_dimension
from .features import features_to_input_space
from .kernel_structures import _stacked_layout, linear_to_network

__all__ = ["FittedNetworkMixin"]


def fc_by_output(fc: np.ndarray, n_out: int) -> np.ndarray:
    """``(K, P * n_out)`` FC weights (outputs innermost) -> ``(n_out, K, P)``."""
    K = fc.shape[0]
    return np.ascontiguousarray(np.moveaxis(fc.reshape(K, -1, n_out), -1, 0))


class FittedNetworkMixin:
    """Publishing a :class:`~sktensorcnn._problem.Fitted` and using it."""

    def _publish(self, fitted: Fitted, geometry, solver: str, constraint: str):
        """Set every fitted attribute from ``fitted``."""
        self.geometry_ = geometry
        self.constraint_ = constraint
        self.alpha_ = fitted.alpha
        self.n_kernels_ = fitted.n_kernels
        # the epoch solvers' curves, None for the other fits (as in MLP)
        self.validation_scores_ = self.best_validation_score_ = self.best_loss_ = None
        if fitted.linear is not None:
            self._set_linear(*fitted.linear, geometry)
        else:
            self._set_network(fitted, geometry, solver)
        if fitted.constraint is not None and constraint in KERNEL_ENTRY_CONSTRAINTS:
            self._constraint = fitted.constraint  # sized: partial_fit keeps it
        if fitted.rank_history is not None:
            self.rank_history_ = fitted.rank_history
        else:
            self.__dict__.pop("rank_history_", None)
        self.n_iter_ = fitted.result.n_iter
        self.loss_curve_ = list(fitted.result.loss_curve)
        self._set_sizes(geometry)

    def _network_of(self, params, geometry):
        """Stacked-kernel parameters and ``(K, P * n_out)`` FC weights of the
        fitted composite weight's ``params``."""
        return linear_to_network(params, geometry, self._structure_constraint,
                                 self.n_kernels_)

    def _set_linear(self, params, intercept, parametrization, geometry):
        """Expose a fitted linear network: kernels, FC layer, ``weight_``,
        ``coef_``."""
        n_out = self._n_out
        self._weight_params = params
        self._network_params = None
        self._optimizer_state = None
        kernel_params, fc = self._network_of(params, geometry)
        self._export_kernels(kernel_params, geometry)
        self._set_head(fc_by_output(fc, n_out), intercept, geometry)
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

    def _set_network(self, fitted: Fitted, geometry, solver):
        params, kernel_param = fitted.network
        n_kernel_params = len(kernel_param.param_shapes)
        kernel_params = params[:n_kernel_params]
        fc, intercept = params[n_kernel_params:]
        if not self.fit_intercept:
            intercept = np.zeros_like(intercept)
        self._network_params = [p.copy() for p in params]
        self._weight_params = None
        self._scaling = fitted.scaling
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
            result = fitted.result
            self._optimizer_state = fitted.optimizer_state
            early = bool(self.early_stopping)
            # a model at an iteration (callbacks' snapshots) has no curves yet
            scores = list(getattr(result, "validation_scores", []))
            self.validation_scores_ = scores if early else None
            self.best_validation_score_ = max(scores) if early and scores else None
            self.best_loss_ = None if early else getattr(result, "best_loss", None)
        else:
            self._optimizer_state = None

    def _set_sizes(self, geometry):
        n_out = self._n_out
        n_params = self._count_params(geometry, n_out)
        if self.constraint_ in ("sparse", "l1"):  # only nonzero kernel entries
            n_params -= int(np.size(self.kernels_) - np.count_nonzero(self.kernels_))
        self.n_params_ = n_params + n_out * int(self.fit_intercept)
        self.model_complexity_ = self._model_complexity(geometry, n_out)

    def _kernel_params_and_head(self):
        """``(kernel_params, fc (n_out, K, P), intercept)`` of the fitted
        network, from its parameters or its composite weight's factors."""
        if self._network_params is not None:
            *kernel_params, fc, intercept = self._network_params
            return kernel_params, fc, intercept
        kernel_params, fc = self._network_of(self._weight_params, self.geometry_)
        return kernel_params, fc_by_output(fc, self._n_out), self._head()[1]

    def compact(self):
        """The equivalent fitted estimator with ``R_{N+1}`` (Tucker) or ``R`` (CP)
        kernels.

        Predictions depend on the kernels' output factor ``H`` ``(K, R)`` only
        through ``B H`` ([Compressed CNNs], Corollary 1): the ``R`` core (or
        rank-one) kernels with FC weights ``sum_k H[k, r] B_k`` give the same
        network, exactly, when the activation is the identity.  ``K / R`` is
        reported as ``expansion_ratio_``.

        Returns
        -------
        compact : estimator
            A fitted copy with ``n_kernels = R``; predictions equal to rounding.
        """
        check_is_fitted(self)
        if self._output_factor is None:
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
        kernel_params, fc, intercept = self._kernel_params_and_head()
        mixing = kernel_params[self._output_factor]  # (K, R)
        R = mixing.shape[1]
        kernel_params = list(kernel_params)
        kernel_params[self._output_factor] = np.eye(R)
        fc = np.einsum("okp,kr->orp", fc.reshape(self._n_out, self.n_kernels_, -1),
                       mixing)
        compact = self._with_network(kernel_params, fc, intercept, n_kernels=R)
        compact._weight_params = self._weight_params  # W's factors do not see K
        if self._network_params is None:  # a linear fit stays one (warm starts)
            compact._network_params = None
        return compact

    def _with_network(self, kernel_params, fc, intercept, **params):
        """A fitted copy of this estimator (``params`` set on it) whose network
        has the given stacked-kernel parameters, FC weights ``(n_out, K, P)``
        and intercept: how :meth:`compact` and the compressions of
        :mod:`sktensorcnn.bounds` build real estimators."""
        geometry = self.geometry_
        twin = clone(self).set_params(**params)
        twin.__dict__.update({k: v for k, v in self.__dict__.items()
                              if k.endswith("_") and not k.startswith("__")})
        twin._n_out = self._n_out
        fc = np.asarray(fc, float).reshape(self._n_out, fc.shape[1], -1)
        intercept = np.asarray(intercept, float).reshape(self._n_out)
        twin.n_kernels_ = fc.shape[1]
        twin._weight_params = None
        twin._network_params = [*(np.asarray(p, float) for p in kernel_params),
                                fc, intercept]
        twin._optimizer_state = None
        twin._export_kernels(kernel_params, geometry)
        twin._set_head(fc, intercept, geometry)
        if self.activation == "identity":  # W_o = sum_k A_k (outer) B_ko
            stacked = _stacked_layout(twin.kernels_, geometry)
            W = np.einsum("ak,okp->apo", stacked.reshape(-1, twin.n_kernels_), fc)
            twin._set_linear_weight(W.reshape(*geometry.weight_shape, self._n_out),
                                    geometry)
        twin._set_sizes(geometry)
        return twin

    @property
    def expansion_ratio_(self) -> float:
        """``K / R``: kernels per unit of output rank ([Compressed CNNs]'s ``t``);
        above 1 the extra kernels are redundant (see :meth:`compact`)."""
        check_is_fitted(self)
        if self._output_factor is None:
            return 1.0
        kernel_params = self._kernel_params_and_head()[0]
        return self.n_kernels_ / kernel_params[self._output_factor].shape[1]

    @property
    def covering_dimension_(self) -> float:
        """Covering dimension of the fitted kernels' constraint set ([Compact
        nets], Table 1; see :func:`~sktensorcnn.constraints.covering_dimension`):
        the sample size PGD needs scales with it."""
        check_is_fitted(self)
        stacked = _stacked_layout(np.asarray(self.kernels_), self.geometry_)
        return covering_dimension(self.constraint_, stacked,
                                  ranks=getattr(self, "ranks_", None),
                                  rank=getattr(self, "rank", None))
