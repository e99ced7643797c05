"""
Classifying handwritten digits with small tensor CNNs
=====================================================

scikit-learn's digits (1797 images of 8x8 pixels, 10 classes), split 70/30 with
stratification.  We compare CNN classifiers -- identity against ReLU activation,
dense against Tucker and CP kernels, several numbers of kernels -- with
``LogisticRegression`` on the 64 flattened pixels: held-out accuracy, number of
parameters and fit time.  The kernels are shared by the ten classes; each class
has its own fully-connected weights on the pooled maps ([Compressed CNNs], App. A.4).
"""

# %%
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from sktensorcnn import CNNClassifier, CPCNNClassifier, TuckerCNNClassifier

X, y = load_digits(return_X_y=True)
X = X.reshape(-1, 8, 8) / 16.0
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, random_state=0, stratify=y
)

small = dict(kernel_size=3, pool_size=3, random_state=0)  # 6x6 maps -> 2x2 cells
models = {
    "dense K=8, identity": CNNClassifier(n_kernels=8, **small),
    "dense K=8, relu": CNNClassifier(n_kernels=8, activation="relu", **small),
    "dense K=4, relu, pool 2": CNNClassifier(
        n_kernels=4, activation="relu", kernel_size=3, pool_size=2, random_state=0
    ),
    "Tucker (3,3,6) K=8, relu": TuckerCNNClassifier(
        ranks=(3, 3, 6), n_kernels=8, activation="relu", **small
    ),
    "CP rank 6, relu": CPCNNClassifier(rank=6, activation="relu", **small),
}

# %%
# Fit and compare
# ---------------
rows = []
start = time.perf_counter()
logistic = LogisticRegression(max_iter=2000).fit(X_train.reshape(-1, 64), y_train)
rows.append(("LogisticRegression, pixels",
             logistic.score(X_test.reshape(-1, 64), y_test),
             logistic.coef_.size + logistic.intercept_.size,
             time.perf_counter() - start))
for name, model in models.items():
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    rows.append((name, model.score(X_test, y_test), model.n_params_,
                 time.perf_counter() - start))

print(f"{'model':<28}{'accuracy':>9}{'params':>8}{'fit s':>7}")
for name, accuracy, n_params, seconds in rows:
    print(f"{name:<28}{accuracy:>9.4f}{n_params:>8}{seconds:>7.2f}")

# %%
# The learned kernels
# -------------------
# The eight 3x3 kernels of the dense ReLU network, shared by all ten classes,
# on one colour scale centred on zero.
import matplotlib.pyplot as plt

from sktensorcnn.inspection import KernelDisplay, LossCurveDisplay

KernelDisplay.from_estimator(models["dense K=8, relu"], n_columns=8)

# %%
# How the fits converged
# ----------------------
# The training objective (mean log-loss plus the penalty) after each L-BFGS
# iteration, from each fit's start.
fig, ax = plt.subplots(figsize=(6, 3.5))
for name in ("dense K=8, relu", "Tucker (3,3,6) K=8, relu", "CP rank 6, relu"):
    LossCurveDisplay.from_estimator(models[name], ax=ax, name=name)
ax.legend()
fig.tight_layout()
plt.show()
