"""Geometry of a convolution -> average pooling layer on N-d inputs.

One sample is a tensor of spatial shape ``(d_1, ..., d_N)``, optionally with ``C``
input channels in front: ``(C, d_1, ..., d_N)``.  :class:`ConvPoolGeometry` holds
the kernel size, convolution stride, zero padding, pooling window and pooling stride,
validates them against the sample shape and derives every size the rest of the
library needs:

* ``conv_shape`` ``(m_1, ..., m_N)``: convolution outputs per mode,
  ``m_j = floor((d_j + pad_j - l_j) / s_j) + 1``;
* ``pooled_shape`` ``(p_1, ..., p_N)``: pooling cells per mode,
  ``p_j = floor((m_j - q_j) / t_j) + 1``.  Convolution outputs that do not fill a
  whole pooling window are dropped (floor mode, as in PyTorch's ``AvgPool``);
* ``feature_shape`` ``(l_1, ..., l_N, [C], p_1, ..., p_N)``: the shape of one
  sample's conv-pool feature tensor ``Z`` (see :mod:`sktensorcnn.features`);
* ``weight_shape`` ``(l_1, ..., l_N, [C], P)``: the shape of the composite weight
  ``W = sum_k A_k (outer) B_k`` that the linear network applies to ``Z``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, Options, StrOptions

__all__ = ["ConvPoolGeometry", "MAX_SPATIAL_MODES"]

#: The feature kernels are compiled for at most this many spatial modes.
MAX_SPATIAL_MODES = 4


def _per_mode(value, n_modes: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """Broadcast an int or check a per-mode tuple of ints."""
    if isinstance(value, Integral) and not isinstance(value, bool):
        values = (int(value),) * n_modes
    elif isinstance(value, (tuple, list)) and all(
        isinstance(v, Integral) and not isinstance(v, bool) for v in value
    ):
        values = tuple(int(v) for v in value)
        if len(values) != n_modes:
            raise ValueError(
                f"{name}={tuple(value)!r} has {len(values)} entries but the samples "
                f"have {n_modes} spatial mode(s); give one int per mode or one int."
            )
    else:
        raise TypeError(
            f"{name} must be an int or a tuple of {n_modes} ints, got {value!r}."
        )
    if any(v < minimum for v in values):
        raise ValueError(f"{name}={values!r}: every entry must be >= {minimum}.")
    return values


def _padding(padding, sample_shape, kernel_size, stride) -> tuple[tuple[int, int], ...]:
    """Resolve ``padding`` to ``(before, after)`` zero counts per mode."""
    n_modes = len(sample_shape)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n_modes
        if padding == "same":
            # TensorFlow's rule: ceil(d / s) outputs, extra zero at the end if odd.
            pads = []
            for d, l, s in zip(sample_shape, kernel_size, stride):
                total = max((-(-d // s) - 1) * s + l - d, 0)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError(
            f"padding={padding!r} is not understood; use 'valid', 'same', an int or a "
            "tuple of ints (zeros added on both sides of each spatial mode)."
        )
    pads = _per_mode(padding, n_modes, "padding", minimum=0)
    return tuple((p, p) for p in pads)



_per_mode_int = [Interval(Integral, 1, None, closed="left"), tuple, list]

#: scikit-learn ``_parameter_constraints`` of the layer parameters, shared by the
#: estimators and :class:`~sktensorcnn.preprocessing.ConvPoolFeatures`; the values
#: themselves are checked against the sample shape by ``from_params``.
LAYER_PARAMETER_CONSTRAINTS: dict = {
    "kernel_size": list(_per_mode_int),
    "stride": list(_per_mode_int),
    "padding": [StrOptions({"valid", "same"}),
                Interval(Integral, 0, None, closed="left"), tuple, list],
    "pool_size": list(_per_mode_int),
    "pool_stride": [*_per_mode_int, None],
    "channel_axis": [Options(Integral, {1, -1}), None],
}

@dataclass(frozen=True)
class ConvPoolGeometry:
    """Validated shapes of a convolution -> average pooling layer.

    Build it with :meth:`from_params`, which accepts ints or per-mode tuples.

    Attributes
    ----------
    sample_shape : tuple of int
        Spatial shape ``(d_1, ..., d_N)`` of one sample, without the channel axis.
    n_channels : int or None
        Number of input channels, or ``None`` when the samples have no channel axis.
    kernel_size, stride, pool_size, pool_stride : tuple of int
        Per spatial mode.
    padding : tuple of (int, int)
        Zeros added before and after each spatial mode.
    """

    sample_shape: tuple[int, ...]
    n_channels: int | None
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    pool_size: tuple[int, ...]
    pool_stride: tuple[int, ...]

    @classmethod
    def from_params(
        cls,
        sample_shape,
        *,
        n_channels: int | None = None,
        kernel_size=3,
        stride=1,
        padding="valid",
        pool_size=2,
        pool_stride=None,
    ) -> ConvPoolGeometry:
        """Validate layer parameters against a sample shape.

        Parameters
        ----------
        sample_shape : tuple of int
            Spatial shape of one sample, ``(d_1, ..., d_N)`` with ``1 <= N <= 4``.
        n_channels : int or None, default=None
            Number of input channels (the kernels span all of them), or ``None``.
        kernel_size : int or tuple of int, default=3
            Kernel extent ``l_j`` per spatial mode.
        stride : int or tuple of int, default=1
            Convolution stride per spatial mode.
        padding : {'valid', 'same'} or int or tuple of int, default='valid'
            Zero padding: none, enough for ``ceil(d_j / stride_j)`` outputs (extra
            zero after, as in TensorFlow), or that many zeros on both sides.
        pool_size : int or tuple of int, default=2
            Average-pooling window ``q_j`` per spatial mode.
        pool_stride : int or tuple of int or None, default=None
            Pooling stride; ``None`` means ``pool_size`` (non-overlapping windows).

        Returns
        -------
        ConvPoolGeometry
        """
        sample_shape = tuple(int(d) for d in sample_shape)
        n_modes = len(sample_shape)
        if not 1 <= n_modes <= MAX_SPATIAL_MODES:
            raise ValueError(
                f"samples have {n_modes} spatial modes (shape {sample_shape}); "
                f"between 1 and {MAX_SPATIAL_MODES} are supported."
            )
        if n_channels is not None and n_channels < 1:
            raise ValueError(f"n_channels={n_channels} must be >= 1 or None.")
        kernel_size = _per_mode(kernel_size, n_modes, "kernel_size")
        stride = _per_mode(stride, n_modes, "stride")
        padding = _padding(padding, sample_shape, kernel_size, stride)
        pool_size = _per_mode(pool_size, n_modes, "pool_size")
        pool_stride = (
            pool_size
            if pool_stride is None
            else _per_mode(pool_stride, n_modes, "pool_stride")
        )
        geometry = cls(
            sample_shape, n_channels, kernel_size, stride, padding, pool_size,
            pool_stride,
        )
        geometry._check()
        return geometry

    def _check(self) -> None:
        for j, (D, l) in enumerate(zip(self.padded_shape, self.kernel_size)):
            if l > D:
                raise ValueError(
                    f"kernel_size[{j}]={l} is larger than the padded input along "
                    f"spatial mode {j} (size {D}, input {self.sample_shape[j]}); use "
                    f"kernel_size[{j}] <= {D} or more padding."
                )
        conv = self.conv_shape
        for j, (m, q) in enumerate(zip(conv, self.pool_size)):
            if q > m:
                raise ValueError(
                    f"pool_size[{j}]={q} does not fit the {m} convolution output(s) "
                    f"along spatial mode {j} (input {self.sample_shape[j]}, kernel "
                    f"{self.kernel_size[j]}, stride {self.stride[j]}); use "
                    f"pool_size[{j}] <= {m}."
                )

    # ----------------------------------------------------------------- sizes
    @property
    def n_modes(self) -> int:
        """Number of spatial modes ``N``."""
        return len(self.sample_shape)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample as given to the estimators (channel axis first)."""
        if self.n_channels is None:
            return self.sample_shape
        return (self.n_channels, *self.sample_shape)

    @property
    def padded_shape(self) -> tuple[int, ...]:
        """Spatial shape after zero padding."""
        pads = self.padding
        return tuple(d + lo + hi for d, (lo, hi) in zip(self.sample_shape, pads))

    @property
    def conv_shape(self) -> tuple[int, ...]:
        """Convolution output shape ``(m_1, ..., m_N)``."""
        return tuple(
            (D - l) // s + 1
            for D, l, s in zip(self.padded_shape, self.kernel_size, self.stride)
        )

    @property
    def pooled_shape(self) -> tuple[int, ...]:
        """Pooled output shape ``(p_1, ..., p_N)`` (floor mode)."""
        return tuple(
            (m - q) // t + 1
            for m, q, t in zip(self.conv_shape, self.pool_size, self.pool_stride)
        )

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        """Shape of one kernel ``A_k``: ``([C], l_1, ..., l_N)``."""
        if self.n_channels is None:
            return self.kernel_size
        return (self.n_channels, *self.kernel_size)

    @property
    def kernel_modes(self) -> tuple[int, ...]:
        """Sizes of the kernel modes in weight order: ``(l_1, ..., l_N, [C])``."""
        if self.n_channels is None:
            return self.kernel_size
        return (*self.kernel_size, self.n_channels)

    @property
    def n_kernel_entries(self) -> int:
        """``L``: entries of one kernel (``prod l_j`` times ``C``)."""
        return int(np.prod(self.kernel_modes))

    @property
    def n_cells(self) -> int:
        """``P = prod p_j``: pooled cells, the size of one FC weight ``B_k``."""
        return int(np.prod(self.pooled_shape))

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Shape of one sample's feature tensor: ``(l_1..l_N, [C], p_1..p_N)``."""
        return (*self.kernel_modes, *self.pooled_shape)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """Shape of the composite weight ``W``: ``(l_1..l_N, [C], P)``."""
        return (*self.kernel_modes, self.n_cells)

    @property
    def n_features(self) -> int:
        """``L * P``: entries of one sample's feature tensor."""
        return self.n_kernel_entries * self.n_cells

    @property
    def identifiable(self) -> bool:
        """Whether distinct weights ``W`` give distinct predictions.

        True when every positioning matrix ``UF_j`` (``d_j x l_j p_j``) has full
        column rank.  [Compressed CNNs] (Sec. 2.2) says ``l_j p_j <= d_j`` suffices; it
        does
        not: with a kernel longer than the pooling stride (in input steps), offset
        ``a`` in cell ``r + 1`` reads the same inputs as offset ``a + t s`` in cell
        ``r``, and the two columns coincide.  When False, some directions of ``W``
        are invisible in the data: predictions and the input-space weight
        ``coef_`` are still well defined, ``W`` itself is not.
        """
        return all(
            np.linalg.matrix_rank(U.reshape(U.shape[0], -1)) == U[0].size
            for U in self.positioning_matrices()
        )

    # ------------------------------------------------------------ positions
    @cached_property
    def box_bounds(self) -> tuple[np.ndarray, ...]:
        """First and last padded input position feeding each feature, per mode.

        Returns
        -------
        tuple of ndarray
            One int array of shape ``(l_j, p_j, 2)`` per spatial mode:
            ``[a, r, 0]`` is the first and ``[a, r, 1]`` the last padded position
            ``t * stride + a`` over the convolution outputs ``t`` of pooling cell
            ``r``; the positions in between are spaced by the stride.
        """
        bounds = []
        for l, s, p, q, t in zip(
            self.kernel_size, self.stride, self.pooled_shape, self.pool_size,
            self.pool_stride,
        ):
            a = np.arange(l)[:, None]
            first = a + s * t * np.arange(p)[None, :]
            bounds.append(np.stack([first, first + s * (q - 1)], axis=-1))
        return tuple(bounds)

    def pooling_matrices(self) -> list[np.ndarray]:
        """Average pooling along each mode as a matrix ``(p_j, m_j)``.

        ``pool(H) = H x_1 Pool_1 ... x_N Pool_N``; its transpose spreads a weight on
        the pooled cells back to the convolution outputs.
        """
        mats = []
        for m, p, q, t in zip(
            self.conv_shape, self.pooled_shape, self.pool_size, self.pool_stride
        ):
            start = t * np.arange(p)[:, None]
            pos = np.arange(m)[None, :]
            mats.append(((pos >= start) & (pos < start + q)) / q)
        return mats

    def positioning_matrices(self) -> list[np.ndarray]:
        """The averaging-positioning tensors ``UF_j`` of the paper, per mode.

        Returns
        -------
        list of ndarray
            ``UF[j]`` has shape ``(d_j, l_j, p_j)`` and
            ``UF[j][x, a, r] = 1 / q_j`` when input position ``x`` meets kernel
            offset ``a`` at a convolution output inside pooling cell ``r``, so that
            ``Z = X x_1 UF_1^T ... x_N UF_N^T``.
        """
        mats = []
        for j, (lo_hi, d, q, s) in enumerate(
            zip(self.padding, self.sample_shape, self.pool_size, self.stride)
        ):
            first, last = self.box_bounds[j][..., 0], self.box_bounds[j][..., 1]
            x = np.arange(d)[:, None, None] + lo_hi[0]
            hit = (x >= first) & (x <= last) & ((x - first) % s == 0)
            mats.append(hit / q)
        return mats
