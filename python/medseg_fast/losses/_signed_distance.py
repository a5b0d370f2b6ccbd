"""Signed distance maps of one-hot targets for BoundaryLoss.

Temporary implementation on scipy.ndimage.distance_transform_edt (host memory): the package's
own ``medseg_fast.distance.signed_distance`` is being built in parallel and replaces this one
function when it lands (same convention below, so BoundaryLoss does not change).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["class_signed_distance"]


def _signed(mask: np.ndarray) -> np.ndarray:
    """MONAI BoundaryLoss convention: -(d_fg - 1) inside, d_bg outside (0 on the inner boundary);
    an empty or full mask gives zeros."""
    from scipy.ndimage import distance_transform_edt

    if not mask.any() or mask.all():
        return np.zeros(mask.shape)
    inside = distance_transform_edt(mask)
    outside = distance_transform_edt(~mask)
    return np.where(mask, -(inside - 1.0), outside)


@torch.no_grad()
def class_signed_distance(target: torch.Tensor, classes: int, onehot: bool, spatial_ndim: int,
                          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, K, *spatial) signed distances of each class mask, on the target's device."""
    t = target.detach().cpu()
    if not onehot and t.dim() == spatial_ndim + 2:
        t = t[:, 0]
    batch = int(t.shape[0])
    spatial = tuple(t.shape[2:]) if onehot else tuple(t.shape[1:])
    out = np.zeros((batch, classes, *spatial), dtype=np.float64)
    arr = t.numpy() if t.dtype != torch.bfloat16 else t.float().numpy()
    for b in range(batch):
        for c in range(classes):
            if onehot:
                mask = arr[b, c] > 0.5
            elif classes == 1:
                mask = arr[b] > 0
            else:
                mask = arr[b] == c
            out[b, c] = _signed(mask)
    return torch.from_numpy(out).to(device=target.device, dtype=dtype)
