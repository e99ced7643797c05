"""Hypothesis strategies: random valid geometries with N = 1..4."""

from hypothesis import strategies as st

from sktensorcnn.geometry import ConvPoolGeometry


@st.composite
def geometries(draw, max_modes=4, channels=True):
    n_modes = draw(st.integers(1, max_modes))
    budget = {1: 14, 2: 9, 3: 7, 4: 5}[n_modes]
    sample_shape, kernel, stride, pad, pool, pool_stride = [], [], [], [], [], []
    for _ in range(n_modes):
        d = draw(st.integers(2, budget))
        padding = draw(st.integers(0, 2))
        l = draw(st.integers(1, d + padding))
        s = draw(st.integers(1, 3))
        m = (d + padding * 2 - l) // s + 1
        q = draw(st.integers(1, m))
        t = draw(st.integers(1, 3))
        sample_shape.append(d)
        kernel.append(l)
        stride.append(s)
        pad.append(padding)
        pool.append(q)
        pool_stride.append(t)
    n_channels = draw(st.sampled_from([None, 1, 2])) if channels else None
    return ConvPoolGeometry.from_params(
        tuple(sample_shape), n_channels=n_channels, kernel_size=tuple(kernel),
        stride=tuple(stride), padding=tuple(pad), pool_size=tuple(pool),
        pool_stride=tuple(pool_stride),
    )
