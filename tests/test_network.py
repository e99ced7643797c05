"""The network with nonlinear activations: kernels against numpy, gradients
against finite differences, and training end to end."""

import contextlib
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.exceptions import ConvergenceWarning

from sktensorcnn import CNNRegressor, CPCNNRegressor, TuckerCNNRegressor, kernels
from sktensorcnn.activations import ACTIVATIONS, activation_code
from sktensorcnn.geometry import ConvPoolGeometry
from sktensorcnn.losses import loss_and_gradient
from sktensorcnn.network import network_loss, network_outputs
from sktensorcnn.testing import geometries


def _reference(X, A, B, b, geometry, activation):
    """conv -> activation -> average pool -> FC in plain numpy."""
    N = geometry.n_modes
    Xc = X if geometry.n_channels is not None else X[:, None]
    Ac = A if geometry.n_channels is not None else A[:, None]
    Xp = np.pad(Xc, [(0, 0), (0, 0), *geometry.padding])
    win = sliding_window_view(Xp, geometry.kernel_size, axis=tuple(range(2, 2 + N)))
    keep = (slice(None), slice(None))
    win = win[(*keep, *[slice(None, None, s) for s in geometry.stride])]
    win = win[(*keep, *[slice(0, m) for m in geometry.conv_shape])]
    sp, kn = "abde"[:N], "fghi"[:N]
    conv = np.einsum(f"nc{sp}{kn},kc{kn}->nk{sp}", win, Ac)
    H = ACTIVATIONS[activation][0](conv)
    pooled = sliding_window_view(H, geometry.pool_size, axis=tuple(range(2, 2 + N)))
    pooled = pooled[(*keep, *[slice(None, None, t) for t in geometry.pool_stride])]
    pooled = pooled[(*keep, *[slice(0, p) for p in geometry.pooled_shape])]
    pooled = pooled.mean(axis=tuple(range(2 + N, 2 + 2 * N)))
    # B (n_out, K, p...): outputs (n, n_out)
    return pooled.reshape(len(X), -1) @ B.reshape(len(B), -1).T + b


@contextlib.contextmanager
def network_path(path):
    """The CPU's network kernels on one path: ``'patches'`` (gathered once,
    numpy products), ``'gemm'`` (BLAS slab by slab) or ``'fused'`` (numba
    loops), whatever the size of the call."""
    host, patches = kernels._host, kernels._cpu_patches
    saved = host.PATCHES_MAX_BYTES, host.GEMM_MIN_MACS_PER_OUTPUT, patches.CHUNK_BYTES
    host.PATCHES_MAX_BYTES = 2**62 if path == "patches" else -1
    host.GEMM_MIN_MACS_PER_OUTPUT = 1 if path == "gemm" else 2**62
    # the patches path in chunks of a few samples (as large calls run)
    patches.CHUNK_BYTES = 6000
    try:
        yield
    finally:
        (host.PATCHES_MAX_BYTES, host.GEMM_MIN_MACS_PER_OUTPUT,
         patches.CHUNK_BYTES) = saved


PATHS = ["fused", "gemm", "patches"]


# the regression losses on two targets: rows of targets through the kernels
_LOSS_OUTPUTS = {"squared": 2, "logistic": 1, "multinomial": 4, "ovr": 4,
                 "huber": 2, "poisson": 5}


@given(geometry=geometries(), seed=st.integers(0, 2**16),
       activation=st.sampled_from(sorted(ACTIVATIONS)),
       loss=st.sampled_from(sorted(_LOSS_OUTPUTS)), path=st.sampled_from(PATHS),
       patch_bytes=st.sampled_from([0, 3000, 10**9]))
def test_forward_and_gradients(geometry, seed, activation, loss, path, patch_bytes):
    """Every path (fused numba loops, BLAS slab by slab, patches gathered once)
    against numpy, every loss; the BLAS path gathering patches slab by slab, in
    groups of a few slabs (the last one partial) and all slabs of a sample at
    once."""
    previous = kernels._cpu_gemm.PATCH_BYTES
    kernels._cpu_gemm.PATCH_BYTES = patch_bytes
    try:
        with network_path(path):
            _check_forward_and_gradients(geometry, seed, activation, loss)
    finally:
        kernels._cpu_gemm.PATCH_BYTES = previous


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("loss", ["squared", "multinomial"])
def test_slabs_gathered_in_groups(stride, loss, monkeypatch):
    """Volumes on the BLAS path share input planes between slabs: patches
    gathered one slab at a time, in groups of 2 and 3 (partial last group) and
    all at once give the reference outputs, loss and gradients (one output:
    the fused kernel; three: the two-pass one)."""
    g = ConvPoolGeometry.from_params((7, 11, 6), kernel_size=(2, 3, 2),
                                     stride=(stride, 1, 1), pool_size=1)
    plane = int(np.prod(g.kernel_size[1:])) * int(np.prod(g.conv_shape[1:])) * 8
    l2, m2 = g.kernel_size[0], g.conv_shape[0]
    monkeypatch.setattr(kernels._host, "GEMM_MIN_MACS_PER_OUTPUT", 1)
    monkeypatch.setattr(kernels._host, "PATCHES_MAX_BYTES", -1)
    for group in (1, 2, 3, m2):
        monkeypatch.setattr(kernels._cpu_gemm, "PATCH_BYTES",
                            ((group - 1) * stride + l2) * plane)
        assert kernels._cpu_gemm._slab_group(
            1, np.array([1, *g.kernel_size]), np.array([1, *g.stride]),
            np.array([1, *g.conv_shape]), 8) == group
        _check_forward_and_gradients(g, group, "relu", loss)


