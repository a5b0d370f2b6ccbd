"""nnU-Net v2's largest-component post-processing on our connected-component kernels.

``remove_all_but_largest_component`` matches ``acvl_utils.morphology.morphology_helper`` (full
connectivity by default, as skimage's ``label(connectivity=None)``; every component of the largest
size is kept) and ``remove_all_but_largest_component_from_segmentation`` matches
``nnunetv2.postprocessing.remove_connected_components`` (labels or regions, background label, input
not modified).
"""

from __future__ import annotations

import numpy as np

from ..components import label

__all__ = ["remove_all_but_largest_component", "remove_all_but_largest_component_from_segmentation"]

_FULL = {1: 2, 2: 8, 3: 26}
_SKIMAGE = {2: {1: 4, 2: 8}, 3: {1: 6, 2: 18, 3: 26}}


def remove_all_but_largest_component(binary_image: np.ndarray, connectivity: int | None = None) -> np.ndarray:
    """Mask of the largest connected component(s) of ``binary_image`` (ties: all of them).

    ``connectivity`` is skimage's (1 .. ndim, None = ndim, i.e. 26 in 3-D), as in acvl_utils.
    """
    mask = np.asarray(binary_image).astype(bool, copy=False)
    if mask.ndim not in (2, 3):
        raise ValueError(f"binary_image must be 2-D or 3-D, got shape {mask.shape}")
    conn = _SKIMAGE[mask.ndim].get(mask.ndim if connectivity is None else int(connectivity))
    if conn is None:
        raise ValueError(f"connectivity must be None or 1..{mask.ndim}, got {connectivity!r}")
    labels, n = label(mask, conn, return_num=True)
    if n == 0:
        return np.zeros_like(mask)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    sizes[0] = 0
    keep = np.flatnonzero(sizes == sizes.max())
    return np.isin(labels, keep)


def _region_mask(segmentation: np.ndarray, label_or_region) -> np.ndarray:
    if np.isscalar(label_or_region):
        return segmentation == label_or_region
    return np.isin(segmentation, np.asarray(label_or_region))


def remove_all_but_largest_component_from_segmentation(segmentation: np.ndarray, labels_or_regions,
                                                       background_label: int = 0) -> np.ndarray:
    """nnU-Net's function: keep only the largest component of the union of ``labels_or_regions``."""
    segmentation = np.asarray(segmentation)
    if not isinstance(labels_or_regions, list):
        labels_or_regions = [labels_or_regions]
    mask = np.zeros(segmentation.shape, dtype=bool)
    for l_or_r in labels_or_regions:
        mask |= _region_mask(segmentation, l_or_r)
    keep = remove_all_but_largest_component(mask)
    out = segmentation.copy()
    out[mask & ~keep] = background_label
    return out
