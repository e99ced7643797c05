"""Thread counts: how many threads numba and BLAS use, and keeping BLAS's threads
off the cores numba's threads work on."""

import contextlib
import functools

import numba
from threadpoolctl import ThreadpoolController


@functools.cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def single_threaded_blas():
    """Context in which BLAS runs on one thread.

    Where numba's threads do the parallel work (the fused network loops, the
    factorized convolution) BLAS only computes thin products and small solver
    updates; its threads, left spinning after each call, would take the cores
    from numba's threads (2-3x slower fits measured on 2 cores).
    """
    return _blas_controller().limit(limits=1, user_api="blas")


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
            with _blas_controller().limit(limits=numba.get_num_threads(),
                                          user_api="blas"):
                yield
    finally:
        numba.set_num_threads(previous)
