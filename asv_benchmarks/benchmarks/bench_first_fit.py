"""Time to first result: the first fit of each estimator kind in a new process.

``timeraw_`` benchmarks run in a fresh interpreter.  *cold*: numba's cache
directory is a new, empty one (a fresh install: every kernel the fit needs is
compiled); *warm*: the cache that a previous process filled.  The data are
scikit-learn's digits (1,257 training samples of 8 x 8); the layer is
``kernel_size=3, pool_size=3, n_kernels=4`` (Tucker ranks ``(3, 3, 4)``, CP rank
4), every other parameter at its default.  Target (performance issue): at most
10 s for each kind, cold.  ``asv_benchmarks/first_fit.py`` runs the same code
without asv and prints a table.
"""

import os
import tempfile

KINDS = [f"{activation}-{structure}-{task}"
         for task in ("regressor", "classifier")
         for structure in ("dense", "tucker", "cp")
         for activation in ("identity", "relu")]

#: the cache directory of the warm runs, filled by their setup
_WARM_CACHE = os.path.join(tempfile.gettempdir(), "sktensorcnn-first-fit-warm")


def setup_code(kind: str, cache_dir: str) -> str:
    """Python source that imports the library with numba's cache in
    ``cache_dir`` and builds ``est``, ``X`` and ``y`` for ``kind``."""
    activation, structure, task = kind.split("-")
    prefix = {"dense": "CNN", "tucker": "TuckerCNN", "cp": "CPCNN"}[structure]
    name = prefix + ("Classifier" if task == "classifier" else "Regressor")
    extra = {"tucker": "ranks=(3, 3, 4), ", "cp": "rank=4, "}.get(structure, "")
    target = "y[:1257]" if task == "classifier" else "y[:1257].astype(float)"
    return f"""
import os, warnings
os.environ["NUMBA_CACHE_DIR"] = {cache_dir!r}
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
import sktensorcnn
warnings.simplefilter("ignore", ConvergenceWarning)
X, y = load_digits(return_X_y=True)
X, y = X.reshape(-1, 8, 8)[:1257] / 16.0, {target}
est = sktensorcnn.{name}(kernel_size=3, pool_size=3, n_kernels=4,
                         activation={activation!r}, random_state=0, {extra})
"""


FIT_CODE = "est.fit(X, y)"


class FirstFit:
    params = (KINDS, ["cold", "warm"])
    param_names = ["kind", "cache"]
    number = 1
    repeat = 1
    timeout = 300

    def setup(self, kind, cache):
        if cache == "warm":  # fill the cache once, in another process
            import subprocess
            import sys

            subprocess.run([sys.executable, "-c",
                            setup_code(kind, _WARM_CACHE) + FIT_CODE], check=True)

    def timeraw_fit(self, kind, cache):
        directory = tempfile.mkdtemp() if cache == "cold" else _WARM_CACHE
        return FIT_CODE, setup_code(kind, directory)
