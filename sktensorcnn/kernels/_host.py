"""Samples staged in host memory: the CPU side of the backend seam.

Every backend stages the samples of a fit once (with their targets and
weights) and evaluates the network on them, whole or by mini-batches of rows,
through the same methods: :class:`HostSamples` here for the CPU kernels,
:class:`~sktensorcnn.kernels._cuda_host.DeviceSamples` for CUDA.  The
estimators only call :func:`sktensorcnn.kernels.stage_samples` and these
methods, so a new backend (a cluster, another accelerator) is one more class
with them, registered in :data:`sktensorcnn.kernels.BACKENDS`.
"""

from __future__ import annotations

import numpy as np

from ..geometry import ConvPoolGeometry


class HostSamples:
    """Samples ``(n, *input_shape)`` in host memory, with targets and weights.

    Parameters
    ----------
    X : ndarray
    geometry : ConvPoolGeometry
    y : ndarray of shape (n,), optional
    sample_weight : ndarray of shape (n,), optional
    normalize : bool, default=True
        Normalize the weights of the rows of each evaluation to sum to one
        (``False``: taken as they are).
    """

    def __init__(self, X, geometry: ConvPoolGeometry, y=None, sample_weight=None,
                 normalize: bool = True):
        n = X.shape[0]
        self.X = X
        self.geometry = geometry
        self.y = np.zeros(n) if y is None else np.asarray(y, np.float64)
        self._weights = (np.ones(n) if sample_weight is None
                         else np.asarray(sample_weight, np.float64))
        self.normalize = normalize

    def __len__(self) -> int:
        return self.X.shape[0]

    @property
    def weights(self) -> np.ndarray:
        total = float(self._weights.sum())
        if self.normalize and total > 0:
            return self._weights / total
        return self._weights

    def take(self, rows) -> HostSamples:
        """The mini-batch ``rows`` (indices into the samples)."""
        rows = np.asarray(rows, dtype=np.int64)
        view = HostSamples.__new__(HostSamples)
        view.X, view.geometry = self.X[rows], self.geometry
        view.y, view._weights = self.y[rows], self._weights[rows]
        view.normalize = self.normalize
        return view

    def forward(self, kernels, Bt, intercept, code):
        from . import _cpu_network_forward

        return _cpu_network_forward(self.X, kernels, Bt, intercept, self.geometry,
                                    code)

    def loss_grad(self, kernels, Bt, intercept, code, loss_code):
        from . import _cpu_network_loss_grad

        return _cpu_network_loss_grad(self.X, self.y, self.weights, kernels, Bt,
                                      intercept, self.geometry, code, loss_code)

    def factorized_loss_grad(self, params, Bt, intercept, code, loss_code, kind):
        from . import _cpu_factorized_loss_grad

        return _cpu_factorized_loss_grad(self.X, self.y, self.weights, params, Bt,
                                         intercept, self.geometry, code, loss_code,
                                         kind)
