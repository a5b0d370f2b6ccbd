"""MONAI ``Spacing`` / ``Spacingd``: MONAI's own implementation, re-exported under our namespace.

A compiled fast path for ``Spacing`` has to reproduce MONAI's output grid *and* its
interpolation: sample positions ``inv(src_affine) @ dst_affine @ index`` (an arbitrary
per-axis scale and shift, not the pixel-centre mapping ``(k + 0.5) * n_in / n_out - 0.5`` of
:func:`medseg_fast.resample`), and for spline modes scipy's prefilter with its boundary modes
(``map_coordinates`` after 12 edge copies for ``padding_mode="border"``). Our resample kernel
does not take a per-axis scale and offset today, so every call runs MONAI's code: results,
grid, meta data and ``inverse`` are MONAI's, with no speed-up. (A separable scipy path and a
separable torch path for ``"bilinear"`` were measured and were no faster than MONAI on the
2-core CI machine; they were not kept.) The classes exist so that a pipeline importing all of
its transforms from :mod:`medseg_fast.monai` works unchanged.
"""

from __future__ import annotations

import monai.transforms as _mt

__all__ = ["Spacing", "Spacingd"]


class Spacing(_mt.Spacing):
    """``monai.transforms.Spacing``, MONAI's implementation (see the module docstring)."""


class Spacingd(_mt.Spacingd):
    """``monai.transforms.Spacingd``, MONAI's implementation (see the module docstring)."""
