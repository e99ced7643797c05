"""numba's on-disk cache of the kernels follows the registries they inline.

End to end, in fresh processes on a copy of the package: a kernel compiled
once is loaded from the cache by the next process; after an edit to the
activation registry (a file the kernel inlines, not its own), the next process
recompiles it and computes with the edited activation.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import sktensorcnn

SCRIPT = """
import json
import numpy as np
import sktensorcnn
from sktensorcnn.activations import activation_code
from sktensorcnn.kernels import _cpu_head
Y = np.array([[-2.0, 1.0]])
out = _cpu_head.outputs(Y, np.array([[1.0, 0.0]]), np.zeros(1),
                        activation_code("leaky_relu"))
stats = _cpu_head._outputs_block.stats
print(json.dumps({"output": float(out[0, 0]), "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values()),
                  "package": sktensorcnn.__file__}))
"""


def _run(package_root: Path, cache: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(package_root),
           "NUMBA_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True,
                          cwd=package_root,
                          capture_output=True, text=True, timeout=600)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(result["package"]).parent == package_root / "sktensorcnn"
    return result


def test_editing_a_registry_recompiles_the_kernels_that_inline_it(tmp_path):
    source = Path(sktensorcnn.__file__).parent
    copy = tmp_path / "pkg" / "sktensorcnn"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "numba_cache"

    first = _run(copy.parent, cache)
    assert first["output"] == -0.02 and first["misses"] == 1
    second = _run(copy.parent, cache)
    assert second["output"] == -0.02 and second["hits"] == 1

    registry = copy / "activations.py"
    text = registry.read_text()
    assert "LEAKY_SLOPE = 0.01\n" in text
    registry.write_text(text.replace("LEAKY_SLOPE = 0.01\n", "LEAKY_SLOPE = 0.2\n"))
    third = _run(copy.parent, cache)
    assert third["output"] == -0.4 and third["misses"] == 1
