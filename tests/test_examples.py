"""The gallery examples run (quickly) as users would run them."""

import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py"))


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


def test_there_are_examples():
    assert EXAMPLES
