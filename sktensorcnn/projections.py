"""Projections onto the constraint sets of projected gradient descent ([Compact nets]).

Each function maps a weight to (an approximation of) its nearest point in the set,
in the Frobenius norm:

* :func:`project_rank`: matrices of rank at most ``K`` -- truncated SVD (exact,
  Eckart-Young);
* :func:`project_tucker`: tensors of Tucker ranks at most ``ranks`` -- truncated
  HOSVD (quasi-optimal: within ``sqrt(order)`` of the best, exact on the set);
* :func:`project_cp`: tensors of CP rank at most ``R`` -- a few CP-ALS sweeps
  (an approximation: best CP approximations may not exist);
* :func:`project_sparse`: at most ``s`` nonzeros -- hard thresholding (exact);
* :func:`project_l1_ball`: the l1 ball of radius ``tau`` -- soft thresholding at
  the level found by sorting (exact; Duchi et al., 2008);
* :func:`project_nuclear_ball`: the nuclear-norm ball -- the l1-ball projection of
  the singular values (exact).

All are idempotent on their set.  Weights of any shape; the matrix ones take the
last axis as columns (the ``L x P`` view of a CNN weight).
"""

from __future__ import annotations

import numpy as np
import tensorly as tl
from tensorly.cp_tensor import CPTensor
from tensorly.decomposition import parafac

__all__ = [
    "cp_factors", "project_cp", "project_l1_ball", "project_nuclear_ball",
    "project_rank", "project_sparse", "project_tucker",
]


def _as_matrix(W: np.ndarray) -> np.ndarray:
    return W.reshape(-1, W.shape[-1])


def project_rank(W: np.ndarray, rank: int) -> np.ndarray:
    """Nearest matrix of rank ``<= rank`` to ``W`` seen as ``(prod(shape[:-1]),
    shape[-1])``."""
    _check_positive("rank", rank)
    u, s, vt = np.linalg.svd(_as_matrix(W), full_matrices=False)
    return ((u[:, :rank] * s[:rank]) @ vt[:rank]).reshape(W.shape)


def project_tucker(W: np.ndarray, ranks) -> np.ndarray:
    """Truncated HOSVD of ``W`` to Tucker ranks ``ranks`` (one per mode)."""
    ranks = [min(int(r), n) for r, n in zip(ranks, W.shape)]
    if len(ranks) != W.ndim:
        raise ValueError(f"ranks needs {W.ndim} entries, one per mode of W.")
    for r in ranks:
        _check_positive("ranks", r)
    factors = []
    for mode, r in enumerate(ranks):
        u, _, _ = np.linalg.svd(tl.unfold(W, mode), full_matrices=False)
        factors.append(u[:, :r])
    core = tl.tenalg.multi_mode_dot(W, factors, transpose=True)
    return tl.tucker_to_tensor((core, factors))


def project_cp(W: np.ndarray, rank: int, n_iter: int = 10,
               random_state=0) -> np.ndarray:
    """``W`` approximated by ``n_iter`` CP-ALS sweeps at rank ``rank`` (SVD
    start; TensorLy's ``parafac``).  Matrices (2 modes): the truncated SVD."""
    return tl.cp_to_tensor((None, cp_factors(W, rank, n_iter, random_state)))


