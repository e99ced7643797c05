"""Constraint sets of the kernels, as objects that projected training uses.

A constraint is what ``solver='pgd'`` projects onto after each gradient step
([Compact nets]) and what :func:`covering_dimension` measures:

* the estimator's own structure (``constraint=None``): ``'rank'`` (``K`` dense
  kernels), ``'tucker'``, ``'cp'``.  With the identity activation it constrains
  the composite weight ``W`` ``(l..., [C], P * n_out)`` of the linear network,
  [Compressed CNNs]'s convex low-rank regression: truncated SVD of its
  ``L x P n_out`` view (rank ``n_kernels``), truncated HOSVD (``ranks``),
  CP-ALS (``rank``).  With any other activation it constrains the stacked
  kernels ``A`` ``(l..., [C], K)``; ``'rank'`` is then the network itself.
* the kernel-entry constraints of dense kernels, on ``A``: ``'sparse'`` (at
  most ``sparsity`` nonzero entries), ``'l1'`` and ``'nuclear'`` (norm balls of
  radius ``radius``).  For the norm balls each kernel's FC weights are kept at
  unit norm (``o`` is fixed in [Compact nets]): otherwise the FC layer absorbs
  the kernels' scale and the radius bounds nothing.

Each class has ``project(T)`` and ``parameters(T, parametrization, rng)``, the
parameters of a projected tensor in the parametrization the estimator exports.
"""

from __future__ import annotations

import math

import numpy as np
import tensorly as tl

from .parametrizations import CPWeight
from .projections import (
    cp_factors,
    project_l1_ball,
    project_nuclear_ball,
    project_rank,
    project_sparse,
    project_tucker,
)

__all__ = ["CONSTRAINTS", "KERNEL_ENTRY_CONSTRAINTS", "covering_dimension",
           "make_constraint", "resolve_constraint"]

#: Values of ``constraint``.
CONSTRAINTS = ("rank", "tucker", "cp", "sparse", "l1", "nuclear")
#: Constraints on the entries of dense kernels (dense estimators only).
KERNEL_ENTRY_CONSTRAINTS = ("sparse", "l1", "nuclear")
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


def resolve_constraint(constraint, structure: str, *, sparsity=None, radius=None,
                       estimator: str = "The estimator") -> str:
    """The constraint in force: the kernel structure's own (``structure``)
    unless ``constraint`` names a kernel-entry constraint (dense estimators);
    ``sparsity`` and ``radius`` only with the constraint they size."""
    if constraint is None or constraint == structure:
        resolved = structure
    elif constraint in KERNEL_ENTRY_CONSTRAINTS:
        if structure != "rank":
            raise ValueError(
                f"constraint={constraint!r} constrains the entries of dense "
                f"kernels; {estimator} has {_STRUCTURE_NAMES[structure]} kernels. "
                f"Use CNNRegressor or CNNClassifier, or constraint=None "
                f"({structure!r})."
            )
        resolved = constraint
    else:
        raise ValueError(
            f"constraint={constraint!r} is the structure of "
            f"{_STRUCTURE_NAMES[constraint]} kernels, but {estimator} "
            f"has {_STRUCTURE_NAMES[structure]} kernels; use constraint=None "
            f"(or {structure!r}), or the {_STRUCTURE_NAMES[constraint]} estimator."
        )
    if sparsity is not None and resolved != "sparse":
        raise ValueError(
            f"sparsity={sparsity} is the size of constraint='sparse'; set "
            "constraint='sparse' or leave sparsity=None."
        )
    if radius is not None and resolved not in ("l1", "nuclear"):
        raise ValueError(
            f"radius={radius} is the size of constraint='l1' or 'nuclear'; "
            "set one of them or leave radius=None."
        )
    return resolved


class _Structure:
    """The estimator's own structure, projected on ``W`` (``on_weight``) or on
    the stacked kernels ``A``."""

    #: Whether each kernel's FC weights are kept at unit norm.
    unit_fc = False

    def parameters(self, T, parametrization, rng) -> list[np.ndarray]:
        return parametrization.initialize(rng, T.reshape(parametrization.shape))


