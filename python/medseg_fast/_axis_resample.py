"""Resampling on axis-aligned affine grids (the kernel behind medseg_fast.monai.Spacing and the
non-zoom spacings of medseg_fast.torchio.Resample): output sample k of spatial axis a reads the
input at ``offsets[a] + scales[a] * k``, computed in float64."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import _backend as B
from . import _ext


def near_half_integer(offset: float, scale: float, n_out: int) -> bool:
    """Whether a sample coordinate of the axis lies within 1e-6 of a half-integer: there a
    nearest-neighbour peer's own floating-point rounding of its grid picks the neighbour."""
    c = offset + scale * np.arange(n_out, dtype=np.float64)
    return bool(np.any(np.abs(c - np.floor(c) - 0.5) < 1e-6))


def resample_axes(x: np.ndarray, out_size: Sequence[int], scales: Sequence[float], offsets: Sequence[float],
                  order: int, boundary: str = "edge", half_even: bool = False) -> np.ndarray:
    """(C, *out_size) float64 of (C, *spatial) ``x`` (2 or 3 spatial axes, any strides) on the grid.

    order 0, 1 or 3; boundary "edge" (clamped coordinates) or "zeros" (orders 0 and 1);
    half_even: nearest ties to even (torch grid_sample) instead of up (scipy, ITK)."""
    lead = 4 - x.ndim          # 2 spatial axes: the frame's first spatial axis has length 1
    xv = B.view(x, "x")
    in_frame = (x.shape[0],) + (1,) * lead + x.shape[1:]
    in_strides = [xv.strides[0]] + [0] * lead + list(xv.strides[1:])
    out_frame = (x.shape[0],) + (1,) * lead + tuple(int(v) for v in out_size)
    cpu = _ext.cpu_module()
    spec = cpu.ResampleSpec(in_shape=in_frame, out_shape=out_frame, orders=(0,) + (order,) * 3)
    out = np.empty(out_frame, np.float64)
    cpu.resample_mapped(spec, [1.0] * (1 + lead) + [float(v) for v in scales],
                        [0.0] * (1 + lead) + [float(v) for v in offsets], boundary, half_even,
                        B.describe(xv, in_strides), B.describe(B.view(out, "out", writable=True)))
    return out.reshape((x.shape[0],) + tuple(int(v) for v in out_size))
