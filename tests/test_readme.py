"""The README's Python code blocks run as written."""

import re
from pathlib import Path

import numpy as np

from sktensorcnn import conv_pool_features
from sktensorcnn.datasets import make_cnn_regression

README = Path(__file__).parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)


def test_readme_has_python_blocks():
    assert BLOCKS


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    for block in BLOCKS:  # in order, sharing names, as a reader would run them
        exec(compile(block, str(README), "exec"), namespace)
    # the quick example: on fresh data from the same teacher, the fitted Tucker
    # network predicts nearly as well as the teacher itself (noiseless output)
    est, teacher = namespace["est"], namespace["teacher"]
    X, y, _ = make_cnn_regression("T1", n_samples=2000, teacher=teacher,
                                  random_state=1)
    Z = conv_pool_features(X, teacher.geometry).reshape(len(X), -1)
    oracle = Z @ teacher.weight.ravel()
    oracle_r2 = 1 - np.sum((y - oracle) ** 2) / np.sum((y - y.mean()) ** 2)
    assert oracle_r2 - 0.01 <= est.score(X, y) <= oracle_r2 + 0.01
    assert est.kernels_.shape == (2, 5, 5, 3)
    assert est.coef_.shape == (10, 10, 8)