def cp_factors(W: np.ndarray, rank: int, n_iter: int = 10,
               random_state=0) -> list[np.ndarray]:
    """The factors of :func:`project_cp` ``(W, rank)``: ``W.ndim`` matrices
    ``(W.shape[j], rank)`` whose CP tensor is the projection."""
    _check_positive("rank", rank)
    if W.ndim == 2:
        u, s, vt = np.linalg.svd(W, full_matrices=False)
        pad = max(0, rank - s.size)  # rank above the matrix's: zero columns
        u = np.pad(u[:, :rank] * s[:rank], ((0, 0), (0, pad)))
        return [u, np.pad(vt[:rank].T, ((0, 0), (0, pad)))]
    if not np.any(W):
        return [np.zeros((n, rank)) for n in W.shape]
    if 1 in W.shape and W.ndim > 2:
        # modes of size 1 carry no structure: decompose the tensor without
        # them, and give each of them a factor of ones
        kept = [j for j, n in enumerate(W.shape) if n > 1] or [0]
        inner = W.reshape([W.shape[j] for j in kept])
        if inner.ndim == 1:
            inner_factors = [np.pad(inner[:, None], ((0, 0), (0, rank - 1)))]
        else:
            inner_factors = cp_factors(inner, rank, n_iter, random_state)
        factors = [np.ones((1, rank)) for _ in W.shape]
        for j, factor in zip(kept, inner_factors):
            factors[j] = factor
        return factors
    # a rank above what the modes support makes ALS's normal equations
    # singular in some TensorLy / numpy versions: the rank is lowered until
    # they solve, and zero columns pad the factors (still CP rank <= rank)
    for fitted_rank in range(rank, 0, -1):
        try:
            weights, factors = parafac(W, rank=fitted_rank, n_iter_max=n_iter,
                                       init=_svd_start(W, fitted_rank, random_state),
                                       random_state=random_state, tol=0)
            break
        except np.linalg.LinAlgError:
            if fitted_rank == 1:
                raise
    factors = [np.asarray(f, dtype=float) for f in factors]
    factors[-1] = factors[-1] * np.asarray(weights)
    return [np.pad(f, ((0, 0), (0, rank - f.shape[1]))) for f in factors]


def _svd_start(W: np.ndarray, rank: int, random_state):
    """CP-ALS's SVD start: TensorLy's own (``'svd'``) when every unfolding has
    ``rank`` singular vectors; otherwise the same start built here, its missing
    columns drawn uniformly as TensorLy draws them.  TensorLy would warn in
    that case, and silencing it takes the process-wide warnings filter, which
    concurrent fits on threads would race on."""
    if all(rank <= min(n, W.size // n) for n in W.shape):
        return "svd"
    rng = tl.check_random_state(random_state)
    factors = []
    for mode, n in enumerate(W.shape):
        U, S, _ = np.linalg.svd(tl.unfold(W, mode), full_matrices=False)
        if mode == 0:  # the tensor's scale, as TensorLy's start has it
            U = U * S
        U = U[:, :rank]
        factors.append(np.hstack([U, rng.random_sample((n, rank - U.shape[1]))]))
    return CPTensor((np.ones(rank), factors))


def project_sparse(W: np.ndarray, n_nonzero: int) -> np.ndarray:
    """Keep the ``n_nonzero`` entries of largest magnitude (ties: first ones)."""
    _check_positive("sparsity", n_nonzero)
    flat = W.ravel()
    if n_nonzero >= flat.size:
        return W.copy()
    keep = np.argsort(-np.abs(flat), kind="stable")[:n_nonzero]
    out = np.zeros_like(flat)
    out[keep] = flat[keep]
    return out.reshape(W.shape)


def project_l1_ball(W: np.ndarray, radius: float) -> np.ndarray:
    """Nearest point of ``{V : ||V||_1 <= radius}``."""
    _check_positive("radius", radius)
    flat = W.ravel()
    if np.abs(flat).sum() <= radius:
        return W.copy()
    magnitude = np.sort(np.abs(flat))[::-1]
    cumulative = np.cumsum(magnitude) - radius
    index = np.arange(1, flat.size + 1)
    last = np.nonzero(magnitude - cumulative / index > 0)[0][-1]
    threshold = cumulative[last] / (last + 1)
    return (np.sign(flat) * np.maximum(np.abs(flat) - threshold, 0)).reshape(W.shape)


def project_nuclear_ball(W: np.ndarray, radius: float) -> np.ndarray:
    """Nearest point of ``{V : ||V||_* <= radius}`` (``W`` as ``(L, P)``)."""
    _check_positive("radius", radius)
    u, s, vt = np.linalg.svd(_as_matrix(W), full_matrices=False)
    s = project_l1_ball(s, radius)
    return ((u * s) @ vt).reshape(W.shape)


def _check_positive(name, value):
    if not value > 0:
        raise ValueError(f"{name}={value!r} must be positive.")
