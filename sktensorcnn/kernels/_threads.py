"""Keeping BLAS's threads off the cores numba's threads work on."""

import functools

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
