"""Where the linear baseline's lead comes from, on the sets where our defaults
trail it (JapaneseVowels, OSULeaf, ACSF1 in the real-data table).

With the identity activation our CNN is a linear model on the conv-pool
features ``Z`` of the chosen geometry, with a rank-``K`` weight.  This script
fits ``LogisticRegression`` (``C=1`` unless stated) on a ladder of inputs, from
the baseline of the real-data table down to the CNN's own feature space, so
that each step's cost in test accuracy shows:

1. the standardized, flattened inputs (the table's baseline: ``StandardScaler``
   gives every position its own mean and scale);
2. the flattened inputs scaled as the CNN sees them (one mean and scale, or one
   per channel: ``TensorStandardScaler``);
3. those inputs averaged over windows of the pool size along the first mode;
4. the conv-pool features ``Z`` of the table's geometry, ``C`` in 0.1, 1, 10
   (the identity network's feature space, without its rank constraint);
5. our ``CNNClassifier`` with its defaults and that geometry.

Run ``python asv_benchmarks/real_data.py --fetch`` once first; then::

    python asv_benchmarks/linear_limits.py                # the three sets
    python asv_benchmarks/linear_limits.py --write-docs   # store the table
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from real_data import DATASETS  # noqa: E402
from real_data_suite import SETTINGS, write_docs  # noqa: E402

from sktensorcnn import CNNClassifier  # noqa: E402
from sktensorcnn.preprocessing import (  # noqa: E402
    ConvPoolFeatures,
    TensorStandardScaler,
)

BEGIN, END = ".. linear-limits-begin", ".. linear-limits-end"
SETS = ("japanese_vowels", "osuleaf", "acsf1")


def _pooled(X, channel_axis, pool):
    """Flattened averages over ``pool`` consecutive positions of the first
    sample mode (the time axis of these sets)."""
    if channel_axis is not None:
        X = np.moveaxis(X, channel_axis, -1)
    T = X.shape[1] // pool * pool
    X = X[:, :T].reshape(len(X), T // pool, pool, *X.shape[2:]).mean(axis=2)
    return X.reshape(len(X), -1)


def ladder(name: str) -> list[tuple[str, float]]:
    """Test accuracies of the five steps above on one set."""
    data = DATASETS[name]()
    setting = SETTINGS[name]
    Xtr, ytr, Xte, yte = data.X_train, data.y_train, data.X_test, data.y_test
    axis = data.channel_axis
    pool = int(np.atleast_1d(setting.pool_size)[0])
    scaler = TensorStandardScaler(channel_axis=axis).fit(Xtr)
    Str, Ste = scaler.transform(Xtr), scaler.transform(Xte)
    logistic = LogisticRegression(max_iter=5000)
    rows = []

    def score(label, model, A, B):
        model.fit(A, ytr)
        rows.append((label, float(model.score(B, yte))))
        print(f"  {label:<58} {rows[-1][1]:.3f}", flush=True)

    print(f"{name}: train {Xtr.shape}, geometry {setting.kernel_size} / "
          f"{setting.pool_size} / {setting.n_kernels} kernels", flush=True)
    score("logistic, inputs standardized per position (baseline)",
          make_pipeline(StandardScaler(), logistic), _pooled(Xtr, axis, 1),
          _pooled(Xte, axis, 1))
    score("logistic, inputs scaled as the CNN sees them", logistic,
          _pooled(Str, axis, 1), _pooled(Ste, axis, 1))
    score("logistic, those inputs averaged over pool_size positions", logistic,
          _pooled(Str, axis, pool), _pooled(Ste, axis, pool))
    for C in (0.1, 1.0, 10.0):
        features = ConvPoolFeatures(kernel_size=setting.kernel_size,
                                    pool_size=setting.pool_size, channel_axis=axis)
        score(f"logistic on the CNN's features Z, C={C:g}",
              make_pipeline(features, LogisticRegression(C=C, max_iter=5000)),
              Str, Ste)
    score("CNNClassifier, defaults (identity, rank K)",
          CNNClassifier(kernel_size=setting.kernel_size, pool_size=setting.pool_size,
                        n_kernels=setting.n_kernels, channel_axis=axis,
                        random_state=0), Str, Ste)
    return rows


def rst_table(results: dict[str, list[tuple[str, float]]]) -> str:
    labels = [label for label, _ in next(iter(results.values()))]
    width = max(len(label) for label in labels)
    names = list(results)
    rule = "=" * width + "".join("  " + "=" * max(len(n), 8) for n in names)
    head = "input of the model".ljust(width) + "".join(
        "  " + n.ljust(max(len(n), 8)) for n in names)
    lines = [rule, head, rule]
    for i, label in enumerate(labels):
        lines.append(label.ljust(width) + "".join(
            "  " + f"{results[n][i][1]:.3f}".ljust(max(len(n), 8)) for n in names))
    lines.append(rule)
    return "\n".join(line.rstrip() for line in lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="*", default=list(SETS))
    parser.add_argument("--write-docs", action="store_true",
                        help="store the table in docs/benchmarks.rst")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        results = {name: ladder(name) for name in args.sets}
    table = rst_table(results)
    print(table)
    if args.write_docs:
        write_docs(table, BEGIN, END)


if __name__ == "__main__":
    main()
