"""The numba kernels (features and network) never index out of bounds.

numba does not check bounds by default, so an indexing slip corrupts memory instead
of raising.  This test recompiles the kernels with ``NUMBA_BOUNDSCHECK=1`` in
subprocesses (the flag is read at import) and runs them on geometries that exercise
every code path: 1 to 4 modes, strides, padding, channels, tiny samples in groups
(features: box rows and sliding sums) or interleaved (network),
the fused network loops, the BLAS path's numba head and the mode-wise loops of
Tucker and CP kernels convolved factor by factor, split into blocks even when the
work is small.
"""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys

    import numpy as np
    from sktensorcnn import kernels
    from sktensorcnn.features import conv_pool_features
    from sktensorcnn.geometry import ConvPoolGeometry
    from sktensorcnn.network import (
        factorized_network_loss, network_loss, network_outputs,
    )
    from sktensorcnn.parametrizations import CPWeight, TuckerWeight

    from sktensorcnn.kernels import _threads

    kernels._host.BOX_PRODUCTS_MAX_ENTRIES = 0  # the numba features kernel
    # the numba network kernels (the patches path is numpy and the head, which
    # the BLAS part checks)
    kernels._host.PATCHES_MAX_BYTES = -1
    _threads.MIN_BLOCK_WORK = 1  # blocks on every call

    cases = [
        ((7, 5, 7), None, 2, 1, "valid", (3, 2, 3), None),
        ((9,), 2, 3, 2, 1, 2, 1),
        ((8, 9), 3, (3, 2), (2, 1), "same", 2, None),
        ((5, 6, 4, 7), None, 2, (1, 2, 1, 2), (1, 0, 1, 1), 2, 1),
        ((40, 40), 2, 5, 3, 2, (3, 2), (2, 3)),
        ((3, 3, 3), 1, 3, 1, "valid", 1, None),
    ]
    part = sys.argv[1]
    rng = np.random.default_rng(0)
    for shape, C, ks, st, pad, ps, pst in cases:
        g = ConvPoolGeometry.from_params(
            shape, n_channels=C, kernel_size=ks, stride=st, padding=pad,
            pool_size=ps, pool_stride=pst,
        )
        for n in (1, 5, 37):
            for dtype in (np.float64, np.float32):
                X = rng.standard_normal((n, *g.input_shape)).astype(dtype)
                if part != "features":
                    continue
                # box rows wherever they shrink, the default rule, sliding
                # sums only; groups of a few samples and the default groups
                for rows, group in ((1, 200), (16, 16384), (10**12, 200)):
                    kernels._host.BOX_ROWS_MIN_VALUES = rows
                    kernels._host.FEATURES_GROUP_VALUES = group
                    assert np.isfinite(conv_pool_features(X, g)).all()
            if part == "features":
                continue
            A = rng.standard_normal((2, *g.kernel_shape))
            B = rng.standard_normal((3, 2, *g.pooled_shape))
            y, w = rng.integers(0, 3, n).astype(float), np.full(n, 1.0 / n)
            b = np.zeros(3)
            # the fused numba loops, or the BLAS path and its numba head
            kernels._host.GEMM_MIN_MACS_PER_OUTPUT = 10**12 if part == "fused" else 0
            assert np.isfinite(network_outputs(X, A, B, b, g, "tanh")).all()
            assert np.isfinite(network_loss(X, y, w, A, B, b, g, "relu",
                                            "multinomial")[0])
            if part != "blas":
                continue
            # Tucker and CP kernels convolved factor by factor (mode-wise numba)
            shape = (*g.kernel_modes, 2)
            for kind, param in (("tucker", TuckerWeight(shape, [1] * len(shape))),
                                ("cp", CPWeight(shape, 2))):
                params = param.initialize(np.random.RandomState(0))
                assert np.isfinite(factorized_network_loss(
                    X, y, w, params, B, b, g, "relu", "multinomial", kind)[0])
    print("bounds ok")
    """
)


def test_kernels_stay_in_bounds(tmp_path):
    # three parts that compile different kernels, run side by side (compiling
    # is single-threaded and takes most of the minute each part needs)
    # unoptimized: the bounds checks are inserted before LLVM optimizes, and
    # skipping its passes halves the compile time that dominates this test
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_OPT="0",
               NUMBA_CACHE_DIR=str(tmp_path))
    parts = {part: subprocess.Popen(
        [sys.executable, "-c", SCRIPT, part], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    ) for part in ("features", "fused", "blas")}
    try:
        for part, process in parts.items():
            stdout, stderr = process.communicate(timeout=600)
            assert process.returncode == 0, f"{part}: {stderr[-3000:]}"
            assert "bounds ok" in stdout
    finally:  # a part that failed or hung leaves no sibling running
        for process in parts.values():
            process.kill()
            process.communicate()
