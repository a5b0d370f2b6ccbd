"""Reference intensity transforms in plain numpy (float64 arithmetic, no tricks).

These restate each definition directly; the parity tests check the compiled kernels against
them and check them against the peers (numpy, MONAI, nnU-Net's formula).
"""

from __future__ import annotations

import numpy as np

_ABSENT = object()


def window_bounds(center: float, width: float, convention: str = "simple") -> tuple[float, float]:
    if convention == "simple":
        return center - width / 2, center + width / 2
    if convention == "dicom":  # DICOM PS3.3 C.11.2.1.2.1: the ramp between the two thresholds
        return center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    if convention == "legacy":
        return (2 * center - width) / 2 + 0.5, (2 * center + width) / 2 + 0.5
    raise ValueError(convention)


def hu_window(x, lo: float, hi: float, out_range=(0.0, 1.0)) -> np.ndarray:
    """Clip to [lo, hi], then map linearly to out_range (float64 result)."""
    a, b = out_range
    clipped = np.clip(np.asarray(x, dtype=np.float64), lo, hi)
    return (clipped - lo) / (hi - lo) * (b - a) + a


def multi_window(x, bounds: list[tuple[float, float]], out_range=(0.0, 1.0)) -> np.ndarray:
    return np.stack([hu_window(x, lo, hi, out_range) for lo, hi in bounds])


def intensity_stats(x, mask=None, percentiles=(0.5, 99.5)) -> dict:
    values = np.asarray(x)
    if mask is not None:
        values = values[np.asarray(mask) != 0]
    values = values.ravel()
    return {
        "mean": float(values.astype(np.float64).mean()),
        "std": float(values.astype(np.float64).std()),
        "percentiles": np.percentile(values, list(percentiles)),
        "count": int(values.size),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def ct_normalize(x, mean: float, std: float, lo: float, hi: float) -> np.ndarray:
    """nnU-Net's CTNormalization: clip, subtract the mean, divide by max(std, 1e-8)."""
    y = np.clip(np.asarray(x, dtype=np.float64), lo, hi)
    return (y - mean) / max(std, 1e-8)


def mr_normalize(x, mask=None, method="zscore", percentiles=None, out_range=(0.0, 1.0), masked_only=False):
    x64 = np.asarray(x, dtype=np.float64)
    sel = np.ones(x64.shape, bool) if mask is None else (np.asarray(mask) != 0)
    values = x64[sel]
    lo, hi = -np.inf, np.inf
    if percentiles is not None:
        lo, hi = np.percentile(values, list(percentiles))
    clipped = np.clip(x64, lo, hi)
    if method == "zscore":
        v = np.clip(values, lo, hi)
        std = v.std()
        y = (clipped - v.mean()) / (std if std > 0 else 1.0)
    else:
        if percentiles is None:
            lo, hi = values.min(), values.max()
        a, b = out_range
        y = (clipped - lo) / (hi - lo) * (b - a) + a if hi > lo else np.full_like(clipped, a)
    if masked_only:
        y = np.where(sel, y, 0.0)
    return y
