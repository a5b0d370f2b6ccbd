"""MONAI ``SpatialResample``, ``Spacing`` and ``Spacingd`` on the compiled separable resampler.

MONAI decides everything about the output -- grid (``zoom_affine`` and ``compute_shape_offset``),
shape, affine, meta data and the ``applied_operations`` entry that ``inverse`` reads -- with its
own code; only the interpolation itself is replaced. MONAI samples output voxel ``j`` at input
index ``xform @ j`` with ``xform = inv(src_affine) @ dst_affine``. When ``xform`` is
axis-aligned (no rotation or shear: every off-diagonal term moves a sample by less than 1e-9
voxel) the sampling is separable, one pass per axis with ``offset + scale * k`` taps:

* ``mode="bilinear"`` / ``"nearest"`` (torch ``grid_sample``): ``padding_mode`` "border"
  (coordinates clamped) or "zeros" (taps outside weigh 0); nearest rounds ties to even, as
  ``grid_sample`` does;
* ``mode`` 0, 1 or 3 (scipy ``map_coordinates`` spline orders) with ``padding_mode`` "border" /
  "nearest" and ``align_corners=False``: scipy's 12 edge copies and cubic B-spline prefilter
  (order 3);

computed in float64 (MONAI's default ``dtype``) and returned as float32 like MONAI.
Every other case runs MONAI's own implementation unchanged, with MONAI's results and errors:
``dtype`` other than float64 (MONAI then builds its grid in that precision, positions ~1e-6
voxel apart from the float64 grid), rotated or sheared transforms, other modes (orders 2, 4, 5, "bicubic") and padding modes,
integer modes with ``align_corners=True``, nearest-neighbour grids with a coordinate within
1e-6 of a half-integer (there MONAI's own floating-point rounding picks the neighbour, e.g.
every sample of an exact 2x downsampling), lazy execution and pending operations, CUDA tensors,
inputs that require grad, more than three spatial axes, and order-3 grids reaching more than 11
voxels beyond the input.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import monai.transforms as _mt
import numpy as np
import torch
from monai.data import MetaTensor
from monai.data.utils import compute_shape_offset, to_affine_nd
from monai.data.meta_obj import get_track_meta
from monai.transforms.inverse import TraceableTransform
from monai.utils import convert_to_tensor, fall_back_tuple, get_equivalent_dtype

from .._axis_resample import near_half_integer, resample_axes

__all__ = ["SpatialResample", "Spacing", "Spacingd"]

_AFFINE_TOL = 1e-3          # MONAI's AFFINE_TOL (monai.utils.misc), for "nothing changes"
_OFF_AXIS_VOXELS = 1e-9     # largest sample shift an ignored off-diagonal term may cause
_SPLINE_PAD = 12            # kSplinePad of the kernel (scipy's pre-padding)
_EXACT_IN_FLOAT64 = {torch.float32, torch.float64, torch.uint8, torch.int8, torch.int16, torch.int32}


def _interpolation(mode: Any, padding_mode: Any) -> tuple[int, str, bool] | None:
    """(order, boundary, nearest_half_even) of a MONAI (mode, padding_mode), or None."""
    padding = str(padding_mode.value if isinstance(padding_mode, Enum) else padding_mode)
    if isinstance(mode, (int, np.integer)) and not isinstance(mode, bool):
        if int(mode) in (0, 1, 3) and padding in ("border", "nearest"):   # scipy "nearest" = border
            return int(mode), "edge", False
        return None
    name = str(mode.value if isinstance(mode, Enum) else mode)
    boundary = {"border": "edge", "zeros": "zeros"}.get(padding)
    if boundary is None or name not in ("bilinear", "nearest"):
        return None
    return (1 if name == "bilinear" else 0), boundary, True


def _spline_in_range(c: float, n: int) -> bool:
    f = np.floor(c + _SPLINE_PAD)
    return f - 1 >= 0 and f + 2 <= n + 2 * _SPLINE_PAD - 1


def _axis_maps(xform: np.ndarray, in_size: tuple, out_size: tuple, order: int) -> tuple[list, list] | None:
    """Per-axis (scales, offsets) of an axis-aligned index transform, or None."""
    r = len(in_size)
    lin = xform[:r, :r]
    if not np.all(np.isfinite(xform)) or np.any(xform[r, :r] != 0) or xform[r, r] != 1:
        return None
    reach = np.abs(lin) * (np.asarray(out_size, np.float64) - 1).clip(min=0)[None, :]
    np.fill_diagonal(reach, 0.0)
    if reach.sum(axis=1).max(initial=0.0) > _OFF_AXIS_VOXELS:
        return None
    scales = [float(lin[a, a]) for a in range(r)]
    offsets = [float(xform[a, r]) for a in range(r)]
    if order == 0 and any(near_half_integer(offsets[a], scales[a], out_size[a]) for a in range(r)):
        return None
    if order == 3:
        for a in range(r):
            ends = (offsets[a], offsets[a] + scales[a] * (out_size[a] - 1))
            if not all(_spline_in_range(c, in_size[a]) for c in ends):
                return None
    return scales, offsets


def _fast_spatial_resample(img: torch.Tensor, dst_affine: Any, spatial_size: Any, mode: Any, padding_mode: Any,
                           align_corners: Any, dtype_pt: torch.dtype, transform_info: dict) -> torch.Tensor | None:
    """MONAI's eager ``spatial_resample`` with the compiled kernel, or None (nothing done) when
    the case is not one it reproduces."""
    if not isinstance(img, torch.Tensor) or img.device.type != "cpu" or img.requires_grad:
        return None
    if isinstance(img, MetaTensor) and img.pending_operations:
        return None
    interp = _interpolation(mode, padding_mode)
    # A float32 dtype makes MONAI build its sampling grid in float32 (positions off by ~1e-6
    # voxel): only the float64 default is reproduced.
    if interp is None or dtype_pt != torch.float64 or img.dtype not in _EXACT_IN_FLOAT64:
        return None
    order, boundary, half_even = interp
    spline = not half_even      # scipy map_coordinates (integer mode): computes in float64
    if spline and align_corners:
        return None             # MONAI's numpy path rescales the grid about its centre then
    # MONAI's own reading of the grid (spatial_resample, monai/transforms/spatial/functional.py).
    original_spatial_shape = img.peek_pending_shape() if isinstance(img, MetaTensor) else img.shape[1:]
    src_affine = img.peek_pending_affine() if isinstance(img, MetaTensor) else torch.eye(4)
    spatial_rank = min(len(original_spatial_shape), max(int(img.ndim) - 1, 1), 3)
    if (not isinstance(spatial_size, int) or spatial_size != -1) and spatial_size is not None:
        spatial_rank = min(len(tuple(np.atleast_1d(np.asarray(spatial_size)))), max(int(img.ndim) - 1, 1), 3)
    if spatial_rank not in (2, 3) or img.ndim - 1 != spatial_rank or img.shape[0] == 0:
        return None
    src_affine = to_affine_nd(spatial_rank, src_affine).to(torch.float64)
    if dst_affine is None:
        return None
    dst_affine = to_affine_nd(spatial_rank, dst_affine)
    dst_affine = torch.as_tensor(dst_affine, dtype=src_affine.dtype)
    in_spatial_size = torch.tensor(original_spatial_shape[:spatial_rank])
    if isinstance(spatial_size, int) and spatial_size == -1:
        spatial_size = in_spatial_size
    elif spatial_size is None:
        spatial_size, _ = compute_shape_offset(in_spatial_size, src_affine, dst_affine)
    spatial_size = torch.tensor(fall_back_tuple(tuple(np.atleast_1d(np.asarray(spatial_size)))[:spatial_rank],
                                                in_spatial_size, lambda x: x >= 0))
    try:
        xform = np.linalg.solve(src_affine.numpy(), dst_affine.numpy())
    except np.linalg.LinAlgError:
        return None     # MONAI raises its own error
    out_size = tuple(int(v) for v in spatial_size)
    in_size = tuple(int(v) for v in img.shape[1:])
    same_size = np.allclose(out_size, in_size)
    if same_size and (np.allclose(src_affine.numpy(), dst_affine.numpy(), atol=_AFFINE_TOL)
                      or np.allclose(xform, np.eye(len(xform)), atol=_AFFINE_TOL)):
        return None     # MONAI returns the input as float32: nothing to accelerate
    if 0 in out_size or min(out_size) < 0:
        return None
    maps = _axis_maps(xform, in_size, out_size, order)
    if maps is None:
        return None
    data = img.as_tensor() if isinstance(img, MetaTensor) else img
    if boundary == "zeros" and img.is_floating_point() and not bool(torch.isfinite(data).all()):
        return None     # grid_sample skips out-of-range taps; the kernel weighs them 0 (NaN * 0)
    img = convert_to_tensor(data=img, track_meta=get_track_meta())
    extra_info = {
        "dtype": str(dtype_pt)[6:],
        "mode": mode.value if isinstance(mode, Enum) else mode,
        "padding_mode": padding_mode.value if isinstance(padding_mode, Enum) else padding_mode,
        "align_corners": align_corners if align_corners is not None else _mt.TraceKeys.NONE,
        "src_affine": src_affine,
    }
    meta_info = TraceableTransform.track_transform_meta(
        img, sp_size=spatial_size, affine=torch.as_tensor(xform, dtype=torch.float64),
        extra_info=extra_info, orig_size=original_spatial_shape, transform_info=transform_info, lazy=False)
    data = img.as_tensor() if isinstance(img, MetaTensor) else img
    result = _resample_axes(data.detach().numpy(), out_size, maps, order, boundary, half_even)
    out = convert_to_tensor(result, dtype=torch.float32, track_meta=get_track_meta(), wrap_sequence=True)
    return out.copy_meta_from(meta_info) if isinstance(out, MetaTensor) else out


def _resample_axes(x: np.ndarray, out_size: tuple, maps: tuple[list, list], order: int, boundary: str,
                   half_even: bool) -> np.ndarray:
    """(C, *out_size) float32 of the kernel on (C, *spatial) ``x``, computed in float64 as MONAI."""
    return resample_axes(x, out_size, maps[0], maps[1], order, boundary, half_even).astype(np.float32)


class SpatialResample(_mt.SpatialResample):
    """``monai.transforms.SpatialResample`` with axis-aligned resampling on the compiled kernel
    (see the module docstring for the cases that run MONAI's code). Same arguments, output grid,
    float32 output, meta data and ``inverse`` as MONAI's."""

    def __call__(self, img: torch.Tensor, dst_affine: torch.Tensor | None = None, spatial_size: Any = None,
                 mode: Any = None, padding_mode: Any = None, align_corners: bool | None = None, dtype: Any = None,
                 lazy: bool | None = None) -> torch.Tensor:
        lazy_ = self.lazy if lazy is None else lazy
        if not lazy_ and isinstance(img, torch.Tensor):
            dtype_pt = get_equivalent_dtype(dtype or self.dtype or img.dtype, torch.Tensor)
            out = _fast_spatial_resample(
                img, dst_affine, spatial_size, self.mode if mode is None else mode,
                self.padding_mode if padding_mode is None else padding_mode,
                self.align_corners if align_corners is None else align_corners, dtype_pt,
                self.get_transform_info())
            if out is not None:
                return out
        return super().__call__(img, dst_affine, spatial_size, mode, padding_mode, align_corners, dtype, lazy)


def _compiled_resampler(old: _mt.SpatialResample) -> SpatialResample:
    return SpatialResample(mode=old.mode, padding_mode=old.padding_mode, align_corners=old.align_corners,
                           dtype=old.dtype, lazy=old.lazy)


class Spacing(_mt.Spacing):
    """``monai.transforms.Spacing`` on our :class:`SpatialResample`: MONAI's grid, shape, affine and
    meta; the interpolation compiled where the transform is axis-aligned (the module docstring
    lists the cases that run MONAI's code)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sp_resample = _compiled_resampler(self.sp_resample)


class Spacingd(_mt.Spacingd):
    """``monai.transforms.Spacingd`` on our :class:`Spacing` (MONAI's per-key ``mode``,
    ``padding_mode``, ``align_corners``, ``dtype`` and ``ensure_same_shape``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spacing_transform.sp_resample = _compiled_resampler(self.spacing_transform.sp_resample)
