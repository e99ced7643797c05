"""Fit time of the linear estimators at n = 10^4 (after numba compilation).

Target (foundation issue): ``TuckerCNNRegressor`` on S1 in under 0.5 s.  Teachers
have 2 kernels; the dense and Tucker fits see a Tucker teacher of ranks
(2, 2, 2, 1), the CP fit a CP teacher of rank 2.
"""

from sktensorcnn import CNNRegressor, CPCNNRegressor, TuckerCNNRegressor

from .common import GEOMETRIES, regression_problem

ESTIMATORS = {
    "tucker": lambda kernel, pool: TuckerCNNRegressor(
        ranks=(2, 2, 2, 1), kernel_size=kernel, pool_size=pool, random_state=0),
    "cp": lambda kernel, pool: CPCNNRegressor(
        rank=2, kernel_size=kernel, pool_size=pool, random_state=0),
    "dense": lambda kernel, pool: CNNRegressor(
        n_kernels=1, kernel_size=kernel, pool_size=pool, random_state=0),
}


class FitLinear:
    params = (["S1", "volume32"], list(ESTIMATORS))
    param_names = ["geometry", "estimator"]
    timeout = 600

    def setup(self, name, estimator):
        # each estimator on data from a teacher of its own kind
        self.X, self.y = regression_problem(name, "cp" if estimator == "cp" else
                                            "tucker")
        _, kernel, pool = GEOMETRIES[name]
        self.make = lambda: ESTIMATORS[estimator](kernel, pool)
        self.make().fit(self.X[:50], self.y[:50])  # compile outside the timing

    def time_fit(self, name, estimator):
        self.make().fit(self.X, self.y)
