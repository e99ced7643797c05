"""CUDA kernels against their CPU twins, under numba's CUDA simulator.

The simulator is switched on here, for these tests only (the library imports
``numba.cuda`` only when a GPU is asked for, and no other test asks): it runs
the kernels in Python threads, so shapes are small.  On a machine with a GPU,
``SKTENSORCNN_TEST_REAL_GPU=1`` runs the same tests on the device.
"""

import os
import sys

if os.environ.get("SKTENSORCNN_TEST_REAL_GPU") != "1":
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    import numba.core.config

    numba.core.config.reload_config()

import numba.core.config  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sktensorcnn import ConvPoolGeometry, kernels  # noqa: E402
from sktensorcnn.activations import ACTIVATIONS, activation_code  # noqa: E402
from sktensorcnn.losses import loss_code as loss_codes  # noqa: E402
from sktensorcnn.network import _spread  # noqa: E402

pytestmark = pytest.mark.skipif(not kernels.cuda_available(),
                                reason="no CUDA device or simulator")


@pytest.fixture(autouse=True, scope="module")
def _short_gil_switch_interval():
    """The simulator runs a block's threads in Python threads while its block
    manager polls them in a loop that holds the GIL for a whole switch interval
    (5 ms) at a time; handing the GIL over every 0.1 ms runs these tests about
    3x faster."""
    if not numba.core.config.ENABLE_CUDASIM:
        yield
        return
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


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


# Huber and Poisson on two targets (rows of targets through the kernels)
OUTPUTS = {"squared": 1, "logistic": 1, "multinomial": 3, "ovr": 3, "huber": 2,
           "poisson": 2}


CASES = (
    # every activation, every loss, every geometry (the simulator is slow)
    [("2d", activation, "squared") for activation in sorted(ACTIVATIONS)]
    + [("2d", "softplus", loss) for loss in sorted(set(OUTPUTS) - {"squared"})]
    + [(name, activation, loss) for name, activation, loss in (
        ("1d-stride-pad", "relu", "ovr"), ("3d-channels", "tanh", "multinomial"),
        ("overlapping-pool", "sigmoid", "logistic"))]
)


@pytest.mark.parametrize("name, activation, loss", CASES)
def test_network_loss_and_gradients_match_cpu(name, activation, loss):
    rng = np.random.default_rng(1)
    geometry = _geometry(GEOMETRIES[name])
    n, n_out = 5, OUTPUTS[loss]
    X = _sample_data(geometry, n, rng)
    if loss in ("squared", "huber"):  # Huber: residuals beyond its threshold too
        y = 3.0 * rng.standard_normal(n if n_out == 1 else (n, n_out))
    elif loss == "poisson":
        y = rng.poisson(2.0, (n, n_out)).astype(float)
    else:
        y = rng.integers(0, 2 if loss == "logistic" else n_out, n).astype(float)
    loss_code = loss_codes(loss)
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


def _factor_params(geometry, kind, K, rng):
    modes = list(geometry.kernel_size)
    if geometry.n_channels is not None:
        modes.append(geometry.n_channels)
    if kind == "cp":
        return [rng.standard_normal((m, 2)) for m in (*modes, K)]
    ranks = [min(2, m) for m in modes] + [2]
    return ([rng.standard_normal((m, r)) for m, r in zip((*modes, K), ranks)]
            + [rng.standard_normal(ranks)])


@pytest.mark.parametrize("name", ["2d", "1d-stride-pad", "3d-channels"])
@pytest.mark.parametrize("kind", ["tucker", "cp"])
def test_factorized_network_matches_cpu(name, kind):
    rng = np.random.default_rng(6)
    geometry = _geometry(GEOMETRIES[name])
    n, n_out, K = 5, 3 if kind == "cp" else 1, 3
    X = _sample_data(geometry, n, rng)
    y = (rng.integers(0, n_out, n).astype(float) if n_out > 1
         else rng.standard_normal(n))
    loss_code = loss_codes("multinomial" if n_out > 1 else "squared")
    weights = rng.random(n) / n
    params = _factor_params(geometry, kind, K, rng)
    _, Bt, b = _network(geometry, n_out, K, rng)
    code = activation_code("tanh")
    cpu = kernels.factorized_network_loss_grad(X, y, weights, params, Bt, b,
                                               geometry, code, loss_code, kind)
    with kernels.on_device("cuda"):
        gpu = kernels.factorized_network_loss_grad(X, y, weights, params, Bt, b,
                                                   geometry, code, loss_code, kind)
    np.testing.assert_allclose(gpu[0], cpu[0], rtol=1e-10)
    assert len(gpu[1]) == len(cpu[1]) == len(params)
    for c, g in zip(cpu[1], gpu[1]):
        np.testing.assert_allclose(g, c, rtol=1e-10, atol=1e-11)
    for c, g in zip(cpu[2:], gpu[2:]):
        np.testing.assert_allclose(g, c, rtol=1e-10, atol=1e-12)


def test_device_samples_stay_and_batches_are_row_views(monkeypatch):
    rng = np.random.default_rng(2)
    geometry = _geometry(GEOMETRIES["2d"])
    X = _sample_data(geometry, 9, rng)
    y = rng.standard_normal(9)
    w = rng.random(9) + 0.5
    kernels_, Bt, b = _network(geometry, 1, 3, rng)
    with kernels.on_device("cuda"):
        samples = kernels.stage_samples(X, geometry, y, w)
    assert type(samples).__name__ == "DeviceSamples"
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


