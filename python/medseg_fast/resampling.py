"""Resampling of images and label maps: nearest, linear and cubic B-spline, nnU-Net's separate z.

Every axis is resized on its own (separable passes): output sample ``k`` of an axis resized from
``n_in`` to ``n_out`` samples reads the input at ``(k + 0.5) * n_in / n_out - 0.5`` (pixel
centres aligned, torch's ``align_corners=False``), and points outside the image take the edge
value. With these conventions

* ``order=0/1/3`` equals ``skimage.transform.resize(x, out_shape, order, mode="edge",
  anti_aliasing=False)`` (which is ``scipy.ndimage.zoom(..., mode="nearest", grid_mode=True)``
  followed by clipping to the input range), channel by channel, as nnU-Net calls it;
* ``order=1`` equals ``torch.nn.functional.interpolate(mode="linear"/"bilinear"/"trilinear",
  align_corners=False)``; ``order=0`` equals ``mode="nearest-exact"`` (ties round up);
* with ``separate_z`` the result equals nnU-Net v2's ``resample_data_or_seg`` with
  ``do_separate_z=True``: each slice across the low-resolution axis is resized in-plane at
  ``order`` (and clipped to that slice's range), then that axis is resized at ``order_z``.

Order 3 is the cubic B-spline of skimage/scipy (an interpolating spline: the recursive prefilter of
Unser et al. 1993 runs once per axis on the line padded with 12 edge copies each side), not the
Keys/Catmull-Rom "bicubic" of torch or OpenCV.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

from . import _backend as B
from . import _ext
from . import _validate as V

__all__ = ["resample", "resample_labels"]

ORDERS = (0, 1, 3)
FLOAT_OUT = ("float32", "float64", "float16", "bfloat16")
_INTEGER_DTYPES = ("bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64")


# ----------------------------------------------------------------------------- validation
def _order(value: Any, name: str, allowed: Sequence[int] = ORDERS) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return int(value)


def _shape(out_shape: Any, ndim: int | None) -> tuple[int, ...]:
    try:
        values = tuple(out_shape)
    except TypeError:
        raise ValueError(f"out_shape must be a sequence of positive integers, got {out_shape!r}") from None
    if ndim is not None and len(values) != ndim:
        raise ValueError(f"out_shape must have {ndim} values (one per spatial axis), got {out_shape!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, Integral) or int(v) <= 0:
            raise ValueError(f"out_shape must hold positive integers, got {out_shape!r}")
    return tuple(int(v) for v in values)


def _spacing(value: Any, name: str, ndim: int) -> tuple[float, ...]:
    # The _validate rule (a scalar is isotropic); no range limit: only ratios are formed here.
    return V.spacing(value, ndim, name, "resample (one per spatial axis)", limits=None)


def _spatial_dims(out_shape: Any, spacing: Any, new_spacing: Any) -> int:
    """Number of trailing spatial axes: the length of out_shape, else of a spacing sequence."""
    scalar = False
    for value in (out_shape, spacing, new_spacing):
        if value is None:
            continue
        if value is not out_shape and V.is_number(value):
            scalar = True   # isotropic: says nothing about the number of axes
            continue
        try:
            n = len(value)
        except TypeError:
            raise ValueError(f"out_shape / spacing must be sequences, got {value!r}") from None
        if not 1 <= n <= 3:
            raise ValueError(f"1, 2 or 3 spatial axes are supported, got {n} values in {value!r} "
                             "(out_shape and spacing list spatial axes only, not channels)")
        return n
    if scalar:
        raise ValueError(f"spacing={spacing!r} and new_spacing={new_spacing!r} are single numbers, which do not say "
                         "how many trailing axes are spatial; give out_shape or one of them per axis")
    raise ValueError("give out_shape, or spacing and new_spacing")


def _lowres_axes(spacing: Sequence[float]) -> list[int]:
    sp = np.asarray(spacing, dtype=np.float64)
    return [int(i) for i in np.flatnonzero(np.max(sp) / sp == 1)]


def _anisotropic(spacing: Sequence[float] | None, threshold: float) -> bool:
    return spacing is not None and float(np.max(spacing) / np.min(spacing)) > threshold


def _separate_axis(separate_z: Any, spacing, new_spacing, threshold: float, ndim: int) -> int | None:
    """nnU-Net v2 ``determine_do_sep_z_and_axis``: the spatial axis resampled separately, or None."""
    if separate_z is None:
        if _anisotropic(spacing, threshold):
            axes = _lowres_axes(spacing)
        elif _anisotropic(new_spacing, threshold):
            axes = _lowres_axes(new_spacing)
        else:
            return None
    elif isinstance(separate_z, (bool, np.bool_)):
        if not separate_z:
            return None
        if spacing is None:
            raise ValueError("separate_z=True needs spacing to find the low-resolution axis "
                             "(or pass that axis as an int, e.g. separate_z=0)")
        axes = _lowres_axes(spacing)
    elif isinstance(separate_z, Integral):
        axis = int(separate_z)
        if not -ndim <= axis < ndim:
            raise ValueError(f"separate_z must be None, a bool or a spatial axis in [{-ndim}, {ndim}), got {separate_z}")
        return axis % ndim
    else:
        raise ValueError(f"separate_z must be None, a bool or a spatial axis index, got {separate_z!r}")
    # Several axes sharing the largest spacing (e.g. 0.24 x 1.25 x 1.25): nnU-Net does not separate.
    return axes[0] if len(axes) == 1 else None


def _merge_leading(shape: Sequence[int], strides: Sequence[int]) -> tuple[int, int] | None:
    """(count, stride) of the leading axes seen as one channel axis, or None if they cannot merge."""
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    dims = [(n, s) for n, s in zip(shape, strides) if n != 1]
    if not dims:
        return count, 0
    for (_n0, s0), (n1, s1) in zip(dims, dims[1:]):
        if s0 != s1 * n1:
            return None
    return count, dims[-1][1]


def _contiguous(xv: B.ArrayView) -> B.ArrayView:
    """One documented copy, for leading axes whose strides cannot be merged."""
    if xv.kind == "numpy":
        return B.view(np.ascontiguousarray(xv.obj))
    if xv.kind == "torch":
        return B.view(xv.obj.contiguous())
    return B.view(B._cupy().ascontiguousarray(xv.obj))


def _frame(v: B.ArrayView, ndim: int) -> tuple[list[int], list[int]]:
    """Shape and strides of `v` in the kernels' (channels, s0, s1, s2) frame."""
    lead = _merge_leading(v.shape[: v.ndim - ndim], v.strides[: v.ndim - ndim])
    assert lead is not None
    shape = [lead[0]] + V.pad3(v.shape[v.ndim - ndim:], 1)
    strides = [lead[1]] + V.pad3(v.strides[v.ndim - ndim:], 0)
    return shape, strides


