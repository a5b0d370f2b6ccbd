"""Sphinx configuration of the medseg_fast API reference (built from the numpydoc docstrings).

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` (warnings are errors).
"""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "python")))

project = "medseg_fast"
author = "medseg_fast developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "numpydoc", "sphinx.ext.intersphinx"]
autosummary_generate = False
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_typehints = "none"  # the numpydoc "Parameters" sections say the types
numpydoc_show_class_members = False
numpydoc_validation_checks: set = set()
intersphinx_mapping: dict = {}  # offline build: no inventories fetched
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False
