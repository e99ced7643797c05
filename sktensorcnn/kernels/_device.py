"""Which device the kernels run on: ``'cpu'`` or ``'cuda'``.

An estimator resolves its ``device`` parameter once (:func:`resolve_device`) and
runs its work inside :func:`on_device`; the dispatch functions of
:mod:`sktensorcnn.kernels` read :func:`current_device`.  numba's CUDA target is
imported only when a GPU is asked for.
"""

from __future__ import annotations

import contextlib
import contextvars

DEVICES = ("cpu", "cuda", "auto")

_current = contextvars.ContextVar("sktensorcnn_device", default="cpu")


def cuda_available() -> bool:
    """Whether numba sees a CUDA GPU (or runs its simulator)."""
    try:
        from numba import cuda
    except ImportError:  # pragma: no cover - numba without its CUDA target
        return False
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver install is no GPU  # noqa: BLE001
        return False


def resolve_device(device: str) -> str:
    """``'cpu'`` or ``'cuda'`` for a ``device`` parameter.

    ``'auto'`` is CUDA when a GPU is available and the CPU otherwise; ``'cuda'``
    without a GPU raises.
    """
    if device == "cpu":
        return "cpu"
    if device not in DEVICES:
        raise ValueError(f"device={device!r}; use one of {DEVICES}.")
    if cuda_available():
        return "cuda"
    if device == "auto":
        return "cpu"
    raise ValueError(
        "device='cuda' but numba finds no CUDA GPU (numba.cuda.is_available() is "
        "False). Install a driver and the CUDA extra (pip install "
        "'sktensorcnn[cuda]'), or use device='cpu' or 'auto'."
    )


def current_device() -> str:
    return _current.get()


@contextlib.contextmanager
def on_device(device: str):
    """Run the kernels on ``device`` (``'cpu'`` or ``'cuda'``) in this block."""
    token = _current.set(device)
    try:
        yield
    finally:
        _current.reset(token)