@pytest.mark.parametrize("name", ["3d-channels", "1d-stride-pad"])
def test_any_grid_computes_the_same(name, monkeypatch):
    """The kernels stride over their elements by the grid's size: one block,
    the simulator's few and as many blocks as the work has give the same
    features, loss, gradients and outputs (the simulator runs few blocks only
    to start fewer Python threads)."""
    from sktensorcnn.kernels import _cuda

    rng = np.random.default_rng(4)
    geometry = _geometry(GEOMETRIES[name])
    X = _sample_data(geometry, 5, rng)
    y = rng.integers(0, 3, 5).astype(float)
    kernels_, Bt, b = _network(geometry, 3, 2, rng)
    args = (X, y, np.full(5, 0.2), kernels_, Bt, b, geometry,
            activation_code("tanh"), loss_codes("multinomial"))
    results = []
    for blocks in (1, 2, 10**4):
        monkeypatch.setattr(_cuda, "MAX_BLOCKS", blocks)
        with kernels.on_device("cuda"):
            results.append([kernels.conv_pool_features(X, geometry),
                            *kernels.network_loss_grad(*args),
                            kernels.network_forward(*args[:1], *args[3:8])])
    for other in results[1:]:
        for a, c in zip(results[0], other):
            np.testing.assert_array_equal(c, a)


# ---------------------------------------------------------------- estimators
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from sktensorcnn import (  # noqa: E402
    CNNRegressor,
    TuckerCNNClassifier,
    TuckerCNNRegressor,
)
from sktensorcnn._fit_network import factorized_kind  # noqa: E402
from sktensorcnn.kernels import _device  # noqa: E402

SMALL = dict(kernel_size=2, pool_size=2, max_iter=2, random_state=0)


def _regression_data(rng, n=16):
    X = rng.standard_normal((n, 5, 4))
    return X, X[:, :3, :3].sum(axis=(1, 2)) + 0.1 * rng.standard_normal(n)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("make", [
    lambda: CNNRegressor(2, activation="relu", **SMALL),
    lambda: TuckerCNNRegressor((1, 2, 2), activation="tanh", **SMALL),
    lambda: CNNRegressor(2, activation="relu", solver="adam", batch_size=3,
                         **SMALL),
    lambda: CNNRegressor(2, activation="softplus", constraint="sparse",
                         sparsity=3, **SMALL),
    lambda: TuckerCNNRegressor((2, 2, 1), **SMALL),  # linear: features on GPU
    lambda: TuckerCNNClassifier((1, 1, 1), activation="tanh", **SMALL),
], ids=["relu-lbfgs", "tucker-tanh", "adam-batches", "pgd-sparse", "linear",
        "multiclass"])
def test_fit_on_cuda_equals_fit_on_cpu(make):
    rng = np.random.default_rng(3)
    X, y = _regression_data(rng)
    if "Classifier" in type(make()).__name__:
        y = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))
    cpu = make().fit(X, y)
    gpu = make().set_params(device="cuda").fit(X, y)
    assert cpu.device_ == "cpu" and gpu.device_ == "cuda"
    np.testing.assert_allclose(gpu.loss_curve_, cpu.loss_curve_, rtol=1e-8)
    np.testing.assert_allclose(gpu.kernels_, cpu.kernels_, rtol=1e-7, atol=1e-9)
    out = gpu.predict(X)  # on the GPU
    np.testing.assert_allclose(out, cpu.predict(X), rtol=1e-7, atol=1e-9)
    # fitted on the GPU, predicts on the CPU alike
    np.testing.assert_allclose(gpu.set_params(device="cpu").predict(X), out,
                               rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_factorized_fit_on_cuda_equals_cpu():
    """Tucker kernels wide enough for the factor-by-factor convolution."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((8, 9, 8))
    y = X[:, 2:6, 2:6].sum(axis=(1, 2))
    make = lambda device: TuckerCNNRegressor(  # noqa: E731
        (1, 1, 2), n_kernels=4, kernel_size=4, pool_size=2, activation="relu",
        max_iter=2, init="random", random_state=0, device=device)
    cpu = make("cpu").fit(X, y)
    geometry = cpu.geometry_
    structure = cpu._kernel_structure(geometry)
    assert factorized_kind(geometry, structure.kernels, structure.n_kernels)[1]
    gpu = make("cuda").fit(X, y)
    np.testing.assert_allclose(gpu.loss_curve_, cpu.loss_curve_, rtol=1e-8)
    np.testing.assert_allclose(gpu.predict(X), cpu.predict(X), rtol=1e-7,
                               atol=1e-9)


def test_partial_fit_on_cuda():
    rng = np.random.default_rng(4)
    X, y = _regression_data(rng)
    cpu, gpu = (CNNRegressor(2, activation="relu", batch_size=4, random_state=0,
                             kernel_size=2, pool_size=2, device=d)
                for d in ("cpu", "cuda"))
    for _ in range(2):
        cpu.partial_fit(X, y)
        gpu.partial_fit(X, y)
    np.testing.assert_allclose(gpu.kernels_, cpu.kernels_, rtol=1e-8, atol=1e-10)


def test_device_resolution(monkeypatch):
    X, y = _regression_data(np.random.default_rng(5))
    monkeypatch.setattr(_device, "cuda_available", lambda: False)
    with pytest.raises(ValueError, match="device='cuda' but numba finds no CUDA"):
        CNNRegressor(device="cuda", kernel_size=2).fit(X, y)
    est = CNNRegressor(device="auto", kernel_size=2, pool_size=2).fit(X, y)
    assert est.device_ == "cpu"  # falls back silently
    monkeypatch.setattr(_device, "cuda_available", lambda: True)
    with pytest.warns(ConvergenceWarning):
        est = CNNRegressor(device="auto", activation="relu", **SMALL).fit(X, y)
    assert est.device_ == "cuda"
