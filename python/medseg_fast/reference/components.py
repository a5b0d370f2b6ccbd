"""Reference connected components: breadth-first flood fill in raster order (small inputs only).

Scanning voxels in C order and flooding each new component at once numbers components in raster
order of their first voxel, which is the numbering of ``scipy.ndimage.label`` and of
``medseg_fast.label``. Everything else (statistics, largest components, holes) is derived from
that labeling with plain numpy.
"""

from __future__ import annotations

from collections import deque
from itertools import product

import numpy as np

__all__ = [
    "neighbour_offsets",
    "label",
    "component_stats",
    "largest_component",
    "remove_small_components",
    "keep_largest_per_class",
    "fill_holes",
]


def neighbour_offsets(ndim: int, connectivity: int) -> list[tuple[int, ...]]:
    """All offsets of the neighbourhood: 4/8 in 2-D, 6/18/26 in 3-D (at most 1/2/3 nonzero axes)."""
    max_nonzero = {4: 1, 8: 2, 6: 1, 18: 2, 26: 3}[connectivity]
    return [d for d in product((-1, 0, 1), repeat=ndim) if 1 <= sum(c != 0 for c in d) <= max_nonzero]


def label(x: np.ndarray, connectivity: int = 26, background: int = 0) -> tuple[np.ndarray, int]:
    """(int32 labels, count); voxels join when they are neighbours with equal value != background."""
    x = np.asarray(x)
    offsets = neighbour_offsets(x.ndim, connectivity)
    out = np.zeros(x.shape, np.int32)
    count = 0
    for start in np.ndindex(*x.shape):
        if x[start] == background or out[start]:
            continue
        count += 1
        value = x[start]
        out[start] = count
        queue = deque([start])
        while queue:
            voxel = queue.popleft()
            for d in offsets:
                nb = tuple(v + o for v, o in zip(voxel, d))
                if all(0 <= c < s for c, s in zip(nb, x.shape)) and not out[nb] and x[nb] == value:
                    out[nb] = count
                    queue.append(nb)
    return out, count


def component_stats(labels: np.ndarray, spacing=None) -> dict[str, np.ndarray]:
    """sizes, volumes_mm3, bboxes (starts then exclusive stops) and centroids per label 0..max."""
    labels = np.asarray(labels)
    n = int(labels.max()) if labels.size else 0
    ndim = labels.ndim
    sizes = np.zeros(n + 1, np.int64)
    bboxes = np.zeros((n + 1, 2 * ndim), np.int64)
    centroids = np.full((n + 1, ndim), np.nan)
    for value in range(n + 1):
        coords = np.argwhere(labels == value)
        sizes[value] = len(coords)
        if len(coords):
            bboxes[value, :ndim] = coords.min(axis=0)
            bboxes[value, ndim:] = coords.max(axis=0) + 1
            centroids[value] = coords.mean(axis=0)
    voxel = float(np.prod(spacing)) if spacing is not None else 1.0
    return {"sizes": sizes, "volumes_mm3": sizes * voxel, "bboxes": bboxes, "centroids": centroids}


def _sizes(labels: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(labels.ravel(), minlength=n + 1)


def largest_component(x: np.ndarray, k: int = 1, connectivity: int = 26, background: int = 0) -> np.ndarray:
    """x where one of the k largest components lies (ties: lower label first), background elsewhere."""
    labels, n = label(x, connectivity, background)
    sizes = _sizes(labels, n)
    ranked = sorted(range(1, n + 1), key=lambda c: (-sizes[c], c))[:k]
    return np.where(np.isin(labels, ranked), x, np.asarray(background, dtype=np.asarray(x).dtype))


def remove_small_components(x, min_size, spacing=None, connectivity: int = 26, background: int = 0) -> np.ndarray:
    labels, n = label(x, connectivity, background)
    voxel = float(np.prod(spacing)) if spacing is not None else 1.0
    sizes = _sizes(labels, n)
    kept = [c for c in range(1, n + 1) if sizes[c] * voxel >= min_size]
    return np.where(np.isin(labels, kept), x, np.asarray(background, dtype=np.asarray(x).dtype))


def keep_largest_per_class(labelmap, classes=None, connectivity: int = 26, background: int = 0) -> np.ndarray:
    labelmap = np.asarray(labelmap)
    out = labelmap.copy()
    present = [v for v in np.unique(labelmap) if v != background]
    for value in present if classes is None else [c for c in classes if c in present]:
        comp, n = label(labelmap == value, connectivity)
        if n > 1:
            sizes = _sizes(comp, n)
            best = min(range(1, n + 1), key=lambda c: (-sizes[c], c))
            out[(comp > 0) & (comp != best)] = background
    return out


def fill_holes(x, connectivity: int = 6) -> np.ndarray:
    """Foreground plus the background components (at `connectivity`) that do not touch the border."""
    x = np.asarray(x) != 0
    if x.ndim == 2 and connectivity == 6:
        connectivity = 4
    labels, n = label(~x, connectivity, 0)
    border = set()
    for axis in range(x.ndim):
        border |= set(np.take(labels, 0, axis=axis).ravel()) | set(np.take(labels, -1, axis=axis).ravel())
    holes = (labels > 0) & ~np.isin(labels, list(border))
    return x | holes
