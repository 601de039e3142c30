"""Sphinx configuration of the refinedlr documentation site.

Build it with ``./scripts/docs`` (strict: every warning, broken cross-reference or missing include
fails the build) and serve it with ``./scripts/docs serve``. Sources are the Markdown (MyST) and
reStructuredText files in this folder; the API reference is generated from the library's
docstrings (autodoc + napoleon, Google style), the CLI reference from its argparse parsers and the
evidence pages from the committed reports, at build time. Nothing here fetches from the internet:
no intersphinx, no MathJax, no web fonts (the browser test checks that every request stays local).
"""

from __future__ import annotations

import sys
from importlib.metadata import version as _version
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

project = "refinedlr"
author = "refinedlr developers"
copyright = "refinedlr developers"
release = _version("refinedlr")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
    "refinedlr_docs",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "README.md"]
templates_path: list[str] = []

# --- MyST (Markdown pages) ---
myst_enable_extensions = ["colon_fence", "deflist", "attrs_inline"]
myst_heading_anchors = 3  # `[text](page.md#a-heading)` links to headings down to ###

# --- copy buttons (sphinx-copybutton): the prompts of pycon (``>>> ``, ``... ``) and console
# (``$ ``) blocks are not copied, and neither is their output: only the lines after a prompt are.
# Blocks without prompts (python, bash) are copied whole.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True
copybutton_remove_prompts = True

# --- search: "warm-up", "warmup" and "warm up" find the same pages (refinedlr_docs' English
# search language: every hyphenated word is also indexed joined, and these compounds in all three
# spellings)
html_search_options = {"compounds": ["warm-up"]}

# --- API reference: autodoc + napoleon (the docstrings are Google style) ---
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True
add_module_names = False
python_use_unqualified_type_names = True

# --- strict mode (sphinx-build -n): no intersphinx (offline), so names from other packages stay
# plain text instead of warnings. Every refinedlr name must resolve.
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(numpy|np|npt|numpy\.typing|torch|jax|jnp|optax|chex|transformers|lightning|L|"
        r"matplotlib|scipy|tensorboard|accelerate|argparse|pathlib|os|io|collections|typing|types|"
        r"warnings|dataclasses|contextlib|enum|abc|_io|typing_extensions)(\..*)?",
    ),
    # private helpers named in docstrings and type hints (not part of the reference)
    (r"py:.*", r"(.*\.)?_\w+"),
    # type aliases of the signatures (Literal[...] unions, spelled out in the docstrings)
    (r"py:class", r"NormKind|OnMismatch|AfterHorizon|FloatArray|RiskLevel"),
    # members ScheduleLR inherits from torch's LRScheduler
    (r"py:(attr|meth)", r"last_epoch|step|get_last_lr"),
]

# --- HTML (furo; system fonts, no CDN) ---
html_theme = "furo"
html_title = f"refinedlr {release}"
html_static_path = ["_static"]
html_css_files = ["refinedlr.css"]
html_js_files = ["refinedlr.js"]
html_favicon = "_static/favicon.svg"  # linked from every page (else browsers ask for /favicon.ico)
html_show_sphinx = False
html_copy_source = False
html_theme_options = {
    "source_repository": "",
    "navigation_with_keys": True,
}
