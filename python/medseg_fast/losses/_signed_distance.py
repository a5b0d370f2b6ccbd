"""Signed distance maps of one-hot targets for BoundaryLoss, on the target's device.

Uses this package's exact distance transform (CPU or CUDA kernel), so no host round trip and no
scipy. Convention (MONAI's boundary-loss utilities): ``-(d_fg - 1)`` inside the class,
``d_bg`` outside (0 on the inner boundary); an empty or full mask gives zeros.
"""

from __future__ import annotations

import torch

from ..distance import distance_transform

__all__ = ["class_signed_distance"]


def _signed(mask: torch.Tensor) -> torch.Tensor:
    if not bool(mask.any()) or bool(mask.all()):
        return torch.zeros(mask.shape, dtype=torch.float64, device=mask.device)
    inside = distance_transform(mask, dtype="float64")
    outside = distance_transform(~mask, dtype="float64")
    return torch.where(mask, -(inside - 1.0), outside)


@torch.no_grad()
def class_signed_distance(target: torch.Tensor, classes: int, onehot: bool, spatial_ndim: int,
                          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, K, *spatial) signed distances of each class mask, on the target's device."""
    t = target.detach()
    if not onehot and t.dim() == spatial_ndim + 2:
        t = t[:, 0]
    batch = int(t.shape[0])
    spatial = tuple(t.shape[2:]) if onehot else tuple(t.shape[1:])
    out = torch.zeros((batch, classes, *spatial), dtype=torch.float64, device=target.device)
    for b in range(batch):
        for c in range(classes):
            if onehot:
                mask = t[b, c] > 0.5
            elif classes == 1:
                mask = t[b] > 0
            else:
                mask = t[b] == c
            out[b, c] = _signed(mask)
    return out.to(dtype=dtype)
