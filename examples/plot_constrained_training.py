"""
Projected gradient descent with sparsity and convolutional constraints
======================================================================

[Compact nets], Section 5: one hidden layer ``y = o^T relu(W x)`` with ``o`` all ones.
Here a hidden unit is a kernel that covers the whole input (``kernel_size = p``,
``pool_size = 1``), so the hidden layer is ``K = h`` kernels.

* **Sparsity** (p = 80, h = 20, s = 8 nonzeros per row, 160 in all): PGD onto the
  160-sparse kernels (``constraint='sparse'``, l0) and onto the l1 ball of radius
  ``||W*||_1`` (``constraint='l1'``; the FC weights are held at unit norm, as
  ``o`` is fixed) against unconstrained gradient descent.
* **Convolution** (p = 81, kernel 15, stride 6, K = 4, no padding: 12 positions):
  the CNN (``kb = 60`` degrees of freedom, average pooling over the 12 positions
  standing for ``o``) against a fully-connected hidden layer of ``kr = 48``
  units.

The score is [Compact nets]'s normalized test error ``var[y - y_hat] / var[y]``.  The
networks start at random (He scaling), as in the paper's Figure 2, n from 200 to
2000; a spectral start (the fitted linear network) is shown for the CNN.  The
paper's curves average 20 trials and 2000 iterations: run with ``--full`` (or
``SKTENSORCNN_FULL_EXAMPLES=1``) for that; the default is a quick version.
"""

# %%
import os
import sys
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sktensorcnn import CNNRegressor
from sktensorcnn.network import network_outputs

FULL = "--full" in sys.argv or os.environ.get("SKTENSORCNN_FULL_EXAMPLES") == "1"
N_TRIALS = 20 if FULL else 1
MAX_ITER = 2000 if FULL else 150
SIZES = list(range(200, 2001, 200)) if FULL else [200, 1000]
N_TEST = 1000 if FULL else 500
warnings.simplefilter("ignore", ConvergenceWarning)


def normalized_error(model, X, y):
    return np.var(y - model.predict(X)) / np.var(y)


def relu_teacher(kernels, layer, p, n, rng):
    """Inputs of length ``p`` and ``y = sum_k <avgpool(relu(conv(X, A_k))), 1>``
    (with ``pool_size = 1`` a sum over hidden units, as ``o = 1``)."""
    geometry = CNNRegressor(len(kernels), **layer)._make_geometry((p,))
    X = rng.standard_normal((n, p))
    fc = np.ones((1, len(kernels), *geometry.pooled_shape))
    y = network_outputs(X, kernels, fc, np.zeros(1), geometry, "relu")[:, 0]
    return X, y


# %%
# Sparsity
# --------
p, h, s = 80, 20, 8
whole = dict(kernel_size=p, pool_size=1, activation="relu", init="random",
             max_iter=MAX_ITER, tol=1e-10)
sparse_results = {name: [] for name in ("unconstrained", "l0", "l1")}
for n in SIZES:
    errors = {name: [] for name in sparse_results}
    for trial in range(N_TRIALS):
        rng = np.random.default_rng(1000 * trial + n)
        W = np.zeros((h, p))
        for row in W:
            support = rng.choice(p, s, replace=False)
            row[support] = rng.normal(0, np.sqrt(p / (h * s)), s)
        X, y = relu_teacher(W, whole, p, n, rng)
        X_test, y_test = relu_teacher(W, whole, p, N_TEST, rng)
        models = {
            "unconstrained": CNNRegressor(h, solver="pgd", **whole),
            "l0": CNNRegressor(h, constraint="sparse", sparsity=s * h, **whole),
            "l1": CNNRegressor(h, constraint="l1", radius=np.abs(W).sum(), **whole),
        }
        for name, model in models.items():
            model.set_params(random_state=trial).fit(X, y)
            errors[name].append(normalized_error(model, X_test, y_test))
    for name in sparse_results:
        sparse_results[name].append(np.mean(errors[name]))

print("sparsity: normalized test error var[y - y_hat] / var[y]")
print(f"{'n':>6}" + "".join(f"{name:>15}" for name in sparse_results))
for i, n in enumerate(SIZES):
    print(f"{n:>6}" + "".join(f"{sparse_results[name][i]:>15.3f}"
                              for name in sparse_results))

# %%
# Convolutional constraint
# ------------------------
p, width, stride, k = 81, 15, 6, 4
r = (p - width) // stride + 1  # 12 positions
conv = dict(kernel_size=width, stride=stride, pool_size=r, activation="relu",
            max_iter=MAX_ITER, tol=1e-10)
dense = dict(kernel_size=p, pool_size=1, activation="relu", max_iter=MAX_ITER,
             tol=1e-10)
conv_results = {name: [] for name in ("fully connected", "CNN, random",
                                      "CNN, spectral")}
for n in SIZES:
    errors = {name: [] for name in conv_results}
    for trial in range(N_TRIALS):
        rng = np.random.default_rng(7 + 1000 * trial + n)
        kernels = rng.normal(0, np.sqrt(p / (k * r * width)), (k, width))
        X, y = relu_teacher(kernels, conv, p, n, rng)
        X_test, y_test = relu_teacher(kernels, conv, p, N_TEST, rng)
        models = {
            "fully connected": CNNRegressor(k * r, solver="pgd", init="random",
                                            **dense),
            "CNN, random": CNNRegressor(k, solver="pgd", init="random", **conv),
            "CNN, spectral": CNNRegressor(k, solver="pgd", **conv),
        }
        for name, model in models.items():
            model.set_params(random_state=trial).fit(X, y)
            errors[name].append(normalized_error(model, X_test, y_test))
    for name in conv_results:
        conv_results[name].append(np.mean(errors[name]))

print("\nconvolution: normalized test error")
print(f"{'n':>6}" + "".join(f"{name:>17}" for name in conv_results))
for i, n in enumerate(SIZES):
    print(f"{n:>6}" + "".join(f"{conv_results[name][i]:>17.3f}"
                              for name in conv_results))

# %%
# Figure
# ------
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for ax, results, title in ((axes[0], sparse_results, "sparsity (p=80, h=20)"),
                           (axes[1], conv_results, "convolution (p=81, k=4)")):
    for name, curve in results.items():
        ax.plot(SIZES, curve, marker="o", label=name)
    ax.set(xlabel="n", ylabel="var[y - y_hat] / var[y]", title=title)
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
