"""The code blocks of the documentation pages run as written."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[1] / "docs"
BLOCK = re.compile(r"^\.\. code-block:: python\n((?:\n|   .*\n)+)", re.M)


def _blocks(page: Path) -> list[str]:
    return [re.sub(r"^   ", "", block, flags=re.M) for block in BLOCK.findall(
        page.read_text())]


PAGES = [page for page in sorted(DOCS.glob("*.rst")) if _blocks(page)]


def test_docs_have_code():
    assert PAGES


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_code_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"__docs_{page.stem}__"}
    for block in _blocks(page):  # in order, sharing names, as a reader would
        exec(compile(block, str(page), "exec"), namespace)
