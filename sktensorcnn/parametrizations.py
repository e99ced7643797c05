"""Low-rank parametrizations of the composite weight ``W``.

The composite weight of a linear CNN, ``W = sum_k A_k (outer) B_k``, is a tensor with
modes ``(l_1, ..., l_N, [C], P)``.  Constraining the stacked kernels constrains ``W``
(``docs/model.rst``):

* ``K`` dense kernels: ``W`` unfolded as an ``L x P`` matrix has rank ``<= K``
  (:class:`CPWeight` on the matrix, two modes);
* Tucker ranks ``(R_1, ..., R_N, [R_C], R_{N+1})`` on the stacked kernels: ``W`` is a
  Tucker tensor with those ranks (:class:`TuckerWeight`);
* CP rank ``R``: ``W`` is a rank-``R`` CP tensor (:class:`CPWeight`).

Each parametrization maps its parameters (a list of arrays) to ``W`` and describes
each *block* of parameters, on which ``W`` is linear, by its Jacobian ``J_b``
(``vec W = J_b theta_b``) in a form the solvers can apply cheaply: alternating least
squares solves for one block at a time, gradient methods use ``J_b^T grad_W``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorly as tl
from tensorly.decomposition import parafac, tucker
from tensorly.tenalg import khatri_rao, multi_mode_dot

__all__ = ["Block", "FullWeight", "TuckerWeight", "CPWeight"]


@dataclass
class Block:
    """One block ``theta_b`` of parameters, on which ``W`` is linear.

    Attributes
    ----------
    apply_jacobian : callable
        ``V -> V @ J_b`` for ``V`` of shape ``(k, size(W))``; rows of ``V`` are
        weights or feature vectors, the result has shape ``(k, size(theta_b))``.
    jacobian_gram : callable
        ``() -> J_b^T J_b``, so that ``||W||^2 = theta_b^T J_b^T J_b theta_b``
        (what a ridge penalty on ``W`` is in this block); called only by solvers
        that need it.
    """

    apply_jacobian: Callable[[np.ndarray], np.ndarray]
    jacobian_gram: Callable[[], np.ndarray]


def _factor_block(shape, mode: int, C_unfolded: np.ndarray) -> Block:
    """Block of a factor ``F`` with ``unfold(W, mode) = F @ C_unfolded``."""
    n_rows = shape[mode]

    def apply_jacobian(V):
        k = V.shape[0]
        V = np.moveaxis(V.reshape(k, *shape), 1 + mode, 1).reshape(k, n_rows, -1)
        return (V @ C_unfolded.T).reshape(k, -1)

    def jacobian_gram():
        return np.kron(np.eye(n_rows), C_unfolded @ C_unfolded.T)

    return Block(apply_jacobian, jacobian_gram)


def _reduce_cells(V: np.ndarray, n_cells: int, cell_factor: np.ndarray) -> np.ndarray:
    """``V x_last cell_factor^T`` for ``V`` of shape ``(k, ..., P)``: one GEMM.

    The cell mode ``P`` is last in ``W``'s layout, so the contraction runs on a free
    reshape of ``V`` (often the whole feature matrix) and every later step of a
    Jacobian product works on the ``R / P`` times smaller result.
    """
    k = V.shape[0]
    return (V.reshape(-1, n_cells) @ cell_factor).reshape(k, -1)


class _CellReduction:
    """Memo of ``_reduce_cells`` for the last two inputs.

    Within an ALS sweep every block but the cell factor's starts from the same
    ``V x_last F_last^T`` of the same (large) ``V``: computing it once per sweep
    instead of once per block saves whole passes over the features.  Arrays are
    matched by identity; the parametrizations never modify them in place.
    """

    def __init__(self, n_cells: int):
        self.n_cells = n_cells
        self.entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def __call__(self, V: np.ndarray, cell_factor: np.ndarray) -> np.ndarray:
        for v, f, out in self.entries:
            if v is V and f is cell_factor:
                return out
        out = _reduce_cells(V, self.n_cells, cell_factor)
        self.entries = [(V, cell_factor, out), *self.entries[:1]]
        return out


def _cell_block(n_kernel_entries: int, n_cells: int, C: np.ndarray) -> Block:
    """Block of the cell-mode factor ``F`` with ``unfold(W, last) = F @ C``."""

    def apply_jacobian(V):
        k = V.shape[0]
        out = np.matmul(C, V.reshape(k, n_kernel_entries, n_cells))  # (k, R, P)
        return out.transpose(0, 2, 1).reshape(k, -1)

    def jacobian_gram():
        return np.kron(np.eye(n_cells), C @ C.T)

    return Block(apply_jacobian, jacobian_gram)


def _orthonormal(n_rows: int, n_cols: int, rng: np.random.RandomState) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((n_rows, n_cols)))
    return q


class FullWeight:
    """An unconstrained tensor: one block, the tensor itself.

    Parameters
    ----------
    shape : tuple of int
    """

    def __init__(self, shape):
        self.shape = tuple(shape)

    def __repr__(self) -> str:
        return f"FullWeight({self.shape})"

    n_blocks = 1
    sweep_order = (0,)

    @property
    def param_shapes(self) -> list[tuple[int, ...]]:
        return [self.shape]

    @property
    def n_params(self) -> int:
        return int(np.prod(self.shape))

    def to_tensor(self, params) -> np.ndarray:
        return params[0]

    def initialize(self, rng: np.random.RandomState, W0: np.ndarray | None = None):
        """``W0`` itself, or standard normal entries."""
        if W0 is not None:
            return [np.array(W0, dtype=float).reshape(self.shape)]
        return [rng.standard_normal(self.shape)]

    def block(self, params, b: int) -> Block:
        return Block(lambda V: V.reshape(V.shape[0], -1),
                     lambda: np.eye(self.n_params))

    def set_block(self, params, b: int, theta: np.ndarray) -> None:
        params[0] = theta.reshape(self.shape)

    def scale_last_mode(self, params, factors: np.ndarray) -> list[np.ndarray]:
        """Parameters of ``W`` with its last mode's slices times ``factors``."""
        return [params[0] * factors]

    def normalize(self, params) -> None:
        """Nothing to normalize."""


