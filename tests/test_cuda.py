"""CUDA kernels against their CPU twins, under numba's CUDA simulator.

The simulator is switched on here, for these tests only (the library imports
``numba.cuda`` only when a GPU is asked for, and no other test asks): it runs
the kernels in Python threads, so shapes are small.  On a machine with a GPU,
``SKTENSORCNN_TEST_REAL_GPU=1`` runs the same tests on the device.
"""

import os

if os.environ.get("SKTENSORCNN_TEST_REAL_GPU") != "1":
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    import numba.core.config

    numba.core.config.reload_config()

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sktensorcnn import ConvPoolGeometry, kernels  # noqa: E402
from sktensorcnn.activations import ACTIVATIONS, activation_code  # noqa: E402
from sktensorcnn.network import _spread  # noqa: E402

pytestmark = pytest.mark.skipif(not kernels.cuda_available(),
                                reason="no CUDA device or simulator")

GEOMETRIES = {
    "2d": dict(sample_shape=(7, 6), kernel_size=(3, 2), pool_size=2),
    "1d-stride-pad": dict(sample_shape=(11,), kernel_size=3, stride=2, padding=1,
                          pool_size=2),
    "3d-channels": dict(sample_shape=(5, 4, 4), kernel_size=(2, 2, 2),
                        pool_size=(2, 1, 2), n_channels=2),
    "overlapping-pool": dict(sample_shape=(8, 5), kernel_size=2, pool_size=3,
                             pool_stride=2),
}


def _geometry(spec):
    spec = dict(spec)
    shape = spec.pop("sample_shape")
    return ConvPoolGeometry.from_params(shape, **spec)


def _sample_data(geometry, n, rng, dtype=np.float64):
    shape = geometry.input_shape
    return rng.standard_normal((n, *shape)).astype(dtype)


@pytest.mark.parametrize("name", GEOMETRIES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_features_match_cpu(name, dtype):
    geometry = _geometry(GEOMETRIES[name])
    X = _sample_data(geometry, 3, np.random.default_rng(0), dtype)
    cpu = kernels.conv_pool_features(X, geometry)
    with kernels.on_device("cuda"):
        gpu = kernels.conv_pool_features(X, geometry)
    assert gpu.dtype == X.dtype and gpu.shape == cpu.shape
    np.testing.assert_allclose(gpu, cpu, rtol=1e-10 if dtype == np.float64 else 1e-5,
                               atol=1e-10 if dtype == np.float64 else 1e-5)


def _network(geometry, n_out, K, rng):
    kernels_ = rng.standard_normal((K, *geometry.kernel_shape))
    fc = rng.standard_normal((n_out, K, *geometry.pooled_shape))
    return kernels_, _spread(fc, geometry), rng.standard_normal(n_out)


LOSSES = {0: 1, 1: 1, 2: 3, 3: 3}  # loss code -> outputs


CASES = (
    # every activation and loss on one geometry, every geometry with two pairs
    [("2d", activation, loss) for activation in sorted(ACTIVATIONS)
     for loss in sorted(LOSSES)]
    + [(name, activation, loss) for name in sorted(GEOMETRIES) if name != "2d"
       for activation, loss in (("relu", 0), ("tanh", 2))]
)


@pytest.mark.parametrize("name, activation, loss_code", CASES)
def test_network_loss_and_gradients_match_cpu(name, activation, loss_code):
    rng = np.random.default_rng(1)
    geometry = _geometry(GEOMETRIES[name])
    n, n_out = 5, LOSSES[loss_code]
    X = _sample_data(geometry, n, rng)
    y = (rng.standard_normal(n) if loss_code == 0 else
         rng.integers(0, 2 if loss_code == 1 else n_out, n).astype(float))
    weights = rng.random(n) / n
    kernels_, Bt, b = _network(geometry, n_out, 2, rng)
    code = activation_code(activation)
    cpu = kernels.network_loss_grad(X, y, weights, kernels_, Bt, b, geometry, code,
                                    loss_code)
    with kernels.on_device("cuda"):
        gpu = kernels.network_loss_grad(X, y, weights, kernels_, Bt, b, geometry,
                                        code, loss_code)
    for c, g in zip(cpu, gpu):
        np.testing.assert_allclose(g, c, rtol=1e-10, atol=1e-12)
    cpu_out = kernels.network_forward(X, kernels_, Bt, b, geometry, code)
    with kernels.on_device("cuda"):
        gpu_out = kernels.network_forward(X, kernels_, Bt, b, geometry, code)
    np.testing.assert_allclose(gpu_out, cpu_out, rtol=1e-10, atol=1e-12)


def test_device_samples_stay_and_batches_are_row_views(monkeypatch):
    rng = np.random.default_rng(2)
    geometry = _geometry(GEOMETRIES["2d"])
    X = _sample_data(geometry, 9, rng)
    y = rng.standard_normal(9)
    w = rng.random(9) + 0.5
    kernels_, Bt, b = _network(geometry, 1, 3, rng)
    samples = kernels.device_samples(X, geometry, y, w)
    rows = np.array([7, 2, 3, 8])
    batch = samples.take(rows)
    gpu = kernels.network_loss_grad(batch, None, None, kernels_, Bt, b, geometry,
                                    1, 0)
    cpu = kernels.network_loss_grad(X[rows], y[rows], w[rows] / w[rows].sum(),
                                    kernels_, Bt, b, geometry, 1, 0)
    for c, g in zip(cpu, gpu):
        np.testing.assert_allclose(g, c, rtol=1e-10, atol=1e-12)
    # chunked evaluation (tiny scratch) gives the same sums
    from sktensorcnn.kernels import _cuda_host

    monkeypatch.setattr(_cuda_host, "SCRATCH_BYTES", 64)
    chunked = kernels.network_loss_grad(samples, None, None, kernels_, Bt, b,
                                        geometry, 1, 0)
    monkeypatch.undo()
    whole = kernels.network_loss_grad(samples, None, None, kernels_, Bt, b,
                                      geometry, 1, 0)
    for c, g in zip(whole, chunked):
        np.testing.assert_allclose(g, c, rtol=1e-10, atol=1e-12)
