"""
Redundant kernels: CP rank R fixed, K growing
=============================================

[Compressed CNNs], App. A.5.1: the stacked kernels have CP rank ``R`` with orthonormal
factors, split into ``K >= R`` kernels with standard normal FC weights; ``W`` is
normalized to unit Frobenius norm.  The paper trains the network of ``K`` kernels
by gradient descent and finds the estimation error growing with ``K``: the
``K - R`` extra kernels are redundant parameters (Corollary 1) that the optimizer
still has to fit.  Here the ``K``-kernel network is trained from a random start
by Adam (``solver='adam'``; plain momentum GD from a random start stalls on the
initial plateau of this factorized model within the example's budget).

The estimator's default fit with the identity activation works on ``W`` itself,
whose set ``{CP rank <= R}`` does not depend on ``K``: its error is the same for
every ``K``, and ``compact()`` turns any fit into the ``R``-kernel network.

The error is measured on the input-space weight ``coef_`` (relative to the
teacher's), which the data identify for every geometry; ``W`` itself is not
identified when kernels are wider than the pooling window, as in the paper's.

The paper uses 32x32 inputs with 16 channels, 8x8 kernels, pooling 5x5, ``R = 8``
and ``K`` in {8, 16, 24, 32}, 50 training sets per size: ``--full`` (or
``SKTENSORCNN_FULL_EXAMPLES=1``) runs that geometry with 5 training sets; the
default is a small version of the same design.
"""

# %%
import os
import sys
import warnings

import numpy as np
import tensorly as tl
from sklearn.exceptions import ConvergenceWarning

from sktensorcnn import ConvPoolGeometry, CPCNNRegressor, conv_pool_features
from sktensorcnn.features import features_to_input_space

FULL = "--full" in sys.argv or os.environ.get("SKTENSORCNN_FULL_EXAMPLES") == "1"
if FULL:
    side, channels, width, pool, R = 32, 16, 8, 5, 8
    kernel_counts, sizes, n_sets, max_iter = [8, 16, 24, 32], [1000, 2000], 5, 1000
else:
    side, channels, width, pool, R = 12, 4, 3, 3, 2
    kernel_counts, sizes, n_sets, max_iter = [2, 4, 6, 8], [150, 400], 2, 200
warnings.simplefilter("ignore", ConvergenceWarning)
geometry = ConvPoolGeometry.from_params((side, side), n_channels=channels,
                                        kernel_size=width, pool_size=pool)
layer = dict(kernel_size=width, pool_size=pool, channel_axis=1, rank=R)


def orthonormal(rng, n, r):
    return np.linalg.qr(rng.standard_normal((n, r)))[0]


def teacher(K, rng):
    """Unit-norm ``W`` ``(l, l, C, P)`` of CP-rank-``R`` stacked kernels."""
    factors = [orthonormal(rng, m, R) for m in (width, width, channels, K)]
    stacked = tl.cp_to_tensor((None, factors))  # (l, l, C, K)
    fc = rng.standard_normal((K, geometry.n_cells))
    W = stacked.reshape(-1, K) @ fc
    return (W / np.linalg.norm(W)).reshape(geometry.weight_shape)


results = {"K-kernel network, Adam": {}, "default (on W)": {}}
for n in sizes:
    for K in kernel_counts:
        errors = {name: [] for name in results}
        for trial in range(n_sets):
            rng = np.random.default_rng(100 * trial + K + n)
            W = teacher(K, rng)
            X = rng.standard_normal((n, channels, side, side))
            Z = conv_pool_features(X, geometry).reshape(n, -1)
            y = Z @ W.ravel() + 0.1 * rng.standard_normal(n)
            network = CPCNNRegressor(n_kernels=K, solver="adam", init="random",
                                     learning_rate_init=0.01, max_iter=max_iter,
                                     tol=1e-6, n_iter_no_change=50,
                                     random_state=trial, **layer)
            default = CPCNNRegressor(n_kernels=K, random_state=trial, **layer)
            coef = features_to_input_space(W.reshape(geometry.feature_shape),
                                           geometry)
            for name, model in zip(results, (network, default)):
                model.fit(X, y)
                errors[name].append(np.linalg.norm(model.coef_ - coef)
                                    / np.linalg.norm(coef))
        for name in results:
            results[name][n, K] = np.mean(errors[name])

print("relative error of the input-space weight, CP rank R =", R)
for name, table in results.items():
    print(f"\n{name}")
    print(f"{'n':>6}" + "".join(f"{'K=' + str(K):>9}" for K in kernel_counts))
    for n in sizes:
        print(f"{n:>6}" + "".join(f"{table[n, K]:>9.3f}" for K in kernel_counts))

# %%
# Figure
# ------
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(4.5, 3.2))
for name, style in zip(results, ("-o", "--s")):
    for n in sizes:
        ax.plot(kernel_counts, [results[name][n, K] for K in kernel_counts],
                style, label=f"{name}, n={n}")
ax.set(xlabel="K (kernels)", ylabel="relative error of coef_",
       title=f"CP rank R={R}")
ax.legend(fontsize=7)
fig.tight_layout()
plt.show()
