"""Run the benchmark suite once, without asv, and print a table.

``python asv_benchmarks/report.py`` (from the repository root).  Times are the best
of seven runs (fits: three), after numba compilation: this machine is shared and
single runs vary by tens of percent.  The features' time and GB/s are back to back
calls on one ``X`` (S1's stays in a large L3 cache); their share of the copy is
``ConvPoolFeatures.track_share_of_copy``: the kernel and the copy timed in
turns, ``X`` read from memory.
"""

import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from benchmarks.bench_features import ConvPoolFeatures, copy_GBps  # noqa: E402
from benchmarks.bench_fit import FitLinear  # noqa: E402
from benchmarks.bench_model_selection import RankSelection  # noqa: E402


def best_of(fn, *args, repeat=7):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    print(f"numpy copy: {copy_GBps():.1f} GB/s (read + write)\n")
    print(f"{'Z features':<24}{'time s':>9}{'GB/s':>8}{'of copy':>14}")
    bench = ConvPoolFeatures()
    for args in itertools.product(*bench.params):
        bench.setup(*args)
        seconds = min(bench.features_seconds() for _ in range(7))
        rate = (bench.X.nbytes + bench.Z.nbytes) / seconds / 1e9
        # the kernel and the copy in turns, X read from memory
        share = bench.track_share_of_copy(*args)
        print(f"{' '.join(args):<24}{seconds:>9.3f}{rate:>8.2f}{share:>12.0f} %")
        del bench.X, bench.Z
    print(f"\n{'fit, n = 10^4':<24}{'time s':>9}")
    fit = FitLinear()
    for args in itertools.product(*fit.params):
        fit.setup(*args)
        print(f"{' '.join(args):<24}{best_of(fit.time_fit, *args, repeat=3):>9.3f}")
    print(f"\n{'rank selection, T1':<24}{'grid s':>9}{'path s':>9}  picked")
    ranks = RankSelection()
    for (n,) in itertools.product(*ranks.params):
        ranks.setup(n)
        grid = best_of(ranks.time_grid_search, n, repeat=2)
        path = best_of(ranks.time_rank_path, n, repeat=2)
        picked = (ranks.grid.best_params_["ranks"], ranks.path.best_value_)
        print(f"{'n = ' + str(n):<24}{grid:>9.2f}{path:>9.2f}  {picked}")


if __name__ == "__main__":
    main()
