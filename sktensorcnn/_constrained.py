"""Constrained training: projected gradient descent ([Compact nets]) and low-rank
descent with rank reduction ([Rank reduction]), and the covering dimension of the kernel
constraint ([Compact nets], Table 1).

What is projected
-----------------
* The estimator's own structure (``constraint=None``: ``'rank'`` for dense
  kernels, ``'tucker'``, ``'cp'``) with the identity activation: the composite
  weight ``W`` ``(l..., [C], P * n_out)`` of the linear network, the convex data
  term of [Compressed CNNs]'s low-rank regression: truncated SVD of its ``L x P n_out``
  view (rank ``n_kernels``), truncated HOSVD (``ranks``), CP-ALS (``rank``).
* Otherwise (any other activation, or the kernel-entry constraints ``'sparse'``,
  ``'l1'``, ``'nuclear'`` of dense estimators): the stacked kernels ``A``
  ``(l..., [C], K)`` of the network, [Compact nets]'s hidden-layer weight; the FC
  weights and intercepts take plain gradient steps.  ``'rank'`` is then the
  network itself (``K`` kernels: nothing to project).  For the norm balls each
  kernel's FC weights are kept at unit norm (``o`` is fixed in [Compact nets]):
  otherwise the FC layer absorbs the kernels' scale and the radius bounds
  nothing.
"""

from __future__ import annotations

import math

import numpy as np
import tensorly as tl

from .datafits import FeatureLoss, squared_datafit
from .kernel_structures import _stacked_layout, _stacked_shape
from .parametrizations import CPWeight, FullWeight, TuckerWeight
from .projections import (
    cp_factors,
    project_l1_ball,
    project_nuclear_ball,
    project_rank,
    project_sparse,
    project_tucker,
)
from .solvers import low_rank_descent, minimize_projected
from .solvers._result import ridge_objective
from .solvers.pgd import _lipschitz

__all__ = ["CONSTRAINTS", "ConstrainedFitMixin", "covering_dimension"]

#: Values of ``constraint``.
CONSTRAINTS = ("rank", "tucker", "cp", "sparse", "l1", "nuclear")
#: Constraints on the entries of dense kernels (dense estimators only).
KERNEL_ENTRY_CONSTRAINTS = ("sparse", "l1", "nuclear")
_NORM_BALLS = ("l1", "nuclear")
_STRUCTURE_NAMES = {"rank": "dense", "tucker": "Tucker", "cp": "CP"}


def covering_dimension(constraint: str, stacked: np.ndarray, *, ranks=None,
                       rank=None) -> float:
    """Covering dimension of the kernel constraint ([Compact nets], Table 1).

    Parameters
    ----------
    constraint : str
        One of :data:`CONSTRAINTS`.
    stacked : ndarray of shape (l_1, ..., l_N, [C], K)
        The fitted stacked kernels.
    ranks, rank : optional
        Tucker ranks (all modes, the kernel mode last) or CP rank.

    Returns
    -------
    float
        ``'rank'`` (``K`` unconstrained kernels of ``L`` entries: the convolutional
        subspace): ``K L``.  ``'sparse'`` / ``'l1'`` with ``s`` nonzero entries:
        ``s log(6 K L / s)``.  ``'nuclear'``, kernel matrix ``L x K`` of rank
        ``r``: ``r (L + K - r)``, the dimension of the rank-``r`` matrices (Table 1's
        ``r h`` up to the constant).  ``'tucker'``: the dimension of the tensors of
        those Tucker ranks, ``prod(R) + sum_j R_j (m_j - R_j)``.  ``'cp'``:
        ``R (sum_j m_j - n_modes + 1)``, that of rank-``R`` CP tensors.
    """
    shape = stacked.shape
    K, L = shape[-1], int(np.prod(shape[:-1]))
    if constraint == "rank":
        return float(K * L)
    if constraint in ("sparse", "l1"):
        s = int(np.count_nonzero(stacked))
        return float(s * math.log(6 * K * L / s)) if s else 0.0
    if constraint == "nuclear":
        r = int(np.linalg.matrix_rank(stacked.reshape(L, K)))
        return float(r * (L + K - r))
    if constraint == "tucker":
        return float(np.prod(ranks) + sum(r * (m - r) for r, m in zip(ranks, shape)))
    if constraint == "cp":
        return float(rank * (sum(shape) - len(shape) + 1))
    raise ValueError(f"Unknown constraint={constraint!r}; use one of {CONSTRAINTS}.")


