"""Factorized (Tucker and CP) convolution: equal to the dense convolution, forward
and backward, and the same training either way."""

import warnings

import numpy as np
import pytest
from _reference import patches_reference
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from sktensorcnn import CPCNNRegressor, TuckerCNNRegressor, kernels
from sktensorcnn.kernel_structures import _kernel_layout, _stacked_layout
from sktensorcnn.kernels import _cpu_factorized
from sktensorcnn.kernels._host import _network_args
from sktensorcnn.network import network_outputs
from sktensorcnn.parametrizations import CPWeight, TuckerWeight
from sktensorcnn.testing import geometries


@settings(max_examples=25)
@given(geometry=geometries(), seed=st.integers(0, 2**16), K=st.integers(1, 3),
       kind=st.sampled_from(["tucker", "cp"]), data=st.data())
def test_factorized_equals_dense(geometry, seed, K, kind, data):
    modes = (*geometry.kernel_modes, K)
    if kind == "tucker":
        weight = TuckerWeight(modes, tuple(data.draw(st.integers(1, m))
                                           for m in modes))
        forward, backward = _cpu_factorized.forward, _cpu_factorized.backward
    else:
        weight = CPWeight(modes, data.draw(st.integers(1, 3)))
        forward, backward = _cpu_factorized.cp_forward, _cpu_factorized.cp_backward
    params = weight.initialize(np.random.RandomState(seed))
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3, *geometry.input_shape))
    Xc = X if geometry.n_channels is not None else X[:, None]
    Y, cache = forward(Xc, params, geometry)
    # dense reference: gathered patches times the rebuilt kernels
    A = _kernel_layout(weight.to_tensor(params), geometry)
    X6, A6, Bt6, (pad, padded, stride, _) = _network_args(
        X, A, np.zeros((1, K, *geometry.conv_shape)), geometry)
    P = patches_reference(X6, A6.shape[2:], stride, pad, padded, Bt6.shape[2:])
    np.testing.assert_allclose(Y.reshape(3, -1, K), P @ A6.reshape(K, -1).T,
                               atol=1e-10)
    dY = rng.standard_normal(Y.shape)
    grads = backward(dY, params, geometry, cache)
    dA = (dY.reshape(-1, K).T @ P.reshape(-1, P.shape[2])).reshape(A.shape)
    d_stacked = _stacked_layout(dA, geometry).reshape(1, -1)
    for j, grad in enumerate(grads):
        expected = weight.block(params, j).apply_jacobian(d_stacked)[0]
        np.testing.assert_allclose(grad.ravel(), expected, atol=1e-9)


@pytest.mark.parametrize("structure", ["tucker", "cp"])
def test_training_is_the_same_through_either_path(monkeypatch, structure):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 2, 9, 9))
    A = 0.3 * rng.standard_normal((2, 2, 4, 4))
    from sktensorcnn import ConvPoolGeometry

    g = ConvPoolGeometry.from_params((9, 9), n_channels=2, kernel_size=4,
                                     pool_size=3)
    y = network_outputs(X, A, rng.standard_normal((1, 2, 2, 2)), [0.1], g,
                        "tanh")[:, 0]
    curves = []
    for factorized in (False, True):
        monkeypatch.setattr(kernels, "uses_factorized",
                            lambda *args, f=factorized: f)
        common = dict(n_kernels=3, channel_axis=1, activation="tanh", kernel_size=4,
                      pool_size=3, init="random", max_iter=15, tol=0, random_state=0)
        est = (TuckerCNNRegressor(ranks=(2, 2, 1, 2), **common)
               if structure == "tucker" else CPCNNRegressor(rank=2, **common))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        curves.append(np.asarray(est.loss_curve_))
    np.testing.assert_allclose(curves[0], curves[1], rtol=1e-9)


@pytest.mark.parametrize("ranks, expected", [((2, 2, 2, 2), True), ((5, 5, 5, 16),
                                                                      False)])
def test_path_rule(ranks, expected):
    from sktensorcnn import ConvPoolGeometry

    g = ConvPoolGeometry.from_params((32, 32, 32), kernel_size=5, pool_size=7)
    assert kernels.uses_factorized(g, ranks, 16) is expected
    assert kernels.uses_factorized(g, 2, 16, "cp")
    small = ConvPoolGeometry.from_params((7, 5, 7), kernel_size=2, pool_size=3)
    assert not kernels.uses_factorized(small, 2, 3, "cp")