@given(geometry=geometries(), seed=st.integers(0, 2**16),
       path=st.sampled_from(PATHS))
def test_float32_samples_match_the_float64_reference(geometry, seed, path):
    """float32 samples are convolved in float32 (every path): outputs, loss and
    kernel gradient within float32 rounding of the float64 reference."""
    rng = np.random.default_rng(seed)
    n, K, n_out = 5, 2, 3
    X = rng.standard_normal((n, *geometry.input_shape))
    A = rng.standard_normal((K, *geometry.kernel_shape))
    B = rng.standard_normal((n_out, K, *geometry.pooled_shape))
    b = rng.standard_normal(n_out)
    y = rng.integers(0, n_out, n).astype(float)
    w = np.full(n, 1.0 / n)
    X32 = X.astype(np.float32)
    # the reference sees the float32 values, so only the arithmetic differs
    ref = _reference(X32.astype(np.float64), A, B, b, geometry, "tanh")
    with network_path(path):
        out = network_outputs(X32, A, B, b, geometry, "tanh")
        value, dA = network_loss(X32, y, w, A, B, b, geometry, "tanh",
                                 "multinomial")[:2]
    scale = 1.0 + np.abs(ref).max()
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-4 * scale)
    expected = w @ loss_and_gradient("multinomial", ref, y)[0]
    assert value == pytest.approx(expected, rel=1e-4, abs=1e-4 * scale)
    dA64 = network_loss(X32.astype(np.float64), y, w, A, B, b, geometry, "tanh",
                        "multinomial")[1]
    np.testing.assert_allclose(dA, dA64, rtol=0,
                               atol=1e-4 * (1.0 + np.abs(dA64).max()))


def _targets(rng, loss, n, n_out):
    if loss == "squared":
        return rng.standard_normal((n, n_out))
    if loss == "huber":  # residuals on both sides of the threshold
        return 3.0 * rng.standard_normal((n, n_out))
    if loss == "poisson":
        return rng.poisson(2.0, (n, n_out)).astype(float)
    return rng.integers(0, 2 if loss == "logistic" else n_out, n).astype(float)


