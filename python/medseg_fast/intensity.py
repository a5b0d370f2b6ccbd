"""CT/MR intensity kernels: windowing, multi-window stacks, exact statistics, normalization.

Every output is produced in one pass over the input by the same per-voxel function,
``y = (clamp(x, lo, hi) - center) * scale + offset``, in float32 (double for 32/64-bit integer and
float64 inputs), then stored as float32, float16 or bfloat16. Saturated voxels get exactly the
ends of the output range. A call whose windows float32 cannot evaluate accurately (wider than
float32's range, ends or inputs near +-FLT_MAX, a subnormal slope) runs in double throughout, a
rare slow path chosen once per call. Windows that collapse (lo == hi) or overflow in float64 are
refused. Inputs follow ``numpy.clip``: NaN stays NaN, +-inf saturate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any, Union

import numpy as np

from . import _backend as B
from . import _ext
from . import _validate as V

__all__ = [
    "WINDOWS",
    "window_bounds",
    "hu_window",
    "multi_window",
    "intensity_stats",
    "ct_normalize",
    "mr_normalize",
]

# Typical (center, width) presets in HU, as listed in radiology references (e.g. Radiopaedia,
# "Windowing (CT)"). Users can pass their own (center, width) pairs anywhere a name is accepted.
WINDOWS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (80.0, 200.0),
    "stroke": (40.0, 40.0),
    "temporal_bone": (600.0, 2800.0),
    "soft_tissue": (50.0, 400.0),
    "mediastinum": (50.0, 350.0),
    "lung": (-600.0, 1500.0),
    "abdomen": (50.0, 400.0),
    "liver": (30.0, 150.0),
    "bone": (400.0, 1800.0),
}

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


# ----------------------------------------------------------------------------- windows
def window_bounds(center: float, width: float, convention: str = "simple") -> tuple[float, float]:
    """Intensity bounds ``(lo, hi)`` of a window given as center and width.

    Parameters
    ----------
    center, width : float
        Window center (level) and width, in the image's units (HU for CT). ``width > 0``.
    convention : {"simple", "dicom", "legacy"}
        ``"simple"``: ``center ± width / 2``. ``"dicom"``: the linear VOI LUT of DICOM PS3.3
        C.11.2.1.2.1, whose ramp runs from ``center - 0.5 - (width - 1) / 2`` to
        ``center - 0.5 + (width - 1) / 2`` (needs ``width > 1``). ``"legacy"``:
        ``lo = (2 center - width) / 2 + 0.5``, ``hi = (2 center + width) / 2 + 0.5``.

    Examples
    --------
    >>> window_bounds(40, 80)
    (0.0, 80.0)
    >>> window_bounds(40, 80, convention="dicom")
    (0.0, 79.0)
    """
    c = _finite(center, "center")
    w = _finite(width, "width")
    if w <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    if convention == "simple":
        lo, hi = c - w / 2.0, c + w / 2.0
    elif convention == "dicom":
        if w <= 1:
            raise ValueError(f"width must be > 1 for the dicom convention, got {width}")
        lo, hi = c - 0.5 - (w - 1.0) / 2.0, c - 0.5 + (w - 1.0) / 2.0
    elif convention == "legacy":
        lo, hi = (2.0 * c - w) / 2.0 + 0.5, (2.0 * c + w) / 2.0 + 0.5
    else:
        raise ValueError(f"convention must be 'simple', 'dicom' or 'legacy', got {convention!r}")
    # A width below the center's float64 resolution collapses the window; an end past float64's
    # range overflows. Either would divide by zero or give NaN later.
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(
            f"center={center}, width={width} give the window lo={lo}, hi={hi} in float64; "
            "expected finite bounds with lo < hi (width too small for the center's precision, or too large)"
        )
    return lo, hi


def _resolve_bounds(center, width, lo, hi, convention) -> tuple[float, float]:
    given_cw = center is not None or width is not None
    given_lohi = lo is not None or hi is not None
    if given_cw == given_lohi:
        raise ValueError("give either (center, width) or (lo, hi), not both and not neither; "
                         f"got center={center}, width={width}, lo={lo}, hi={hi}")
    if given_cw:
        if center is None or width is None:
            raise ValueError(f"center and width must both be given, got center={center}, width={width}")
        return window_bounds(center, width, convention)
    if lo is None or hi is None:
        raise ValueError(f"lo and hi must both be given, got lo={lo}, hi={hi}")
    lo_f, hi_f = _finite(lo, "lo"), _finite(hi, "hi")
    if lo_f >= hi_f:
        raise ValueError(f"lo must be < hi, got lo={lo}, hi={hi}")
    return lo_f, hi_f


def _window_params(lo: float, hi: float, out_range: tuple[float, float]):
    a, b = out_range
    span = hi - lo
    scale = (b - a) / span if math.isfinite(span) else math.nan
    if not (math.isfinite(scale) and math.isfinite(b - a)):
        raise ValueError(
            f"window lo={lo}, hi={hi} with out_range=({a}, {b}): expected hi - lo and the slope "
            "(out_range[1] - out_range[0]) / (hi - lo) to be finite in float64"
        )
    return (lo, hi, lo, scale, a)


def hu_window(
    x: Any,
    center: float | None = None,
    width: float | None = None,
    *,
    lo: float | None = None,
    hi: float | None = None,
    out_range: tuple[float, float] = (0.0, 1.0),
    dtype: Any = "float32",
    out: Any = None,
    convention: str = "simple",
):
    """Clip ``x`` to a window and map it linearly to ``out_range``, in one pass.

    Equals MONAI ``ScaleIntensityRange(a_min=lo, a_max=hi, b_min, b_max, clip=True)`` up to float
    rounding. Accepts numpy arrays, torch tensors (CPU/CUDA) and cupy arrays of any real dtype and
    layout; returns the same kind on the same device (same memory order as ``x``). NaN stays NaN.

    Parameters
    ----------
    x : array
        Intensities (HU for CT).
    center, width : float, optional
        The window as center/width (see :func:`window_bounds` and ``convention``) ...
    lo, hi : float, optional
        ... or as explicit bounds. Give exactly one of the two forms.
    out_range : (float, float)
        Values that ``lo`` and ``hi`` map to.
    dtype : {"float32", "float16", "bfloat16"}
        Output dtype (bfloat16 for numpy needs ``ml_dtypes``).
    out : array, optional
        Preallocated output of ``x``'s shape, kind and device and of ``dtype``.

    Examples
    --------
    >>> import numpy as np
    >>> hu_window(np.array([-1000, 40, 2000], np.int16), 40, 80)
    array([0. , 0.5, 1. ], dtype=float32)
    """
    xv = _input(x)
    lo_f, hi_f = _resolve_bounds(center, width, lo, hi, convention)
    dtype_s = _output_dtype(dtype)
    params = [_window_params(lo_f, hi_f, _out_range(out_range))]
    return _apply_windows(xv, params, dtype_s, out, stacked=False)


def _window_spec(spec: WindowSpec, index: int) -> tuple[float, float]:
    if isinstance(spec, str):
        if spec not in WINDOWS:
            raise ValueError(f"windows[{index}]: unknown preset {spec!r}; known presets: {sorted(WINDOWS)}")
        return WINDOWS[spec]
    try:
        c, w = spec
    except (TypeError, ValueError):
        raise ValueError(f"windows[{index}] must be a preset name or a (center, width) pair, got {spec!r}") from None
    c, w = _finite(c, f"windows[{index}] center"), _finite(w, f"windows[{index}] width")
    if w <= 0:
        raise ValueError(f"windows[{index}] width must be > 0, got {w}")
    return c, w


def multi_window(
    x: Any,
    windows: Sequence[WindowSpec],
    *,
    out_range: tuple[float, float] = (0.0, 1.0),
    dtype: Any = "float32",
    out: Any = None,
    convention: str = "simple",
):
    """Several windows of ``x`` stacked on a new leading axis, reading ``x`` once.

    ``windows`` holds preset names from :data:`WINDOWS` or ``(center, width)`` pairs; the result
    has shape ``(len(windows), *x.shape)``, channel-first as networks expect.

    Examples
    --------
    >>> import numpy as np
    >>> multi_window(np.zeros((4, 4), np.int16), ["brain", (0, 100)]).shape
    (2, 4, 4)
    """
    xv = _input(x)
    if isinstance(windows, (str, bytes)) or not isinstance(windows, Sequence) or len(windows) == 0:
        raise ValueError(f"windows must be a non-empty sequence of preset names or (center, width) pairs, got {windows!r}")
    rng = _out_range(out_range)
    params = []
    for i, spec in enumerate(windows):
        c, w = _window_spec(spec, i)
        lo_f, hi_f = window_bounds(c, w, convention)
        params.append(_window_params(lo_f, hi_f, rng))
    return _apply_windows(xv, params, _output_dtype(dtype), out, stacked=True)


# ----------------------------------------------------------------------------- statistics
_SMALL_INT = ("bool", "uint8", "int8", "uint16", "int16")


def _bin_values(dtype: str) -> np.ndarray:
    """Value of each histogram bin (bins are indexed by the order-preserving key)."""
    if dtype == "bool":
        return np.array([0, 1], dtype=np.int64)
    if dtype == "uint8":
        return np.arange(256, dtype=np.int64)
    if dtype == "int8":
        return np.arange(256, dtype=np.int64) - 128
    if dtype == "uint16":
        return np.arange(65536, dtype=np.int64)
    return np.arange(65536, dtype=np.int64) - 32768


class _Summary:
    """count/mean/std/min/max and an order-statistic fetcher for the selected voxels.

    ``count``, ``mean``, ``var``, ``min`` and ``max`` follow numpy: with ``nan_policy="propagate"`` a
    NaN among the selected voxels makes every statistic NaN and ``count`` includes it
    (``x[mask].size``); with ``"omit"`` NaNs are dropped (numpy's ``nan*`` functions). Infinities
    count as values: the mean is +-inf (NaN when both signs occur), the variance NaN.
    """

    def __init__(self, xv: B.ArrayView, mask: B.ArrayView | None, nan_policy: str = "propagate"):
        self.xv, self.mask = xv, mask
        self.propagate = nan_policy == "propagate"
        self.scaled_std: float | None = None
        self.layout, strides = B.plan_layout(xv.shape, xv.strides, *([mask.strides] if mask is not None else []))
        self.x_desc = B.describe(xv, strides[0])
        self.m_desc = B.describe(mask, strides[1]) if mask is not None else B.describe(None, [0] * len(self.layout))
        self.hist = None
        self.nan_count = 0
        if xv.size == 0:
            self.count, self.mean, self.var, self.min, self.max = 0, math.nan, math.nan, math.nan, math.nan
        elif xv.dtype in _SMALL_INT:
            # One histogram pass gives exact sums and exact order statistics.
            self.hist = np.asarray(_call(xv, "histogram16", self.layout, self.x_desc, self.m_desc))
            self.values = _bin_values(xv.dtype)
            self._from_hist(-math.inf, math.inf)
        else:
            self._from_moments(-math.inf, math.inf)

    def _from_hist(self, lo: float, hi: float) -> None:
        nz = np.flatnonzero(self.hist)
        counts = self.hist[nz].astype(np.int64)
        self.count = n = int(counts.sum())
        if n == 0:
            self.mean = self.var = self.min = self.max = math.nan
            return
        if lo == -math.inf and hi == math.inf:
            # Exact integer sums (Python ints cannot overflow), then one rounding each.
            vals = self.values[nz].astype(object)
            cnt = counts.astype(object)
            s1 = int(np.dot(vals, cnt))
            s2 = int(np.dot(vals * vals, cnt))
            self.mean = s1 / n
            self.var = (n * s2 - s1 * s1) / (n * n)
            self.min, self.max = float(self.values[nz[0]]), float(self.values[nz[-1]])
        else:
            vals = np.clip(self.values[nz].astype(np.float64), lo, hi)
            self.mean = math.fsum(vals * counts) / n
            self.var = math.fsum((vals - self.mean) ** 2 * counts) / n
            self.min, self.max = float(vals.min()), float(vals.max())

    def _from_moments(self, lo: float, hi: float) -> None:
        self.scaled_std = None
        count, nan_count, mean, m2, mn, mx = _call(self.xv, "moments", self.layout, self.x_desc, self.m_desc, lo, hi)
        self.count, self.nan_count = int(count), int(nan_count)
        if count == 0:
            self.mean = self.var = self.min = self.max = math.nan
        elif mn == -math.inf or mx == math.inf:
            # The kernel's shifted sums are meaningless with infinities; numpy's are: the sum is
            # +-inf (inf - inf = NaN when both occur) and every deviation from it NaN or inf.
            self.mean = math.nan if (mn == -math.inf and mx == math.inf) else (math.inf if mx == math.inf else -math.inf)
            self.var, self.min, self.max = math.nan, float(mn), float(mx)
        elif max(-mn, mx) > 1e150:
            # float64 data this large overflows the kernel's sums of squares: a rare slow path
            # over a scaled float64 copy of the selected values (numpy's results, overflow to inf).
            self.min, self.max = float(mn), float(mx)
            self.mean, self.var, self.scaled_std = self._scaled_moments(lo, hi)
        else:
            self.mean, self.var, self.min, self.max = mean, m2 / count, float(mn), float(mx)
        if self.propagate and self.nan_count:
            self.mean = self.var = self.min = self.max = math.nan
            self.count += self.nan_count

    def _scaled_moments(self, lo: float, hi: float) -> tuple[float, float, float]:
        def host(v: B.ArrayView) -> np.ndarray:
            if v.kind == "torch":
                return v.obj.detach().cpu().numpy()
            return v.obj.get() if v.kind == "cupy" else np.asarray(v.obj)

        values = host(self.xv)
        values = values[host(self.mask) != 0] if self.mask is not None else values.ravel()
        values = np.clip(values[~np.isnan(values)], lo, hi).astype(np.float64)
        scale = float(np.max(np.abs(values)))
        scaled = values / scale
        var = float(np.var(scaled))
        # The variance itself may exceed float64 (inf); the std is scaled back from its root.
        return scale * float(np.mean(scaled)), scale * scale * var, scale * math.sqrt(var)

    def clamp(self, lo: float, hi: float) -> None:
        """Recompute mean/var of clamp(x, lo, hi) over the same voxels."""
        if self.hist is not None:
            self._from_hist(lo, hi)
        else:
            self._from_moments(lo, hi)

    @property
    def std(self) -> float:
        if self.scaled_std is not None and self.var == self.var:
            return self.scaled_std
        return math.sqrt(self.var) if self.var == self.var else math.nan

    def order_statistics(self, ranks: np.ndarray) -> np.ndarray:
        """ranks-th smallest selected values (0-based), in the input dtype (float64 for integers)."""
        if self.hist is not None:
            cum = np.cumsum(self.hist)
            bins = np.searchsorted(cum, ranks, side="right")
            return self.values[bins].astype(np.float64)
        dtype = self.xv.dtype
        buffer = np.empty(len(ranks), dtype=np.uint16 if dtype == "bfloat16" else np.dtype(dtype))
        _call(self.xv, "order_statistics", self.layout, self.x_desc, self.m_desc, [int(r) for r in ranks],
              buffer.__array_interface__["data"][0])
        if dtype == "bfloat16":
            return (buffer.astype(np.uint32) << 16).view(np.float32)
        if dtype in ("float16", "float32", "float64"):
            return buffer
        return buffer.astype(np.float64)

    def percentiles(self, q_percent: np.ndarray, *, finite: bool = False) -> np.ndarray:
        """numpy.percentile (nanpercentile when omitting NaN), method="linear", bit for bit.

        ``finite=True`` (the normalizers): where numpy's interpolation in the input dtype
        overflows between finite order statistics (float32 data near +-FLT_MAX gives inf), it is
        redone in float64, which cannot overflow there.
        """
        n = self.count
        if n == 0 or (self.propagate and self.nan_count):
            return np.full(q_percent.shape, np.nan)
        q = np.true_divide(q_percent, 100)
        virtual = (n - 1) * q
        prev = np.floor(virtual)
        nxt = prev + 1
        above = virtual >= n - 1
        prev[above] = -1
        nxt[above] = -1
        gamma = virtual - prev
        prev_idx = np.where(prev < 0, n - 1, prev).astype(np.int64)
        next_idx = np.where(nxt < 0, n - 1, nxt).astype(np.int64)
        ranks = np.unique(np.concatenate([prev_idx, next_idx]))
        values = self.order_statistics(ranks)
        a = values[np.searchsorted(ranks, prev_idx)]
        b = values[np.searchsorted(ranks, next_idx)]
        # numpy's _lerp, with the same operand dtypes, so results agree exactly (infinite order
        # statistics give NaN there too, silently here).
        with np.errstate(invalid="ignore", over="ignore"):
            diff = b - a
            result = np.add(a, diff * gamma)
            np.subtract(b, diff * (1 - gamma), out=result, where=gamma >= 0.5, casting="unsafe")
        if finite and not np.all(np.isfinite(result)) and np.all(np.isfinite(values)):
            a, b = a.astype(np.float64), b.astype(np.float64)
            diff = b - a
            result = np.add(a, diff * gamma)
            np.subtract(b, diff * (1 - gamma), out=result, where=gamma >= 0.5)
        return result.astype(np.float64)


def intensity_stats(
    x: Any, mask: Any = None, percentiles: Any = (0.5, 99.5), *, nan_policy: str = "propagate"
) -> dict:
    """Exact statistics of ``x`` (optionally of the voxels where ``mask`` is nonzero).

    Returns a dict with ``mean``, ``std`` (population, ddof=0), ``percentiles`` (a float64 array,
    equal bit for bit to ``numpy.percentile(values, percentiles)`` with the default "linear"
    method), ``count``, ``min`` and ``max``. Integer inputs of up to 16 bits (CT) take one
    histogram pass; wider types use exact radix selection (no sort, no copy).

    Non-finite values follow numpy, field by field, for ``values = x[mask]``:

    - ``nan_policy="propagate"`` (default): a NaN among the selected voxels makes ``mean``,
      ``std``, ``min``, ``max`` and every percentile NaN, and ``count == values.size``
      (``np.mean``, ``np.std``, ``np.min``, ``np.max``, ``np.percentile``).
    - ``nan_policy="omit"``: NaNs are dropped first, ``count`` is the number of non-NaN values
      (``np.nanmean``, ``np.nanstd``, ``np.nanmin``, ``np.nanmax``, ``np.nanpercentile``).

    Infinities are values under both policies: ``mean`` is +-inf (NaN if both signs occur),
    ``std`` is NaN, ``min``/``max`` may be infinite, percentiles are what numpy's interpolation
    gives. An empty selection (or all NaN with ``"omit"``) gives NaN everywhere, ``count`` 0 (or
    the NaN count with ``"propagate"``); numpy would warn or raise there.

    Examples
    --------
    >>> import numpy as np
    >>> s = intensity_stats(np.arange(101, dtype=np.int16), percentiles=(10, 50))
    >>> float(s["mean"]), s["percentiles"].tolist()
    (50.0, [10.0, 50.0])
    """
    xv = _input(x)
    q = _percentile_list(percentiles)
    policy = _nan_policy(nan_policy)
    mv = B.mask_view(mask, xv) if mask is not None else None
    summary = _Summary(xv, mv, policy)
    return {
        "mean": float(summary.mean),
        "std": float(summary.std),
        "percentiles": summary.percentiles(q),
        "count": int(summary.count),
        "min": float(summary.min),
        "max": float(summary.max),
    }


def _stats_from_mapping(stats: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """(mean, std, lo, hi) from our own intensity_stats dict or an nnU-Net fingerprint entry."""
    if not isinstance(stats, Mapping):
        raise TypeError(f"stats must be a mapping, got {type(stats).__name__}")
    try:
        mean, std = stats["mean"], stats["std"]
        if "percentile_00_5" in stats:
            lo, hi = stats["percentile_00_5"], stats["percentile_99_5"]
        elif "lo" in stats:
            lo, hi = stats["lo"], stats["hi"]
        else:
            lo, hi = stats["percentiles"][0], stats["percentiles"][-1]
    except (KeyError, IndexError, TypeError):
        raise ValueError(
            "stats must hold 'mean', 'std' and the clipping bounds as 'percentile_00_5'/'percentile_99_5' "
            f"(nnU-Net fingerprint), 'lo'/'hi', or 'percentiles'; got keys {sorted(stats)}"
        ) from None
    mean, std = _finite(mean, "stats['mean']"), _finite(std, "stats['std']")
    lo, hi = _finite(lo, "stats lower bound"), _finite(hi, "stats upper bound")
    if std < 0:
        raise ValueError(f"stats['std'] must be >= 0, got {std}")
    if lo > hi:
        raise ValueError(f"stats lower bound must be <= upper bound, got {lo} > {hi}")
    return mean, std, lo, hi


def ct_normalize(
    x: Any,
    *,
    mask: Any = None,
    stats: Mapping[str, Any] | None = None,
    percentiles: Sequence[float] = (0.5, 99.5),
    dtype: Any = "float32",
    out: Any = None,
    nan_policy: str = "propagate",
):
    """nnU-Net's CT normalization: clip to foreground percentiles, subtract the mean, divide by std.

    ``y = (clip(x, p_lo, p_hi) - mean) / max(std, 1e-8)`` for every voxel, where the statistics come
    from ``stats`` (dataset-level, e.g. an nnU-Net fingerprint's ``foreground_intensity_properties``
    entry or an :func:`intensity_stats` result with ``lo``/``hi``) or, if not given, from the voxels
    of ``x`` selected by ``mask`` (all voxels without a mask), computed exactly in one extra pass.
    ``percentiles`` is a pair ``0 <= low <= high <= 100``. The statistics treat NaN as
    :func:`intensity_stats` does with ``nan_policy``: by default a NaN voxel makes them, and so
    every output voxel, NaN (as nnU-Net's numpy code gives); ``"omit"`` computes them from the
    other voxels and only NaN voxels stay NaN. An infinite voxel makes the std, and so the
    output, NaN under both policies (numpy's std).

    Examples
    --------
    >>> import numpy as np
    >>> y = ct_normalize(np.arange(-1000, 1000, dtype=np.int16).reshape(20, 100))
    >>> round(float(y.mean()), 3), y.dtype
    (0.0, dtype('float32'))
    """
    xv = _input(x)
    dtype_s = _output_dtype(dtype)
    policy = _nan_policy(nan_policy)
    if stats is not None:
        if mask is not None:
            raise ValueError("give either stats or mask, got both: dataset-level stats are not recomputed from a mask")
        mean, std, lo, hi = _stats_from_mapping(stats)
    else:
        q = _percentile_pair(percentiles)
        mv = B.mask_view(mask, xv) if mask is not None else None
        if xv.size == 0:
            return _apply_windows(xv, [(0.0, 0.0, 0.0, 1.0, 0.0)], dtype_s, out, stacked=False)
        summary = _Summary(xv, mv, policy)
        if summary.count == 0 and summary.nan_count == 0:
            raise ValueError(f"mask selects no voxels (got 0 of {xv.size}): cannot compute normalization statistics")
        lo, hi = (float(v) for v in summary.percentiles(q, finite=True))
        mean, std = float(summary.mean), float(summary.std)
    params = [(lo, hi, mean, 1.0 / max(std, 1e-8), 0.0)]
    return _apply_windows(xv, params, dtype_s, out, stacked=False)


def mr_normalize(
    x: Any,
    *,
    mask: Any = None,
    method: str = "zscore",
    percentiles: Sequence[float] | None = None,
    out_range: tuple[float, float] = (0.0, 1.0),
    dtype: Any = "float32",
    out: Any = None,
    masked_only: bool = False,
    nan_policy: str = "propagate",
):
    """Z-score or min-max normalization of an MR volume, with optional mask and robust percentiles.

    ``method="zscore"``: ``(x - mean) / std`` with statistics over the mask (all voxels without
    one); a zero std divides by 1, as MONAI ``NormalizeIntensity`` does. ``method="minmax"``: maps
    ``[min, max]`` of the selected voxels to ``out_range`` (MONAI ``ScaleIntensity``). With
    ``percentiles=(lo, hi)`` the volume is first clipped to those percentiles of the selected
    voxels (z-score statistics are then those of the clipped values; min-max uses the percentiles
    as bounds, MONAI ``ScaleIntensityRangePercentiles(clip=True)``). With ``masked_only=True``
    voxels outside the mask are set to 0 (MONAI ``NormalizeIntensity(nonzero=True)`` when the mask
    is ``x != 0``); otherwise every voxel is normalized with the mask's statistics.
    ``nan_policy`` treats NaN in the statistics as :func:`ct_normalize` does (default: a selected
    NaN voxel makes every output NaN, as MONAI's numpy statistics give; ``"omit"``: statistics of
    the other voxels).

    Examples
    --------
    >>> import numpy as np
    >>> y = mr_normalize(np.array([1.0, 2.0, 3.0]))
    >>> [round(float(v), 4) for v in y]
    [-1.2247, 0.0, 1.2247]
    """
    xv = _input(x)
    dtype_s = _output_dtype(dtype)
    if method not in ("zscore", "minmax"):
        raise ValueError(f"method must be 'zscore' or 'minmax', got {method!r}")
    masked_only = V.flag(masked_only, "masked_only")
    if masked_only and mask is None:
        raise ValueError("masked_only=True needs a mask, got mask=None")
    policy = _nan_policy(nan_policy)
    q = _percentile_pair(percentiles) if percentiles is not None else None
    mv = B.mask_view(mask, xv) if mask is not None else None
    if xv.size == 0:
        return _apply_windows(xv, [(0.0, 0.0, 0.0, 1.0, 0.0)], dtype_s, out, stacked=False)
    summary = _Summary(xv, mv, policy)
    if summary.count == 0 and summary.nan_count == 0:
        raise ValueError(f"mask selects no voxels (got 0 of {xv.size}): cannot compute normalization statistics")
    lo, hi = -math.inf, math.inf
    if q is not None:
        lo, hi = (float(v) for v in summary.percentiles(q, finite=True))
    if method == "zscore":
        if percentiles is not None:
            summary.clamp(lo, hi)
        std = float(summary.std)
        params = (lo, hi, float(summary.mean), 1.0 / std if std > 0 else 1.0, 0.0)
    else:
        a, b = _out_range(out_range)
        low, high = (lo, hi) if percentiles is not None else (float(summary.min), float(summary.max))
        span = high - low
        # Without percentiles nothing is clipped (voxels outside the mask may map outside out_range).
        params = (lo, hi, low, (b - a) / span if span > 0 else 0.0, a)
    return _apply_windows(xv, [params], dtype_s, out, stacked=False, mask=mv if masked_only else None,
                          outside_value=0.0)
