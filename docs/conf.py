"""Sphinx configuration of the documentation site.

Build it with ``pip install ".[docs]"`` and
``python -m sphinx -W -b html docs docs/_build/html``; the gallery runs every
script of ``examples/`` (their quick versions) and renders its output and figures.
"""

import os
import sys
from pathlib import Path

import sktensorcnn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the source tree, whether installed or not

project = "sktensorcnn"
author = "sktensorcnn developers"
copyright = "2026, sktensorcnn developers"
release = sktensorcnn.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5",
                    "auto_examples/*.codeobj.json"]
templates_path = ["_templates"]

# API reference: one page per public class and function
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}


def _skip_scikit_learn_members(app, what, name, obj, skip, options):
    """Leave out what scikit-learn's base classes provide (get_params,
    set_output, metadata routing ...): scikit-learn documents it."""
    module = getattr(obj, "__module__", None) or ""
    if module.startswith("sklearn") or name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_scikit_learn_members)
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# the docstrings cite papers by the tags of the references page, in brackets
numpydoc_validation_checks: set = set()

# the gallery: quick versions of the examples, their printed tables and figures
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "capture_repr": ("_repr_html_",),
    "matplotlib_animations": False,
    "plot_gallery": os.environ.get("SKTENSORCNN_DOCS_PLOT_GALLERY", "True"),
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "min_reported_time": 5,
}

html_theme = "pydata_sphinx_theme"
html_title = f"sktensorcnn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 8,
}
html_static_path: list = []
html_show_sourcelink = False

nitpicky = False
suppress_warnings = ["config.cache"]
