"""
Choosing the ranks of a Tucker CNN
==================================

Data come from [Compressed CNNs]'s T1 teacher: 10x10x8 volumes, two 5x5x3 kernels whose
stack has Tucker ranks (2, 2, 2, 1).  Four ways to choose the ranks, in a pipeline
with a tensor-aware scaler:

* ``GridSearchCV`` over ``ranks`` (and over ``rank`` / ``n_kernels`` for CP and
  dense kernels, the same way);
* :class:`~sktensorcnn.model_selection.RankPathCV`: the same cross-validation
  along a path, sharing each fold's sufficient statistics and warm-starting each
  candidate from the previous one;
* BIC with [Compressed CNNs]'s model complexity ``d_M``, one fit per candidate;
* the energy of the unconstrained fit's truncated HOSVD ([Rank reduction]), one fit.
"""

# %%
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline

from sktensorcnn import CNNRegressor, CPCNNRegressor, TuckerCNNRegressor
from sktensorcnn.datasets import make_cnn_regression
from sktensorcnn.model_selection import (
    RankPathCV,
    information_criterion,
    suggest_ranks,
)
from sktensorcnn.preprocessing import TensorStandardScaler

warnings.simplefilter("ignore", ConvergenceWarning)
X, y, teacher = make_cnn_regression("T1", n_samples=800, random_state=0)
print("true ranks:", teacher.params["ranks"])

layer = dict(kernel_size=(5, 5, 3), pool_size=3, n_kernels=2, random_state=0)
candidates = [(1, 1, 1, 1), (2, 2, 2, 1), (3, 3, 3, 1), (2, 2, 2, 2)]
cv = KFold(3, shuffle=True, random_state=0)

# %%
# Cross-validation: grid search and rank path
# -------------------------------------------
start = time.perf_counter()
grid = GridSearchCV(make_pipeline(TensorStandardScaler(), TuckerCNNRegressor(**layer)),
                    {"tuckercnnregressor__ranks": candidates}, cv=cv).fit(X, y)
grid_seconds = time.perf_counter() - start
start = time.perf_counter()
path = make_pipeline(TensorStandardScaler(),
                     RankPathCV(TuckerCNNRegressor(**layer), candidates, cv=cv))
path.fit(X, y)
path_seconds = time.perf_counter() - start
print(f"{'candidate':<16}{'grid R2':>9}{'path R2':>9}")
for value, g, p in zip(candidates, grid.cv_results_["mean_test_score"],
                       path[-1].mean_scores_):
    print(f"{str(value):<16}{g:>9.4f}{p:>9.4f}")
print(f"GridSearchCV picked {grid.best_params_['tuckercnnregressor__ranks']} in "
      f"{grid_seconds:.1f} s; RankPathCV picked {path[-1].best_value_} in "
      f"{path_seconds:.1f} s")

# CP rank and number of dense kernels: the same tools, other parameter names
cp = GridSearchCV(CPCNNRegressor(kernel_size=(5, 5, 3), pool_size=3),
                  {"rank": [1, 2]}, cv=cv).fit(X, y)
dense = RankPathCV(CNNRegressor(kernel_size=(5, 5, 3), pool_size=3), [1, 2],
                   cv=cv).fit(X, y)
print(f"CP rank: {cp.best_params_['rank']}; dense kernels: {dense.best_value_}")

# %%
# Information criteria and energy
# -------------------------------
bic = [information_criterion(TuckerCNNRegressor(ranks=r, **layer).fit(X, y), X, y,
                             "bic") for r in candidates]
print("BIC picked", candidates[int(np.argmin(bic))])
print("energy 90% of the unconstrained fit:",
      suggest_ranks(TuckerCNNRegressor(**layer), X, y, energy=0.9),
      "(an upper bound: noise spreads energy over every rank)")

# %%
# Score against the model complexity
# ----------------------------------
# The cross-validated R^2 of each candidate against its ``d_M``, the dimension
# that sets the estimation error: the teacher's ranks reach the plateau with
# the fewest parameters.
import matplotlib.pyplot as plt

from sktensorcnn.inspection import RankScoreDisplay

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
RankScoreDisplay.from_cv_results(grid, x="d_M", ax=left)
left.set_title("GridSearchCV")
RankScoreDisplay.from_cv_results(path[-1], ax=right)
right.set_title("RankPathCV")
fig.tight_layout()
plt.show()