class _CPProjection:
    """Projection onto CP rank ``rank`` that remembers the factors of its last
    output, so that the fitted weight is exported exactly."""

    def __init__(self, rank: int, random_state: int):
        self.rank, self.random_state = rank, random_state
        self.factors, self.output = None, None

    def __call__(self, T: np.ndarray) -> np.ndarray:
        self.factors = cp_factors(T, self.rank, random_state=self.random_state)
        self.output = tl.cp_to_tensor((None, self.factors))
        return self.output

    def factors_of(self, T: np.ndarray) -> list[np.ndarray]:
        if self.output is None or not np.array_equal(T, self.output):
            self(T)
        return CPWeight._balance([f.copy() for f in self.factors])


def _unit_fc(fc: np.ndarray) -> np.ndarray:
    """FC weights ``(n_out, K, P)`` with each kernel's weights at unit norm."""
    norms = np.sqrt(np.sum(fc**2, axis=(0, 2), keepdims=True))
    return np.where(norms > 0, fc / np.where(norms > 0, norms, 1.0), fc)


class ConstrainedFitMixin:
    """``solver='pgd'`` and ``solver='lrd'`` for :class:`BaseTensorCNN`."""

    # ------------------------------------------------------------ resolution
    def _resolve_constraint(self) -> str:
        """The constraint in force: the kernel structure's own unless
        ``constraint`` names a kernel-entry constraint (dense estimators)."""
        structure = self._structure_constraint
        constraint = self.constraint
        if constraint is None or constraint == structure:
            resolved = structure
        elif constraint in KERNEL_ENTRY_CONSTRAINTS:
            if structure != "rank":
                raise ValueError(
                    f"constraint={constraint!r} constrains the entries of dense "
                    f"kernels; {type(self).__name__} has "
                    f"{_STRUCTURE_NAMES[structure]} kernels. Use CNNRegressor or "
                    f"CNNClassifier, or constraint=None ({structure!r})."
                )
            resolved = constraint
        else:
            raise ValueError(
                f"constraint={constraint!r} is the structure of "
                f"{_STRUCTURE_NAMES[constraint]} kernels, but {type(self).__name__} "
                f"has {_STRUCTURE_NAMES[structure]} kernels; use constraint=None "
                f"(or {structure!r}), or the {_STRUCTURE_NAMES[constraint]} estimator."
            )
        if self.sparsity is not None and resolved != "sparse":
            raise ValueError(
                f"sparsity={self.sparsity} is the size of constraint='sparse'; set "
                "constraint='sparse' or leave sparsity=None."
            )
        if self.radius is not None and resolved not in _NORM_BALLS:
            raise ValueError(
                f"radius={self.radius} is the size of constraint='l1' or 'nuclear'; "
                "set one of them or leave radius=None."
            )
        return resolved

    @property
    def covering_dimension_(self) -> float:
        """Covering dimension of the fitted kernels' constraint set ([Compact nets],
        Table 1; see :func:`covering_dimension`): the sample size PGD needs
        scales with it."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        stacked = _stacked_layout(np.asarray(self.kernels_), self.geometry_)
        return covering_dimension(self.constraint_, stacked,
                                  ranks=getattr(self, "ranks_", None),
                                  rank=getattr(self, "rank", None))

    # ------------------------------------------------------------ problems
    def _linear_problem(self, X, y, sample_weight, geometry, parametrization, rng):
        """Identity activation: ``(objective, start, step, intercept)`` on
        ``[W]`` (squared loss, the intercept is implicit) or ``[W, b]``."""
        shape = parametrization.shape
        if self._loss() == "squared":
            datafit = squared_datafit(X, y, geometry, sample_weight=sample_weight,
                                      fit_intercept=self.fit_intercept)
            alpha = self._penalty(sample_weight, datafit, constrained=True)
            first = next(iter(self._starts(parametrization, datafit, rng,
                                           alpha=alpha)))

            def objective(params):
                value, grad = ridge_objective(datafit, params[0].ravel(), alpha)
                return value, [grad.reshape(shape)]

            def intercept(params):
                return np.array([datafit.intercept(params[0].ravel())
                                 if self.fit_intercept else 0.0])

            step = 1.0 / _lipschitz(datafit, alpha, int(np.prod(shape)), rng)
            return objective, [parametrization.to_tensor(first)], step, intercept
        n_out = self._n_out
        alpha = self._penalty(sample_weight, constrained=True)
        datafit = FeatureLoss(X, y, geometry, sample_weight, loss=self._loss(),
                              n_out=n_out)
        first = next(iter(self._loss_starts(X, y, sample_weight, parametrization,
                                            geometry, rng, alpha)))
        fit_intercept = self.fit_intercept

        def objective(params):
            w = params[0].ravel()
            value, grad_w, grad_b = datafit.value_and_gradient(w, params[1])
            return (value + 0.5 * alpha * float(w @ w),
                    [(grad_w + alpha * w).reshape(shape),
                     grad_b if fit_intercept else np.zeros(n_out)])

        start = [parametrization.to_tensor(first),
                 self._initial_intercept(y, sample_weight)]
        return objective, start, 1.0, lambda params: params[1]

    def _network_problem(self, X, y, sample_weight, geometry, kernel_param, rng):
        """Any activation: ``(objective, start)`` on ``[A, fc, b]`` with dense
        stacked kernels ``A``."""
        dense = FullWeight(kernel_param.shape)
        alpha = self._penalty(sample_weight, constrained=True)
        objective = self._network_objective(X, y, sample_weight, dense, geometry,
                                            alpha)
        start = self._network_start(X, y, sample_weight, kernel_param, geometry,
                                    rng, init=self.init, alpha=alpha)
        A = kernel_param.to_tensor(start[:-2])
        return objective, [A, start[-2], start[-1]]

    # ------------------------------------------------------------ PGD
    def _projection(self, constraint, on_weight, parametrization, rng):
        """Projection of the constrained tensor (``W`` when ``on_weight``, else
        ``A``); a :class:`_CPProjection` for CP."""
        if constraint == "rank":
            if not on_weight:
                return lambda T: T  # K kernels: the set is the network itself
            return lambda T: project_rank(T, self.n_kernels_)
        if constraint == "tucker":
            return lambda T: project_tucker(T, parametrization.ranks)
        if constraint == "cp":
            return _CPProjection(parametrization.rank, int(rng.randint(2**31 - 1)))
        if constraint == "sparse":
            return lambda T: project_sparse(T, self._sparsity)
        if constraint == "l1":
            return lambda T: project_l1_ball(T, self._radius)
        return lambda T: project_nuclear_ball(T, self._radius)

    def _entry_setup(self, constraint, A, fc):
        """Resolve ``sparsity`` / ``radius`` at the start ``(A, fc)`` and, for the
        norm balls, move each kernel's FC scale into the kernel: ``(A, fc,
        project_fc)``."""
        project_fc = np.asarray
        if constraint in _NORM_BALLS:
            norms = np.sqrt(np.sum(fc**2, axis=(0, 2)))
            norms = np.where(norms > 0, norms, 1.0)
            A, fc = A * norms, fc / norms[None, :, None]
            project_fc = _unit_fc
        self._sparsity = self.sparsity if self.sparsity is not None else max(
            1, math.ceil(0.1 * A.size))  # [Compact nets]'s s = p / 10 per kernel
        if self.radius is not None:
            self._radius = self.radius
        elif constraint == "l1":
            self._radius = max(float(np.abs(A).sum()), 1e-12)
        elif constraint == "nuclear":
            self._radius = max(float(np.linalg.svd(
                A.reshape(-1, A.shape[-1]), compute_uv=False).sum()), 1e-12)
        return A, fc, project_fc

    def _project_epoch(self, params, first):
        """``partial_fit`` with a kernel-entry constraint: projected stochastic
        gradient, the dense kernels and FC weights ``params[:2]`` projected after
        the epoch."""
        A, fc = params[0], params[1]
        constraint = self.constraint_
        if first:
            A, fc, _ = self._entry_setup(constraint, A, fc)
        project_A = self._projection(constraint, False, None, None)
        fc = _unit_fc(fc) if constraint in _NORM_BALLS else fc
        return [project_A(A), fc, *params[2:]]

    def _fit_projected(self, X, y, sample_weight, geometry, rng):
        """``solver='pgd'``."""
        constraint = self.constraint_
        n_out = self._n_out
        if self.activation == "identity" and constraint in ("rank", "tucker", "cp"):
            parametrization = self._make_parametrization(geometry, n_out)
            objective, start, step, intercept = self._linear_problem(
                X, y, sample_weight, geometry, parametrization, rng)
            project_W = self._projection(constraint, True, parametrization, rng)
            result = minimize_projected(
                objective, start, lambda p: [project_W(p[0]), *p[1:]], step=step,
                max_iter=self._iterations(), tol=self.tol, verbose=self.verbose,
                scale=self._stopping_scale(y, sample_weight))
            W = result.params[0]
            if constraint == "cp":
                params = project_W.factors_of(W)
            else:
                params = parametrization.initialize(
                    rng, W.reshape(parametrization.shape))
            self._set_linear(params, intercept(result.params), parametrization,
                             geometry)
            result.params = params
            return result

        kernel_param = self._make_kernel_parametrization(geometry, n_out)
        objective, start = self._network_problem(X, y, sample_weight, geometry,
                                                 kernel_param, rng)
        A, fc, b = start
        A, fc, project_fc = self._entry_setup(constraint, A, fc)
        project_A = self._projection(constraint, False, kernel_param, rng)
        with self._blas_threads(geometry, FullWeight(kernel_param.shape), len(y)):
            result = minimize_projected(
                objective, [A, fc, b],
                lambda p: [project_A(p[0]), project_fc(p[1]), p[2]],
                max_iter=self._iterations(), tol=self.tol, verbose=self.verbose,
                scale=self._stopping_scale(y, sample_weight))
        A = result.params[0]
        if constraint == "cp":
            kernel_params = project_A.factors_of(A)
        elif constraint == "tucker":
            kernel_params = kernel_param.initialize(rng, A)
        else:
            kernel_params = [A]
        result.params = [*kernel_params, *result.params[1:]]
        self._set_network(result, kernel_param, geometry, "pgd")
        return result

    # ------------------------------------------------------------ rank reduction
    def _fit_rank_reduction(self, X, y, sample_weight, geometry, rng):
        """``solver='lrd'``: Tucker ranks reduced during training, ``ranks``
        the caps."""
        n_out = self._n_out
        if self.activation == "identity":
            parametrization = self._make_parametrization(geometry, n_out)
            objective, start, step, intercept = self._linear_problem(
                X, y, sample_weight, geometry, parametrization, rng)
            result = low_rank_descent(
                objective, start, energy=self.energy,
                max_ranks=parametrization.ranks, step=step, max_iter=self._iterations(),
                tol=self.tol, verbose=self.verbose,
                scale=self._stopping_scale(y, sample_weight))
            n_factors = len(parametrization.ranks) + 1
            params = result.params[:n_factors]
            ranks = params[-1].shape
            self.n_kernels_ = ranks[-1] if self.n_kernels is None else self.n_kernels
            W = tl.tucker_to_tensor((params[-1], params[:-1]))
            self._set_linear(params, intercept([W, *result.params[n_factors:]]),
                             TuckerWeight(parametrization.shape, ranks), geometry)
            result.params = params
        else:
            kernel_param = self._make_kernel_parametrization(geometry, n_out)
            objective, start = self._network_problem(X, y, sample_weight, geometry,
                                                     kernel_param, rng)
            with self._blas_threads(geometry, FullWeight(kernel_param.shape), len(y)):
                result = low_rank_descent(
                    objective, start, energy=self.energy,
                    max_ranks=kernel_param.ranks, max_iter=self._iterations(),
                    tol=self.tol, verbose=self.verbose,
                    scale=self._stopping_scale(y, sample_weight))
            core = result.params[len(kernel_param.ranks)]
            settled = TuckerWeight(_stacked_shape(geometry, self.n_kernels_),
                                   core.shape)
            self._set_network(result, settled, geometry, "lrd")
        self.rank_history_ = list(result.rank_history)
        return result
