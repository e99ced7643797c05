import numpy as np
import pytest

from sktensorcnn.geometry import ConvPoolGeometry


def test_derived_sizes_paper_setting():
    g = ConvPoolGeometry.from_params((7, 5, 7), kernel_size=2, pool_size=(3, 2, 3))
    assert g.conv_shape == (6, 4, 6)
    assert g.pooled_shape == (2, 2, 2)
    assert g.n_kernel_entries == 8 and g.n_cells == 8
    assert g.feature_shape == (2, 2, 2, 2, 2, 2)
    assert g.weight_shape == (2, 2, 2, 8)
    assert g.n_features == 64


def test_floor_mode_drops_incomplete_windows():
    g = ConvPoolGeometry.from_params((10,), kernel_size=3, pool_size=3)
    assert g.conv_shape == (8,)
    assert g.pooled_shape == (2,)  # outputs 6 and 7 are dropped


def test_channels_and_strides():
    g = ConvPoolGeometry.from_params(
        (9, 8), n_channels=3, kernel_size=(3, 2), stride=(2, 1), pool_size=2,
        pool_stride=1,
    )
    assert g.input_shape == (3, 9, 8)
    assert g.kernel_shape == (3, 3, 2)
    assert g.kernel_modes == (3, 2, 3)
    assert g.conv_shape == (4, 7)
    assert g.pooled_shape == (3, 6)
    assert g.feature_shape == (3, 2, 3, 3, 6)


@pytest.mark.parametrize("d,l,s", [(7, 3, 1), (8, 3, 2), (5, 4, 3), (1, 1, 1)])
def test_same_padding_keeps_ceil_size(d, l, s):
    g = ConvPoolGeometry.from_params((d,), kernel_size=l, stride=s, padding="same",
                                     pool_size=1)
    assert g.conv_shape == (-(-d // s),)


def test_int_padding_is_symmetric():
    g = ConvPoolGeometry.from_params((5, 5), kernel_size=3, padding=(1, 0),
                                     pool_size=1)
    assert g.padding == ((1, 1), (0, 0))
    assert g.conv_shape == (5, 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kernel_size=6), r"kernel_size\[0\]=6 is larger than the padded input"),
        (dict(kernel_size=(2, 6)), r"kernel_size\[1\]=6"),
        (dict(kernel_size=3, pool_size=4), r"pool_size\[0\]=4 does not fit the 3"),
        (dict(kernel_size=(2, 2, 2)), r"kernel_size=.* has 3 entries"),
        (dict(kernel_size=0), r"kernel_size=\(0, 0\).*>= 1"),
        (dict(padding="full"), r"padding='full' is not understood"),
        (dict(padding=-1), r"padding=.*>= 0"),
        (dict(stride=(1, 0)), r"stride=.*>= 1"),
    ],
)
def test_errors_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConvPoolGeometry.from_params((5, 5), **kwargs)


def test_type_errors():
    with pytest.raises(TypeError, match="kernel_size must be an int or a tuple"):
        ConvPoolGeometry.from_params((5, 5), kernel_size=2.5)


def test_mode_count_limits():
    with pytest.raises(ValueError, match="between 1 and 4"):
        ConvPoolGeometry.from_params((3,) * 5, kernel_size=1, pool_size=1)


def test_positioning_matrices_rows_and_identifiability():
    g = ConvPoolGeometry.from_params((10, 10, 8), kernel_size=(5, 5, 3), pool_size=3)
    UF = g.positioning_matrices()
    assert [U.shape for U in UF] == [(10, 5, 2), (10, 5, 2), (8, 3, 2)]
    # each (a, r) column averages q_j inputs
    assert np.allclose(UF[0].sum(axis=0), 1.0)
    # kernel longer than the pooling stride: offset a in cell r+1 reads the same
    # inputs as offset a+3 in cell r, so W is not identifiable (coef_ still is)
    assert not g.identifiable
    s1 = ConvPoolGeometry.from_params((7, 5, 7), kernel_size=2, pool_size=(3, 2, 3))
    assert s1.identifiable
