"""numba's on-disk cache, told what the kernels inline.

numba reuses a cached kernel while the kernel's own source file is unchanged,
but our kernels inline functions written elsewhere: the activation and loss
registries (:mod:`sktensorcnn.activations`, :mod:`sktensorcnn.losses`) and the
shared helpers of this package.  Editing those, or upgrading to a version that
changed them, must recompile the kernels.  So each of numba's file-backed cache
locators gets a twin that serves this package's kernel files only and whose
source stamp also covers every file the kernels can inline from.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from numba.core import caching

_KERNELS = Path(__file__).resolve().parent
_PACKAGE = _KERNELS.parent


def _fingerprint() -> bytes:
    """Hash of every file a cached kernel may inline from."""
    digest = hashlib.sha256()
    for path in sorted([*_KERNELS.glob("*.py"), _PACKAGE / "activations.py",
                        _PACKAGE / "losses.py"]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.digest()


FINGERPRINT = _fingerprint()


def _twin(base: type) -> type:
    """``base``, restricted to this package's kernel files, its source stamp
    extended by :data:`FINGERPRINT`."""

    class KernelFileLocator(base):
        serves_sktensorcnn = True

        @classmethod
        def from_function(cls, py_func, py_file):
            if Path(py_file).resolve().parent != _KERNELS:
                return None
            return super().from_function(py_func, py_file)

        def get_source_stamp(self):
            return (super().get_source_stamp(), FINGERPRINT)

    KernelFileLocator.__name__ = KernelFileLocator.__qualname__ = \
        f"SKTensorCNN{base.__name__.lstrip('_')}"
    return KernelFileLocator


def install() -> None:
    """Put the twins first in numba's list of locators (once); kernels declared
    with ``cache=True`` after this call use them (it runs when this module is
    imported, which :mod:`sktensorcnn.kernels` does before importing any
    kernel)."""
    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
    classes = impl._locator_classes
    if any(getattr(c, "serves_sktensorcnn", False) for c in classes):
        return
    bases = [getattr(caching, name, None) or getattr(caching, "_" + name)
             for name in ("UserProvidedCacheLocator", "InTreeCacheLocator",
                          "UserWideCacheLocator")]
    classes[:0] = [_twin(base) for base in bases]


install()
