"""Problems shared by the benchmarks (and by ``report.py``)."""

import numpy as np

from sktensorcnn import ConvPoolGeometry
from sktensorcnn.datasets import make_cnn_regression

N_SAMPLES = 10_000

#: name -> (sample shape, kernel size, pool size)
GEOMETRIES = {
    "S1": ((7, 5, 7), (2, 2, 2), (3, 2, 3)),
    "volume32": ((32, 32, 32), (5, 5, 5), (7, 7, 7)),  # pooled to 4^3
}


def geometry(name):
    shape, kernel, pool = GEOMETRIES[name]
    return ConvPoolGeometry.from_params(shape, kernel_size=kernel, pool_size=pool)


def inputs(name, dtype=np.float64, n=N_SAMPLES):
    shape = GEOMETRIES[name][0]
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, *shape), dtype=np.float64).astype(dtype, copy=False)


def regression_problem(name, n=N_SAMPLES):
    """Data from a Tucker teacher of ranks (2, 2, 2, 1) in the given geometry."""
    if name == "S1":
        X, y, _ = make_cnn_regression("S1", n_samples=n, random_state=0)
        return X, y
    g = geometry(name)
    rng = np.random.default_rng(1)
    X = inputs(name, n=n)
    from sktensorcnn import conv_pool_features

    w = rng.standard_normal(g.n_features)
    y = np.empty(n)
    for start in range(0, n, 1000):
        Z = conv_pool_features(X[start:start + 1000], g)
        y[start:start + 1000] = Z.reshape(len(Z), -1) @ w
    return X, y + rng.standard_normal(n)
