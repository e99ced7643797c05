"""Run the benchmark suite once, without asv, and print a table.

``python asv_benchmarks/report.py`` (from the repository root).  Times are the best
of seven runs (fits: three), after numba compilation: this machine is shared and
single runs vary by tens of percent.
"""

import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from benchmarks.bench_features import ConvPoolFeatures, MemoryCopy  # noqa: E402
from benchmarks.bench_fit import FitLinear  # noqa: E402


def best_of(fn, *args, repeat=7):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    copy = MemoryCopy()
    copy.setup()
    yardstick = copy.track_copy_GBps()
    print(f"numpy copy: {yardstick:.1f} GB/s (read + write)\n")
    print(f"{'Z features':<24}{'time s':>9}{'GB/s':>8}{'of copy':>9}")
    bench = ConvPoolFeatures()
    for args in itertools.product(*bench.params):
        bench.setup(*args)
        seconds = best_of(bench.time_features, *args)
        rate = (bench.X.nbytes + bench.Z.nbytes) / seconds / 1e9
        print(f"{' '.join(args):<24}{seconds:>9.3f}{rate:>8.2f}"
              f"{rate / yardstick:>9.0%}")
        del bench.X, bench.Z
    print(f"\n{'fit, n = 10^4':<24}{'time s':>9}")
    fit = FitLinear()
    for args in itertools.product(*fit.params):
        fit.setup(*args)
        print(f"{' '.join(args):<24}{best_of(fit.time_fit, *args, repeat=3):>9.3f}")


if __name__ == "__main__":
    main()
