import contextlib

import numpy as np
import pytest
from _reference import conv_pool_reference, network_reference
from hypothesis import given
from hypothesis import strategies as st

from sktensorcnn.features import (
    conv_pool_features,
    features_to_input_space,
    iter_feature_chunks,
)
from sktensorcnn.kernels import _host as kernel_dispatch
from sktensorcnn.testing import geometries

# the CPU paths of the features: mode products with box matrices (small
# samples) and the numba kernel (large ones); the kernel with its default rules,
# with every mode summed by box rows where that shrinks the table, and with
# sliding sums only, each in groups of a few samples (several per block)
PATHS = {
    "box_products": dict(BOX_PRODUCTS_MAX_ENTRIES=10**12),
    "numba": dict(BOX_PRODUCTS_MAX_ENTRIES=0),
    "numba_box_rows": dict(BOX_PRODUCTS_MAX_ENTRIES=0, BOX_ROWS_MIN_VALUES=1,
                           FEATURES_GROUP_VALUES=200),
    "numba_sliding": dict(BOX_PRODUCTS_MAX_ENTRIES=0, BOX_ROWS_MIN_VALUES=10**12,
                          FEATURES_GROUP_VALUES=200),
}


@contextlib.contextmanager
def features_path(name):
    previous = {key: getattr(kernel_dispatch, key) for key in PATHS[name]}
    for key, value in PATHS[name].items():
        setattr(kernel_dispatch, key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            setattr(kernel_dispatch, key, value)


def _random_network(rng, geometry, K):
    kernels = rng.standard_normal((K, *geometry.kernel_shape))
    fc = rng.standard_normal((K, *geometry.pooled_shape))
    return kernels, fc


def _composite_weight(kernels, fc, geometry):
    """W = sum_k A_k (outer) B_k in feature order (l..., [C], p...)."""
    K = kernels.shape[0]
    A = kernels if geometry.n_channels is None else np.moveaxis(kernels, 1, -1)
    return (A.reshape(K, -1).T @ fc.reshape(K, -1)).reshape(geometry.feature_shape)


@pytest.mark.parametrize("path", PATHS)
@given(geometry=geometries(), seed=st.integers(0, 2**16), K=st.integers(1, 3))
def test_network_equals_features_dot_weight(path, geometry, seed, K):
    rng = np.random.default_rng(seed)
    n = 3
    X = rng.standard_normal((n, *geometry.input_shape))
    kernels, fc = _random_network(rng, geometry, K)
    direct = network_reference(X, kernels, fc, 0.5, geometry)
    with features_path(path):
        Z = conv_pool_features(X, geometry)
    assert Z.shape == (n, *geometry.feature_shape)
    W = _composite_weight(kernels, fc, geometry)
    via_z = Z.reshape(n, -1) @ W.ravel() + 0.5
    np.testing.assert_allclose(via_z, direct, rtol=0, atol=1e-10)
    # and the input-space weight gives the same predictions
    WX = features_to_input_space(W, geometry)
    assert WX.shape == geometry.input_shape
    np.testing.assert_allclose(X.reshape(n, -1) @ WX.ravel() + 0.5, direct,
                               rtol=0, atol=1e-10)


@pytest.mark.parametrize("path", PATHS)
@given(geometry=geometries(), seed=st.integers(0, 2**16),
       n=st.sampled_from([2, 37]))
def test_features_match_pooled_convolutions(path, geometry, seed, n):
    """Each feature is a pooled convolution with a one-hot kernel (37 samples:
    several batches of interleaved samples reuse the kernel's scratch)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, *geometry.input_shape))
    with features_path(path):
        Z = conv_pool_features(X, geometry)
    L = geometry.n_kernel_entries
    onehot = np.eye(L).reshape(L, *geometry.kernel_modes)
    if geometry.n_channels is not None:
        onehot = np.moveaxis(onehot, -1, 1)
    pooled = conv_pool_reference(X, onehot, geometry)  # (n, L, p...)
    np.testing.assert_allclose(Z.reshape(n, L, -1), pooled.reshape(n, L, -1),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("path", PATHS)
@given(geometry=geometries(), seed=st.integers(0, 2**16))
def test_float32_features_are_summed_to_float32_accuracy(path, geometry, seed):
    """Float32 samples are summed in float32: each feature within a few hundred
    float32 roundings of the largest input of the float64 reference (inputs
    with an offset, so that the sums are far from zero)."""
    rng = np.random.default_rng(seed)
    X = 3.0 + rng.standard_normal((9, *geometry.input_shape))
    X32 = X.astype(np.float32)
    with features_path(path):
        Z32 = conv_pool_features(X32, geometry)
    Z = conv_pool_features(X32.astype(np.float64), geometry)
    assert Z32.dtype == np.float32
    np.testing.assert_allclose(Z32, Z, rtol=0,
                               atol=200 * np.finfo(np.float32).eps * np.abs(X).max())


@pytest.mark.parametrize("path", ["numba", "numba_box_rows"])
@pytest.mark.parametrize("shape, pool", [((4000, 16), 2), ((2000, 4, 5), (5, 2, 2))])
@pytest.mark.parametrize("signal", ["ramp", "random_walk"])
def test_float32_running_boxes_do_not_pile_up_along_a_long_mode(path, shape, pool,
                                                                signal):
    """Along a long leading mode, each box is built from the previous one
    (plus the row entering, minus the row leaving); in float32 that rounding
    must stay within a few roundings of the largest input, not grow with the
    length of the mode (a chain never restarted gave 300 roundings here)."""
    from sktensorcnn.geometry import ConvPoolGeometry

    g = ConvPoolGeometry.from_params(shape, kernel_size=2, pool_size=pool)
    along = np.linspace(0.1, 7.3, shape[0]).reshape(-1, *[1] * (len(shape) - 1))
    if signal == "ramp":
        X = np.broadcast_to(along, (2, *shape)).copy()
    else:
        steps = np.random.default_rng(0).standard_normal((2, *shape))
        X = 100.0 + np.cumsum(steps, axis=1)
    X32 = X.astype(np.float32)
    with features_path(path):
        Z32 = conv_pool_features(X32, g)
    Z = conv_pool_features(X32.astype(np.float64), g)
    np.testing.assert_allclose(Z32, Z, rtol=0,
                               atol=8 * np.finfo(np.float32).eps * np.abs(X32).max())


@pytest.mark.parametrize("path", PATHS)
def test_float32_stays_float32(rng, path):
    from sktensorcnn.geometry import ConvPoolGeometry

    g = ConvPoolGeometry.from_params((16, 16, 16), kernel_size=3, pool_size=4)
    X = rng.standard_normal((4, 16, 16, 16))
    with features_path(path):
        Z64 = conv_pool_features(X, g)
        Z32 = conv_pool_features(X.astype(np.float32), g)
    assert Z32.dtype == np.float32 and Z64.dtype == np.float64
    np.testing.assert_allclose(Z32, Z64, rtol=1e-5, atol=1e-6)


def test_path_settings_reach_the_kernel_after_a_call_with_others(rng, monkeypatch):
    """The box tables are kept per geometry: a call with other settings must
    not leave the next call on the previous path."""
    from sktensorcnn.geometry import ConvPoolGeometry
    from sktensorcnn.kernels import _cpu

    seen = []
    kernel = _cpu.conv_pool_features

    def spy(X, *args, **kwargs):
        seen.append((tuple(kwargs["by_rows"]), kwargs["group"]))
        return kernel(X, *args, **kwargs)

    monkeypatch.setattr(_cpu, "conv_pool_features", spy)
    g = ConvPoolGeometry.from_params((6, 5, 8), kernel_size=2, pool_size=2)
    X = rng.standard_normal((3, 6, 5, 8))
    results = {}
    for path in ["numba", "numba_sliding", "numba_box_rows", "numba"]:
        with features_path(path):
            results[path] = conv_pool_features(X, g)
    # 4-mode layout 1 x 6 x 5 x 8: by default box rows while the rest of the
    # sample holds at least 16 values (240, 40, then 8), in groups of
    # 16384 // 240 samples; the test settings give every mode, or none, and
    # groups of one (200 // 240)
    assert seen[0] == ((True, True, False, False), 68)
    assert seen[1] == ((False, False, False, False), 1)
    assert seen[2] == ((True, True, True, True), 1)
    assert seen[3] == seen[0]
    with features_path("box_products"):  # mode products with box matrices
        expected = conv_pool_features(X, g)
    for Z in results.values():
        np.testing.assert_allclose(Z, expected, atol=1e-12)


def test_integer_input_is_computed_in_float64():
    from sktensorcnn.geometry import ConvPoolGeometry

    g = ConvPoolGeometry.from_params((6, 6), kernel_size=2, pool_size=2)
    X = np.arange(72).reshape(2, 6, 6)
    Z = conv_pool_features(X, g)
    assert Z.dtype == np.float64
    np.testing.assert_allclose(Z, conv_pool_features(X.astype(float), g))


def test_chunks_cover_the_data_and_agree(rng):
    from sktensorcnn.geometry import ConvPoolGeometry

    g = ConvPoolGeometry.from_params((7, 5, 7), kernel_size=2, pool_size=(3, 2, 3))
    X = rng.standard_normal((23, 7, 5, 7))
    full = conv_pool_features(X, g)
    seen = np.zeros(23, bool)
    for rows, Z in iter_feature_chunks(X, g, chunk_size=5):
        assert Z.shape[0] <= 5
        np.testing.assert_array_equal(Z, full[rows])
        seen[rows] = True
    assert seen.all()


def test_wrong_sample_shape_is_rejected(rng):
    from sktensorcnn.geometry import ConvPoolGeometry

    g = ConvPoolGeometry.from_params((6, 6), kernel_size=2)
    with pytest.raises(ValueError, match=r"samples of shape \(6, 5\)"):
        conv_pool_features(rng.standard_normal((2, 6, 5)), g)
