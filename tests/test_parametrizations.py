import numpy as np
import pytest

from sktensorcnn.parametrizations import CPWeight, TuckerWeight

CASES = [
    TuckerWeight((3, 4, 2, 5), (2, 3, 2, 2)),
    TuckerWeight((2, 6), (1, 2)),
    CPWeight((3, 4, 2, 5), 3),
    CPWeight((12, 7), 2),  # dense kernels: a rank-K matrix
]


def _explicit_jacobian(param, params, b):
    """J_b column by column: W is linear in block b."""
    base = [p.copy() for p in params]
    base[b] = np.zeros_like(base[b])
    cols = []
    for i in range(params[b].size):
        trial = [p.copy() for p in base]
        flat = np.zeros(params[b].size)
        flat[i] = 1.0
        trial[b] = flat.reshape(params[b].shape)
        cols.append(param.to_tensor(trial).ravel())
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("param", CASES, ids=repr)
def test_blocks_describe_the_jacobian(param):
    rng = np.random.RandomState(0)
    params = param.initialize(rng)
    assert [p.shape for p in params] == param.param_shapes
    W = param.to_tensor(params)
    assert W.shape == param.shape
    for b in range(param.n_blocks):
        J = _explicit_jacobian(param, params, b)
        block = param.block(params, b)
        np.testing.assert_allclose(J @ params[b].ravel(), W.ravel(), atol=1e-12)
        V = rng.standard_normal((3, W.size))
        np.testing.assert_allclose(block.apply_jacobian(V), V @ J, atol=1e-12)
        np.testing.assert_allclose(block.jacobian_gram(), J.T @ J, atol=1e-12)


@pytest.mark.parametrize("param", CASES, ids=repr)
def test_set_block_keeps_the_weight(param):
    """Re-normalization (QR into the core, CP column balancing) leaves W alone."""
    rng = np.random.RandomState(1)
    params = param.initialize(rng)
    for b in range(param.n_blocks):
        theta = rng.standard_normal(params[b].size)
        trial = [p.copy() for p in params]
        trial[b] = theta.reshape(params[b].shape)
        expected = param.to_tensor(trial)
        param.set_block(params, b, theta)
        np.testing.assert_allclose(param.to_tensor(params), expected, atol=1e-10)


def test_spectral_initialization_recovers_low_rank_tensors():
    rng = np.random.RandomState(0)
    tucker = TuckerWeight((4, 5, 6), (2, 2, 1))
    W = tucker.to_tensor(tucker.initialize(rng))
    np.testing.assert_allclose(tucker.to_tensor(tucker.initialize(rng, W)), W,
                               atol=1e-8)
    dense = CPWeight((6, 5), 2)
    W = dense.to_tensor(dense.initialize(rng))
    np.testing.assert_allclose(dense.to_tensor(dense.initialize(rng, W)), W,
                               atol=1e-8)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("shape, ranks", [
    ((3, 2, 2), (3, 3, 2)),  # a rank above its mode's size
    ((6, 1, 4), (2, 1, 3)),  # above the other modes' ranks: HOOI would truncate
    ((2, 6, 5), (2, 3, 3)),
])
def test_spectral_start_with_ranks_above_a_unfoldings_rank(shape, ranks):
    """Every factor gets its columns, quietly (no process-wide filter needed),
    and the start is never worse than the rank-limited HOSVD: exact where the
    ranks cover the tensor."""
    rng = np.random.RandomState(0)
    tucker = TuckerWeight(shape, ranks)
    W = np.random.default_rng(1).standard_normal(shape)
    params = tucker.initialize(rng, W)
    assert [p.shape for p in params] == tucker.param_shapes
    start_error = np.linalg.norm(tucker.to_tensor(params) - W)
    # reference: each mode's leading singular vectors, as many as it has
    projected = W
    for mode, r in enumerate(ranks):
        u = np.linalg.svd(np.moveaxis(W, mode, 0).reshape(shape[mode], -1),
                          full_matrices=False)[0][:, :r]
        projected = np.moveaxis(np.tensordot(u @ u.T, np.moveaxis(
            projected, mode, 0), axes=1), 0, mode)
    assert start_error <= np.linalg.norm(projected - W) + 1e-12
    if all(r >= min(n, W.size // n) for n, r in zip(shape, ranks)):
        assert start_error < 1e-12 * np.linalg.norm(W)


def test_parameter_counts():
    assert TuckerWeight((5, 5, 3, 8), (2, 2, 2, 1)).n_params == 8 + 10 + 10 + 6 + 8
    assert CPWeight((5, 5, 3, 8), 2).n_params == 2 * 21