def _input(x: Any, ndim: int, name: str) -> B.ArrayView:
    xv = B.view(x, name)
    if xv.ndim < ndim:
        raise ValueError(f"{name} must have at least {ndim} dimensions ({ndim} spatial axes, optional leading "
                         f"channel/batch axes), got {xv.describe()}")
    if any(n == 0 for n in xv.shape[xv.ndim - ndim:]):
        raise ValueError(f"{name} must have at least one voxel along every spatial axis, got {xv.describe()}")
    if _merge_leading(xv.shape[: xv.ndim - ndim], xv.strides[: xv.ndim - ndim]) is None:
        xv = _contiguous(xv)
    return xv


def _geometry(x: Any, name: str, ndim: int, out_shape, spacing, new_spacing, separate_z, anisotropy_threshold):
    """Validated input view, output spatial shape and separate axis (or None) of one call."""
    if isinstance(anisotropy_threshold, bool) or not isinstance(anisotropy_threshold, (Real, np.floating)) or not (
        math.isfinite(float(anisotropy_threshold)) and float(anisotropy_threshold) > 0
    ):
        raise ValueError(f"anisotropy_threshold must be a positive number, got {anisotropy_threshold!r}")
    spacing_t = _spacing(spacing, "spacing", ndim) if spacing is not None else None
    new_spacing_t = _spacing(new_spacing, "new_spacing", ndim) if new_spacing is not None else None
    xv = _input(x, ndim, name)
    in_spatial = xv.shape[xv.ndim - ndim:]
    if out_shape is None:
        if spacing_t is None or new_spacing_t is None:
            raise ValueError("give out_shape, or both spacing and new_spacing")
        shape_t = tuple(int(round(s / t * n)) for n, s, t in zip(in_spatial, spacing_t, new_spacing_t))
        if any(n <= 0 for n in shape_t):
            raise ValueError(f"spacing={spacing_t} and new_spacing={new_spacing_t} give an empty output shape "
                             f"{shape_t} for spatial shape {in_spatial}")
    else:
        shape_t = _shape(out_shape, ndim)
    if spacing_t is not None and new_spacing_t is None:
        new_spacing_t = tuple(s * n / m for s, n, m in zip(spacing_t, in_spatial, shape_t))
    lowres = _separate_axis(separate_z, spacing_t, new_spacing_t, float(anisotropy_threshold), ndim)
    return xv, shape_t, lowres


