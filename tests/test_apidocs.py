"""The API reference builds from the docstrings with Sphinx warnings as errors, and its pages carry
the public names (a docstring Sphinx cannot parse, or a public module that fails to import, fails here)."""

from __future__ import annotations

import html
import re
import subprocess
import sys

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("myst_parser")



@pytest.fixture(scope="module")
def built(tmp_path_factory):
    # In its own process: Sphinx keeps global state, and this suite turns every warning into an
    # exception, which Sphinx's own deprecation notices would trip over.
    out = tmp_path_factory.mktemp("apidocs")
    run = subprocess.run([sys.executable, "-m", "medseg_fast.apidocs", str(out)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    return out / "index.html"


def _text(path):
    return html.unescape(re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8")))


def test_reference_builds_with_warnings_as_errors(built):
    assert built.is_file()
    index = _text(built)
    assert "Kernels" in index and "Metrics" in index


@pytest.mark.parametrize(("page", "names"), [
    ("medseg_fast.html", ["hu_window", "resample_argmax", "sliding_window_inference", "distance_transform"]),
    ("medseg_fast_metrics.html", ["hausdorff", "surface_dice", "evaluate"]),
    ("medseg_fast_losses.html", ["DiceFocalLoss", "GeneralizedDiceLoss"]),
])
def test_pages_document_the_public_names(built, page, names):
    text = _text(built.parent / page)
    for name in names:
        assert name in text, f"{name} missing from {page}"


def test_shapes_keep_their_star(built):
    # "(B, C, *spatial)" must not turn into an emphasis that swallows the rest of the sentence.
    text = (built.parent / "medseg_fast.html").read_text(encoding="utf-8")
    assert "*spatial" in html.unescape(text)


def test_readme_is_the_front_page(built):
    # Highlighted code is split into spans: drop the tags without adding spaces.
    page = (built.parent / "readme.html").read_text(encoding="utf-8")
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert 'pip install torch==2.13.0 && pip install ".[test]" && python -m pytest -q tests' in text
