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
from typing import Any

from . import _backend as B
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

from ._intensity_common import (
    WindowSpec,
    _apply_windows,
    _finite,
    _input,
    _nan_policy,
    _out_range,
    _output_dtype,
    _percentile_pair,
)
from ._intensity_stats import _Summary, intensity_stats
from ._meta import keeps_meta
from ._typing import Array, ArrayLike


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


@keeps_meta
def hu_window(
    x: Array,
    center: float | None = None,
    width: float | None = None,
    *,
    lo: float | None = None,
    hi: float | None = None,
    out_range: tuple[float, float] = (0.0, 1.0),
    dtype: Any = "float32",
    out: Array | None = None,
    convention: str = "simple",
) -> Array:
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
    x: Array,
    windows: Sequence[WindowSpec],
    *,
    out_range: tuple[float, float] = (0.0, 1.0),
    dtype: Any = "float32",
    out: Array | None = None,
    convention: str = "simple",
) -> Array:
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


@keeps_meta
def ct_normalize(
    x: Array,
    *,
    mask: ArrayLike | None = None,
    stats: Mapping[str, Any] | None = None,
    percentiles: Sequence[float] = (0.5, 99.5),
    dtype: Any = "float32",
    out: Array | None = None,
    nan_policy: str = "propagate",
) -> Array:
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


@keeps_meta
def mr_normalize(
    x: Array,
    *,
    mask: ArrayLike | None = None,
    method: str = "zscore",
    percentiles: Sequence[float] | None = None,
    out_range: tuple[float, float] = (0.0, 1.0),
    dtype: Any = "float32",
    out: Array | None = None,
    masked_only: bool = False,
    nan_policy: str = "propagate",
) -> Array:
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
