"""Every CUDA kernel compiles to PTX for a real device (no GPU needed).

The simulator does not type-check; this does, with NVIDIA's numba-cuda and its
NVVM (``pip install 'sktensorcnn[cuda]'``).  Where that toolchain is missing
(CI installs only the test extra) the test is skipped and says why.
"""

import pytest
from numba import types

from sktensorcnn.kernels import _device


def _toolchain():
    if not _device.cuda_available.__module__:  # pragma: no cover
        return None
    try:
        from numba import cuda

        if getattr(cuda, "implementation", "") != "NVIDIA":
            return None
        cuda.compile_ptx(lambda a: None, (types.float64[:],), cc=(9, 0))
        return cuda
    except Exception:  # noqa: BLE001 - any failure means no toolchain
        return None


def _array(ndim, dtype=types.float64):
    return types.Array(dtype, ndim, "C")


I64 = _array(1, types.int64)
SIGNATURES = {
    "features": (_array(6), I64, I64, I64, I64, types.float64, _array(10)),
    "convolve": (_array(6), I64, _array(6), I64, I64, _array(6)),
    "head": (_array(2), _array(2), _array(1), types.int64, _array(2)),
    "sample_losses": (_array(2), _array(1), I64, _array(1), types.float64,
                      types.int64, _array(1), _array(2)),
    "map_gradient": (_array(2), _array(2), _array(2), types.int64, _array(2)),
    "head_gradient": (_array(2), _array(2), types.int64, _array(2)),
    "kernel_gradient_partials": (_array(6), I64, _array(6), I64, I64, types.int64,
                                 _array(7)),
    "column_sums": (_array(2), _array(1)),
    "gather_rows": (_array(2), I64, _array(2)),
    "conv_along": (_array(5), _array(2), types.int64, _array(5)),
    "conv_along_input_grad": (_array(5), _array(2), types.int64, _array(5)),
    "conv_along_filter_partials": (_array(5), _array(5), types.int64, types.int64,
                                   _array(3)),
    "mix": (_array(2), _array(3), _array(3)),
    "unmix": (_array(2), _array(3), _array(3)),
    "mix_partials": (_array(3), _array(3), types.int64, _array(3)),
}


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_kernel_compiles_for_a_device(name):
    cuda = _toolchain()
    if cuda is None:
        pytest.skip("needs NVIDIA's numba-cuda with NVVM (the 'cuda' extra); "
                    "numba's simulator does not type-check")
    from sktensorcnn.kernels import _cuda

    ptx, _ = cuda.compile_ptx(getattr(_cuda, name).py_func, SIGNATURES[name],
                              cc=(9, 0))
    assert ".entry" in ptx


def test_every_kernel_is_listed():
    import inspect

    from sktensorcnn.kernels import _cuda

    kernels = {name for name, obj in vars(_cuda).items()
               if not name.startswith("_") and hasattr(obj, "py_func")
               and inspect.getmodule(obj.py_func) is _cuda}
    assert kernels == set(SIGNATURES)
