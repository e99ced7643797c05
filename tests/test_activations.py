"""The activation registry: each scalar form (what the kernels compile) against
its numpy reference, each reference's slope against finite differences of its
value, and codes outside the registry."""

import numpy as np
import pytest
from numba import njit

from sktensorcnn.activations import ACTIVATIONS, REGISTRY, activation_code
from sktensorcnn.kernels._cpu_pointwise import activate, activate_rows

GRID = np.concatenate([np.linspace(-6, 6, 241), [-750.0, -40.0, -1e-9, 0.0, 1e-9,
                                                  40.0, 750.0]])


@njit
def _activate_all(code, y):
    value, slope = np.empty_like(y), np.empty_like(y)
    for j in range(y.shape[0]):
        value[j], slope[j] = activate(code, y[j])
    return value, slope


@njit
def _activate_rows(code, y):
    v = np.empty_like(y)
    activate_rows(code, y, v)
    return v, y


@pytest.mark.parametrize("activation", [a.name for a in REGISTRY])
def test_compiled_activation_matches_its_numpy_reference(activation):
    value, slope = ACTIVATIONS[activation]
    with np.errstate(over="ignore"):
        expected = value(GRID), slope(GRID)
    code = activation_code(activation)
    for got in (_activate_all(code, GRID), _activate_rows(code, GRID.copy())):
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-12, atol=1e-14)
        assert np.all(np.isfinite(got[0])) and np.all(np.isfinite(got[1]))


@pytest.mark.parametrize("activation", [a.name for a in REGISTRY])
def test_reference_slope_is_the_derivative_of_the_value(activation):
    value, slope = ACTIVATIONS[activation]
    y = np.linspace(-4, 4, 80) + 0.013  # off the kinks at 0
    eps = 1e-6
    fd = (value(y + eps) - value(y - eps)) / (2 * eps)
    np.testing.assert_allclose(slope(y), fd, rtol=1e-6, atol=1e-8)


def test_leaky_relu_keeps_a_slope_below_zero():
    value, slope = ACTIVATIONS["leaky_relu"]
    np.testing.assert_allclose(value(np.array([-2.0, 3.0])), [-0.02, 3.0])
    np.testing.assert_allclose(slope(np.array([-2.0, 3.0])), [0.01, 1.0])


def test_a_code_outside_the_registry_is_nan_not_another_activation():
    for got in (_activate_all(len(REGISTRY), GRID[:5]),
                _activate_rows(len(REGISTRY), GRID[:5].copy())):
        assert np.all(np.isnan(got[0])) and np.all(np.isnan(got[1]))
    with pytest.raises(ValueError, match="activation='swish' is unknown"):
        activation_code("swish")


@pytest.mark.parametrize("activation", [a for a in REGISTRY if a.degree is not None],
                         ids=lambda a: a.name)
def test_declared_homogeneity_holds(activation):
    """The fits move scale between kernels and FC weights by this degree."""
    z = np.linspace(-3, 3, 61)
    for c in (0.3, 2.5):
        np.testing.assert_allclose(activation.value(c * z),
                                   c**activation.degree * activation.value(z),
                                   rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", [a for a in REGISTRY if a.degree is None],
                         ids=lambda a: a.name)
def test_undeclared_homogeneity_really_fails(activation):
    z = np.linspace(-3, 3, 61)
    assert not any(np.allclose(activation.value(2.0 * z), 2.0**d * activation.value(z))
                   for d in (1, 2))
