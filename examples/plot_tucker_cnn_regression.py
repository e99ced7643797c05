"""
Tucker CNN regression on 3-D volumes
====================================

Data are drawn from a teacher CNN of [Compressed CNNs]'s Table 1 (setting T1: 10x10x8
volumes,
5x5x3 kernels whose stack has Tucker ranks (2, 2, 2, 1), 3x3x3 average pooling).  We
fit a Tucker, a CP and a dense CNN, and a ridge regression on the flattened voxels,
and compare held-out R^2, the error of the input-space weight, the parameter count
and the fit time.  The input-space weight ``coef_`` -- what the network multiplies
each voxel by -- is the picture to look at.
"""

# %%
import time

import numpy as np
from sklearn.linear_model import RidgeCV

from sktensorcnn import CNNRegressor, CPCNNRegressor, TuckerCNNRegressor
from sktensorcnn.datasets import make_cnn_regression
from sktensorcnn.features import features_to_input_space

X, y, teacher = make_cnn_regression("T1", n_samples=3000, noise=1.0, random_state=0)
X_train, X_test, y_train, y_test = X[:1500], X[1500:], y[:1500], y[1500:]
true_coef = features_to_input_space(teacher.weight, teacher.geometry)

layer = dict(kernel_size=(5, 5, 3), pool_size=3)
models = {
    "Tucker (2,2,2,1)": TuckerCNNRegressor(ranks=(2, 2, 2, 1), n_kernels=2, **layer),
    "CP rank 2": CPCNNRegressor(rank=2, **layer),
    "dense K=2": CNNRegressor(n_kernels=2, **layer),
}

# %%
# Fit and compare
# ---------------
print(f"{'model':<18}{'test R2':>9}{'coef err':>10}{'params':>8}{'fit s':>8}")
for name, model in models.items():
    start = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    err = np.linalg.norm(model.coef_ - true_coef) / np.linalg.norm(true_coef)
    print(f"{name:<18}{model.score(X_test, y_test):>9.3f}{err:>10.3f}"
          f"{model.n_params_:>8}{seconds:>8.2f}")
ridge = RidgeCV(alphas=np.logspace(-2, 3, 6)).fit(X_train.reshape(1500, -1), y_train)
print(f"{'ridge, flat X':<18}{ridge.score(X_test.reshape(1500, -1), y_test):>9.3f}"
      f"{'-':>10}{X[0].size + 1:>8}")

# %%
# The input-space weight
# ----------------------
# Middle depth slice of ``coef_`` (what the identity network does to one input
# volume) for the teacher and each fit, each on its own colour scale centred on
# zero.
import matplotlib.pyplot as plt

from sktensorcnn.inspection import KernelDisplay

fig, axes = plt.subplots(1, len(models) + 1, figsize=(3 * (len(models) + 1), 3))
KernelDisplay([true_coef[:, :, 4]], ["teacher, slice 4"]).plot(ax=axes[:1])
for ax, (name, model) in zip(axes[1:], models.items()):
    KernelDisplay.from_estimator(model, weights="coef", ax=ax)
    ax.set_title(name, fontsize=9)
plt.show()
