"""Build the HTML API reference from the numpydoc docstrings (Sphinx), with the README as its front
page (set-up, the MONAI / TorchIO / nnU-Net recipes, the benchmarks).

Usage::

    pip install sphinx myst-parser            # or: pip install "medseg-fast[docs]"
    python -m medseg_fast.apidocs OUT_DIR     # OUT_DIR/index.html

The Sphinx sources are generated into a temporary folder on every build (nothing to keep in sync
by hand): one page per public module below, documented from the module's ``__all__``. Warnings are
errors by default, so a docstring that Sphinx cannot parse fails the build (the test suite builds
it too). Pages of optional integrations (MONAI, TorchIO, nnU-Net) are left out only when their
peer package is not installed, and the build says so.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
import tempfile
from pathlib import Path

__all__ = ["PAGES", "build"]

# (module, title, peer package needed to import it or None). The top-level page lists the kernels
# that `medseg_fast` re-exports; the other pages are modules whose names are used as `mf.metrics...`.
PAGES: list[tuple[str, str, str | None]] = [
    ("medseg_fast", "Kernels (intensity, resampling, components, distances, sliding window)", None),
    ("medseg_fast.metrics", "Metrics", None),
    ("medseg_fast.lesion", "Lesion-wise metrics", None),
    ("medseg_fast.losses", "Losses (torch)", "torch"),
    ("medseg_fast.models", "Models (torch)", "torch"),
    ("medseg_fast.io", "Image files and DICOM SEG", "SimpleITK"),
    ("medseg_fast.report", "Evaluation reports (HTML, overlays)", None),
    ("medseg_fast.monai", "MONAI drop-in classes", "monai"),
    ("medseg_fast.torchio", "TorchIO drop-in classes", "torchio"),
    ("medseg_fast.nnunet", "nnU-Net v2 plug-in", "nnunetv2"),
]

_CONF = '''
project = "medseg_fast"
release = {release!r}
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "myst_parser"]
source_suffix = {{".rst": "restructuredtext", ".md": "markdown"}}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_typehints = "description"
autodoc_member_order = "bysource"
# Methods overriding a peer's (MONAI's forward...) keep their own text only: the peer's docstrings are
# not ours to check.
autodoc_inherit_docstrings = False
autodoc_default_options = {{"members": True, "imported-members": True, "show-inheritance": True}}
myst_heading_anchors = 3
# The README links files of the repository (benchmark tables, licences) that are not pages here.
suppress_warnings = ["myst.xref_missing", "myst.header"]
html_theme = "alabaster"
html_title = "medseg_fast API reference"

import re

# Shapes are written as in the code, "(B, C, *spatial)": keep the star literal instead of letting
# reStructuredText read it as the start of an emphasis.
_STAR = re.compile(r"(?<=[(,] )\\*(?=\\w)|(?<=\\()\\*(?=\\w)")


def _escape_outside_literals(line):
    parts = line.split("``")
    return "``".join(p if i % 2 else _STAR.sub(r"\\\\*", p) for i, p in enumerate(parts))


def _literal_stars(app, what, name, obj, options, lines):
    lines[:] = [_escape_outside_literals(line) for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _literal_stars)
'''


def _readme() -> str:
    """The README: from the installed distribution's metadata, else from the source checkout."""
    checkout = Path(__file__).resolve().parents[2] / "README.md"
    if checkout.is_file():
        return checkout.read_text(encoding="utf-8")
    try:
        text = importlib.metadata.metadata("medseg-fast").get_payload()
    except importlib.metadata.PackageNotFoundError:
        text = None
    return text or "# medseg_fast\n\n(README not found.)\n"


def _page_available(module: str, peer: str | None) -> tuple[bool, str]:
    if peer is not None and importlib.util.find_spec(peer) is None:
        return False, f"{module}: skipped, {peer} is not installed"
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:   # a module not in this build (never hide a broken import)
        if exc.name == module:
            return False, f"{module}: skipped, not in this version"
        raise
    return True, ""


def write_sources(src: Path) -> list[str]:
    """Write conf.py, index.rst, the README page and one page per available module into `src`;
    return the notes about pages left out."""
    from . import __version__

    src.mkdir(parents=True, exist_ok=True)
    (src / "conf.py").write_text(_CONF.format(release=__version__), encoding="utf-8")
    (src / "readme.md").write_text(_readme(), encoding="utf-8")
    notes, names = [], []
    for module, title, peer in PAGES:
        ok, note = _page_available(module, peer)
        if not ok:
            notes.append(note)
            continue
        name = module.replace(".", "_")
        names.append(name)
        rule = "=" * len(title)
        (src / f"{name}.rst").write_text(f"{title}\n{rule}\n\n.. automodule:: {module}\n", encoding="utf-8")
    toc = "\n".join(f"   {n}" for n in ["readme", *names])
    (src / "index.rst").write_text(
        "medseg_fast\n===========\n\n.. toctree::\n   :maxdepth: 2\n\n" + toc + "\n", encoding="utf-8"
    )
    return notes


def build(out_dir: str | Path, *, warnings_as_errors: bool = True, quiet: bool = True) -> Path:
    """Build the HTML reference into `out_dir`; returns the path of ``index.html``.

    Raises
    ------
    ImportError
        Sphinx or myst-parser is not installed.
    RuntimeError
        Sphinx reported an error (or, with `warnings_as_errors`, a warning).
    """
    try:
        from sphinx.cmd.build import build_main
    except ImportError as exc:
        raise ImportError("building the API reference needs Sphinx and myst-parser: "
                          "pip install sphinx myst-parser") from exc
    importlib.import_module("myst_parser")
    out = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="medseg-apidocs-") as tmp:
        src = Path(tmp) / "src"
        for note in write_sources(src):
            print(note, file=sys.stderr)
        args = ["-b", "html", "-E", "-j", "1", str(src), str(out), "-d", str(Path(tmp) / "doctrees")]
        if warnings_as_errors:
            args[:0] = ["-W", "--keep-going"]
        if quiet:
            args[:0] = ["-q"]
        status = build_main(args)
    if status != 0:
        raise RuntimeError(f"sphinx-build failed with status {status} (see the messages above)")
    return out / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medseg_fast.apidocs", description=__doc__.splitlines()[0])
    parser.add_argument("out", help="output folder for the HTML pages")
    parser.add_argument("--allow-warnings", action="store_true", help="do not turn Sphinx warnings into errors")
    args = parser.parse_args(argv)
    index = build(args.out, warnings_as_errors=not args.allow_warnings, quiet=False)
    print(f"API reference written to {index}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
