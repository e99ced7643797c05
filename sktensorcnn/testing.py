"""Property-based testing of tensor estimators and of pipelines built on them.

Two halves:

* **hypothesis strategies** that draw what a tensor estimator meets:
  :func:`geometries` (1 to 4 spatial modes, channels or none, strides, padding,
  pooling that fits), :func:`geometry_params` (the estimator parameters and
  sample shape of a geometry, channels first or last), :func:`tensor_samples`,
  :func:`tucker_ranks`, :func:`cp_ranks`, :func:`estimator_params` and
  :func:`teacher_problems` (data drawn from a random network);
* **property checks** any fitted tensor estimator (or a pipeline ending in
  one) should pass, each raising ``AssertionError`` with what differed:
  :func:`check_sample_order`, :func:`check_batch_splits`,
  :func:`check_memory_layouts`, :func:`check_float32`,
  :func:`check_coef_reproduces_predict`, :func:`check_refit_after_clone`,
  :func:`check_persistence`, and :func:`check_tensor_estimator`, which runs
  those that apply.

Needs hypothesis: ``pip install "sktensorcnn[testing]"``.

Examples
--------
>>> import numpy as np
>>> from sktensorcnn import CNNRegressor
>>> from sktensorcnn.testing import check_tensor_estimator
>>> rng = np.random.default_rng(0)
>>> X = rng.standard_normal((30, 6, 6))
>>> y = X[:, 1:4, 1:4].sum(axis=(1, 2))
>>> est = CNNRegressor(kernel_size=3, pool_size=2, random_state=0)
>>> check_tensor_estimator(est, X, y)  # fits clones of est; raises on failure
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone

from .activations import BY_NAME
from .geometry import ConvPoolGeometry
from .network import network_outputs

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as error:  # pragma: no cover - the extra is missing
    raise ImportError(
        "sktensorcnn.testing needs hypothesis; install it with "
        "pip install 'sktensorcnn[testing]'."
    ) from error

__all__ = [
    "TeacherProblem", "check_batch_splits", "check_coef_reproduces_predict",
    "check_float32", "check_memory_layouts", "check_persistence",
    "check_refit_after_clone", "check_sample_order", "check_tensor_estimator",
    "cp_ranks", "estimator_params", "geometries", "geometry_params",
    "teacher_problems", "tensor_samples", "tucker_ranks",
]

#: Largest size per mode, by number of modes (keeps drawn samples small).
_MODE_BUDGET = {1: 14, 2: 9, 3: 7, 4: 5}


# ---------------------------------------------------------------- strategies
@st.composite
def geometries(draw, max_modes: int = 4, channels: bool = True,
               max_stride: int = 3, max_padding: int = 2) -> ConvPoolGeometry:
    """Valid convolution -> pooling geometries with 1 to ``max_modes`` spatial
    modes: sizes, kernels that fit the padded input, strides, padding, and
    pooling windows that fit the convolution output; with ``channels`` a
    channel axis of 1 or 2 channels, or none."""
    n_modes = draw(st.integers(1, max_modes))
    budget = _MODE_BUDGET[n_modes]
    sample_shape, kernel, stride, pad, pool, pool_stride = [], [], [], [], [], []
    for _ in range(n_modes):
        d = draw(st.integers(2, budget))
        padding = draw(st.integers(0, max_padding))
        size = draw(st.integers(1, d + padding))
        s = draw(st.integers(1, max_stride))
        m = (d + padding * 2 - size) // s + 1
        sample_shape.append(d)
        kernel.append(size)
        stride.append(s)
        pad.append(padding)
        pool.append(draw(st.integers(1, m)))
        pool_stride.append(draw(st.integers(1, 3)))
    n_channels = draw(st.sampled_from([None, 1, 2])) if channels else None
    return ConvPoolGeometry.from_params(
        tuple(sample_shape), n_channels=n_channels, kernel_size=tuple(kernel),
        stride=tuple(stride), padding=tuple(pad), pool_size=tuple(pool),
        pool_stride=tuple(pool_stride),
    )


def geometry_params(geometry: ConvPoolGeometry, channels_last: bool = False):
    """``(params, sample_shape)``: the estimator parameters that build
    ``geometry`` and the shape of one sample in the user's layout (the channel
    axis first, or last with ``channels_last``)."""
    if any(lo != hi for lo, hi in geometry.padding):
        raise ValueError(
            f"geometry_params needs symmetric padding, as the estimators' "
            f"padding parameter gives it; got {geometry.padding}.")
    params = dict(kernel_size=geometry.kernel_size, stride=geometry.stride,
                  padding=tuple(lo for lo, _ in geometry.padding),
                  pool_size=geometry.pool_size, pool_stride=geometry.pool_stride,
                  channel_axis=None)
    shape = tuple(geometry.sample_shape)
    if geometry.n_channels is not None:
        params["channel_axis"] = -1 if channels_last else 1
        shape = ((*shape, geometry.n_channels) if channels_last
                 else (geometry.n_channels, *shape))
    return params, shape


def tensor_samples(sample_shape, n=None, dtype=np.float64, elements=None):
    """Batches ``(n, *sample_shape)`` of finite values (``elements``: a
    strategy of scalars, default floats in ``[-10, 10]`` without subnormals);
    ``n`` an int or a strategy of ints (default 1 to 8)."""
    if isinstance(sample_shape, ConvPoolGeometry):
        sample_shape = sample_shape.input_shape
    width = np.dtype(dtype).itemsize * 8
    if elements is None:
        elements = st.floats(-10, 10, allow_nan=False, allow_infinity=False,
                             allow_subnormal=False, width=width)
    counts = (st.integers(1, 8) if n is None else st.just(n) if isinstance(n, int)
              else n)
    return counts.flatmap(lambda rows: hnp.arrays(
        dtype, (rows, *sample_shape), elements=elements))


@st.composite
def tucker_ranks(draw, geometry: ConvPoolGeometry, n_kernels: int | None = None):
    """Tucker ranks ``(R_1, ..., R_N, [R_C], R_{N+1})`` valid for ``geometry``:
    one per kernel mode, at most its size, and the output rank at most the
    pooled cells and ``n_kernels``."""
    modes = [draw(st.integers(1, size)) for size in geometry.kernel_modes]
    cap = geometry.n_cells if n_kernels is None else min(n_kernels, geometry.n_cells)
    return (*modes, draw(st.integers(1, max(1, min(cap, 3)))))


def cp_ranks(geometry: ConvPoolGeometry, max_rank: int = 3):
    """CP ranks for ``geometry``'s kernels (1 to ``max_rank``)."""
    return st.integers(1, max_rank)


