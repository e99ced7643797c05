"""The numba head shared by the matrix paths: activation, folded FC layer and
loss, against numpy, for every activation and loss, in float32 and float64."""

import numpy as np
import pytest
from scipy.special import log_softmax, logsumexp

from sktensorcnn.activations import ACTIVATIONS, activation_code
from sktensorcnn.kernels import _cpu_head
from sktensorcnn.losses import HUBER_DELTA, loss_code, target_rows


def _numpy_head(Y, Bt, b, y, w, activation, loss):
    act, dact = ACTIVATIONS[activation]
    H = act(Y.astype(float))
    F = np.einsum("nj,oj->no", H, Bt.astype(float)) + b
    regression = loss in ("squared", "huber", "poisson")
    onehot = None if regression else np.eye(F.shape[1])[y.astype(int)]
    if loss == "squared":  # y (n, n_out): one target per output
        values, G = 0.5 * np.sum((F - y) ** 2, axis=1), F - y
    elif loss == "huber":
        r, delta = F - y, HUBER_DELTA
        values = np.sum(np.where(np.abs(r) <= delta, 0.5 * r**2,
                                 delta * np.abs(r) - 0.5 * delta**2), axis=1)
        G = np.clip(r, -delta, delta)
    elif loss == "poisson":
        values, G = np.sum(np.exp(F) - y * F, axis=1), np.exp(F) - y
    elif loss == "logistic":
        values = np.logaddexp(0.0, F[:, 0]) - y * F[:, 0]
        G = 1.0 / (1.0 + np.exp(-F)) - y[:, None]
    elif loss == "ovr":
        values = np.sum(np.logaddexp(0.0, F) - onehot * F, axis=1)
        G = 1.0 / (1.0 + np.exp(-F)) - onehot
    else:
        values = logsumexp(F, axis=1) - F[np.arange(len(y)), y.astype(int)]
        G = np.exp(log_softmax(F, axis=1)) - onehot
    G = w[:, None] * G
    dY = dact(Y.astype(float)) * (G @ Bt.astype(float))
    return w @ values, G.T @ H, G.sum(axis=0), dY


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("loss, n_out", [("squared", 1), ("squared", 3),
                                          ("logistic", 1),
                                          ("multinomial", 1), ("multinomial", 4),
                                          ("ovr", 4), ("huber", 2),
                                          ("huber", 5), ("poisson", 4)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n_blocks", [1, 2])
def test_head_matches_numpy(activation, loss, n_out, dtype, n_blocks):
    rng = np.random.default_rng(n_out)
    n, size = 5, 37  # odd length: exercises the lane remainder of the dot product
    Y = rng.standard_normal((n, size)).astype(dtype)
    Bt = rng.standard_normal((n_out, size)).astype(dtype)
    b = rng.standard_normal(n_out)
    y = (rng.standard_normal((n, n_out)) if loss in ("squared", "huber") else
         rng.poisson(1.0, (n, n_out)).astype(float) if loss == "poisson" else
         rng.integers(0, 2 if loss == "logistic" else n_out, n).astype(float))
    w = rng.uniform(0.1, 1.0, n)
    expected = _numpy_head(Y, Bt, b, y, w, activation, loss)
    dY = Y.copy()
    got = _cpu_head.loss_grad(dY, Bt, b, target_rows(y), w,
                              activation_code(activation),
                              loss_code(loss), n_blocks)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for g, e in zip((*got, dY), expected):
        # float32 rounding is relative to the largest terms (Poisson's exp)
        atol = rtol * max(1.0, float(np.abs(e).max())) if dtype == "float32" else rtol
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)


def test_multinomial_loss_is_stable_for_large_outputs():
    Y = np.full((1, 3), 1.0)
    Bt = np.array([[400.0, 400.0, 400.0], [0.0, 0.0, 0.0]])
    loss, D, db, = _cpu_head.loss_grad(Y, Bt, np.zeros(2), np.array([[1.0]]),
                                       np.ones(1), 0, loss_code("multinomial"), 1)
    assert np.isfinite(loss) and loss == pytest.approx(1200.0)
    assert np.all(np.isfinite(D)) and db == pytest.approx([1.0, -1.0])


@pytest.mark.parametrize("rows", [8, 3000])
def test_the_head_keeps_bounded_scratch_between_calls(rows):
    """The head by matrix products keeps its buffers for the next call only
    within ``SCRATCH_MAX_BYTES`` per thread, whatever the size of the call,
    and a kept buffer gives the same results when reused."""
    rng = np.random.default_rng(rows)
    Y = rng.standard_normal((rows, 600)).astype(np.float32)
    Bt = rng.standard_normal((5, 600)).astype(np.float32)
    y = rng.integers(0, 5, rows).astype(float)
    w = np.full(rows, 1.0 / rows)
    results = []
    for _ in range(2):
        dY = Y.copy()
        results.append((*_cpu_head.loss_grad(dY, Bt, np.zeros(5), target_rows(y), w,
                                             activation_code("tanh"),
                                             loss_code("multinomial"), 1), dY))
        kept = getattr(_cpu_head._scratches, "buffers", {})
        assert sum(b.nbytes for b in kept.values()) <= _cpu_head.SCRATCH_MAX_BYTES
    for first, second in zip(*results):
        np.testing.assert_array_equal(first, second)
    expected = _numpy_head(Y, Bt, np.zeros(5), y, w, "tanh", "multinomial")
    np.testing.assert_allclose(results[0][0], expected[0], rtol=1e-5)
