"""The gallery examples run (quickly) as users would run them.

The documentation build runs every example too (sphinx-gallery, warnings as
errors, in CI), and the examples take about 3 of the suite's minutes on a slow
2-core machine, so here they run only when ``SKTENSORCNN_TEST_EXAMPLES=1`` is
set: to check an edited example without building the documentation.
"""

import os
import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py"))

RUN_EXAMPLES = os.environ.get("SKTENSORCNN_TEST_EXAMPLES") == "1"


@pytest.mark.skipif(not RUN_EXAMPLES, reason=(
    "the documentation build runs the examples (python -m sphinx -W docs ...); "
    "set SKTENSORCNN_TEST_EXAMPLES=1 to run them here"))
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
# plt.show() on the non-interactive backend of a machine without a screen
@pytest.mark.filterwarnings("ignore:FigureCanvasAgg is non-interactive")
def test_example_runs(path, tmp_path, monkeypatch):
    plt = pytest.importorskip("matplotlib.pyplot")
    plt.switch_backend("Agg")
    monkeypatch.chdir(tmp_path)
    try:
        runpy.run_path(str(path), run_name="__main__")
        if "matplotlib" in path.read_text():
            assert plt.get_fignums(), f"{path.name} drew no figure"
    finally:
        plt.close("all")


def test_the_documentation_runs_every_example():
    """The gallery that the documentation build executes picks every example
    (its directory and its ``filename_pattern``, read from ``docs/conf.py``)."""
    import re

    conf = runpy.run_path(str(Path(__file__).parents[1] / "docs" / "conf.py"))
    gallery = conf["sphinx_gallery_conf"]
    assert EXAMPLES
    assert Path(gallery["examples_dirs"]) == EXAMPLES[0].parent
    assert gallery["plot_gallery"] == "True" or os.environ.get(
        "SKTENSORCNN_DOCS_PLOT_GALLERY")
    for path in EXAMPLES:
        assert re.search(gallery["filename_pattern"], str(path)), path.name