#: Solvers each activation can be fitted with (the squared loss's ALS only
#: for the linear network).
_SOLVERS = {"identity": ("auto", "als", "lbfgs"), "other": ("auto", "lbfgs", "adam")}


@st.composite
def estimator_params(draw, kind: str, geometry: ConvPoolGeometry,
                     task: str = "regression"):
    """Keyword arguments of a ``kind`` (``'dense'``, ``'tucker'`` or ``'cp'``)
    estimator for ``geometry``: its structure (``n_kernels``, ``ranks`` or
    ``rank``), an activation, a solver that fits it, ``alpha``,
    ``fit_intercept``, a few iterations and a seed (no geometry: see
    :func:`geometry_params`)."""
    activation = draw(st.sampled_from(["identity", "relu", "tanh"]))
    solvers = _SOLVERS["identity" if activation == "identity" else "other"]
    if task == "classification":
        solvers = tuple(s for s in solvers if s != "als")
    params: dict[str, Any] = dict(
        activation=activation, solver=draw(st.sampled_from(solvers)),
        alpha=draw(st.sampled_from(["auto", 1e-3, 0.1])),
        fit_intercept=draw(st.booleans()), max_iter=draw(st.integers(2, 20)),
        random_state=draw(st.integers(0, 2**16)),
    )
    if kind == "dense":
        params["n_kernels"] = draw(st.integers(1, 3))
    elif kind == "tucker":
        params["ranks"] = draw(tucker_ranks(geometry))
    elif kind == "cp":
        params["rank"] = draw(cp_ranks(geometry))
    else:
        raise ValueError(f"kind={kind!r}; use 'dense', 'tucker' or 'cp'.")
    return params


