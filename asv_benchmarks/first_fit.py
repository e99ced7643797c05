"""Time to first result: the first fit of each estimator kind, cold and warm.

Each measurement runs in a fresh Python process, so that nothing compiled by an
earlier fit is in memory.  *Cold*: numba's cache directory is empty (a fresh
install); *warm*: the same directory again, filled by the cold run (a second
session).  The data are scikit-learn's digits (8x8, 1,257 training samples), the
layer is ``kernel_size=3, pool_size=3``; regressors predict the digit's value.

The code is that of the asv benchmark ``benchmarks/bench_first_fit.py``.

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from benchmarks.bench_first_fit import FIT_CODE, KINDS, setup_code  # noqa: E402

# one process: the setup of the asv benchmark, then the timed fit and a predict
_TIMED = """
import json, time
start = time.perf_counter()
{fit}
fit = time.perf_counter() - start
start = time.perf_counter()
est.predict(X)
print(json.dumps(dict(fit_s=fit, predict_s=time.perf_counter() - start)))
"""


def _run(args: list[str], cache_dir: str) -> tuple[float, str]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)  # for the demo
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True,
                          text=True, check=True)
    return time.perf_counter() - start, done.stdout


def first_fit(kind: str) -> dict:
    """Cold and warm timings of one estimator kind, each in a new process."""
    with tempfile.TemporaryDirectory() as cache_dir:
        row = {"kind": kind}
        for label in ("cold", "warm"):
            code = setup_code(kind, cache_dir) + _TIMED.format(fit=FIT_CODE)
            wall, out = _run(["-c", code], cache_dir)
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
