"""Reports people look at: overlay pictures with a legend, and the self-contained ``report.html`` that
``medseg-fast evaluate`` writes (no network access needed to open it: images, styles and the sort script are
inline)."""

from __future__ import annotations

import os

from ..io import write_text_atomic
from ._html import SORT_SCRIPT, png_bytes, render_report
from ._overlay import blend, centre_of_mass, gray, legend, orthogonal_views, side_by_side, voc_colormap

__all__ = ["voc_colormap", "gray", "blend", "legend", "centre_of_mass", "orthogonal_views", "side_by_side",
           "png_bytes", "render_report", "write_report", "SORT_SCRIPT"]


def write_report(path: str | os.PathLike, rows, metrics, images, **kwargs) -> None:
    """Write :func:`render_report` (``rows``: per case and class metric dicts with ``case``, ``class``,
    ``name``; ``images``: case -> PNG bytes) to ``path``, atomically."""
    write_text_atomic(path, render_report(rows, metrics, images, **kwargs))
