"""sktensorcnn.bounds against direct computations: loops over positions for the
network, finite differences for the Jacobian, closed forms for the random
projections, explicit matrices for operator norms."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from sktensorcnn import (
    CNNClassifier,
    CNNRegressor,
    CPCNNClassifier,
    TuckerCNNClassifier,
    TuckerCNNRegressor,
    bounds,
)
from sktensorcnn.bounds._network import conv_operator, operator_norm

ACT = {"relu": lambda v: np.maximum(v, 0), "tanh": np.tanh,
       "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "identity": lambda v: v}


def direct_conv(X, kernels, geometry):
    """Pre-activations by an explicit loop over the output positions."""
    has_c = geometry.n_channels is not None
    Xc = X if has_c else X[:, None]
    A = kernels if has_c else kernels[:, None]
    Xp = np.pad(Xc, [(0, 0), (0, 0), *geometry.padding])
    out = np.zeros((X.shape[0], A.shape[0], *geometry.conv_shape))
    for t in np.ndindex(*geometry.conv_shape):
        window = tuple(slice(i * s, i * s + l) for i, s, l in
                       zip(t, geometry.stride, geometry.kernel_size))
        patch = Xp[(slice(None), slice(None), *window)]
        out[(slice(None), slice(None), *t)] = np.tensordot(
            patch, A, axes=(range(1, patch.ndim), range(1, A.ndim)))
    return out


def direct_head(z, fc, geometry):
    """Bias-free outputs: explicit average pooling, then the FC layer."""
    pooled = np.zeros((z.shape[0], z.shape[1], *geometry.pooled_shape))
    for r in np.ndindex(*geometry.pooled_shape):
        window = tuple(slice(i * t, i * t + q) for i, t, q in
                       zip(r, geometry.pool_stride, geometry.pool_size))
        cell = z[(slice(None), slice(None), *window)]
        pooled[(slice(None), slice(None), *r)] = cell.mean(
            axis=tuple(range(2, cell.ndim)))
    return pooled.reshape(len(z), -1) @ fc.reshape(fc.shape[0], -1).T


def fitted(estimator, X, y):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        return estimator.fit(X, y)


def _data(channels=False, n=40, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n, 2, 7, 6) if channels else (n, 7, 6)
    X = rng.normal(size=shape)
    score = X.reshape(n, -1)[:, :10].sum(axis=1)
    return X, score


ESTIMATORS = {
    "dense-relu-multi": (CNNClassifier(n_kernels=3, kernel_size=3, pool_size=2,
                                       activation="relu", max_iter=30,
                                       random_state=0), "multi", False),
    "tucker-tanh-binary-channels": (
        TuckerCNNClassifier(ranks=(2, 2, 2, 2), n_kernels=3, kernel_size=(3, 2),
                            pool_size=2, activation="tanh", max_iter=30,
                            random_state=0, channel_axis=1), "binary", True),
    "cp-relu-multi-padded": (CPCNNClassifier(rank=2, n_kernels=3, kernel_size=3,
                                             pool_size=2, padding="same",
                                             activation="relu", max_iter=30,
                                             random_state=0), "multi", False),
    "tucker-regressor-sigmoid": (
        TuckerCNNRegressor(ranks=(2, 2, 2), n_kernels=3, kernel_size=3, pool_size=1,
                           stride=2, activation="sigmoid", max_iter=30,
                           random_state=0), "regression", False),
}


@pytest.fixture(scope="module", params=sorted(ESTIMATORS))
def case(request):
    estimator, task, channels = ESTIMATORS[request.param]
    X, score = _data(channels)
    if task == "regression":
        y = score
    elif task == "binary":
        y = (score > 0).astype(int)
    else:
        y = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    return fitted(estimator, X, y), X, y


def _direct_pieces(est, X):
    g = est.geometry_
    fc, intercept = est._head()
    x1 = direct_conv(X, np.asarray(est.kernels_), g)
    z = ACT[est.activation](x1)
    return g, fc, intercept, x1, z


def test_network_view_is_the_estimator(case):
    est, X, _ = case
    g, fc, intercept, x1, z = _direct_pieces(est, X)
    net = bounds._network.TwoLayerNetwork.of(est)
    np.testing.assert_allclose(net.preactivations(X), x1, atol=1e-10)
    outputs = direct_head(z, fc, g) + intercept
    np.testing.assert_allclose(outputs, est._decision(X), rtol=1e-7, atol=1e-9)


def test_stability_quantities_match_direct_computation(case):
    est, X, _ = case
    X = X[:5]
    g, fc, _, x1, z = _direct_pieces(est, X)
    report = bounds.noise_stability(est, X, random_state=0)
    A = np.asarray(est.kernels_)
    n1 = int(np.prod(g.conv_shape))
    for i in range(len(X)):
        f0 = direct_head(z[i:i + 1], fc, g)[0]
        # layer cushions, by their definitions
        mu_1 = np.linalg.norm(x1[i]) / (np.linalg.norm(A) * np.linalg.norm(X[i]))
        B_matrix = np.stack([direct_head(e.reshape(1, *z.shape[1:]), fc, g)[0]
                             for e in np.eye(z[0].size)], axis=1)  # (M, K n1)
        mu_2 = np.linalg.norm(f0) / (np.linalg.norm(B_matrix) * np.linalg.norm(z[i]))
        np.testing.assert_allclose(report.layer_cushion[i], [mu_1, mu_2], rtol=1e-7)
        np.testing.assert_allclose(report.activation_contraction[i],
                                   np.linalg.norm(x1[i]) / np.linalg.norm(z[i]),
                                   rtol=1e-7)
        # the Jacobian of x1 -> output, by central differences
        h = 1e-6
        J = np.empty((fc.shape[0], x1[i].size))
        for j in range(x1[i].size):
            step = np.zeros(x1[i].size)
            step[j] = h
            up = ACT[est.activation](x1[i].ravel() + step).reshape(1, *x1.shape[1:])
            down = ACT[est.activation](x1[i].ravel() - step).reshape(1, *x1.shape[1:])
            J[:, j] = (direct_head(up, fc, g) - direct_head(down, fc, g))[0] / (2 * h)
        jn = np.linalg.norm(J)
        np.testing.assert_allclose(report.jacobian_norm[i], jn, rtol=1e-5)
        # the proof's form (||f0||, equal to ||J x1|| for relu and identity)
        mu_12 = np.sqrt(n1) * np.linalg.norm(f0) / (jn * np.linalg.norm(x1[i]))
        if est.activation in ("relu", "identity"):
            np.testing.assert_allclose(np.linalg.norm(J @ x1[i].ravel()),
                                       np.linalg.norm(f0), rtol=1e-5)
        np.testing.assert_allclose(report.interlayer_cushion[i], mu_12, rtol=1e-5)
        per_position = (J.reshape(J.shape[0], A.shape[0], n1) ** 2).sum(axis=(0, 1))
        beta = np.sqrt(n1 * per_position.max()) / jn
        np.testing.assert_allclose(report.jacobian_beta[i], beta, rtol=1e-5)
    assert report.beta >= 1.0
    # summaries leaving out zeta each leave out a common fraction, at least zeta
    loose = bounds.noise_stability(est, case[1], zeta=0.2, random_state=0)
    outside = ((loose.layer_cushion < np.array(loose.layer_cushions)).any(axis=1)
               | (loose.interlayer_cushion < loose.min_interlayer_cushion_raw)
               | (loose.activation_contraction > loose.contraction)
               | (loose.jacobian_beta > loose.beta))
    assert loose.excluded_fraction == pytest.approx(outside.mean())
    assert loose.excluded_fraction > np.mean(
        loose.jacobian_beta > loose.beta)  # the union leaves out more than one
    summary = report.summary()
    assert summary["layer_cushion_1"] == report.layer_cushion[:, 0].min()
    assert summary["min_interlayer_cushion_1"] <= 1 / np.sqrt(A.shape[0])


def test_smoothness_is_second_order_for_smooth_activations():
    X, score = _data()
    est = fitted(CNNClassifier(n_kernels=2, kernel_size=3, pool_size=2,
                               activation="tanh", max_iter=20, random_state=0),
                 X, (score > 0).astype(int))
    # the linearization error of a smooth layer is O(||eta||^2): rho ~ 1/eps
    coarse = bounds.noise_stability(est, X[:6], perturbation_size=1e-2,
                                    random_state=1).interlayer_smoothness
    fine = bounds.noise_stability(est, X[:6], perturbation_size=1e-3,
                                  random_state=1).interlayer_smoothness
    np.testing.assert_allclose(fine / coarse, 10.0, rtol=0.25)
    linear = fitted(CNNClassifier(n_kernels=2, kernel_size=3, pool_size=2,
                                  activation="identity", random_state=0),
                    X, (score > 0).astype(int))
    assert np.all(np.isinf(bounds.noise_stability(linear, X).interlayer_smoothness))


def test_noise_sensitivity_of_a_linear_network_is_proposition_3_1():
    X, score = _data(n=30)
    est = fitted(CNNRegressor(n_kernels=2, kernel_size=3, pool_size=2,
                              activation="identity", random_state=0), X, score)
    g, fc, _, _, _ = _direct_pieces(est, X)
    A = np.asarray(est.kernels_)
    # the whole network as an explicit matrix M, column by column
    basis = np.eye(X[0].size).reshape(-1, *X.shape[1:])
    M = direct_head(direct_conv(basis, A, g), fc, g).T  # (n_out, n_inputs)
    x = X[:4].reshape(4, -1)
    expected = (np.linalg.norm(M) ** 2 * (x ** 2).sum(1)
                / ((x @ M.T) ** 2).sum(1))
    measured = bounds.noise_sensitivity(est, X[:4], sigma=1e-3, n_draws=2000,
                                        random_state=0)
    np.testing.assert_allclose(measured, expected, rtol=0.1)
    assert np.all(measured >= 0.9 * np.linalg.norm(M) ** 2 / np.linalg.norm(M, 2) ** 2)


def test_margins_and_margin_loss():
    X, score = _data()
    y = np.digitize(score, [-1, 1])
    est = fitted(CNNClassifier(n_kernels=2, kernel_size=3, pool_size=2,
                               random_state=0), X, y)
    scores = est.decision_function(X)
    own = scores[np.arange(len(y)), y]
    rest = np.where(np.arange(3) == y[:, None], -np.inf, scores).max(axis=1)
    np.testing.assert_allclose(bounds.margins(est, X, y), own - rest)
    assert bounds.margin_loss(est, X, y, 0.0) == pytest.approx(1 - est.score(X, y))
    binary = fitted(CNNClassifier(n_kernels=2, kernel_size=3, pool_size=2,
                                  random_state=0), X, np.where(score > 0, "b", "a"))
    labels = np.where(score > 0, "b", "a")
    f = binary.decision_function(X)
    np.testing.assert_allclose(bounds.margins(binary, X, labels),
                               np.where(labels == "b", f, -f))
    with pytest.raises(ValueError, match="not fitted on"):
        bounds.margins(binary, X, np.where(score > 0, "b", "c"))


# ------------------------------------------------------------ random projections
def test_matrix_project_is_unbiased_with_the_closed_form_error():
    A = np.random.default_rng(0).normal(size=(4, 6))
    k = 10
    draws = np.stack([bounds.matrix_project(A, k=k, random_state=s)[1]
                      for s in range(2000)])
    # E[A_hat] = A; E||A_hat - A||_F^2 = (D - 1) ||A||_F^2 / k for sign matrices
    np.testing.assert_allclose(draws.mean(axis=0), A, atol=4 * np.sqrt(
        (A.size - 1) * (A ** 2).sum() / A.size / k / 2000))
    mse = ((draws - A) ** 2).sum(axis=(1, 2)).mean()
    assert mse == pytest.approx((A.size - 1) * (A ** 2).sum() / k, rel=0.1)
    coef, A_hat = bounds.matrix_project(A, k=k, random_state=7)
    np.testing.assert_array_equal(A_hat, bounds.matrix_project(A, k=k,
                                                               random_state=7)[1])
    assert coef.shape == (k,)


def test_matrix_project_keeps_bilinear_forms_as_lemma_2_says():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(8, 12))
    U, _, Vt = np.linalg.svd(A)
    u, v = U[:, 0], Vt[0]  # the hardest pair: the top singular vectors
    eps, eta = 0.3, 0.05
    k = int(np.ceil(4 * np.log(2 / eta) / eps ** 2))
    errors = np.array([abs(u @ bounds.matrix_project(A, k=k, random_state=s)[1] @ v
                           - u @ A @ v) for s in range(400)])
    limit = eps * np.linalg.norm(A) * np.linalg.norm(u) * np.linalg.norm(v)
    assert np.mean(errors >= limit) <= eta + 3 * np.sqrt(eta * (1 - eta) / 400)


@pytest.mark.parametrize("k, p", [(3, 2), (40, 4)])  # a subspace, the whole space
def test_matrix_project_conv_filters_are_unbiased_and_per_position(k, p):
    A = np.random.default_rng(2).normal(size=(2, 1, 3, 3))
    draws = np.stack([bounds.matrix_project_conv(A, 3, k=k, p=p, random_state=s)[1]
                      for s in range(3000)])
    assert draws.shape == (3000, 3, *A.shape)
    np.testing.assert_allclose(draws.mean(axis=0), np.broadcast_to(A, (3, *A.shape)),
                               atol=0.25 * np.abs(A).max())
    coef, one = bounds.matrix_project_conv(A, 3, k=k, p=p, random_state=0)
    assert coef.size == min(k * p, A.size)
    assert not np.allclose(one[0], one[1])  # independent filters per position


def test_project_compress_builds_the_network_it_measures():
    X, score = _data(channels=True)
    y = np.digitize(score, [-1, 1])
    est = fitted(TuckerCNNClassifier(ranks=(2, 2, 2, 2), n_kernels=3, kernel_size=3,
                                     pool_size=2, activation="relu",
                                     channel_axis=1, max_iter=30, random_state=0), X, y)
    g = est.geometry_
    fc, intercept = est._head()
    # shared: Algorithm 1 on the kernel and on the FC weights -> a dense estimator
    shared = bounds.project_compress(est, X, k=(30, 40), conv="shared", random_state=3)
    kernels = bounds.matrix_project(est.kernels_, k=30, random_state=3)[1]
    fc_hat = bounds.matrix_project(fc.reshape(fc.shape[0], 3, -1), k=40,
                                   random_state=4)[1]
    np.testing.assert_allclose(shared.estimator.kernels_, kernels, atol=1e-12)
    expected = direct_head(np.maximum(direct_conv(X, kernels, g), 0),
                           fc_hat.reshape(fc.shape), g) + intercept
    np.testing.assert_allclose(shared.estimator.decision_function(X), expected,
                               rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(shared.output_change,
                               np.linalg.norm(expected - est.decision_function(X),
                                              axis=1), rtol=1e-6)
    assert isinstance(shared.estimator, CNNClassifier)
    assert shared.n_params == 70
    # per position: Algorithm 4, each position with its own filter
    local = bounds.project_compress(est, X, k=(5, None), p=2, random_state=5)
    positions = bounds.matrix_project_conv(est.kernels_, int(np.prod(g.conv_shape)),
                                           k=5, p=2, random_state=5)[1]
    x1 = np.zeros((len(X), 3, *g.conv_shape))
    for i, t in enumerate(np.ndindex(*g.conv_shape)):
        x1[(slice(None), slice(None), *t)] = direct_conv(X, positions[i], g)[
            (slice(None), slice(None), *t)]
    expected = direct_head(np.maximum(x1, 0), fc, g) + intercept
    np.testing.assert_allclose(local.estimator.decision_function(X), expected,
                               rtol=1e-7, atol=1e-9)
    assert local.estimator.score(X, y) == np.mean(local.estimator.predict(X) == y)
    assert "TuckerCNNClassifier" in repr(local.estimator)
    # many projections: the outputs hardly move
    close = bounds.project_compress(est, X, k=(20000, 20000), conv="shared",
                                    random_state=0)
    reach = np.linalg.norm(est.decision_function(X) - intercept, axis=1).max()
    assert close.output_change.max() < 0.15 * reach


# ------------------------------------------------------------ tensor compression
def test_conv_operator_is_the_convolution_and_its_adjoint():
    est, X, _ = _fitted_cp()
    g = est.geometry_
    op = conv_operator(est.kernels_, g)
    x = X[:1]
    np.testing.assert_allclose(op @ x.ravel(), direct_conv(x, est.kernels_, g).ravel())
    y = np.random.default_rng(0).normal(size=op.shape[0])
    assert np.dot(op @ x.ravel(), y) == pytest.approx(np.dot(x.ravel(), op.T @ y))
    basis = np.eye(x.size).reshape(-1, *x.shape[1:])
    dense = direct_conv(basis, est.kernels_, g).reshape(x.size, -1).T
    assert operator_norm(op) == pytest.approx(np.linalg.norm(dense, 2), rel=1e-9)


def test_operator_norm_by_iteration_on_a_large_input():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 24, 24))
    est = fitted(CNNRegressor(n_kernels=2, kernel_size=3, pool_size=4, max_iter=5,
                              random_state=0), X, X[:, 0, 0])
    op = conv_operator(est.kernels_, est.geometry_)
    assert min(op.shape) > 512  # not the dense path
    dense = direct_conv(np.eye(576).reshape(-1, 24, 24), est.kernels_,
                        est.geometry_).reshape(576, -1).T
    assert operator_norm(op) == pytest.approx(np.linalg.norm(dense, 2), rel=1e-6)


def _fitted_cp():
    X, score = _data(channels=True)
    y = (score > 0).astype(int)
    est = fitted(CPCNNClassifier(rank=3, n_kernels=4, kernel_size=(3, 2), pool_size=2,
                                 padding="same", activation="relu", channel_axis=1,
                                 max_iter=40, random_state=0), X, y)
    return est, X, y


@pytest.mark.parametrize("which", ["cp", "tucker", "dense"])
def test_kernel_spectrum_rebuilds_the_kernels_and_bounds_each_component(which):
    X, score = _data(channels=True)
    y = (score > 0).astype(int)
    est = {"cp": lambda: _fitted_cp()[0],
           "tucker": lambda: fitted(TuckerCNNClassifier(
               ranks=(2, 2, 2, 3), n_kernels=4, kernel_size=3, pool_size=2,
               activation="relu", channel_axis=1, max_iter=30, random_state=0), X, y),
           "dense": lambda: fitted(CNNClassifier(
               n_kernels=3, kernel_size=3, pool_size=2, stride=2, activation="relu",
               channel_axis=1, max_iter=30, random_state=0), X, y)}[which]()
    spectrum = bounds.kernel_spectrum(est)
    rebuilt = np.einsum("r,kr,r...->k...", spectrum.weights, spectrum.kernel_vectors,
                        spectrum.filters)
    np.testing.assert_allclose(rebuilt, est.kernels_, atol=1e-10)
    assert np.all(np.diff(spectrum.weights) <= 1e-12)
    g = est.geometry_
    basis = np.eye(X[0].size).reshape(-1, *X.shape[1:])
    for W, peak in zip(spectrum.filters, spectrum.peaks):
        matrix = direct_conv(basis, W[None], g).reshape(X[0].size, -1).T
        norm = np.linalg.norm(matrix, 2)
        assert norm <= peak * (1 + 1e-9)
        # never above the plain sum of the filter's column norms
        assert peak <= np.linalg.norm(W.reshape(W.shape[0], -1), axis=0).sum() * 1.001


def test_tensor_compress_keeps_outputs_within_half_the_margin(case):
    est, X, _ = case  # regressors too: gamma is then a tolerance on the outputs
    f = est._decision(X)
    f_max = np.linalg.norm(f - est._head()[1], axis=1).max()
    previous = None
    for gamma in (0.05 * f_max, 0.5 * f_max, 1.5 * f_max):
        pruned = bounds.tensor_compress(est, X, gamma=gamma)
        moved = np.linalg.norm(pruned.estimator._decision(X) - f, axis=1)
        assert moved.max() <= gamma / 2 * (1 + 1e-9)
        np.testing.assert_allclose(moved, pruned.output_change, atol=1e-9)
        if previous is not None:  # a larger margin never keeps more
            assert pruned.n_components <= previous
        previous = pruned.n_components


def test_tensor_compress_prunes_to_the_kept_components():
    est, X, y = _fitted_cp()
    spectrum = bounds.kernel_spectrum(est)
    pruned = bounds.tensor_compress(est, X, gamma=1e9)  # anything goes: keep one
    assert pruned.n_components == 1
    f = est.decision_function(X)
    pruned = bounds.tensor_compress(est, X, gamma=0.5 * np.abs(f).max())
    j = pruned.n_components
    kept = np.einsum("r,kr,r...->k...", spectrum.weights[:j],
                     spectrum.kernel_vectors[:, :j], spectrum.filters[:j])
    g = est.geometry_
    fc, intercept = est._head()
    expected = direct_head(np.maximum(direct_conv(X, kept, g), 0), fc, g) + intercept
    np.testing.assert_allclose(pruned.estimator.decision_function(X),
                               expected[:, 0], rtol=1e-7, atol=1e-9)
    assert pruned.estimator.rank == j


# ------------------------------------------------------------ quantization, bounds
@pytest.mark.parametrize("activation", ["identity", "relu"])
def test_quantize_rounds_every_parameter_onto_its_grid(activation):
    X, score = _data()
    y = np.digitize(score, [-1, 1])
    est = fitted(TuckerCNNClassifier(ranks=(2, 2, 2), n_kernels=4, kernel_size=3,
                                     pool_size=2, activation=activation,
                                     max_iter=30, random_state=0), X, y)
    q = bounds.quantize(est, n_bits=5)
    g = q.estimator
    params = [*g._kernel_params_and_head()[0], *g._kernel_params_and_head()[1:]]
    levels = 2 ** 4 - 1
    rounded = [p for p in params if not (p.ndim == 2 and p.shape[0] == p.shape[1]
                                         and np.array_equal(p, np.eye(len(p))))]
    for p, e in zip(rounded, q.exponents):
        steps = np.asarray(p) / 2.0 ** e * levels
        np.testing.assert_allclose(steps, np.round(steps), atol=1e-9)
        assert np.abs(steps).max() <= levels
    if activation == "identity":  # compacted: d_M parameters plus the intercepts
        assert q.n_params == est.model_complexity_ + len(est.classes_)
    else:
        assert q.n_params == est.n_params_
    fc, intercept = g._head()
    expected = direct_head(ACT[activation](direct_conv(X, g.kernels_, g.geometry_)),
                           fc, g.geometry_) + intercept
    np.testing.assert_allclose(g.decision_function(X), expected, rtol=1e-7, atol=1e-9)


def test_quantized_bound_is_hoeffding_over_the_grid_and_holds_on_held_out_data():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X.reshape(-1, 8, 8) / 16
    keep = y < 2  # 0 against 1: a small, well-separated problem
    X, y = X[keep], y[keep]
    est = TuckerCNNClassifier(ranks=(2, 2, 2), n_kernels=2, kernel_size=3, pool_size=3,
                              random_state=0).fit(X[:250], y[:250])
    report = bounds.quantized_bound(est, X[:250], y[:250], n_bits=4, delta=0.05)
    q = report.terms["q"]
    expected = np.sqrt((q * 4 * np.log(2) + report.terms["n_arrays"] * np.log(128)
                        + np.log(1 / 0.05)) / (2 * 250))
    assert report.complexity == pytest.approx(expected)
    assert report.rigorous and not report.vacuous
    test_error = 1 - report.estimator.score(X[250:], y[250:])
    assert report.bound >= test_error


def test_bounds_separate_true_from_shuffled_labels():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X[:300].reshape(-1, 8, 8) / 16
    y = y[:300]
    shuffled = np.random.default_rng(0).permutation(y)
    reports = {}
    for name, labels in (("true", y), ("shuffled", shuffled)):
        # no pooling: the network fits shuffled labels too
        est = fitted(CNNClassifier(n_kernels=6, kernel_size=3, pool_size=1,
                                   activation="relu", max_iter=2000, random_state=0),
                     X, labels)
        assert est.score(X, labels) == 1.0
        reports[name] = (bounds.compression_bound(est, X, labels, random_state=0),
                         bounds.tensor_compression_bound(est, X, labels),
                         bounds.quantized_bound(est, X, labels, n_bits=4))
    (arora, tensor, quantized), (arora_s, tensor_s, quantized_s) = (
        reports["true"], reports["shuffled"])
    assert 2 * arora.bound < arora_s.bound
    assert quantized.bound < quantized_s.bound
    assert tensor.bound <= tensor_s.bound
    assert arora.terms["layer_cushion_2"] > arora_s.terms["layer_cushion_2"]
    assert set(arora.conditions) == {"interlayer_smoothness >= 3d", "gamma reachable"}
    assert arora.bound >= arora.empirical_loss + arora.complexity - 1e-12


def test_norm_bounds_and_effective_params():
    est, X, y = _fitted_cp()
    numerators = bounds.norm_bounds(est, X, gamma=1.0)
    g = est.geometry_
    basis = np.eye(X[0].size).reshape(-1, *X.shape[1:])
    conv = direct_conv(basis, est.kernels_, g).reshape(X[0].size, -1).T
    fc, _ = est._head()
    B = np.stack([direct_head(e.reshape(1, est.n_kernels_, *g.conv_shape), fc, g)[0]
                  for e in np.eye(conv.shape[0])], axis=1)
    x_max = np.linalg.norm(X.reshape(len(X), -1), axis=1).max()
    spectral = np.linalg.norm(conv, 2) ** 2 * np.linalg.norm(B, 2) ** 2
    fro = [np.linalg.norm(conv), np.linalg.norm(B)]  # the layers' matrices
    expected = x_max ** 2 * spectral * (conv.shape[0] * fro[0] ** 2
                                        / np.linalg.norm(conv, 2) ** 2
                                        + B.shape[0] * fro[1] ** 2
                                        / np.linalg.norm(B, 2) ** 2)
    assert numerators["spectral_fro"] == pytest.approx(expected, rel=1e-8)
    assert numerators["frobenius"] == pytest.approx(
        x_max ** 2 * fro[0] ** 2 * fro[1] ** 2, rel=1e-8)
    l1_inf = [np.abs(a).sum(axis=1).max() for a in (conv, B)]
    assert numerators["l1_inf"] == pytest.approx(
        x_max ** 2 * l1_inf[0] ** 2 * l1_inf[1] ** 2, rel=1e-8)
    l12 = [np.linalg.norm(a, axis=1).sum() for a in (conv, B)]
    spectral_norms = [np.linalg.norm(conv, 2), np.linalg.norm(B, 2)]
    assert numerators["spectral_l12"] == pytest.approx(
        x_max ** 2 * spectral * sum((b / s) ** 2 for b, s in zip(l12, spectral_norms)),
        rel=1e-8)
    rows = bounds.effective_params(est, X)
    assert [r["layer"] for r in rows] == [1, 2]
    assert rows[0]["actual"] + rows[1]["actual"] + 1 == est.n_params_


def test_regressors_get_diagnostics_and_clear_errors_elsewhere():
    X, score = _data()
    est = fitted(CNNRegressor(n_kernels=2, kernel_size=3, pool_size=2,
                              activation="relu", max_iter=20, random_state=0), X, score)
    assert bounds.noise_stability(est, X).layer_cushion.shape == (len(X), 2)
    assert len(bounds.effective_params(est, X)) == 2
    for function in (bounds.compression_bound, bounds.tensor_compression_bound,
                     bounds.quantized_bound):
        with pytest.raises(TypeError, match="needs a classifier"):
            function(est, X, score)
    with pytest.raises(TypeError, match="fitted sktensorcnn estimator"):
        bounds.noise_stability(LogisticRegression().fit(X.reshape(40, -1), score > 0),
                               X.reshape(40, -1))
    with pytest.raises(ValueError, match="zeta"):
        bounds.noise_stability(est, X, zeta=1.0)
    with pytest.raises(ValueError, match="gamma"):
        bounds.tensor_compress(est, X, gamma=0.0)
    squared = fitted(CNNRegressor(n_kernels=2, kernel_size=3, pool_size=2,
                                  activation="squared_relu", max_iter=5,
                                  random_state=0), X, score)
    with pytest.raises(ValueError, match="Lipschitz"):
        bounds.tensor_compress(squared, X, gamma=1.0)
    sigmoid = fitted(CNNClassifier(n_kernels=2, kernel_size=3, pool_size=2,
                                   activation="sigmoid", max_iter=5, random_state=0),
                     X, score > 0)
    for function in (bounds.compression_bound, bounds.effective_params):
        with pytest.raises(ValueError, match="act\\(0\\) = 0"):
            function(sigmoid, X, score > 0) if function is bounds.compression_bound \
                else function(sigmoid, X)
    with pytest.raises(ValueError, match="k=0"):
        bounds.matrix_project(np.ones(3), k=0)
