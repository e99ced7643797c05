"""How the stacked kernel tensor is constrained: dense, Tucker or CP.

Each class here is a mixin that gives an estimator its kernel structure: the
parametrization of the composite weight ``W`` it fits (see
:mod:`sktensorcnn.parametrizations`), the mapping of fitted parameters back to a
network (``kernels_``, ``fc_weights_`` and the factors), and the parameter counts.
Regressors and classifiers compose one of them with their task.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import tensorly as tl
from sklearn.utils._param_validation import Interval

from .geometry import ConvPoolGeometry
from .parametrizations import CPWeight, TuckerWeight

__all__ = ["DenseKernels", "TuckerKernels", "CPKernels"]


def _kernel_layout(stacked: np.ndarray, geometry: ConvPoolGeometry) -> np.ndarray:
    """``(l_1..l_N, [C], K)`` stacked kernels -> ``kernels_`` ``(K, [C], l...)``."""
    kernels = np.moveaxis(stacked, -1, 0)
    if geometry.n_channels is not None:
        kernels = np.moveaxis(kernels, -1, 1)
    return kernels


def _fc_layout(V: np.ndarray, geometry: ConvPoolGeometry) -> np.ndarray:
    """``(P, K)`` FC columns -> ``fc_weights_`` ``(K, p_1, ..., p_N)``."""
    return V.T.reshape(-1, *geometry.pooled_shape)


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

    def _make_parametrization(self, geometry: ConvPoolGeometry):
        self.n_kernels_ = self.n_kernels
        return CPWeight((geometry.n_kernel_entries, geometry.n_cells), self.n_kernels)

    def _export_network(self, params, geometry):
        kernels, fc = params
        stacked = kernels.reshape(*geometry.kernel_modes, self.n_kernels_)
        self.kernels_ = _kernel_layout(stacked, geometry)
        self.fc_weights_ = _fc_layout(fc, geometry)

    def _count_params(self, geometry):
        return self.n_kernels_ * (geometry.n_kernel_entries + geometry.n_cells)

    def _model_complexity(self, geometry):
        return self.n_kernels_ * (geometry.n_cells + geometry.n_kernel_entries + 1)


class TuckerKernels:
    """Stacked kernels of Tucker ranks ``ranks``; ``n_kernels`` (default
    ``R_{N+1}``) kernels."""

    _structure_constraints: dict = {
        "ranks": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "n_kernels": [Interval(Integral, 1, None, closed="left"), None],
    }
    _auto_n_init = 4

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
        self.kernels_ = _kernel_layout(stacked, geometry)
        self.fc_weights_ = _fc_layout(fc @ mixing.T, geometry)
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


class CPKernels:
    """Stacked kernels of CP rank ``rank``; ``n_kernels`` (default ``rank``)
    kernels."""

    _structure_constraints: dict = {
        "rank": [Interval(Integral, 1, None, closed="left")],
        "n_kernels": [Interval(Integral, 1, None, closed="left"), None],
    }
    _auto_n_init = 4

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
        self.kernels_ = _kernel_layout(stacked, geometry)
        self.fc_weights_ = _fc_layout(fc @ mixing.T, geometry)
        self.factors_ = [*factors, mixing]

    def _count_params(self, geometry):
        K = self.n_kernels_
        return self.rank * (sum(geometry.kernel_modes) + K) + K * geometry.n_cells

    def _model_complexity(self, geometry):
        n_modes = len(geometry.kernel_modes)
        return self.rank ** (n_modes + 1) + self.rank * (
            sum(geometry.kernel_modes) + geometry.n_cells
        )
