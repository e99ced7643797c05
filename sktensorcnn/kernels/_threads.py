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
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
from threadpoolctl import ThreadpoolController


@functools.cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def _finish(step) -> None:
    """Run ``step`` (idempotent) to its end even if Ctrl-C arrives meanwhile,
    then re-raise the interrupt: a setting changed for a fit is always set back,
    wherever the interrupt lands."""
    interrupt = None
    while True:
        try:
            step()
            break
        except KeyboardInterrupt as error:
            interrupt = error
    if interrupt is not None:
        raise interrupt


#: BLAS's thread count is one setting for the whole process: the limits in
#: force (one per open :func:`blas_limit`, from any thread, by token), the
#: fits running (:func:`limit_threads`) and the counts found before the first
#: of either.
_blas_lock = threading.Lock()
_blas_limits: dict[object, int] = {}
_running_fits = 0
_blas_original: list[int] | None = None


def _blas_libraries():
    return [lib for lib in _blas_controller().lib_controllers
            if lib.user_api == "blas"]


@functools.cache
def _blas_setter() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="sktensorcnn-blas")


#: The counts last set (``None``: unknown, set them whatever they are).
_blas_applied: list[int] | None = None


def _set_blas(counts) -> None:
    """Set BLAS's counts (lock held), from one thread kept for it: set from a
    fit's thread that has just run BLAS calls, OpenBLAS sometimes keeps its
    old count (read back at once: three concurrent gradient-descent fits left
    BLAS on one thread in 2 of 3 stress runs; none in 7 from this thread).
    Once the main thread has set a count (``threadpoolctl.threadpool_limits``
    there, which some scikit-learn estimators enter), OpenBLAS (0.3.30-0.3.31
    seen) ignores counts set from other threads: read back, the counts are
    then set from the calling thread too."""
    global _blas_applied
    counts = list(counts)
    if counts == _blas_applied:
        return

    def apply():
        for lib, n in zip(_blas_libraries(), counts):
            lib.set_num_threads(n)

    _blas_setter().submit(apply).result()
    if [lib.num_threads for lib in _blas_libraries()] != counts:
        apply()
    _blas_applied = counts


def _remember_blas() -> None:
    """Read the counts in force before anything is changed (lock held)."""
    global _blas_original
    if _blas_original is None:
        _blas_original = [lib.num_threads for lib in _blas_libraries()]


def _settle_blas() -> None:
    """Apply the smallest limit in force, or the original counts when none is
    (lock held).  Only while at most one fit runs: OpenBLAS's count must not
    change while another thread is inside a BLAS call (a change made then can
    be lost for good), so concurrent fits keep the count in force when the
    second started, and the last one to end sets the original back."""
    if _running_fits > 1:
        return
    if _blas_limits:
        _set_blas([min(_blas_limits.values())] * len(_blas_libraries()))
    elif _blas_original is not None:
        _set_blas(_blas_original)


def _forget_blas() -> None:
    """Nothing runs: the next limit reads the counts afresh (a user may change
    them between fits) (lock held)."""
    global _blas_original, _blas_applied
    _blas_original, _blas_applied = None, None


def _acquire_blas(token, n_threads: int) -> None:
    with _blas_lock:
        _remember_blas()
        _blas_limits[token] = n_threads
        _settle_blas()


def _release_blas(token) -> None:
    with _blas_lock:
        _blas_limits.pop(token, None)
        _settle_blas()
        if _running_fits == 0 and not _blas_limits:  # used outside a fit
            _forget_blas()


def _enter_fit(entered: list) -> None:
    """Count a fit in (once: ``entered`` records it, so that a retry after
    Ctrl-C does not count it twice)."""
    global _running_fits
    with _blas_lock:
        if not entered:
            _remember_blas()
            _running_fits += 1
            entered.append(True)


def _leave_fit(entered: list) -> None:
    global _running_fits
    with _blas_lock:
        if entered:
            entered.clear()
            _running_fits -= 1
            if _running_fits == 0 and not _blas_limits:
                _settle_blas()
                _forget_blas()


@contextlib.contextmanager
def blas_limit(n_threads: int):
    """BLAS on at most ``n_threads`` threads inside the context.

    Thread-safe: the counts found before the first limit (or fit) are set
    back when the last one ends, even when Ctrl-C interrupts the fit, and the
    count only changes while at most one fit runs (see :func:`_settle_blas`).
    threadpoolctl's own limiter, entered and left per fit, restores what it
    found on entry, which another thread's limit may have set: four concurrent
    fits left BLAS on one thread for good.
    """
    token = object()
    try:
        _finish(lambda: _acquire_blas(token, max(1, int(n_threads))))
        yield
    finally:
        _finish(lambda: _release_blas(token))


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
    count (one inside a Dask worker's task: Dask runs a task per worker thread,
    as under ``joblib.parallel_backend('dask')``), ``-1`` all of numba's threads
    (``NUMBA_NUM_THREADS``), ``-2`` all but one, a positive number at most that
    many."""
    available = numba.config.NUMBA_NUM_THREADS
    if n_jobs is None:
        return 1 if _in_dask_worker() else numba.get_num_threads()
    if n_jobs == 0:
        raise ValueError("n_jobs=0 has no meaning; use None, -1 or a positive int.")
    n = n_jobs if n_jobs > 0 else available + 1 + n_jobs
    return max(1, min(n, available))


def _in_dask_worker() -> bool:
    """Whether this thread runs a task of a ``distributed`` worker."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


@contextlib.contextmanager
def limit_threads(n_jobs):
    """Run numba's kernels (and BLAS, when ``n_jobs`` is given) on the threads
    ``n_jobs`` asks for; numba's setting is per calling thread, so threads of a
    joblib threading backend each keep their own.  Entered once per fit: BLAS's
    counts found before the first of concurrent fits are set again when the
    last one ends."""
    previous = numba.get_num_threads()
    entered: list = []
    try:
        _finish(lambda: _enter_fit(entered))
        _finish(lambda: numba.set_num_threads(resolve_n_jobs(n_jobs)))
        if n_jobs is None:
            yield
        else:
            with blas_limit(numba.get_num_threads()):
                yield
    finally:
        _finish(lambda: numba.set_num_threads(previous))
        _finish(lambda: _leave_fit(entered))


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