class TuckerWeight:
    """A tensor in Tucker form: a core of shape ``ranks`` times a factor per mode.

    ``W = G x_1 F_1 x_2 ... x_M F_M`` with core ``G`` of shape ``ranks``.

    Parameters are ``[F_1, ..., F_M, G]``.  After each factor update the factor is
    re-orthonormalized (QR) and its triangular part absorbed into the core, which
    leaves ``W`` unchanged and keeps every block well conditioned.

    Parameters
    ----------
    shape : tuple of int
        Shape of ``W``.
    ranks : tuple of int
        Tucker ranks, one per mode, each at most the mode's size.
    """

    def __init__(self, shape, ranks):
        self.shape = tuple(shape)
        self.ranks = tuple(ranks)
        self._reduce = _CellReduction(self.shape[-1])

    def __repr__(self) -> str:
        return f"TuckerWeight({self.shape}, ranks={self.ranks})"

    @property
    def n_blocks(self) -> int:
        return len(self.shape) + 1

    @property
    def param_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of ``[F_1, ..., F_M, G]``."""
        return [(n, r) for n, r in zip(self.shape, self.ranks)] + [self.ranks]

    @property
    def sweep_order(self) -> list[int]:
        """Core, kernel-mode factors, then the cell factor ``F_M``: every block
        before ``F_M`` shares one reduction of the features by ``F_M``."""
        M = len(self.shape)
        return [M, *range(M - 1), M - 1]

    def normalize(self, params) -> None:
        """Nothing to do: :meth:`set_block` keeps the factors orthonormal."""

    @property
    def n_params(self) -> int:
        """Entries of the core and the factors."""
        return int(np.prod(self.ranks)) + sum(
            n * r for n, r in zip(self.shape, self.ranks)
        )

    def to_tensor(self, params) -> np.ndarray:
        return tl.tucker_to_tensor((params[-1], params[:-1]))

    def initialize(self, rng: np.random.RandomState, W0: np.ndarray | None = None):
        """Truncated HOSVD (one HOOI sweep) of ``W0``, or random orthonormal factors."""
        if W0 is not None and np.any(W0):
            ranks = np.array(self.ranks)
            # TensorLy's HOSVD and HOOI sweep find every singular vector asked for
            if np.all(ranks <= np.minimum(W0.shape, np.prod(ranks) // ranks)):
                core, factors = tucker(
                    W0, rank=list(self.ranks), n_iter_max=1, init="svd"
                )
                return [np.asarray(f) for f in factors] + [np.asarray(core)]
            return self._padded_hosvd(W0, rng)
        factors = [_orthonormal(n, r, rng) for n, r in zip(self.shape, self.ranks)]
        return factors + [rng.standard_normal(self.ranks)]

    def _padded_hosvd(self, W0: np.ndarray, rng: np.random.RandomState) -> list:
        """Truncated HOSVD of ``W0`` when a rank exceeds its mode's unfolding
        rank, the missing columns drawn uniformly, as TensorLy draws them.
        (TensorLy pads too, but warns, and silencing it takes the process-wide
        warnings filter, which concurrent fits would race on.)"""
        factors = []
        for mode, r in enumerate(self.ranks):
            U = np.linalg.svd(tl.unfold(W0, mode), full_matrices=False)[0][:, :r]
            fill = rng.random_sample((U.shape[0], r - U.shape[1]))
            factors.append(np.hstack([U, fill]))
        # the core that fits W0 best given the (no longer orthonormal) factors
        core = multi_mode_dot(W0, [np.linalg.pinv(U) for U in factors])
        return factors + [core]

    def block(self, params, b: int) -> Block:
        factors, core = params[:-1], params[-1]
        last = len(factors) - 1
        kernel_shape, n_cells = self.shape[:-1], self.shape[-1]
        n_kernel = int(np.prod(kernel_shape))
        kernel_modes = range(last)
        if b == last:
            partial = multi_mode_dot(core, factors[:-1], modes=kernel_modes)
            return _cell_block(n_kernel, n_cells, tl.unfold(partial, last))
        reduced_shape = (*kernel_shape, core.shape[-1])

        def reduce(V):
            return self._reduce(V, factors[-1]).reshape(-1, *reduced_shape)

        if b == len(factors):
            def apply_jacobian(V):
                out = multi_mode_dot(
                    reduce(V), factors[:-1], modes=range(1, last + 1),
                    transpose=True,
                )
                return out.reshape(V.shape[0], -1)

            def jacobian_gram():
                gram = np.ones((1, 1))
                for f in factors:
                    gram = np.kron(gram, f.T @ f)
                return gram

            return Block(apply_jacobian, jacobian_gram)
        partial = multi_mode_dot(core, factors[:-1], modes=kernel_modes, skip=b)
        inner = _factor_block(reduced_shape, b, tl.unfold(partial, b))
        C = tl.unfold(tl.tenalg.mode_dot(partial, factors[-1], last), b)

        def jacobian_gram():
            return np.kron(np.eye(self.shape[b]), C @ C.T)

        return Block(lambda V: inner.apply_jacobian(reduce(V)), jacobian_gram)

    def set_block(self, params, b: int, theta: np.ndarray) -> None:
        params[b] = theta.reshape(params[b].shape)
        if b < len(self.shape):
            q, r = np.linalg.qr(params[b])
            params[b] = q
            params[-1] = tl.tenalg.mode_dot(params[-1], r, b)

    def scale_last_mode(self, params, factors: np.ndarray) -> list[np.ndarray]:
        """Parameters of ``W`` with its last mode's slices times ``factors``:
        the rows of that mode's factor, kept orthonormal (as :meth:`set_block`)."""
        params = list(params)
        self.set_block(params, len(self.shape) - 1,
                       params[len(self.shape) - 1] * factors[:, None])
        return params