class RankConstraint(_Structure):
    """``W`` of rank ``<= K`` (its ``L x P n_out`` view); on ``A``, the ``K``
    kernels themselves (nothing to project)."""

    def __init__(self, n_kernels: int, on_weight: bool):
        self.n_kernels, self.on_weight = n_kernels, on_weight

    def project(self, T):
        return project_rank(T, self.n_kernels) if self.on_weight else T

    def parameters(self, T, parametrization, rng):
        if not self.on_weight:
            return [T]
        return super().parameters(T, parametrization, rng)


class TuckerConstraint(_Structure):
    """Tucker ranks ``<= ranks``: truncated HOSVD."""

    def __init__(self, ranks):
        self.ranks = tuple(ranks)

    def project(self, T):
        return project_tucker(T, self.ranks)


class CPConstraint(_Structure):
    """CP rank ``<= rank``: CP-ALS, remembering the factors of its last output
    so that the fitted weight is exported exactly."""

    def __init__(self, rank: int, random_state: int):
        self.rank, self.random_state = rank, random_state
        self.factors, self.output = None, None

    def project(self, T):
        self.factors = cp_factors(T, self.rank, random_state=self.random_state)
        self.output = tl.cp_to_tensor((None, self.factors))
        return self.output

    def parameters(self, T, parametrization=None, rng=None):
        if self.output is None or not np.array_equal(T, self.output):
            self.project(T)
        return CPWeight._balance([f.copy() for f in self.factors])


class EntryConstraint:
    """A kernel-entry constraint of dense kernels ``A``, sized at the start:
    ``size`` is ``sparsity`` or ``radius`` (``None``: from the start, see
    :meth:`sized`)."""

    def __init__(self, name: str, size=None):
        self.name, self.size = name, size
        self.unit_fc = name in ("l1", "nuclear")

    def sized(self, A, fc):
        """The constraint with its size resolved at the start ``(A, fc)``, and
        the start, for the norm balls with each kernel's FC scale moved into the
        kernel: ``(constraint, A, fc)``.  Defaults: ``sparsity`` one tenth of
        the entries ([Compact nets]'s ``s = p / 10``), ``radius`` the start's
        norm."""
        if self.unit_fc:
            norms = np.sqrt(np.sum(fc**2, axis=(0, 2)))
            norms = np.where(norms > 0, norms, 1.0)
            A, fc = A * norms, fc / norms[None, :, None]
        size = self.size
        if size is None and self.name == "sparse":
            size = max(1, math.ceil(0.1 * A.size))
        elif size is None and self.name == "l1":
            size = max(float(np.abs(A).sum()), 1e-12)
        elif size is None:
            size = max(float(np.linalg.svd(A.reshape(-1, A.shape[-1]),
                                           compute_uv=False).sum()), 1e-12)
        return EntryConstraint(self.name, size), A, fc

    def project(self, A):
        if self.name == "sparse":
            return project_sparse(A, self.size)
        if self.name == "l1":
            return project_l1_ball(A, self.size)
        return project_nuclear_ball(A, self.size)

    def project_fc(self, fc):
        """FC weights ``(n_out, K, P)``, each kernel's at unit norm for the norm
        balls."""
        if not self.unit_fc:
            return fc
        norms = np.sqrt(np.sum(fc**2, axis=(0, 2), keepdims=True))
        return np.where(norms > 0, fc / np.where(norms > 0, norms, 1.0), fc)

    def parameters(self, A, parametrization=None, rng=None):
        return [A]


def make_constraint(name: str, parametrization, *, on_weight: bool,
                    n_kernels: int, rng, sparsity=None, radius=None):
    """The constraint object of ``name`` for ``parametrization`` (of ``W`` when
    ``on_weight``, else of the stacked kernels)."""
    if name == "rank":
        return RankConstraint(n_kernels, on_weight)
    if name == "tucker":
        return TuckerConstraint(parametrization.ranks)
    if name == "cp":
        return CPConstraint(parametrization.rank, int(rng.randint(2**31 - 1)))
    return EntryConstraint(name, sparsity if name == "sparse" else radius)
