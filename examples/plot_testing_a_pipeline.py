"""
Testing a tensor pipeline with hypothesis
=========================================

A pipeline that scales volumes and fits a Tucker CNN should behave as any
scikit-learn model does: its predictions should not depend on the order of the
samples, on how they are batched, on the memory layout of the array, and should
survive a pickle round trip; fitted on float32 volumes it should agree with the
float64 fit.  :mod:`sktensorcnn.testing` checks those properties on your own
estimator or pipeline, and gives hypothesis strategies to draw the data: here,
geometries of one to three modes with channels first or last, and samples of
them.
"""

# %%
import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline

from sktensorcnn import TuckerCNNRegressor
from sktensorcnn.preprocessing import TensorStandardScaler
from sktensorcnn.testing import (
    check_tensor_estimator,
    geometries,
    geometry_params,
    tensor_samples,
)

# %%
# One pipeline, every check
# -------------------------
# ``check_tensor_estimator`` fits clones of the pipeline and raises an
# ``AssertionError`` saying what differed if a property fails.
rng = np.random.default_rng(0)
X = rng.standard_normal((60, 8, 8, 4))
y = X[:, 2:5, 2:5, 1:3].sum(axis=(1, 2, 3)) + 0.1 * rng.standard_normal(60)
pipeline = make_pipeline(
    TensorStandardScaler(),
    TuckerCNNRegressor((2, 2, 2, 1), kernel_size=3, pool_size=2,
                       activation="tanh", random_state=0),
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    check_tensor_estimator(pipeline, X, y)
print("the pipeline passes every check")


# %%
# The same checks on drawn geometries
# -----------------------------------
# hypothesis draws the geometry (modes, sizes, kernels, strides, padding,
# pooling, channels first or last) and the samples; the test runs the
# pipeline's checks on each draw and shrinks any failure to a small case.
# The float32 check can only hold where each position's spread is well above
# float32's resolution: a position whose values differ by 1e-12 is constant to
# a float32 scaler and informative to a float64 one, so the values are drawn
# as zero or at least 1e-3 in magnitude.  ``derandomize=True`` makes the draws
# the same on every run, as a documentation page's should be.
well_resolved = st.floats(-10, 10, width=32).filter(lambda v: v == 0 or abs(v) >= 1e-3)


@settings(max_examples=5, deadline=None, derandomize=True)
@given(data=st.data(), channels_last=st.booleans())
def test_pipeline_properties(data, channels_last):
    geometry = data.draw(geometries(max_modes=3))
    params, sample_shape = geometry_params(geometry, channels_last=channels_last)
    X = data.draw(tensor_samples(sample_shape, n=12, elements=well_resolved))
    y = X.reshape(len(X), -1).sum(axis=1)
    channel_axis = params["channel_axis"]
    model = make_pipeline(
        TensorStandardScaler(channel_axis=channel_axis),
        TuckerCNNRegressor(1, **params, max_iter=20, random_state=0),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check_tensor_estimator(model, X, y, float32_rtol=1e-2)


test_pipeline_properties()
print("five drawn geometries pass")
