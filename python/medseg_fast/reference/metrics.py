"""Plain references of the segmentation metrics: surfaces by explicit neighbour tests and
distances by exhaustive search between surface points (small inputs only).

Conventions ("monai", "medpy", "deepmind") as described in :mod:`medseg_fast.metrics`. The
"deepmind" surfels are implemented here for 2-D masks (marching-squares contour lengths);
3-D surfel areas are checked against the surface-distance package itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .distance import nearest_distances

__all__ = ["dice", "iou", "confusion_matrix", "voxel_surface", "corner_surface_2d", "surface_distances",
           "hausdorff", "average_surface_distance", "surface_dice"]


def dice(pred: np.ndarray, gt: np.ndarray, empty: float = np.nan) -> float:
    p, g = np.asarray(pred) != 0, np.asarray(gt) != 0
    den = p.sum() + g.sum()
    return empty if den == 0 else 2.0 * (p & g).sum() / den


def iou(pred: np.ndarray, gt: np.ndarray, empty: float = np.nan) -> float:
    p, g = np.asarray(pred) != 0, np.asarray(gt) != 0
    union = (p | g).sum()
    return empty if union == 0 else (p & g).sum() / union


def confusion_matrix(pred: np.ndarray, gt: np.ndarray, k: int) -> np.ndarray:
    p, g = np.asarray(pred).ravel().astype(np.int64), np.asarray(gt).ravel().astype(np.int64)
    keep = (p >= 0) & (p < k) & (g >= 0) & (g < k)
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (g[keep], p[keep]), 1)
    return cm


def voxel_surface(mask: np.ndarray) -> np.ndarray:
    """Mask voxels with a face neighbour outside the mask (outside the array counts as outside)."""
    m = np.asarray(mask) != 0
    padded = np.pad(m, 1)
    inner = np.ones_like(m)
    for axis in range(m.ndim):
        for shift in (-1, 1):
            inner &= np.roll(padded, shift, axis=axis)[tuple(slice(1, -1) for _ in range(m.ndim))]
    return m & ~inner


_LENGTH_CODES = {1: "d", 2: "d", 3: "h", 4: "d", 5: "v", 6: "2d", 7: "d", 8: "d", 9: "2d", 10: "v", 11: "d",
                 12: "h", 13: "d", 14: "d"}


def corner_surface_2d(mask: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Corner grid (shape + 1) surface points (indices) and their marching-squares contour lengths."""
    m = np.pad(np.asarray(mask) != 0, 1).astype(int)
    h, w = np.asarray(mask).shape
    code = (8 * m[:-1, :-1] + 4 * m[:-1, 1:] + 2 * m[1:, :-1] + m[1:, 1:])[: h + 1, : w + 1]
    diag = 0.5 * np.hypot(spacing[0], spacing[1])
    value = {"d": diag, "2d": 2 * diag, "h": spacing[1], "v": spacing[0]}
    border = (code != 0) & (code != 15)
    idx = np.argwhere(border)
    lengths = np.array([value[_LENGTH_CODES[c]] for c in code[border]])
    return idx, lengths


def surface_distances(pred, gt, spacing=None, convention="monai"):
    """(pred -> gt distances, gt -> pred distances, pred weights, gt weights)."""
    pred, gt = np.asarray(pred) != 0, np.asarray(gt) != 0
    spacing = np.ones(pred.ndim) if spacing is None else np.asarray(spacing, dtype=np.float64)
    if convention == "deepmind":
        if pred.ndim != 2:
            raise NotImplementedError("reference deepmind surfels are 2-D only")
        ip, wp = corner_surface_2d(pred, spacing)
        ig, wg = corner_surface_2d(gt, spacing)
    else:
        ip, ig = np.argwhere(voxel_surface(pred)), np.argwhere(voxel_surface(gt))
        wp, wg = np.ones(len(ip)), np.ones(len(ig))
    cp, cg = ip * spacing, ig * spacing
    return nearest_distances(cp, cg), nearest_distances(cg, cp), wp, wg


def _weighted_rank(d, w, percent):
    if len(d) == 0:
        return np.inf
    order = np.lexsort((w, d))
    d, w = d[order], w[order]
    frac = np.cumsum(w) / np.sum(w)
    idx = np.searchsorted(frac, percent / 100.0)
    return d[min(idx, len(d) - 1)]


def hausdorff(pred, gt, spacing=None, percentile=None, directed=False, convention="monai") -> float:
    p_empty, g_empty = not np.any(pred), not np.any(gt)
    dp, dg, wp, wg = surface_distances(pred, gt, spacing, convention)
    if convention == "monai":
        import torch

        if p_empty and g_empty:
            return np.nan
        if p_empty or g_empty:
            return np.nan if percentile else np.inf

        def one(d):
            t = torch.tensor(d, dtype=torch.float32)
            return float(t.max()) if not percentile else float(torch.quantile(t, percentile / 100))
        return one(dp) if directed else max(one(dp), one(dg))
    if convention == "medpy":
        if p_empty or g_empty:
            return np.nan
        pooled = dp if directed else np.concatenate([dp, dg])
        return float(pooled.max()) if percentile is None else float(np.percentile(pooled, percentile))
    percent = 100.0 if percentile is None else percentile
    a = _weighted_rank(dp, wp, percent)
    return float(a if directed else max(_weighted_rank(dg, wg, percent), a))


def average_surface_distance(pred, gt, spacing=None, symmetric=True, convention="monai") -> float:
    p_empty, g_empty = not np.any(pred), not np.any(gt)
    dp, dg, wp, wg = surface_distances(pred, gt, spacing, convention)
    if convention == "monai":
        if p_empty and g_empty:
            return np.nan
        if p_empty or g_empty:
            return np.inf
        pooled = np.concatenate([dp, dg]) if symmetric else dp
        return float(np.float32(pooled.astype(np.float32).astype(np.float64).mean()))
    if convention == "medpy":
        if p_empty or g_empty:
            return np.nan
        return float(np.concatenate([dp, dg]).mean() if symmetric else dp.mean())
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.sum(dp * wp) / np.sum(wp)
        b = np.sum(dg * wg) / np.sum(wg)
    return float((b + a) / 2 if symmetric else a)


def surface_dice(pred, gt, tolerance, spacing=None, convention="deepmind") -> float:
    dp, dg, wp, wg = surface_distances(pred, gt, spacing, convention)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float((wp[dp <= tolerance].sum() + wg[dg <= tolerance].sum()) / (wp.sum() + wg.sum()))