class CPWeight:
    """A tensor in CP form: a sum of ``rank`` outer products of factor columns.

    ``W = sum_r F_1[:, r] (outer) ... (outer) F_M[:, r]``.

    Parameters are ``[F_1, ..., F_M]``.  With two modes this is a rank-``R`` matrix
    factorization, the dense CNN with ``R`` kernels.  After each sweep
    (:meth:`normalize`) the columns are rescaled to equal norms across factors,
    which leaves ``W`` unchanged and stops the scaling freedom from drifting.

    Parameters
    ----------
    shape : tuple of int
        Shape of ``W``.
    rank : int
    """

    def __init__(self, shape, rank):
        self.shape = tuple(shape)
        self.rank = int(rank)
        self._reduce = _CellReduction(self.shape[-1])

    def __repr__(self) -> str:
        return f"CPWeight({self.shape}, rank={self.rank})"

    @property
    def n_blocks(self) -> int:
        return len(self.shape)

    @property
    def param_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of ``[F_1, ..., F_M]``."""
        return [(n, self.rank) for n in self.shape]

    @property
    def sweep_order(self) -> list[int]:
        """Kernel-mode factors, then the cell factor (see TuckerWeight)."""
        return list(range(len(self.shape)))

    def normalize(self, params) -> None:
        """Rescale the columns to equal norms across factors (``W`` unchanged)."""
        params[:] = self._balance(params)

    @property
    def n_params(self) -> int:
        """Entries of the factors."""
        return self.rank * sum(self.shape)

    def to_tensor(self, params) -> np.ndarray:
        return tl.cp_to_tensor((None, params))

    def initialize(self, rng: np.random.RandomState, W0: np.ndarray | None = None):
        """Truncated SVD (two modes) or CP-ALS (TensorLy) of ``W0``, else random."""
        if W0 is not None and np.any(W0):
            if len(self.shape) == 2:
                u, s, vt = np.linalg.svd(W0, full_matrices=False)
                u, s, vt = u[:, : self.rank], s[: self.rank], vt[: self.rank]
                if self.rank > s.size:  # more kernels than the matrix rank allows
                    extra = self.rank - s.size
                    u = np.hstack([u, np.zeros((u.shape[0], extra))])
                    vt = np.vstack([vt, np.zeros((extra, vt.shape[1]))])
                    s = np.concatenate([s, np.zeros(extra)])
                factors = [u * s, vt.T]
                return self._balance(factors)
            try:
                _, factors = parafac(
                    W0, self.rank, n_iter_max=50, init="random",
                    random_state=int(rng.randint(2**31 - 1)),
                )
                return self._balance([np.asarray(f) for f in factors])
            except np.linalg.LinAlgError:
                pass  # rank above what W0's modes support: start at random
        scale = 1.0 / np.sqrt(self.rank)
        factors = [rng.standard_normal((n, self.rank)) for n in self.shape]
        factors[-1] *= scale
        return self._balance(factors)

    def block(self, params, b: int) -> Block:
        last = len(params) - 1
        kernel_shape, n_cells = self.shape[:-1], self.shape[-1]
        n_kernel = int(np.prod(kernel_shape))
        # J_b^T J_b = I (x) (Hadamard product of the other factors' Gram matrices)
        hadamard = np.ones((self.rank, self.rank))
        for i, f in enumerate(params):
            if i != b:
                hadamard *= f.T @ f

        def jacobian_gram():
            return np.kron(np.eye(self.shape[b]), hadamard)

        if b == last:
            C = khatri_rao(params[:-1]).T if last > 1 else params[0].T
            return Block(_cell_block(n_kernel, n_cells, C).apply_jacobian,
                         jacobian_gram)
        others = [f for i, f in enumerate(params[:-1]) if i != b]
        others_kr = khatri_rao(others) if others else np.ones((1, self.rank))
        reduced_shape = (*kernel_shape, self.rank)

        def apply_jacobian(V):
            k = V.shape[0]
            U = self._reduce(V, params[-1]).reshape(k, *reduced_shape)
            U = np.moveaxis(U, 1 + b, 1).reshape(k, self.shape[b], -1, self.rank)
            return np.einsum("kasr,sr->kar", U, others_kr).reshape(k, -1)

        return Block(apply_jacobian, jacobian_gram)

    def set_block(self, params, b: int, theta: np.ndarray) -> None:
        params[b] = theta.reshape(params[b].shape)

    def scale_last_mode(self, params, factors: np.ndarray) -> list[np.ndarray]:
        """Parameters of ``W`` with its last mode's slices times ``factors``:
        the rows of that mode's factor."""
        return [*params[:-1], params[-1] * factors[:, None]]

    @staticmethod
    def _balance(factors):
        norms = np.stack([np.linalg.norm(f, axis=0) for f in factors])
        if np.any(norms == 0):
            return factors
        target = np.exp(np.log(norms).mean(axis=0))
        return [f * (target / n) for f, n in zip(factors, norms)]
