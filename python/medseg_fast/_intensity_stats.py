"""Exact intensity statistics (count, mean, std, min, max, percentiles) on one histogram pass for
<= 16-bit integers and exact radix selection for wider types; :func:`intensity_stats` is public in
:mod:`medseg_fast.intensity`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _backend as B

from ._intensity_common import _call, _input, _nan_policy, _percentile_list


# ----------------------------------------------------------------------------- statistics
def _has_nan(xv: B.ArrayView) -> bool:
    if xv.dtype not in ("float16", "bfloat16", "float32", "float64"):
        return False
    obj = xv.obj
    if xv.kind == "torch":
        return bool(obj.isnan().any())
    if xv.kind == "cupy":
        return bool(np.isnan(obj.get()).any())
    return bool(np.isnan(np.asarray(obj)).any())


def percentiles_of(x: Any, percentiles: Any) -> np.ndarray:
    """``numpy.percentile(x, percentiles)`` bit for bit (NaN propagates), without the moments pass
    of :func:`intensity_stats`."""
    xv = _input(x)
    return _Summary(xv, None, "propagate", moments=False).percentiles(_percentile_list(percentiles))


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

    def __init__(self, xv: B.ArrayView, mask: B.ArrayView | None, nan_policy: str = "propagate",
                 moments: bool = True):
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
        elif not moments and mask is None and self.propagate:
            # Percentiles only: the count is the size, and a NaN (numpy: every percentile NaN)
            # is found by one vectorised check instead of the moments pass.
            self.count, self.nan_count = int(xv.size), int(_has_nan(xv))
            self.mean = self.var = self.min = self.max = math.nan
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
