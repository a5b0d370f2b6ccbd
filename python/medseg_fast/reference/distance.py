"""Brute-force reference of the exact Euclidean distance transform (small inputs only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["distance_transform", "signed_distance", "nearest_distances"]


def nearest_distances(points: np.ndarray, sites: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Euclidean distance from each row of ``points`` to the closest row of ``sites`` (inf if none)."""
    points = np.asarray(points, dtype=np.float64)
    sites = np.asarray(sites, dtype=np.float64)
    out = np.full(len(points), np.inf)
    if len(sites) == 0:
        return out
    for start in range(0, len(points), chunk):
        p = points[start:start + chunk]
        d2 = ((p[:, None, :] - sites[None, :, :]) ** 2).sum(-1)
        out[start:start + chunk] = np.sqrt(d2.min(1))
    return out


def distance_transform(mask: np.ndarray, spacing: Sequence[float] | None = None, squared: bool = False) -> np.ndarray:
    """Distance of every nonzero element to the nearest zero element, by exhaustive search.

    Without any zero element, distances are taken to the virtual zero element at index
    (-1, 0, ..., 0), as scipy.ndimage.distance_transform_edt does.
    """
    mask = np.asarray(mask)
    spacing = np.ones(mask.ndim) if spacing is None else np.asarray(spacing, dtype=np.float64)
    coords = np.indices(mask.shape).reshape(mask.ndim, -1).T * spacing
    zeros = coords[(mask == 0).ravel()]
    if len(zeros) == 0:
        virtual = np.zeros(mask.ndim)
        virtual[0] = -spacing[0]
        zeros = virtual[None]
    d = nearest_distances(coords, zeros).reshape(mask.shape)
    return d * d if squared else d


def signed_distance(mask: np.ndarray, spacing: Sequence[float] | None = None) -> np.ndarray:
    """Negative inside, positive outside; zeros when the mask has no boundary."""
    inside = np.asarray(mask) != 0
    if inside.all() or not inside.any():
        return np.zeros(inside.shape)
    return distance_transform(~inside, spacing) - distance_transform(inside, spacing)
