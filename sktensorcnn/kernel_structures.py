"""How the stacked kernel tensor is constrained: dense, Tucker or CP.

Each mixin here gives an estimator its kernel structure through
``_kernel_structure(geometry, n_out)``, a :class:`KernelStructure` that the fits
read and never write:

* ``linear``: the parametrization of the composite weight ``W`` fitted on the
  conv-pool features when the network is linear, of shape
  ``(l_1, ..., l_N, [C], P * n_out)`` (outputs innermost: with ``M`` classes
  ``W_m = sum_k A_k (outer) B_{k,m}`` shares the kernels, [Compressed CNNs] App. A.4);
* ``kernels``: the parametrization of the stacked kernels ``A_stack`` (shape
  ``(l_1, ..., l_N, [C], K)``) trained with any activation;
* :func:`linear_to_network`: the network (stacked-kernel parameters and FC
  weights ``(K, P * n_out)``) equivalent to a fitted ``W``.

The mixins also export fitted kernels (``_export_kernels``: ``kernels_`` and the
factors) and count parameters (``P`` FC weights per kernel and output).
Regressors and classifiers compose one of them with their task.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import tensorly as tl
from sklearn.utils._param_validation import Interval

from .geometry import ConvPoolGeometry
from .parametrizations import CPWeight, FullWeight, TuckerWeight

__all__ = ["CPKernels", "DenseKernels", "KernelStructure", "TuckerKernels",
           "linear_to_network"]


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


@dataclass(frozen=True)
class KernelStructure:
    """The kernel structure of one fit.

    Attributes
    ----------
    constraint : {'rank', 'tucker', 'cp'}
        The structure, named as ``solver='pgd'`` projects onto it.
    n_kernels : int
        ``K``.
    linear : parametrization
        Of the composite weight ``W`` ``(l..., [C], P * n_out)``.
    kernels : parametrization
        Of the stacked kernels ``(l..., [C], K)``.
    output_factor : int or None
        Position of the kernels' output factor ``H`` ``(K, R)`` among the
        stacked-kernel parameters (Tucker, CP; see ``compact()``).
    auto_n_init : int
        Starts of ``n_init='auto'`` on sufficient statistics.
    """

    constraint: str
    n_kernels: int
    linear: object
    kernels: object
    output_factor: int | None
    auto_n_init: int

    def to_network(self, params, geometry: ConvPoolGeometry):
        """See :func:`linear_to_network`."""
        return linear_to_network(params, geometry, self.constraint, self.n_kernels)


def linear_to_network(params, geometry: ConvPoolGeometry, constraint: str,
                      n_kernels: int):
    """Stacked-kernel parameters and FC weights ``(K, P * n_out)`` of the network
    equal to a fitted composite weight ``W``'s parameters.

    Dense: ``W = A B^T``.  Tucker and CP: the first ``R`` kernels are the core
    (or rank-one) kernels, mixed by ``H = I_{K x R}``, the rest zero.
    """
    if constraint == "rank":
        kernels, fc = params
        return [kernels.reshape(_stacked_shape(geometry, n_kernels))], fc.T
    if constraint == "tucker":
        *factors, fc, core = params
        mixing = np.eye(n_kernels, core.shape[-1])
        return [*factors, mixing, core], mixing @ fc.T
    *factors, fc = params
    mixing = np.eye(n_kernels, fc.shape[1])
    return [*factors, mixing], mixing @ fc.T


class DenseKernels:
    """``n_kernels`` unconstrained kernels: ``W`` (``L x P``) has rank ``<= K``."""

    _structure_constraints: dict = {
        "n_kernels": [Interval(Integral, 1, None, closed="left")],
    }
    #: The rank-K matrix problem is reliably solved from the spectral start.
    _auto_n_init = 1
    #: What ``solver='pgd'`` projects onto by default (``constraint=None``).
    _structure_constraint = "rank"

    _output_factor = None

    def _kernel_structure(self, geometry: ConvPoolGeometry,
                          n_out: int = 1) -> KernelStructure:
        K = self.n_kernels
        return KernelStructure(
            "rank", K,
            CPWeight((geometry.n_kernel_entries, geometry.n_cells * n_out), K),
            FullWeight(_stacked_shape(geometry, K)), None, self._auto_n_init)

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

    def _kernel_structure(self, geometry: ConvPoolGeometry,
                          n_out: int = 1) -> KernelStructure:
        ranks, K = self._resolved_ranks(geometry, n_out)
        return KernelStructure(
            "tucker", K, TuckerWeight(_linear_shape(geometry, n_out), ranks),
            TuckerWeight(_stacked_shape(geometry, K), ranks), self._output_factor,
            self._auto_n_init)

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

    def _kernel_structure(self, geometry: ConvPoolGeometry,
                          n_out: int = 1) -> KernelStructure:
        K = self._resolved_kernels()
        return KernelStructure(
            "cp", K, CPWeight(_linear_shape(geometry, n_out), self.rank),
            CPWeight(_stacked_shape(geometry, K), self.rank), self._output_factor,
            self._auto_n_init)

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
