"""Throughput of the conv-pool feature kernel ``Z``.

Target: at least 50% of the rate of a numpy copy (``MemoryCopy``), counting the
bytes of ``X`` read and of ``Z`` written: the linear fits are one pass over ``X``.
"""

import numpy as np

from sktensorcnn import conv_pool_features

from .common import geometry, inputs


class ConvPoolFeatures:
    params = (["S1", "volume32"], ["float64", "float32"])
    param_names = ["geometry", "dtype"]
    timeout = 300

    def setup(self, name, dtype):
        self.geometry = geometry(name)
        self.X = inputs(name, np.dtype(dtype))
        self.Z = np.empty((len(self.X), *self.geometry.feature_shape), dtype=dtype)
        conv_pool_features(self.X[:2], self.geometry)  # compile outside the timing

    def time_features(self, name, dtype):
        from sktensorcnn import kernels

        kernels.conv_pool_features(self.X, self.geometry, out=self.Z)

    def track_bandwidth_GBps(self, name, dtype):
        import time

        from sktensorcnn import kernels

        # best of seven, as report.py: a millisecond call on a shared machine
        # varies by tens of percent from run to run
        best = np.inf
        for _ in range(7):
            start = time.perf_counter()
            kernels.conv_pool_features(self.X, self.geometry, out=self.Z)
            best = min(best, time.perf_counter() - start)
        return (self.X.nbytes + self.Z.nbytes) / best / 1e9

    track_bandwidth_GBps.unit = "GB/s"


class MemoryCopy:
    """The yardstick: a numpy copy of an array the size of the volume inputs."""

    def setup(self):
        self.a = np.random.default_rng(0).standard_normal(2**27)
        self.b = np.empty_like(self.a)

    def track_copy_GBps(self):
        import time

        best = np.inf
        for _ in range(3):
            start = time.perf_counter()
            np.copyto(self.b, self.a)
            best = min(best, time.perf_counter() - start)
        return 2 * self.a.nbytes / best / 1e9

    track_copy_GBps.unit = "GB/s"
