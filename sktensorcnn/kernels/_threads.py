"""Threads: how many the kernels and BLAS use, the pool the kernels run on, and
keeping BLAS's threads off the cores the kernels work on.

The CPU kernels are serial numba functions compiled with ``nogil=True``;
:func:`run_blocks` runs blocks of their work on a shared pool of Python
threads.  numba's own ``parallel=True`` would do the same, but compiling one
such kernel takes 25-30 s against 5-6 s for its serial body (the parallel
lowering hands LLVM the whole body again), and that is the first fit of a
fresh install; the per-call cost of the pool is tens of microseconds.
"""

import contextlib
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
from threadpoolctl import ThreadpoolController


@functools.cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


#: BLAS's thread count is one setting for the whole process: the limits in
#: force (one per open :func:`blas_limit`, from any thread) and the limiter
#: that restores the count found before the first of them.
_blas_lock = threading.Lock()
_blas_limits: list[int] = []
_blas_restorer = None


@contextlib.contextmanager
def blas_limit(n_threads: int):
    """BLAS on at most ``n_threads`` threads inside the context.

    Thread-safe: concurrent limits (fits on several threads) combine, the
    smallest in force wins, and the count found before the first is restored
    when the last one ends.  threadpoolctl's own limiter, entered and left per
    fit, restores what it found on entry, which another thread's limit may
    have set: four concurrent fits left BLAS on one thread for good.
    """
    global _blas_restorer
    n_threads = max(1, int(n_threads))
    with _blas_lock:
        if not _blas_limits:
            _blas_restorer = _blas_controller().limit(limits=n_threads,
                                                      user_api="blas")
        elif n_threads < min(_blas_limits):
            _blas_controller().limit(limits=n_threads, user_api="blas")
        _blas_limits.append(n_threads)
    try:
        yield
    finally:
        with _blas_lock:
            _blas_limits.remove(n_threads)
            if not _blas_limits:
                _blas_restorer.restore_original_limits()
                _blas_restorer = None
            elif n_threads < min(_blas_limits):
                _blas_controller().limit(limits=min(_blas_limits), user_api="blas")


def single_threaded_blas():
    """Context in which BLAS runs on one thread (see :func:`blas_limit`).

    Where the kernels' threads do the parallel work (the fused network loops, the
    factorized convolution) BLAS only computes thin products and small solver
    updates; its threads, left spinning after each call, would take the cores
    from the kernels' threads (2-3x slower fits measured on 2 cores).
    """
    return blas_limit(1)


def resolve_n_jobs(n_jobs) -> int:
    """Threads for ``n_jobs`` (joblib's convention): ``None`` numba's current
    count, ``-1`` all of numba's threads (``NUMBA_NUM_THREADS``), ``-2`` all but
    one, a positive number at most that many."""
    available = numba.config.NUMBA_NUM_THREADS
    if n_jobs is None:
        return numba.get_num_threads()
    if n_jobs == 0:
        raise ValueError("n_jobs=0 has no meaning; use None, -1 or a positive int.")
    n = n_jobs if n_jobs > 0 else available + 1 + n_jobs
    return max(1, min(n, available))


@contextlib.contextmanager
def limit_threads(n_jobs):
    """Run numba's kernels (and BLAS, when ``n_jobs`` is given) on the threads
    ``n_jobs`` asks for; numba's setting is per calling thread, so threads of a
    joblib threading backend each keep their own."""
    previous = numba.get_num_threads()
    numba.set_num_threads(resolve_n_jobs(n_jobs))
    try:
        if n_jobs is None:
            yield
        else:
            with blas_limit(numba.get_num_threads()):
                yield
    finally:
        numba.set_num_threads(previous)


@functools.cache
def _pool() -> ThreadPoolExecutor:
    workers = max(numba.config.NUMBA_NUM_THREADS, os.cpu_count() or 1)
    return ThreadPoolExecutor(max_workers=workers,
                              thread_name_prefix="sktensorcnn-kernels")


def block_bounds(n_items: int, n_blocks: int, block: int) -> tuple[int, int]:
    """Items ``[first, last)`` of ``block``: ``n_blocks`` contiguous blocks whose
    sizes differ by at most one."""
    return (block * n_items) // n_blocks, ((block + 1) * n_items) // n_blocks


#: Multiply-adds below which a block is not worth handing to another thread
#: (waking a pool thread costs tens of microseconds).
MIN_BLOCK_WORK = 2**17


def n_blocks_for(n_items: int, work_per_item: float = float("inf")) -> int:
    """Blocks of work for ``n_items`` items: one per thread the caller has
    (``numba.get_num_threads()``, which :func:`limit_threads` sets), at most one
    per item and one per :data:`MIN_BLOCK_WORK` multiply-adds."""
    by_work = n_items * work_per_item // MIN_BLOCK_WORK
    return int(max(1, min(n_items, numba.get_num_threads(), by_work)))


def run_blocks(task, n_blocks: int) -> list:
    """``[task(0), ..., task(n_blocks - 1)]``, the blocks side by side: block 0 on
    the calling thread, the others on the shared pool.

    ``task`` must spend its time in ``nogil`` numba kernels (else the blocks
    take turns on the GIL) and must not itself call :func:`run_blocks`.
    Results come in block order, so sums over them do not depend on timing.
    """
    if n_blocks <= 1:
        return [task(0)]
    futures = [_pool().submit(task, block) for block in range(1, n_blocks)]
    try:
        first = task(0)
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return [first, *(future.result() for future in futures)]
