"""
Estimation error against sqrt(d_M / n)
======================================

[Compressed CNNs], Section 4.1: for the dense settings S1-S4 of Table 1 (independent
inputs, and time-dependent inputs from a stationary VAR(1) process) and the Tucker
settings T1-T4, the sample sizes ``n`` are chosen so that ``sqrt(d_M / n)`` is
equally spaced in ``[0.15, 0.60]``; for each ``n`` the estimation error
``||W_hat - W*||_F`` is averaged over independent training sets.  Theorems 1-2
say the error is ``O(sqrt(d_M / n))``: the curves should be straight lines
through (nearly) the origin, whatever the setting.

``d_M`` is the fitted estimator's ``model_complexity_``.  The paper averages 200
training sets per point: run with ``--full`` (or ``SKTENSORCNN_FULL_EXAMPLES=1``);
the default is a quick version with fewer settings, points and repetitions.
"""

# %%
import os
import sys

import numpy as np

from sktensorcnn import CNNRegressor, TuckerCNNRegressor
from sktensorcnn.datasets import make_cnn_regression

FULL = "--full" in sys.argv or os.environ.get("SKTENSORCNN_FULL_EXAMPLES") == "1"
N_REPEATS = 200 if FULL else 10
N_POINTS = 8 if FULL else 4
CURVES = ([(s, None) for s in ("S1", "S2", "S3", "S4")]
          + [(s, "var1") for s in ("S1", "S2", "S3", "S4")]
          + [(s, None) for s in ("T1", "T2", "T3", "T4")]) if FULL else [
    ("S1", None), ("S3", "var1"), ("T1", None)]


def estimator(teacher):
    params = dict(teacher.params)
    if "ranks" in params:
        return TuckerCNNRegressor(**params, tol=1e-8, max_iter=500)
    return CNNRegressor(**params, tol=1e-8, max_iter=500)


results = {}
for setting, dependence in CURVES:
    X, y, teacher = make_cnn_regression(setting, n_samples=50, random_state=0)
    d_M = estimator(teacher).fit(X, y).model_complexity_
    ratios = np.linspace(0.15, 0.60, N_POINTS)  # sqrt(d_M / n)
    sizes = np.round(d_M / ratios**2).astype(int)
    errors = []
    for n in sizes:
        err = []
        for repeat in range(N_REPEATS):
            # the teacher stays; inputs and noise are drawn afresh
            X, y, _ = make_cnn_regression(setting, n_samples=n,
                                          dependence=dependence, teacher=teacher,
                                          random_state=repeat + 1)
            model = estimator(teacher).fit(X, y)
            err.append(np.linalg.norm(model.weight_ - teacher.weight))
        errors.append(np.mean(err))
    slope, intercept = np.polyfit(ratios, errors, 1)
    fitted = slope * ratios + intercept
    r2 = 1 - np.sum((errors - fitted) ** 2) / np.sum((errors - np.mean(errors)) ** 2)
    label = setting + (", VAR(1)" if dependence else "")
    results[label] = (ratios, np.array(errors), slope, intercept, r2, d_M)

print(f"{'setting':<14}{'d_M':>5}{'slope':>8}{'intercept':>11}{'R^2':>7}   n")
for label, (ratios, _errors, slope, intercept, r2, d_M) in results.items():
    sizes = np.round(d_M / ratios**2).astype(int)
    print(f"{label:<14}{d_M:>5}{slope:>8.2f}{intercept:>11.3f}{r2:>7.3f}   "
          f"{sizes.min()}-{sizes.max()}")

# %%
# Figure
# ------
import matplotlib.pyplot as plt

groups = {"dense, independent": [], "dense, VAR(1)": [], "Tucker": []}
for label in results:
    key = ("Tucker" if label.startswith("T") else
           "dense, VAR(1)" if "VAR" in label else "dense, independent")
    groups[key].append(label)
groups = {k: v for k, v in groups.items() if v}
fig, axes = plt.subplots(1, len(groups), figsize=(3.5 * len(groups), 3.2))
for ax, (title, labels) in zip(np.atleast_1d(axes), groups.items()):
    for label in labels:
        ratios, errors, slope, intercept, _, _ = results[label]
        ax.plot(ratios, errors, "o", label=label)
        ax.plot(ratios, slope * ratios + intercept, "-", color="gray", lw=0.8)
    ax.set(xlabel="sqrt(d_M / n)", ylabel="||W_hat - W*||_F", title=title)
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
