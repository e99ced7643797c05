"""The main job: fit the estimators on the paper's synthetic settings and on
scikit-learn's digits, and report.

Run ``python -m sktensorcnn.demo`` (or ``sktensorcnn-demo``).  For each setting of
[Compressed CNNs], Table 1, data are drawn from a teacher network; each estimator is
fitted
on a training set and scored on a held-out set.  Printed per fit: held-out R^2, the
relative estimation error of the network's weight in input space
``||coef_ - W_X|| / ||W_X||`` (always identifiable, unlike ``W`` itself when
``l_j p_j > d_j``, as in T3), the fit
time, the network's parameter count and ``d_M``.  A ridge regression on the
flattened inputs is the reference a user would otherwise reach for.

Then the classifiers on scikit-learn's digits (8x8 images, 10 classes; 30% held
out): held-out accuracy, parameter count and fit time, against
``LogisticRegression`` on the 64 pixels.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import train_test_split

from . import (
    CNNClassifier,
    CNNRegressor,
    CPCNNClassifier,
    CPCNNRegressor,
    TuckerCNNClassifier,
    TuckerCNNRegressor,
)
from .datasets import make_cnn_regression
from .features import features_to_input_space


def _estimators(params):
    geometry = dict(kernel_size=params["kernel_size"], pool_size=params["pool_size"])
    K = params["n_kernels"]
    yield "CNNRegressor", CNNRegressor(n_kernels=K, **geometry)
    if "ranks" in params:
        yield "TuckerCNNRegressor", TuckerCNNRegressor(
            ranks=params["ranks"], n_kernels=K, **geometry
        )
        yield "CPCNNRegressor", CPCNNRegressor(rank=2, n_kernels=K, **geometry)


def run(settings=("S1", "S2", "S3", "S4", "T1", "T3"), n_train=2000, n_test=2000,
        noise=1.0, random_state=0, file=None) -> list[dict]:
    """Fit and score every estimator on each setting; print and return the rows."""
    rows = []
    header = (f"{'setting':<8}{'estimator':<20}{'n_train':>8}{'test R2':>9}"
              f"{'W_X err':>9}{'fit s':>8}{'params':>8}{'d_M':>6}")
    print(header, file=file)
    print("-" * len(header), file=file)
    for setting in settings:
        X, y, teacher = make_cnn_regression(
            setting, n_samples=n_train + n_test, noise=noise,
            random_state=random_state,
        )
        true_coef = features_to_input_space(teacher.weight, teacher.geometry)
        X_train, X_test, y_train, y_test = (
            X[:n_train], X[n_train:], y[:n_train], y[n_train:]
        )
        for name, est in _estimators(teacher.params):
            start = time.perf_counter()
            est.fit(X_train, y_train)
            seconds = time.perf_counter() - start
            error = np.linalg.norm(est.coef_ - true_coef) / np.linalg.norm(true_coef)
            row = dict(setting=setting, estimator=name, n_train=n_train,
                       r2=est.score(X_test, y_test), weight_error=error,
                       seconds=seconds, n_params=est.n_params_,
                       d_M=est.model_complexity_)
            rows.append(row)
            print(f"{setting:<8}{name:<20}{n_train:>8}{row['r2']:>9.4f}"
                  f"{error:>9.4f}{seconds:>8.3f}{row['n_params']:>8}{row['d_M']:>6}",
                  file=file)
        start = time.perf_counter()
        ridge = RidgeCV(alphas=np.logspace(-3, 3, 7)).fit(
            X_train.reshape(n_train, -1), y_train
        )
        seconds = time.perf_counter() - start
        r2 = ridge.score(X_test.reshape(n_test, -1), y_test)
        rows.append(dict(setting=setting, estimator="RidgeCV (flat X)",
                         n_train=n_train, r2=r2, weight_error=np.nan,
                         seconds=seconds, n_params=X[0].size + 1, d_M=X[0].size))
        print(f"{setting:<8}{'RidgeCV (flat X)':<20}{n_train:>8}{r2:>9.4f}"
              f"{'-':>9}{seconds:>8.3f}{X[0].size + 1:>8}{'-':>6}", file=file)
    return rows


def run_digits(random_state=0, file=None) -> list[dict]:
    """Fit the classifiers on the digits; print and return the rows."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X.reshape(-1, 8, 8) / 16.0, y, test_size=0.3, random_state=random_state,
        stratify=y,
    )
    layer = dict(kernel_size=3, pool_size=3, random_state=random_state)
    models = {
        "CNNClassifier K=8 identity": CNNClassifier(n_kernels=8, **layer),
        "CNNClassifier K=8 relu": CNNClassifier(n_kernels=8, activation="relu",
                                                **layer),
        "TuckerCNNClassifier relu": TuckerCNNClassifier(
            ranks=(3, 3, 6), n_kernels=8, activation="relu", **layer),
        "CPCNNClassifier R=6 relu": CPCNNClassifier(rank=6, activation="relu",
                                                    **layer),
    }
    header = f"{'estimator':<30}{'accuracy':>9}{'params':>8}{'fit s':>8}"
    print(header, file=file)
    print("-" * len(header), file=file)
    rows = []
    for name, est in models.items():
        start = time.perf_counter()
        est.fit(X_train, y_train)
        rows.append(dict(estimator=name, accuracy=est.score(X_test, y_test),
                         n_params=est.n_params_,
                         seconds=time.perf_counter() - start))
    start = time.perf_counter()
    logistic = LogisticRegression(max_iter=2000).fit(X_train.reshape(-1, 64), y_train)
    rows.append(dict(estimator="LogisticRegression (pixels)",
                     accuracy=logistic.score(X_test.reshape(-1, 64), y_test),
                     n_params=logistic.coef_.size + logistic.intercept_.size,
                     seconds=time.perf_counter() - start))
    for row in rows:
        print(f"{row['estimator']:<30}{row['accuracy']:>9.4f}{row['n_params']:>8}"
              f"{row['seconds']:>8.3f}", file=file)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument("--settings", nargs="+",
                        default=["S1", "S2", "S3", "S4", "T1", "T3"])
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    print("sktensorcnn: linear CNNs fitted on data from the teacher networks of "
          "Table 1 of 'Rethinking Compressed CNNs from a Statistical Perspective'\n")
    run(args.settings, args.n_train, args.n_test, args.noise, args.random_state)
    print("\nW_X err: ||coef_ - W_X|| / ||W_X||, the estimation error of the weight "
          "in input space;\nd_M: model complexity (Thm 1-2 of the same paper). "
          "Fit times include numba compilation on the first fit of a fresh install.")
    print("\nsktensorcnn: classifiers on scikit-learn's digits (8x8, 10 classes, "
          "30% held out)\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        run_digits(args.random_state)


if __name__ == "__main__":
    main()