@dataclass
class TeacherProblem:
    """Samples ``X`` and targets ``y`` of a random teacher network (kernels,
    FC weights, intercept, activation) on ``geometry``; ``params`` are the
    estimator parameters of its geometry, ``sample_shape`` one sample's shape."""

    X: np.ndarray
    y: np.ndarray
    geometry: ConvPoolGeometry
    params: dict
    sample_shape: tuple
    kernels: np.ndarray
    fc_weights: np.ndarray
    intercept: float
    activation: str


@st.composite
def teacher_problems(draw, max_modes: int = 2, n_samples=None,
                     task: str = "regression", noise: float = 0.0):
    """A :class:`TeacherProblem`: a random network with 1 or 2 kernels and
    samples drawn from a standard normal distribution; regression targets are
    its outputs (plus ``noise`` times a standard normal), classification
    targets whether they exceed their median.  ``n_samples``: an int or a
    strategy of ints (default 20 to 60)."""
    geometry = draw(geometries(max_modes=max_modes))
    activation = draw(st.sampled_from(["identity", "relu", "tanh"]))
    seed = draw(st.integers(0, 2**32 - 1))
    if n_samples is None:
        n_samples = st.integers(20, 60)
    n = n_samples if isinstance(n_samples, int) else draw(n_samples)
    rng = np.random.default_rng(seed)
    K = draw(st.integers(1, 2))
    kernels = rng.standard_normal((K, *geometry.kernel_shape))
    fc = rng.standard_normal((1, K, *geometry.pooled_shape))
    intercept = float(rng.standard_normal())
    X = rng.standard_normal((n, *geometry.input_shape))
    outputs = network_outputs(X, kernels, fc, np.array([intercept]), geometry,
                              activation)[:, 0]
    if task == "classification":
        y = (outputs > np.median(outputs)).astype(int)
    else:
        y = outputs + noise * rng.standard_normal(n)
    params, shape = geometry_params(geometry)
    return TeacherProblem(X, y, geometry, params, shape, kernels, fc[0], intercept,
                          activation)


# ---------------------------------------------------------------- checks
def _outputs(estimator, X, method=None):
    """The estimator's outputs: ``decision_function`` when it has one (class
    scores carry more than labels), else ``predict``."""
    if method is None:
        method = "decision_function" if hasattr(estimator, "decision_function") \
            else "predict"
    return np.asarray(getattr(estimator, method)(X), dtype=float)


def _assert_close(actual, expected, what, rtol=1e-9, atol=1e-9):
    scale = max(float(np.max(np.abs(expected), initial=0.0)), 1.0)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale,
                               err_msg=what)


def check_sample_order(estimator, X, *, rng=0, rtol=1e-9):
    """Outputs on permuted samples are the permuted outputs."""
    order = np.random.default_rng(rng).permutation(len(X))
    _assert_close(_outputs(estimator, X[order]), _outputs(estimator, X)[order],
                  "outputs depend on the order of the samples", rtol)


def check_batch_splits(estimator, X, *, n_batches=3, rtol=1e-9):
    """Outputs on the whole batch equal those on ``n_batches`` parts."""
    parts = np.array_split(np.arange(len(X)), min(n_batches, len(X)))
    pieces = np.concatenate([_outputs(estimator, X[rows]) for rows in parts])
    _assert_close(pieces, _outputs(estimator, X),
                  "outputs depend on how the samples are batched", rtol)


def check_memory_layouts(estimator, X, *, rtol=1e-9):
    """C-ordered, Fortran-ordered, non-contiguous and read-only inputs give
    the same outputs."""
    expected = _outputs(estimator, np.ascontiguousarray(X))
    strided = np.repeat(X, 2, axis=0)[::2]
    read_only = np.array(X)
    read_only.setflags(write=False)
    for name, variant in (("Fortran-ordered", np.asfortranarray(X)),
                          ("non-contiguous", strided), ("read-only", read_only)):
        _assert_close(_outputs(estimator, variant), expected,
                      f"{name} input changes the outputs", rtol)


