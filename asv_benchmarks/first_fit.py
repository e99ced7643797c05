"""Time to first result: the first fit of each estimator kind, cold and warm.

Each measurement runs in a fresh Python process, so that nothing compiled by an
earlier fit is in memory.  *Cold*: numba's cache directory is empty (a fresh
install); *warm*: the same directory again, filled by the cold run (a second
session).  The data are scikit-learn's digits (8x8, 1,257 training samples), the
layer is ``kernel_size=3, pool_size=3``; regressors predict the digit's value.

Usage::

    python asv_benchmarks/first_fit.py                     # every kind
    python asv_benchmarks/first_fit.py --kinds relu-dense-classifier
    python asv_benchmarks/first_fit.py --demo              # python -m sktensorcnn.demo
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

STRUCTURES = {"dense": "CNN", "tucker": "TuckerCNN", "cp": "CPCNN"}
KINDS = [f"{activation}-{structure}-{task}"
         for task in ("regressor", "classifier")
         for structure in STRUCTURES
         for activation in ("identity", "relu")]

# what one process runs: import, load digits, one fit, print the seconds
_CHILD = r"""
import json, sys, time, warnings
start = time.perf_counter()
import sktensorcnn
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
imported = time.perf_counter() - start
activation, structure, task = sys.argv[1].split("-")
prefix = {"dense": "CNN", "tucker": "TuckerCNN", "cp": "CPCNN"}[structure]
Est = getattr(sktensorcnn, prefix + ("Classifier" if task == "classifier"
                                      else "Regressor"))
extra = {"tucker": dict(ranks=(3, 3, 4)), "cp": dict(rank=4)}.get(structure, {})
X, y = load_digits(return_X_y=True)
X = X.reshape(-1, 8, 8)[:1257] / 16.0
y = y[:1257] if task == "classifier" else y[:1257].astype(float)
est = Est(kernel_size=3, pool_size=3, n_kernels=4, activation=activation,
          random_state=0, **extra)
start = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    est.fit(X, y)
fit = time.perf_counter() - start
start = time.perf_counter()
est.predict(X)
predict = time.perf_counter() - start
print(json.dumps(dict(import_s=imported, fit_s=fit, predict_s=predict)))
"""


def _run(args: list[str], cache_dir: str) -> tuple[float, str]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True,
                          text=True, check=True)
    return time.perf_counter() - start, done.stdout


def first_fit(kind: str) -> dict:
    """Cold and warm timings of one estimator kind, each in a new process."""
    with tempfile.TemporaryDirectory() as cache_dir:
        row = {"kind": kind}
        for label in ("cold", "warm"):
            wall, out = _run(["-c", _CHILD, kind], cache_dir)
            times = json.loads(out.strip().splitlines()[-1])
            row[f"{label}_fit_s"] = times["fit_s"]
            row[f"{label}_process_s"] = wall
        return row


def demo() -> dict:
    with tempfile.TemporaryDirectory() as cache_dir:
        row = {"kind": "python -m sktensorcnn.demo"}
        for label in ("cold", "warm"):
            row[f"{label}_process_s"], _ = _run(["-m", "sktensorcnn.demo"],
                                                cache_dir)
        return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="*", default=KINDS, choices=KINDS)
    parser.add_argument("--demo", action="store_true",
                        help="also time the whole demo, cold and warm")
    args = parser.parse_args(argv)
    print(f"{'kind':<30}{'cold fit s':>11}{'warm fit s':>11}"
          f"{'cold process s':>15}{'warm process s':>15}", flush=True)
    for kind in args.kinds:
        row = first_fit(kind)
        print(f"{kind:<30}{row['cold_fit_s']:>11.2f}{row['warm_fit_s']:>11.2f}"
              f"{row['cold_process_s']:>15.2f}{row['warm_process_s']:>15.2f}",
              flush=True)
    if args.demo:
        row = demo()
        print(f"{row['kind']:<30}{'':>22}{row['cold_process_s']:>15.2f}"
              f"{row['warm_process_s']:>15.2f}", flush=True)


if __name__ == "__main__":
    main()