def _call(v: B.ArrayView, name: str, *args) -> None:
    fn = getattr(_ext.module_for(v.device), name)
    if v.device == "cuda":
        with B.device_guard(v):
            fn(*args, B.stream_of(v))
    else:
        fn(*args)


def _output_dtype(xv: B.ArrayView, dtype: Any, all_nearest: bool) -> str:
    if dtype is not None:
        resolved = B.dtype_name(dtype)
        if resolved not in FLOAT_OUT and not (all_nearest and resolved == xv.dtype):
            raise ValueError(f"dtype must be one of {FLOAT_OUT} (or x's dtype for order 0), got {dtype!r}")
        return resolved
    if xv.dtype in FLOAT_OUT or all_nearest:
        return xv.dtype
    return "float32"


# ----------------------------------------------------------------------------- public API
def resample(
    x: Any,
    out_shape: Sequence[int] | None = None,
    *,
    spacing: float | Sequence[float] | None = None,
    new_spacing: float | Sequence[float] | None = None,
    order: int = 1,
    separate_z: bool | int | None = None,
    anisotropy_threshold: float = 3.0,
    order_z: int = 0,
    clip: bool = True,
    dtype: Any = None,
):
    """Resample an image to a new shape or spacing (nearest, linear or cubic B-spline).

    The spatial axes are the last ``len(out_shape)`` (or ``len(spacing)``) axes of ``x``: 1, 2 or
    3 of them. Any axes before them (channels, batch) are carried along, so ``(C, D, H, W)`` with a
    3-value ``out_shape`` resamples every channel, and ``(N, C, H, W)`` with a 2-value one works as
    ``torch.nn.functional.interpolate`` does.

    Parameters
    ----------
    x : array
        numpy array, torch tensor (CPU/CUDA) or cupy array, any real dtype and memory layout.
    out_shape : sequence of int, optional
        Output size of the spatial axes. Without it, ``spacing`` and ``new_spacing`` give
        ``round(spacing / new_spacing * shape)`` per axis (nnU-Net's ``compute_new_shape``).
    spacing, new_spacing : float or sequence of float, optional
        Voxel size of ``x`` and of the result, in the array's axis order (mm); a single number is
        isotropic (then ``out_shape`` or the other one gives the number of spatial axes). They also decide
        ``separate_z`` when it is None. ``new_spacing`` defaults to the spacing ``out_shape`` implies.
    order : {0, 1, 3}
        0 nearest, 1 linear, 3 cubic B-spline (skimage/scipy's).
    separate_z : None, bool or int
        None decides as nnU-Net v2 does: when ``max(spacing) / min(spacing) > anisotropy_threshold``
        (else the same test on ``new_spacing``), the axis with the single largest spacing is
        resampled separately. True forces it (axis from ``spacing``), False disables it, an int
        names the spatial axis. That axis is resized after the others, at ``order_z``.
    anisotropy_threshold : float
        Spacing ratio above which z is resampled separately (nnU-Net's ``ANISO_THRESHOLD`` = 3).
    order_z : {0, 1, 3}
        Interpolation order along the separate axis (nnU-Net uses 0).
    clip : bool
        Clip order-3 results to the input range, per channel (per channel and slice with a
        separate axis), as skimage's ``resize(clip=True)`` and hence nnU-Net do.
    dtype : optional
        Output dtype: float32, float64, float16 or bfloat16. Default: floating inputs keep their
        dtype; integer and bool inputs give float32 (values not rescaled, as
        ``preserve_range=True``), except with order 0 everywhere, which copies values and keeps
        the dtype. Arithmetic is float32, or float64 for float64 outputs and 32/64-bit integers.

    Returns
    -------
    array
        Shape ``(*leading, *out_shape)``, C-contiguous, same kind and device as ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> ct = np.zeros((100, 256, 256), np.int16)
    >>> out = resample(ct, spacing=(2.5, 0.7, 0.7), new_spacing=(1.0, 1.0, 1.0), order=3)
    >>> out.shape, out.dtype
    ((250, 179, 179), dtype('float32'))
    >>> resample(np.arange(4.0), (8,)).tolist()
    [0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0]
    """
    ndim = _spatial_dims(out_shape, spacing, new_spacing)
    order = _order(order, "order")
    order_z = _order(order_z, "order_z")
    xv, shape_t, lowres = _geometry(x, "x", ndim, out_shape, spacing, new_spacing, separate_z, anisotropy_threshold)

    all_nearest = order == 0 and (lowres is None or order_z == 0)
    out_dtype = _output_dtype(xv, dtype, all_nearest)
    result = B.allocate(xv, xv.shape[: xv.ndim - ndim] + shape_t, out_dtype)
    ov = B.view(result, "out")
    in_frame, in_strides = _frame(xv, ndim)
    out_frame, out_strides = _frame(ov, ndim)
    if in_frame[0] == 0:
        return result
    if all_nearest and out_dtype == xv.dtype:
        _call(xv, "resample_nearest", in_frame, out_frame, B.describe(xv, in_strides), B.describe(ov, out_strides))
        return result
    axis4 = lambda a: a + 4 - ndim  # noqa: E731 - spatial axis -> kernel frame axis
    orders = [0] + [order] * 3
    late = -1
    if lowres is not None:
        late = axis4(lowres)
        orders[late] = order_z
    clip_axis = -1
    if clip and order == 3:
        clip_axis = late if late > 0 else 0
    spec = _ext.module_for(xv.device).ResampleSpec(in_shape=in_frame, out_shape=out_frame, orders=orders,
                                                   late_axis=late, clip_axis=clip_axis)
    _call(xv, "resample", spec, B.describe(xv, in_strides), B.describe(ov, out_strides))
    return result