def _check_forward_and_gradients(geometry, seed, activation, loss):
    rng = np.random.default_rng(seed)
    n, K, n_out = 4, 2, _LOSS_OUTPUTS[loss]
    X = rng.standard_normal((n, *geometry.input_shape))
    y = _targets(rng, loss, n, n_out)
    w = rng.uniform(0.5, 1.5, n)
    w /= w.sum()
    A = rng.standard_normal((K, *geometry.kernel_shape))
    B = rng.standard_normal((n_out, K, *geometry.pooled_shape))
    b = rng.standard_normal(n_out)
    ref = _reference(X, A, B, b, geometry, activation)
    np.testing.assert_allclose(network_outputs(X, A, B, b, geometry, activation),
                               ref, rtol=1e-10, atol=1e-10)
    value, dA, dB, db = network_loss(X, y, w, A, B, b, geometry, activation, loss)
    assert value == pytest.approx(w @ loss_and_gradient(loss, ref, y)[0], rel=1e-10,
                                  abs=1e-12)

    def f(A_, B_, b_):
        return network_loss(X, y, w, A_, B_, b_, geometry, activation, loss)[0]

    eps = 1e-6
    for grad, which in ((dA, 0), (dB, 1), (db, 2)):
        direction = rng.standard_normal(grad.shape)
        values = []
        for sign in (1, -1):
            args = [A, B, b]
            args[which] = args[which] + sign * eps * direction
            values.append(f(*args))
        fd = (values[0] - values[1]) / (2 * eps)
        scale = np.linalg.norm(grad) * np.linalg.norm(direction) + 1e-8
        # each loss value carries ~eps_machine * |output| of rounding (softplus(f)
        # - y f cancels for confident outputs), which the central difference
        # divides by 2 eps: a floor for gradients that nearly vanish
        rounding = 1e-9 * (1.0 + np.abs(ref).max())
        assert abs(fd - np.sum(grad * direction)) <= 1e-5 * scale + rounding


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_small_fits_gather_their_patches_once(solver, monkeypatch):
    """A fit whose patches fit in ``PATCHES_MAX_BYTES`` gathers them once (its
    mini-batches take rows of them) and fits as it does on the fused loops;
    a larger one never gathers them."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 9, 8))
    y = np.tanh(X[:, 2:5, 3:6].sum(axis=(1, 2))) + 0.1 * rng.standard_normal(60)
    gathered = []
    gather = kernels._cpu_patches.patches
    monkeypatch.setattr(kernels._cpu_patches, "patches",
                        lambda X, g: gathered.append(len(X)) or gather(X, g))

    def fit():
        est = CNNRegressor(kernel_size=3, pool_size=2, n_kernels=2,
                           activation="tanh", solver=solver, max_iter=15,
                           batch_size=16, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return est.fit(X, y)

    on_patches = fit()
    assert gathered == [len(X)]
    with network_path("fused"):
        on_fused = fit()
    assert gathered == [len(X)]
    np.testing.assert_allclose(on_patches.loss_curve_, on_fused.loss_curve_,
                               rtol=1e-8)
    np.testing.assert_allclose(on_patches.predict(X), on_fused.predict(X),
                               rtol=1e-6, atol=1e-8)
    monkeypatch.setattr(kernels._host, "PATCHES_MAX_BYTES",
                        kernels._cpu_patches.patch_bytes(len(X), on_patches
                                                         .geometry_, X.dtype) - 1)
    gathered.clear()
    fit()
    assert gathered == []


def test_activation_codes():
    assert [activation_code(a) for a in ACTIVATIONS] == list(range(len(ACTIVATIONS)))
    with pytest.raises(ValueError, match="activation='swish' is unknown"):
        activation_code("swish")


@pytest.fixture(scope="module")
def relu_teacher():
    rng = np.random.default_rng(0)
    g = ConvPoolGeometry.from_params((7, 5, 7), kernel_size=2, pool_size=(3, 2, 3))
    A = rng.standard_normal((3, *g.kernel_shape))
    B = rng.standard_normal((3, *g.pooled_shape))
    X = rng.standard_normal((2500, 7, 5, 7))
    f = network_outputs(X, A, B[None], [0.5], g, "relu")[:, 0]
    y = f + 0.1 * f.std() * rng.standard_normal(len(f))
    return X[:2000], X[2000:], y[:2000], y[2000:]


@pytest.mark.parametrize("est", [
    CNNRegressor(n_kernels=3, activation="relu", kernel_size=2,
                 pool_size=(3, 2, 3), max_iter=400, random_state=0),
    # non-convex: two starts (spectral, then random), the better kept
    TuckerCNNRegressor(ranks=(2, 2, 2, 3), n_kernels=3, activation="relu",
                       kernel_size=2, pool_size=(3, 2, 3), max_iter=400,
                       n_init=2, random_state=0),
], ids=["dense", "tucker"])
def test_relu_network_learns_a_relu_teacher(relu_teacher, est):
    X_train, X_test, y_train, y_test = relu_teacher
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X_train, y_train)
    assert est.score(X_test, y_test) > 0.95
    linear = CNNRegressor(n_kernels=3, kernel_size=2, pool_size=(3, 2, 3))
    assert linear.fit(X_train, y_train).score(X_test, y_test) < 0.8
    assert not hasattr(est, "coef_")


@pytest.mark.parametrize("activation", sorted(set(ACTIVATIONS) - {"identity"}))
@pytest.mark.parametrize("cls", [CNNRegressor, TuckerCNNRegressor, CPCNNRegressor])
@pytest.mark.parametrize("init", ["spectral", "random"])
def test_every_activation_and_structure_trains(activation, cls, init):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 2, 6, 5))
    y = X[:, 0, 2:4, 1:3].sum(axis=(1, 2)) ** 2
    est = cls(activation=activation, channel_axis=1, kernel_size=2, pool_size=2,
              init=init, max_iter=15, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    curve = np.asarray(est.loss_curve_)
    assert np.all(np.isfinite(curve)) and curve[-1] < curve[0]
    assert est.predict(X).shape == (60,)
    assert est.kernels_.shape == (est.n_kernels_, 2, 2, 2)


def test_nonlinear_errors_and_refit(rng):
    X = rng.standard_normal((40, 6, 6))
    y = rng.standard_normal(40)
    with pytest.raises(ValueError, match="solver='als' fits the linear network"):
        CNNRegressor(kernel_size=2, activation="tanh", solver="als").fit(X, y)
    est = CNNRegressor(kernel_size=2, max_iter=5).fit(X, y)
    assert hasattr(est, "coef_")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.set_params(activation="tanh").fit(X, y)
    assert not hasattr(est, "coef_") and not hasattr(est, "weight_")


def test_warm_start_network(rng):
    X = rng.standard_normal((80, 6, 6))
    y = np.tanh(X[:, 1:3, 1:3].sum(axis=(1, 2)))
    est = CNNRegressor(kernel_size=2, activation="tanh", warm_start=True,
                       max_iter=300, tol=1e-10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        first = est.loss_curve_[-1]
        est.set_params(max_iter=3).fit(X, y)
    assert est.loss_curve_[0] <= first * (1 + 1e-6)


@pytest.fixture(scope="module")
def linear_problem():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 7, 5, 7))
    y = X[:, 1:4, 1:3, 2:5].sum(axis=(1, 2, 3)) + 0.1 * rng.standard_normal(300)
    kw = dict(n_kernels=2, kernel_size=2, pool_size=(3, 2, 3), alpha=0.0)
    als = CNNRegressor(**kw).fit(X, y)
    return X, y, kw, 0.5 * np.mean((y - als.predict(X)) ** 2)


@pytest.mark.parametrize("solver, rel", [("gd", 1e-4), ("adam", 5e-3)])
def test_gradient_solvers_reach_the_als_objective(linear_problem, solver, rel):
    X, y, kw, als_objective = linear_problem
    est = CNNRegressor(**kw, solver=solver, init="random", max_iter=1500, tol=1e-9,
                       n_iter_no_change=50, random_state=0,
                       learning_rate_init=0.5 if solver == "gd" else 0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    objective = 0.5 * np.mean((y - est.predict(X)) ** 2)
    assert objective == pytest.approx(als_objective, rel=rel)
    # the identity network is linear: coef_ exists and predicts
    np.testing.assert_allclose(
        est.predict(X), X.reshape(len(X), -1) @ est.coef_.ravel() + est.intercept_,
        atol=1e-8,
    )
    # best_loss_ is on the standardized problem: the fitted model's training
    # objective divided by the targets' variance (alpha_ is 0 here)
    assert est.alpha_ == 0.0
    assert est.best_loss_ == pytest.approx(objective / np.var(y), rel=rel)
    assert est.validation_scores_ is None


def test_early_stopping_keeps_the_best_weights(relu_teacher):
    X_train, X_test, y_train, y_test = relu_teacher
    est = CNNRegressor(n_kernels=3, activation="relu", kernel_size=2,
                       pool_size=(3, 2, 3), solver="adam", learning_rate_init=0.01,
                       early_stopping=True, max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X_train, y_train)
    assert len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert est.best_loss_ is None
    # the kept weights are those of the best validation epoch, not the last
    rng = np.random.RandomState(0)
    order = rng.permutation(len(y_train))
    val = order[: int(np.ceil(0.1 * len(y_train)))]
    assert est.score(X_train[val], y_train[val]) == pytest.approx(
        est.best_validation_score_)
    with pytest.raises(ValueError, match="early_stopping with validation_fraction"):
        CNNRegressor(solver="adam", early_stopping=True, kernel_size=2).fit(
            X_train[:5], y_train[:5])


def test_partial_fit_continues(relu_teacher):
    X_train, X_test, y_train, y_test = relu_teacher
    est = CNNRegressor(n_kernels=3, activation="relu", kernel_size=2,
                       pool_size=(3, 2, 3), learning_rate_init=0.01, random_state=0)
    scores = []
    for _ in range(6):
        est.partial_fit(X_train, y_train)
        scores.append(est.score(X_test, y_test))
    assert len(est.loss_curve_) == est.n_iter_ == 6
    assert scores[-1] > scores[0]
    assert not hasattr(CNNRegressor(solver="lbfgs"), "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'"):
        CNNRegressor(solver="lbfgs").partial_fit(X_train, y_train)
    with pytest.raises(ValueError, match="samples of shape"):
        est.partial_fit(X_train[:, :6], y_train)


def test_diverging_step_is_reported(relu_teacher):
    X_train, _, y_train, _ = relu_teacher
    est = CNNRegressor(n_kernels=3, activation="squared_relu", kernel_size=2,
                       pool_size=(3, 2, 3), solver="gd", learning_rate_init=1e3,
                       init="random", max_iter=50, random_state=0)
    with pytest.raises(FloatingPointError, match="lower learning_rate_init"):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X_train[:200], y_train[:200])
