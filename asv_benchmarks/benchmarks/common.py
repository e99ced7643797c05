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


def regression_problem(name, teacher="tucker", n=N_SAMPLES):
    """Data from a teacher with 2 kernels: Tucker ranks (2, 2, 2, 1) or CP rank 2."""
    shape, kernel, pool = GEOMETRIES[name]
    setting = dict(input_shape=shape, kernel_size=kernel, pool_size=pool,
                   n_kernels=2)
    if teacher == "cp":
        setting["rank"] = 2
    else:
        setting["ranks"] = (2, 2, 2, 1)
    X, y, _ = make_cnn_regression(setting, n_samples=n, random_state=0)
    return X, y