def _label_range(xv: B.ArrayView) -> tuple[int, int]:
    """(min, max) of a non-empty bool or integer array of any kind, as Python ints.

    torch implements no reductions for uint16/uint32/uint64 (NotImplementedError "min_all"):
    those are reduced as int64, uint64 through its bit pattern (values >= 2**63 read negative).
    """
    obj = xv.obj
    if xv.kind != "torch":
        return int(obj.min()), int(obj.max())
    torch = B._torch()
    if obj.dtype == torch.bool:
        obj = obj.to(torch.uint8)
    if xv.dtype in ("uint16", "uint32"):
        obj = obj.to(torch.int64)
    if xv.dtype != "uint64":
        lo, hi = torch.aminmax(obj)
        return int(lo), int(hi)
    signed = obj.contiguous().view(torch.int64)
    high = signed < 0  # values >= 2**63
    low_values, high_values = signed[~high], signed[high]
    lo = int(low_values.min()) if low_values.numel() else int(high_values.min()) + 2**64
    hi = int(high_values.max()) + 2**64 if high_values.numel() else int(low_values.max())
    return lo, hi


def resample_labels(
    labels: Any,
    out_shape: Sequence[int] | None = None,
    *,
    num_classes: int | None = None,
    order: int = 1,
    spacing: float | Sequence[float] | None = None,
    new_spacing: float | Sequence[float] | None = None,
    separate_z: bool | int | None = None,
    anisotropy_threshold: float = 3.0,
):
    """Resample a label map: each class interpolated linearly and the argmax taken, in one pass.

    For every output voxel the weights of its 2, 4 or 8 linear-interpolation neighbours are summed
    per label and the label with the largest sum wins, which equals interpolating each class's
    one-hot mask with ``order=1`` (skimage ``resize(mode="edge")`` / torch ``interpolate``) and
    taking the argmax over classes; no one-hot or per-class volume is ever allocated. Exact ties
    go to the smallest label (numpy's argmax); sums are float32, so classes whose interpolated
    values differ by less than about 1e-6 may resolve differently from a float64 computation.
    nnU-Net's own loop (``resize_segmentation``) thresholds each class at 0.5 instead, which
    can leave voxels at 0 where no class reaches 0.5; this function never does.

    Parameters
    ----------
    labels : array
        Integer or bool label map; the last ``len(out_shape)`` axes are spatial, any leading axes
        are resampled independently.
    out_shape : sequence of int, optional
        Output size of the spatial axes (1, 2 or 3 values); or give ``spacing`` and ``new_spacing``.
    num_classes : int, optional
        When given, labels must lie in ``[0, num_classes)`` (checked). Otherwise any integer values
        are allowed.
    order : {0, 1}
        1: the per-class linear vote; 0: nearest neighbour (a plain copy of the nearest label).
    spacing, new_spacing, separate_z, anisotropy_threshold
        As in :func:`resample`: with a separate low-resolution axis (nnU-Net's default for
        segmentations, ``order_z=0``), that axis takes the nearest slice and the vote runs in-plane.

    Returns
    -------
    array
        Shape ``(*leading, *out_shape)``, the dtype, kind and device of ``labels``.

    Examples
    --------
    >>> import numpy as np
    >>> seg = np.array([[0, 0, 1, 1], [0, 2, 2, 1]], np.uint8)
    >>> resample_labels(seg, (4, 8), num_classes=3)
    array([[0, 0, 0, 0, 1, 1, 1, 1],
           [0, 0, 0, 0, 1, 1, 1, 1],
           [0, 0, 2, 2, 2, 2, 1, 1],
           [0, 0, 2, 2, 2, 2, 1, 1]], dtype=uint8)
    """
    ndim = _spatial_dims(out_shape, spacing, new_spacing)
    order = _order(order, "order", (0, 1))
    lv, shape_t, lowres = _geometry(labels, "labels", ndim, out_shape, spacing, new_spacing, separate_z,
                                    anisotropy_threshold)
    if lv.dtype not in _INTEGER_DTYPES:
        raise TypeError(f"labels must have an integer or bool dtype, got dtype={lv.dtype}")
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, Integral) or int(num_classes) < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if lv.size > 0:
            lo, hi = _label_range(lv)
            if lo < 0 or hi >= int(num_classes):
                raise ValueError(f"labels must lie in [0, num_classes) = [0, {int(num_classes)}), "
                                 f"got values in [{lo}, {hi}]")
    result = B.allocate(lv, lv.shape[: lv.ndim - ndim] + shape_t, lv.dtype)
    ov = B.view(result, "out")
    in_frame, in_strides = _frame(lv, ndim)
    out_frame, out_strides = _frame(ov, ndim)
    if in_frame[0] == 0:
        return result
    if order == 0:
        _call(lv, "resample_nearest", in_frame, out_frame, B.describe(lv, in_strides), B.describe(ov, out_strides))
        return result
    orders = [0] + [1] * 3
    if lowres is not None:
        orders[lowres + 4 - ndim] = 0
    _call(lv, "resample_labels", in_frame, out_frame, orders, B.describe(lv, in_strides), B.describe(ov, out_strides))
    return result
