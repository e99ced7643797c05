"""How the stacked kernel tensor is constrained: dense, Tucker or CP.

Each class here is a mixin that gives an estimator its kernel structure:

* ``_make_parametrization``: the parametrization of the composite weight ``W``
  fitted on the conv-pool features when the network is linear, of shape
  ``(l_1, ..., l_N, [C], P * n_out)`` (outputs innermost: with ``M`` classes
  ``W_m = sum_k A_k (outer) B_{k,m}`` shares the kernels, [Compressed CNNs] App. A.4);
* ``_make_kernel_parametrization``: the parametrization of the stacked kernels
  ``A_stack`` (shape ``(l_1, ..., l_N, [C], K)``) trained with any activation;
* ``_linear_to_network``: the network (stacked-kernel parameters and FC weights
  ``(K, P * n_out)``) equivalent to a fitted ``W``, and ``_export_kernels``, which
  sets ``kernels_`` and the factors from such a network;
* the parameter counts (``P`` FC weights per kernel and output).

Regressors and classifiers compose one of them with their task.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import tensorly as tl
from sklearn.utils._param_validation import Interval

from .geometry import ConvPoolGeometry
from .parametrizations import CPWeight, FullWeight, TuckerWeight

__all__ = ["DenseKernels", "TuckerKernels", "CPKernels"]


def _kernel_layout(stacked: np.ndarray, geometry: ConvPoolGeometry) -> np.ndarray:
    """``(l_1..l_N, [C], K)`` stacked kernels -> ``kernels_`` ``(K, [C], l...)``."""
    kernels = np.moveaxis(stacked, -1, 0)
    if geometry.n_channels is not None:
        kernels = np.moveaxis(kernels, -1, 1)
    return np.ascontiguousarray(kernels)


def _stacked_layout(kernels: np.ndarray, geometry: ConvPoolGeometry) -> np.ndarray:
    """Inverse of :func:`_kernel_layout`: ``(K, [C], l...)`` -> ``(l..., [C], K)``."""
    if geometry.n_channels is not None:
        kernels = np.moveaxis(kernels, 1, -1)
    return np.moveaxis(kernels, 0, -1)


def _linear_shape(geometry: ConvPoolGeometry, n_out: int) -> tuple[int, ...]:
    """Shape of the composite weight ``W`` with ``n_out`` outputs."""
    return (*geometry.kernel_modes, geometry.n_cells * n_out)


def _stacked_shape(geometry: ConvPoolGeometry, n_kernels: int) -> tuple[int, ...]:
    return (*geometry.kernel_modes, n_kernels)


def _resolve_output_rank(requested: int, n_kernels, n_cells: int, exact: bool):
    """Output rank and number of kernels."""
    if n_kernels is None:
        rank = min(requested, n_cells) if not exact else requested
        return rank, rank
    rank = requested if exact else min(requested, n_kernels, n_cells)
    return rank, n_kernels



class DenseKernels:
    """``n_kernels`` unconstrained kernels: ``W`` (``L x P``) has rank ``<= K``."""

    _structure_constraints: dict = {
        "n_kernels": [Interval(Integral, 1, None, closed="left")],
    }
    #: The rank-K matrix problem is reliably solved from the spectral start.
    _auto_n_init = 1
    #: What ``solver='pgd'`` projects onto by default (``constraint=None``).
    _structure_constraint = "rank"

    def _make_parametrization(self, geometry: ConvPoolGeometry, n_out: int = 1):
        self.n_kernels_ = self.n_kernels
        return CPWeight((geometry.n_kernel_entries, geometry.n_cells * n_out),
                        self.n_kernels)

    def _make_kernel_parametrization(self, geometry: ConvPoolGeometry,
                                     n_out: int = 1):
        self.n_kernels_ = self.n_kernels
        return FullWeight(_stacked_shape(geometry, self.n_kernels))

    def _linear_to_network(self, params, geometry):
        kernels, fc = params
        return [kernels.reshape(_stacked_shape(geometry, self.n_kernels_))], fc.T

    def _export_kernels(self, kernel_params, geometry):
        self.kernels_ = _kernel_layout(kernel_params[0], geometry)

    def _count_params(self, geometry, n_out=1):
        return self.n_kernels_ * (geometry.n_kernel_entries + geometry.n_cells * n_out)

    def _model_complexity(self, geometry, n_out=1):
        return self.n_kernels_ * (geometry.n_cells * n_out + geometry.n_kernel_entries
                                  + 1)


class TuckerKernels:
    """Stacked kernels of Tucker ranks ``ranks``; ``n_kernels`` (default
    ``R_{N+1}``) kernels."""

    _structure_constraints: dict = {
        "ranks": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "n_kernels": [Interval(Integral, 1, None, closed="left"), None],
        "energy": [Interval(Real, 0, 1, closed="right")],
    }
    _auto_n_init = 4
    _structure_constraint = "tucker"

    def _resolved_ranks(self, geometry: ConvPoolGeometry, n_out: int = 1):
        """Tucker ranks of ``W`` (kernel modes, then output) and ``K``."""
        n_columns = geometry.n_cells * n_out
        modes = geometry.kernel_modes
        names = [f"l_{j + 1}={m}" for j, m in enumerate(geometry.kernel_size)]
        if geometry.n_channels is not None:
            names.append(f"C={geometry.n_channels}")
        if isinstance(self.ranks, Integral):
            ranks = [min(int(self.ranks), m) for m in modes]
            out, K = _resolve_output_rank(
                int(self.ranks), self.n_kernels, n_columns, exact=False
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
        out, K = _resolve_output_rank(ranks[-1], self.n_kernels, n_columns, exact=True)
        if out > K:
            raise ValueError(
                f"ranks[-1]={out} (output rank R_{{N+1}}) exceeds "
                f"n_kernels={K}; use ranks[-1] <= n_kernels."
            )
        if out > n_columns:
            raise ValueError(
                f"ranks[-1]={out} exceeds the P * n_outputs={n_columns} FC weights "
                "per kernel, beyond which extra kernels are pure redundancy; use "
                f"ranks[-1] <= {n_columns}."
            )
        return ranks, K

    #: Position of the output-mode factor ``H_{N+1}`` ``(K, R_{N+1})`` among the
    #: stacked-kernel parameters (``compact()``).
    _output_factor = -2

    def _make_parametrization(self, geometry: ConvPoolGeometry, n_out: int = 1):
        ranks, self.n_kernels_ = self._resolved_ranks(geometry, n_out)
        return TuckerWeight(_linear_shape(geometry, n_out), ranks)

    def _make_kernel_parametrization(self, geometry: ConvPoolGeometry,
                                     n_out: int = 1):
        ranks, self.n_kernels_ = self._resolved_ranks(geometry, n_out)
        return TuckerWeight(_stacked_shape(geometry, self.n_kernels_), ranks)

    def _linear_to_network(self, params, geometry):
        *factors, fc, core = params
        mixing = np.eye(self.n_kernels_, core.shape[-1])
        return [*factors, mixing, core], mixing @ fc.T

    def _export_kernels(self, kernel_params, geometry):
        *factors, core = kernel_params
        stacked = tl.tucker_to_tensor((core, factors))
        self.kernels_ = _kernel_layout(stacked, geometry)
        self.core_ = core
        self.factors_ = list(factors)
        self.ranks_ = tuple(core.shape)

    def _count_params(self, geometry, n_out=1):
        ranks, K = self.ranks_, self.n_kernels_
        kernel = int(np.prod(ranks)) + sum(
            m * r for m, r in zip((*geometry.kernel_modes, K), ranks)
        )
        return kernel + K * geometry.n_cells * n_out

    def _model_complexity(self, geometry, n_out=1):
        ranks = self.ranks_
        return (
            int(np.prod(ranks))
            + sum(m * r for m, r in zip(geometry.kernel_modes, ranks))
            + ranks[-1] * geometry.n_cells * n_out
        )


class CPKernels:
    """Stacked kernels of CP rank ``rank``; ``n_kernels`` (default ``rank``)
    kernels."""

    _structure_constraints: dict = {
        "rank": [Interval(Integral, 1, None, closed="left")],
        "n_kernels": [Interval(Integral, 1, None, closed="left"), None],
    }
    _auto_n_init = 4
    _structure_constraint = "cp"

    def _resolved_kernels(self) -> int:
        K = self.rank if self.n_kernels is None else self.n_kernels
        if self.rank > K:
            raise ValueError(
                f"rank={self.rank} exceeds n_kernels={K}; use rank <= n_kernels "
                "(or n_kernels=None for n_kernels=rank)."
            )
        return K

    _output_factor = -1

    def _make_parametrization(self, geometry: ConvPoolGeometry, n_out: int = 1):
        self.n_kernels_ = self._resolved_kernels()
        return CPWeight(_linear_shape(geometry, n_out), self.rank)

    def _make_kernel_parametrization(self, geometry: ConvPoolGeometry,
                                     n_out: int = 1):
        self.n_kernels_ = self._resolved_kernels()
        return CPWeight(_stacked_shape(geometry, self.n_kernels_), self.rank)

    def _linear_to_network(self, params, geometry):
        *factors, fc = params
        mixing = np.eye(self.n_kernels_, self.rank)
        return [*factors, mixing], mixing @ fc.T

    def _export_kernels(self, kernel_params, geometry):
        stacked = tl.cp_to_tensor((None, kernel_params))
        self.kernels_ = _kernel_layout(stacked, geometry)
        self.factors_ = list(kernel_params)

    def _count_params(self, geometry, n_out=1):
        K = self.n_kernels_
        return (self.rank * (sum(geometry.kernel_modes) + K)
                + K * geometry.n_cells * n_out)

    def _model_complexity(self, geometry, n_out=1):
        n_modes = len(geometry.kernel_modes)
        return self.rank ** (n_modes + 1) + self.rank * (
            sum(geometry.kernel_modes) + geometry.n_cells * n_out
        )
