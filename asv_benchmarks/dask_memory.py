"""Peak memory of fits on data on disk: a NumPy memory map against a Dask array
over the same file.

Writes ``n`` samples of shape ``(8, 10, 10)`` (float32, the size of the
paper's T1 samples: 1.28 GB for n = 400,000) from a Tucker teacher to a
``.npy`` file, then fits in a fresh process each and reports the fit's peak
anonymous memory (``RssAnon`` above its value before the fit, sampled every
5 ms: the pages of the memory-mapped file are the kernel's page cache, not the
process's), the process's peak resident memory (``ru_maxrss``, page cache
included), the fit time and the training R^2:

* ``memmap``: ``np.load(..., mmap_mode='r')`` given to ``fit`` as it is;
* ``dask``: ``dask.array.from_array`` of the same memory map in blocks of
  ``--block`` samples, Dask's threaded scheduler;
* ``cluster-1``, ``cluster-2`` (with ``--cluster``): a ``distributed.LocalCluster``
  of 1 or 2 worker processes of 1 thread, each limited to a quarter of the
  data's size (``memory_limit``; the nanny restarts a worker past 95 % of it),
  reading their blocks from the file themselves; the workers' peak anonymous
  memory during the fit is reported too, and the two fit times give the
  scaling efficiency from 1 to 2 workers.

With ``--store zarr`` the samples are written to a zarr store instead (one
chunk per block, zarr's default compression) and every Dask input reads it
with ``dask.array.from_zarr``: the workers read and decompress their own
chunks.  The memory map has no zarr counterpart and is left out; the table
adds the throughput (megabytes of samples, and samples, per second of fit).

The Dask fit's budget: the blocks in flight (one per scheduler thread) and the
per-block partial statistics of the tree reduction, plus the fit's own
statistics (``L P`` squared for the squared loss); never the samples as a
whole.

Usage::

    python asv_benchmarks/dask_memory.py               # n = 400,000 (1.28 GB)
    python asv_benchmarks/dask_memory.py --n 100000 --activation relu
    # 3.05 GB, 4x each worker's memory limit; small blocks, as the limit is
    # the whole worker process (about 550 MB of it imported libraries)
    python asv_benchmarks/dask_memory.py --n 1000000 --block 5000 --cluster
    # the same from a zarr store (pip install zarr)
    python asv_benchmarks/dask_memory.py --n 1000000 --block 5000 --cluster --store zarr
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SAMPLE_SHAPE = (8, 10, 10)


def write_data(path: Path, n: int, seed: int = 0, block: int = 50_000,
               store: str = "npy", chunk: int = 20_000) -> None:
    """A Tucker teacher's samples and targets, written block by block to
    ``X.npy`` or to the zarr store ``X.zarr`` (chunks of ``chunk`` samples)."""
    rng = np.random.default_rng(seed)
    if store == "zarr":
        import zarr

        X = zarr.create_array(str(path / "X.zarr"), shape=(n, *SAMPLE_SHAPE),
                              chunks=(chunk, *SAMPLE_SHAPE), dtype=np.float32)
        block = chunk * max(1, block // chunk)    # whole chunks per write
    else:
        X = np.lib.format.open_memmap(path / "X.npy", mode="w+", dtype=np.float32,
                                      shape=(n, *SAMPLE_SHAPE))
    weight = np.einsum("i,j,k->ijk", *(rng.standard_normal(s) for s in SAMPLE_SHAPE))
    y = np.empty(n)
    for start in range(0, n, block):
        part = rng.standard_normal((min(block, n - start), *SAMPLE_SHAPE))
        X[start:start + len(part)] = part
        y[start:start + len(part)] = (np.einsum("nijk,ijk->n", part, weight)
                                      + 0.1 * rng.standard_normal(len(part)))
    if store == "npy":
        X.flush()
    np.save(path / "y.npy", y)


def _anonymous_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class PeakAnonymous:
    """The largest ``RssAnon`` seen while in the ``with`` block."""

    def __enter__(self):
        import threading

        self.peak, self._done = _anonymous_mb(), threading.Event()

        def watch():
            while not self._done.wait(0.005):
                self.peak = max(self.peak, _anonymous_mb())

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, _anonymous_mb())


def _read_rows(path: str, start: int, stop: int) -> np.ndarray:
    return np.array(np.load(Path(path) / "X.npy", mmap_mode="r")[start:stop])


def _lazy_from_file(path: str, n: int, block: int):
    """A Dask array whose tasks read their rows from the file (nothing of the
    data is in the graph)."""
    import dask
    import dask.array as da

    return da.concatenate([
        da.from_delayed(dask.delayed(_read_rows)(path, start, min(start + block, n)),
                        shape=(min(start + block, n) - start, *SAMPLE_SHAPE),
                        dtype=np.float32)
        for start in range(0, n, block)])


def _start_watch(dask_worker):
    dask_worker.peak_anonymous = PeakAnonymous().__enter__()
    dask_worker.anonymous_before = _anonymous_mb()


def _stop_watch(dask_worker):
    watch = dask_worker.peak_anonymous
    watch.__exit__(None, None, None)
    return watch.peak, dask_worker.anonymous_before


def fit_once(path: str, mode: str, activation: str, block: int,
             store: str = "npy") -> dict:
    """One fit in this process; its peak memory and time."""
    import warnings

    from sktensorcnn import TuckerCNNRegressor

    y = np.load(Path(path) / "y.npy")
    if store == "zarr":
        import dask.array as da

        X = da.from_zarr(str(Path(path) / "X.zarr"))
    else:
        X = np.load(Path(path) / "X.npy", mmap_mode="r")
    if mode == "dask" and store == "npy":
        import dask.array as da

        X = da.from_array(X, chunks=(block, *SAMPLE_SHAPE))
    client = None
    if mode.startswith("cluster"):
        from distributed import Client, LocalCluster

        limit = X.nbytes // 4
        cluster = LocalCluster(n_workers=int(mode[-1]), threads_per_worker=1,
                               processes=True,
                               memory_limit=limit, dashboard_address=None)
        client = Client(cluster)
        if store == "npy":
            X = _lazy_from_file(path, X.shape[0], block)
        client.run(_start_watch)
    est = TuckerCNNRegressor((2, 2, 2, 2), kernel_size=3, pool_size=2,
                             activation=activation, random_state=0,
                             max_iter=5 if activation != "identity" else "auto")
    before = _anonymous_mb()
    start = time.perf_counter()
    with warnings.catch_warnings(), PeakAnonymous() as peak:
        warnings.simplefilter("ignore")
        est.fit(X, y)
    seconds = time.perf_counter() - start
    workers = {}
    if client is not None:
        workers = {address: round(peak - before) for address, (peak, before)
                   in client.run(_stop_watch).items()}
        workers["limit"] = round(limit / 2**20)
    rows = slice(0, 20_000)
    score = est.score(np.asarray(X[rows]), y[rows])
    if client is not None:
        client.close()
        cluster.close()
    return dict(mode=mode, activation=activation, seconds=seconds,
                samples_per_s=X.shape[0] / seconds,
                mb_per_s=X.shape[0] * int(np.prod(SAMPLE_SHAPE)) * 4 / 2**20 / seconds,
                workers_mb=workers, anonymous_mb=peak.peak - before,
                peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                r2_first_20k=float(score))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400_000)
    parser.add_argument("--block", type=int, default=20_000)
    parser.add_argument("--activation", default="identity")
    parser.add_argument("--cluster", action="store_true",
                        help="also fit on a LocalCluster limited to 1/4 of the data")
    parser.add_argument("--store", choices=("npy", "zarr"), default="npy",
                        help="write the samples to a .npy file or a zarr store")
    parser.add_argument("--child", nargs=2, metavar=("PATH", "MODE"))
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(fit_once(*args.child, args.activation, args.block,
                                  args.store)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        write_data(Path(tmp), args.n, store=args.store, chunk=args.block)
        size_mb = args.n * int(np.prod(SAMPLE_SHAPE)) * 4 / 2**20
        on_disk = sum(f.stat().st_size for f in Path(tmp).rglob("*")
                      if f.is_file() and f.name != "y.npy")
        print(f"n = {args.n:,} samples of {SAMPLE_SHAPE} float32: {size_mb:,.0f} MB "
              f"({on_disk / 2**20:,.0f} MB in {args.store}); Dask blocks of "
              f"{args.block:,} samples "
              f"({args.block * int(np.prod(SAMPLE_SHAPE)) * 4 / 2**20:.0f} MB)")
        print(f"{'input':<9} {'activation':<10} {'fit (s)':>8} {'MB/s':>6} "
              f"{'samples/s':>10} {'fit anon. (MB)':>15} {'peak RSS (MB)':>14} "
              f"{'R^2':>7}")
        clusters = ("cluster-1", "cluster-2") if args.cluster else ()
        local = ("dask",) if args.store == "zarr" else ("memmap", "dask")
        for mode in (*local, *clusters):
            out = subprocess.run(
                [sys.executable, __file__, "--child", tmp, mode, "--activation",
                 args.activation, "--block", str(args.block), "--store", args.store],
                check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"{r['mode']:<9} {r['activation']:<10} {r['seconds']:8.1f} "
                  f"{r['mb_per_s']:6.0f} {r['samples_per_s']:10,.0f} "
                  f"{r['anonymous_mb']:15.0f} {r['peak_mb']:14.0f} "
                  f"{r['r2_first_20k']:7.3f}", flush=True)
            if r["workers_mb"]:
                print(f"  workers' fit anon. (MB) and memory_limit: {r['workers_mb']}")


if __name__ == "__main__":
    main()
