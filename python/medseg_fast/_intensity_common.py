"""Shared pieces of the intensity kernels' facades: argument validation, the output check and
the window_apply call (used by :mod:`medseg_fast.intensity` and its statistics module)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from typing import Any, Union

import numpy as np

from . import _backend as B
from . import _ext
from . import _validate as V

OUTPUT_DTYPES = ("float32", "float16", "bfloat16")
WindowSpec = Union[str, Sequence[float]]


# ----------------------------------------------------------------------------- validation
def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (Real, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _output_dtype(dtype: Any, name: str = "dtype") -> str:
    resolved = B.dtype_name(dtype)
    if resolved not in OUTPUT_DTYPES:
        raise ValueError(f"{name} must be one of {OUTPUT_DTYPES}, got {dtype!r}")
    return resolved


def _out_range(out_range: Any) -> tuple[float, float]:
    try:
        a, b = out_range
    except (TypeError, ValueError):
        raise ValueError(f"out_range must be a pair (min, max), got {out_range!r}") from None
    return _finite(a, "out_range[0]"), _finite(b, "out_range[1]")


def _percentile_list(percentiles: Any, name: str = "percentiles") -> np.ndarray:
    try:
        raw = np.asarray(percentiles)
    except (TypeError, ValueError):
        raw = np.asarray(None, dtype=object)
    if raw.dtype.kind not in "iuf":  # bool, strings, objects, ragged sequences
        raise TypeError(f"{name} must be a number or a sequence of numbers in [0, 100], got {percentiles!r}")
    q = np.atleast_1d(raw.astype(np.float64))
    if q.ndim != 1 or q.size == 0:
        raise ValueError(f"{name} must be a number or a non-empty sequence of numbers in [0, 100], got {percentiles!r}")
    if not np.all(np.isfinite(q)) or np.any(q < 0) or np.any(q > 100):
        raise ValueError(f"{name} must lie in [0, 100], got {percentiles!r}")
    return q


def _percentile_pair(percentiles: Any) -> tuple[float, float]:
    q = _percentile_list(percentiles)
    if q.size != 2 or not q[0] <= q[1]:
        raise ValueError(f"percentiles must be a pair (low, high) with 0 <= low <= high <= 100, got {percentiles!r}")
    return q


NAN_POLICIES = ("propagate", "omit")


def _nan_policy(nan_policy: Any) -> str:
    return V.choice(nan_policy, "nan_policy", NAN_POLICIES)


def _input(x: Any, name: str = "x") -> B.ArrayView:
    xv = B.view(x, name)
    if xv.dtype not in B._ITEMSIZE:
        raise TypeError(f"{name} has unsupported dtype={xv.dtype}")
    return xv


def _check_out(out: Any, xv: B.ArrayView, shape: tuple[int, ...], dtype: str) -> B.ArrayView:
    ov = B.view(out, "out")
    B.check_same_device(xv, ov, "x", "out")
    if ov.shape != tuple(shape) or ov.dtype != dtype:
        raise ValueError(f"out must have shape={tuple(shape)} and dtype={dtype}, got shape={ov.shape}, dtype={ov.dtype}")
    same = ov.ptr == xv.ptr and ov.strides == xv.strides and ov.dtype == xv.dtype and len(shape) == xv.ndim
    if not same and ov.device == xv.device and _overlaps(_extent(ov), _extent(xv)):
        # A shifted view of x's buffer (out=b[1:] for x=b[:-1]) was overwritten before it was read.
        raise ValueError(
            "out must not overlap x's memory unless it is x itself with the same layout, got "
            f"x: {xv.describe()}, strides={xv.strides}; out: {ov.describe()}, strides={ov.strides}"
        )
    return ov


def _extent(v: B.ArrayView) -> tuple[int, int]:
    """Byte range [first, last) that a view's elements occupy (empty views occupy nothing)."""
    if v.size == 0:
        return v.ptr, v.ptr
    item = B._ITEMSIZE[v.dtype]
    low = sum(s * (n - 1) * item for s, n in zip(v.strides, v.shape) if s < 0)
    high = sum(s * (n - 1) * item for s, n in zip(v.strides, v.shape) if s > 0)
    return v.ptr + low, v.ptr + high + item


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


# ----------------------------------------------------------------------------- kernel calls
def _call(v: B.ArrayView, name: str, *args):
    fn = getattr(_ext.module_for(v.device), name)
    if v.device == "cuda":
        with B.device_guard(v):
            return fn(*args, B.stream_of(v))
    return fn(*args)


def _apply_windows(
    xv: B.ArrayView,
    params: list[tuple[float, float, float, float, float]],
    dtype: str,
    out: Any,
    *,
    stacked: bool,
    mask: B.ArrayView | None = None,
    outside_value: float = 0.0,
):
    """Runs window_apply; `stacked` puts the windows on a new leading axis."""
    shape = ((len(params),) if stacked else ()) + xv.shape
    if out is None:
        order = B.memory_order(xv)
        axis_order = ([0] + [a + 1 for a in order]) if stacked else order
        result = B.allocate(xv, shape, dtype, axis_order=axis_order)
        ov = B.view(result, "out")
    else:
        ov = _check_out(out, xv, shape, dtype)
        result = out
    if xv.size == 0 or not params:
        return result
    out_spatial = ov.strides[1:] if stacked else ov.strides
    window_stride = ov.strides[0] if stacked else 0
    arrays = [xv.strides, out_spatial] + ([mask.strides] if mask is not None else [])
    layout, strides = B.plan_layout(xv.shape, *arrays)
    mask_desc = B.describe(mask, strides[2]) if mask is not None else B.describe(None, [0] * len(layout))
    window = _ext.module_for(xv.device).Window
    windows = [window(lo=lo, hi=hi, center=c, scale=s, offset=o) for lo, hi, c, s, o in params]
    _call(xv, "window_apply", layout, B.describe(xv, strides[0]), B.describe(ov, strides[1]), window_stride,
          windows, mask_desc, float(outside_value))
    return result

