"""Sphinx configuration: ``pip install sphinx``, ``sphinx-build docs docs/_build``."""

project = "sktensorcnn"
author = "sktensorcnn developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax"]
napoleon_numpy_docstring = True
autodoc_member_order = "bysource"
html_theme = "alabaster"
exclude_patterns = ["_build"]
