"""Throughput of the conv-pool feature kernel ``Z``.

Target: at least 50% of the rate of a numpy copy (``MemoryCopy``), counting the
bytes of ``X`` read and of ``Z`` written: the linear fits are one pass over ``X``.
``ConvPoolFeatures.track_share_of_copy`` times the kernel and the copy in turns,
so that the share compares rates measured moments apart (on a shared machine
both drift by tens of percent from minute to minute), and reads ``X`` from
memory as the copy does: S1's ``X`` (10-20 MB) would otherwise stay in a large
L3 cache between calls, as in ``track_bandwidth_GBps``.
"""

import functools
import time

import numpy as np

from sktensorcnn import kernels

from .common import geometry, inputs


class ConvPoolFeatures:
    params = (["S1", "volume32"], ["float64", "float32"])
    param_names = ["geometry", "dtype"]
    timeout = 300

    def setup(self, name, dtype):
        self.geometry = geometry(name)
        self.X = inputs(name, np.dtype(dtype))
        self.Z = np.empty((len(self.X), *self.geometry.feature_shape), dtype=dtype)
        # compile (or load) the numba kernel outside the timing: a call on a
        # few samples would take the box-products path instead
        kernels.conv_pool_features(self.X, self.geometry, out=self.Z)

    def time_features(self, name, dtype):
        kernels.conv_pool_features(self.X, self.geometry, out=self.Z)

    def features_seconds(self, X=None):
        """Seconds of one call of the kernel (on ``X``, default ``self.X``)."""
        X = self.X if X is None else X
        start = time.perf_counter()
        kernels.conv_pool_features(X, self.geometry, out=self.Z)
        return time.perf_counter() - start

    def track_bandwidth_GBps(self, name, dtype):
        # best of seven, as report.py: a millisecond call on a shared machine
        # varies by tens of percent from run to run
        best = min(self.features_seconds() for _ in range(7))
        return (self.X.nbytes + self.Z.nbytes) / best / 1e9

    track_bandwidth_GBps.unit = "GB/s"

    def track_share_of_copy(self, name, dtype):
        """The kernel's rate in percent of the copy's, each the best of seven
        calls taken in turns, the kernel's on copies of ``X`` that together
        exceed any cache (a call to wake the kernels' threads first: the copy
        leaves them idle for a tenth of a second)."""
        copies = [self.X] + [self.X.copy()
                             for _ in range(COLD_BYTES // self.X.nbytes)]
        best, copy = np.inf, 0.0
        for turn in range(7):
            copy = max(copy, copy_GBps(repeat=1))
            self.features_seconds(copies[2 * turn % len(copies)])
            seconds = self.features_seconds(copies[(2 * turn + 1) % len(copies)])
            best = min(best, seconds)
        return 100 * (self.X.nbytes + self.Z.nbytes) / best / 1e9 / copy

    track_share_of_copy.unit = "%"


#: Bytes of inputs cycled through so that each call reads ``X`` from memory.
COLD_BYTES = 2**28


@functools.cache
def _copy_arrays():
    """A 1 GiB array and room for its copy (numpy copies that large with
    streaming stores: the machine's practical memory rate)."""
    a = np.random.default_rng(0).standard_normal(2**27)
    return a, np.empty_like(a)


def copy_GBps(repeat=3):
    """Best rate of ``repeat`` numpy copies of 1 GiB, read plus written, GB/s."""
    a, b = _copy_arrays()
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - start)
    return 2 * a.nbytes / best / 1e9


class MemoryCopy:
    """The yardstick: a numpy copy of 1 GiB (the size of the volume inputs)."""

    def setup(self):
        _copy_arrays()

    def track_copy_GBps(self):
        return copy_GBps()

    track_copy_GBps.unit = "GB/s"