def check_float32(estimator, X, y, *, rtol=1e-3):
    """Fitted on float32 samples, the estimator's outputs are within ``rtol``
    (of their spread) of the float64 fit's.

    Meaningful for fits that converge to the same optimum in both precisions:
    linear and smooth (``tanh``) networks.  ReLU networks may settle on
    another side of a kink from rounding alone (2 % of the spread seen on
    small sets): loosen ``rtol`` for them.
    """
    wide = clone(estimator).fit(np.asarray(X, np.float64), y)
    narrow = clone(estimator).fit(np.asarray(X, np.float32), y)
    expected = _outputs(wide, np.asarray(X, np.float64))
    spread = max(float(np.std(expected)), 1e-12)
    actual = _outputs(narrow, np.asarray(X, np.float32))
    if not np.allclose(actual, expected, rtol=0, atol=rtol * spread):
        raise AssertionError(
            f"float32 fit differs from the float64 fit by "
            f"{np.max(np.abs(actual - expected)) / spread:.2e} of the outputs' "
            f"spread (tolerance {rtol:g}).")


def check_coef_reproduces_predict(estimator, X, *, rtol=1e-8):
    """Linear networks (``activation='identity'``): ``<X_i, coef_> +
    intercept_`` gives the outputs."""
    coef = np.asarray(estimator.coef_, dtype=float)
    n_out = 1 if coef.ndim == X.ndim - 1 else coef.shape[0]
    flat = np.asarray(X, float).reshape(len(X), -1)
    outputs = flat @ coef.reshape(n_out, -1).T + np.asarray(estimator.intercept_)
    expected = _outputs(estimator, X).reshape(len(X), -1)
    if hasattr(estimator, "decision_function") or n_out > 1:
        _assert_close(outputs.reshape(expected.shape), expected,
                      "coef_ and intercept_ do not give the outputs", rtol)
    else:
        _assert_close(outputs[:, 0], _outputs(estimator, X, "predict"),
                      "coef_ and intercept_ do not give predict", rtol)


def check_refit_after_clone(estimator, X, y):
    """Two fits of clones (with the same ``random_state``) predict the same."""
    first = clone(estimator).fit(X, y)
    second = clone(estimator).fit(X, y)
    np.testing.assert_array_equal(_outputs(second, X), _outputs(first, X),
                                  err_msg="refits of clones differ")


def check_persistence(estimator, X):
    """A pickle round trip, and a skops one where skops is installed, predict
    exactly as the estimator does."""
    expected = _outputs(estimator, X)
    restored = pickle.loads(pickle.dumps(estimator))
    np.testing.assert_array_equal(_outputs(restored, X), expected,
                                  err_msg="pickle round trip changes outputs")
    try:
        import skops.io as sio
    except ImportError:  # skops is optional
        return
    blob = sio.dumps(estimator)
    loaded = sio.loads(blob, trusted=sio.get_untrusted_types(data=blob))
    np.testing.assert_array_equal(_outputs(loaded, X), expected,
                                  err_msg="skops round trip changes outputs")


def _final_step(estimator):
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


def _has_kink(estimator) -> bool:
    """Whether the estimator's activation has a kink: positively homogeneous of
    degree 1 and not the identity (ReLU, leaky ReLU)."""
    name = getattr(_final_step(estimator), "activation", "identity")
    activation = BY_NAME.get(name)  # None: not one of ours
    return name != "identity" and activation is not None and activation.degree == 1


def check_tensor_estimator(estimator, X, y, *, float32_rtol=None):
    """Fit clones of ``estimator`` (a tensor estimator or a pipeline ending in
    one) on ``(X, y)`` and run every property check that applies: sample
    order, batch splits, memory layouts, float32 against float64, ``coef_``
    (linear estimators, not pipelines), refits of clones and persistence.

    ``float32_rtol`` is :func:`check_float32`'s tolerance; by default 1e-3,
    and 5e-2 for activations with a kink (ReLU, leaky ReLU), whose fits may
    settle on another side of a kink in float32 than in float64 (1.9 % of the
    outputs' spread seen on one machine, 40 samples)."""
    if float32_rtol is None:
        float32_rtol = 5e-2 if _has_kink(estimator) else 1e-3
    fitted = clone(estimator).fit(X, y)
    check_sample_order(fitted, X)
    check_batch_splits(fitted, X)
    check_memory_layouts(fitted, X)
    check_float32(estimator, X, y, rtol=float32_rtol)
    final = _final_step(fitted)
    if final is fitted and getattr(final, "activation", None) == "identity":
        check_coef_reproduces_predict(fitted, X)
    check_refit_after_clone(estimator, X, y)
    check_persistence(fitted, X)
