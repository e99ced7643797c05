"""Projections are projections: idempotent, in their set, and nearest (checked
against closed forms and brute force on small cases)."""

import itertools

import numpy as np
import pytest
import tensorly as tl
from hypothesis import given
from hypothesis import strategies as st

from sktensorcnn.projections import (
    project_cp,
    project_l1_ball,
    project_nuclear_ball,
    project_rank,
    project_sparse,
    project_tucker,
)

seeds = st.integers(0, 2**16)


def _W(seed, shape=(4, 3, 5)):
    return np.random.default_rng(seed).standard_normal(shape)


@given(seed=seeds, radius=st.floats(0.1, 20))
def test_l1_ball(seed, radius):
    W = _W(seed, (6, 4))
    P = project_l1_ball(W, radius)
    assert np.abs(P).sum() <= radius * (1 + 1e-12)
    np.testing.assert_allclose(project_l1_ball(P, radius), P, atol=1e-12)
    # nearest: no random point of the ball is closer
    rng = np.random.default_rng(seed + 1)
    for _ in range(200):
        V = rng.standard_normal(W.shape)
        V *= radius * rng.uniform() / np.abs(V).sum()
        assert np.linalg.norm(W - P) <= np.linalg.norm(W - V) + 1e-12
    # optimality (KKT): on the boundary, W - P is a subgradient direction
    if np.abs(W).sum() > radius:
        residual = (W - P).ravel()
        support = P.ravel() != 0
        level = np.abs(residual[support])
        np.testing.assert_allclose(level, level[0], rtol=1e-9)
        assert np.all(np.abs(residual[~support]) <= level[0] + 1e-12)


@given(seed=seeds, radius=st.floats(0.1, 20))
def test_nuclear_ball(seed, radius):
    W = _W(seed, (5, 4))
    P = project_nuclear_ball(W, radius)
    s = np.linalg.svd(P, compute_uv=False)
    assert s.sum() <= radius * (1 + 1e-10)
    np.testing.assert_allclose(project_nuclear_ball(P, radius), P, atol=1e-10)
    s_W = np.linalg.svd(W, compute_uv=False)
    np.testing.assert_allclose(s, project_l1_ball(s_W, radius), atol=1e-10)


@given(seed=seeds, rank=st.integers(1, 3))
def test_rank(seed, rank):
    W = _W(seed, (2, 3, 4))  # seen as 6 x 4
    P = project_rank(W, rank)
    assert np.linalg.matrix_rank(P.reshape(6, 4), tol=1e-10) <= rank
    np.testing.assert_allclose(project_rank(P, rank), P, atol=1e-10)
    s = np.linalg.svd(W.reshape(6, 4), compute_uv=False)
    # Eckart-Young: the error is the tail of the singular values
    assert np.linalg.norm(W - P) == pytest.approx(np.sqrt(np.sum(s[rank:] ** 2)))


def test_sparse_is_the_brute_force_nearest():
    W = _W(3, (2, 3))
    for s in range(1, 7):
        P = project_sparse(W, s)
        assert np.count_nonzero(P) == s
        best = min(
            np.linalg.norm(W.ravel() - np.where(np.isin(np.arange(6), keep),
                                                W.ravel(), 0))
            for keep in itertools.combinations(range(6), s)
        )
        assert np.linalg.norm(W - P) == pytest.approx(best)
        np.testing.assert_array_equal(project_sparse(P, s), P)


@given(seed=seeds)
def test_tucker_exact_on_the_set_and_quasi_optimal(seed):
    rng = np.random.default_rng(seed)
    ranks = (2, 2, 3)
    core = rng.standard_normal(ranks)
    factors = [rng.standard_normal((n, r)) for n, r in zip((4, 3, 5), ranks)]
    T = tl.tucker_to_tensor((core, factors))
    np.testing.assert_allclose(project_tucker(T, ranks), T, atol=1e-9)
    W = _W(seed)
    P = project_tucker(W, (2, 2, 2))
    assert all(np.linalg.matrix_rank(tl.unfold(P, m), tol=1e-9) <= 2
               for m in range(3))
    # the HOSVD bound: squared error <= the sum over modes of the discarded
    # squared singular values of the unfoldings (so within sqrt(3) of the best)
    tails = sum(np.sum(np.linalg.svd(tl.unfold(W, m), compute_uv=False)[2:] ** 2)
                for m in range(3))
    assert np.linalg.norm(W - P) ** 2 <= tails + 1e-10


def test_cp_recovers_an_exact_cp_tensor():
    rng = np.random.default_rng(0)
    factors = [rng.standard_normal((n, 2)) for n in (4, 5, 6)]
    T = tl.cp_to_tensor((None, factors))
    np.testing.assert_allclose(project_cp(T, 2, n_iter=200), T, atol=1e-6)
    W = _W(1)
    P = project_cp(W, 2)
    assert np.linalg.norm(W - P) < np.linalg.norm(W)


def test_bad_sizes():
    with pytest.raises(ValueError, match="radius=0"):
        project_l1_ball(_W(0), 0)
    with pytest.raises(ValueError, match="sparsity=-1"):
        project_sparse(_W(0), -1)
    with pytest.raises(ValueError, match="ranks needs 3 entries"):
        project_tucker(_W(0), (2, 2))


@pytest.mark.parametrize("shape", [(1, 1, 2), (1, 3, 1), (2, 1, 1, 2)])
def test_cp_factors_of_a_tensor_with_unit_modes_at_a_higher_rank(shape):
    """Rank 2 on a tensor whose modes of size 1 allow rank 1 at most: the
    factors have ``rank`` columns and reproduce the tensor (ALS's normal
    equations are singular there in older TensorLy / numpy versions)."""
    import tensorly as tl

    from sktensorcnn.projections import cp_factors

    W = np.random.default_rng(0).standard_normal(shape)
    factors = cp_factors(W, 2)
    assert [f.shape for f in factors] == [(n, 2) for n in shape]
    np.testing.assert_allclose(tl.cp_to_tensor((None, factors)), W, atol=1e-10)


@pytest.mark.parametrize("shape, rank, rtol", [
    ((2, 2, 5), 4, 1e-8), ((2, 5, 5), 3, 1e-2), ((3, 3, 3), 2, 1e-6)])
def test_cp_factors_above_a_modes_size_issue_no_warning(shape, rank, rtol,
                                                        monkeypatch):
    """A rank above a mode's size needs padded SVD starts.  They are built
    without TensorLy's warning: silencing it would take the process-wide
    warnings filter, which threads fitting at once race on.  The projection
    is at least as close as the rank-1 one and reproduces a tensor of that
    CP rank (to CP-ALS's accuracy in 300 sweeps)."""
    import warnings

    from sktensorcnn.projections import cp_factors

    rng = np.random.default_rng(0)
    T = tl.cp_to_tensor((None, [rng.standard_normal((n, rank)) for n in shape]))
    issued = []  # every warning issued, whatever filter a caller put in place
    monkeypatch.setattr(warnings, "warn", lambda *args, **kwargs: issued.append(args))
    factors = cp_factors(T, rank, n_iter=300)
    rank_one = tl.cp_to_tensor((None, cp_factors(T, 1, n_iter=300)))
    monkeypatch.undo()
    assert issued == []
    fitted = tl.cp_to_tensor((None, factors))
    assert np.linalg.norm(T - fitted) <= np.linalg.norm(T - rank_one) + 1e-9
    assert np.linalg.norm(T - fitted) <= rtol * np.linalg.norm(T)
