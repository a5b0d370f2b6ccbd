"""Reference sliding-window inference: a plain torch loop (pad, predict, weighted add, divide, crop).

Written for clarity: every window is sliced out of a padded copy of the input, predicted, multiplied
by the importance map and added to a full-size output and count map, as MONAI and nnU-Net do.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["window_starts", "importance_map", "sliding_window_inference"]


def window_starts(size: int, patch: int, overlap: float, positions: str) -> list[int]:
    """Window starts along one axis of a (padded) image of `size` >= `patch` voxels."""
    if positions == "nnunet":
        # nnU-Net v2 compute_steps_for_sliding_window with tile_step_size = 1 - overlap.
        step = patch * (1 - overlap)
        n = int(np.ceil((size - patch) / step)) + 1
        spacing = (size - patch) / (n - 1) if n > 1 else 0.0
        return [int(np.round(spacing * i)) for i in range(n)]
    # MONAI: scan interval int(patch * (1 - overlap)) (patch when it equals the image), starts
    # i * interval until a window reaches the border, the last one moved back inside.
    interval = patch if patch == size else max(int(patch * (1 - overlap)), 1)
    starts = []
    i = 0
    while True:
        start = i * interval
        if start + patch >= size:
            starts.append(size - patch)
            break
        starts.append(start)
        i += 1
    return starts


def importance_map(patch: Sequence[int], mode: str, sigma_scale: float | Sequence[float], positions: str) -> torch.Tensor:
    """The per-window weights as a float32 tensor of `patch`."""
    patch = tuple(patch)
    if mode == "constant":
        return torch.ones(patch)
    scales = [sigma_scale] * len(patch) if isinstance(sigma_scale, (int, float)) else list(sigma_scale)
    axes = []
    for p, s in zip(patch, scales):
        sigma = p * s
        if positions == "nnunet":
            # A unit impulse at p // 2 blurred by a Gaussian truncated at 4 sigma, peak 1.
            d = torch.arange(p, dtype=torch.float64) - p // 2
            g = torch.exp(-(d**2) / (2 * sigma**2))
            g[d.abs() > int(4 * sigma + 0.5)] = 0
        else:
            d = torch.arange(p, dtype=torch.float32) - (p - 1) / 2.0
            g = torch.exp(d**2 / (-2 * sigma**2))
        axes.append(g)
    w = axes[0]
    for g in axes[1:]:
        w = w.unsqueeze(-1) * g
    if positions == "nnunet":
        w = (w / w.max()).float()
        w[w == 0] = w[w > 0].min()
        return w
    return w.clamp(min=max(float(w.min()), 1e-3)).float()


def sliding_window_inference(
    x: torch.Tensor,
    predictor: Callable[[torch.Tensor], torch.Tensor],
    patch_size: Sequence[int],
    *,
    overlap: float = 0.5,
    mode: str = "gaussian",
    sigma_scale: float = 0.125,
    positions: str = "nnunet",
    mirror_axes: Sequence[int] | None = None,
) -> torch.Tensor:
    """Blended predictions (B, K, *spatial) in float32, one window at a time."""
    spatial = x.shape[2:]
    patch = tuple(patch_size)
    pads = [(max(p - s, 0) // 2, max(p - s, 0) - max(p - s, 0) // 2) for s, p in zip(spatial, patch)]
    flat = [v for before_after in reversed(pads) for v in before_after]
    xp = F.pad(x, flat) if any(flat) else x
    padded = xp.shape[2:]
    starts = [window_starts(s, p, overlap, positions) for s, p in zip(padded, patch)]
    weight = importance_map(patch, mode, sigma_scale, positions)
    combos = [] if not mirror_axes else [c for r in range(1, len(mirror_axes) + 1)
                                         for c in itertools.combinations(mirror_axes, r)]
    out = count = None
    for b in range(x.shape[0]):
        for origin in itertools.product(*starts):
            sl = tuple(slice(o, o + p) for o, p in zip(origin, patch))
            window = xp[(slice(b, b + 1), slice(None), *sl)]
            pred = predictor(window)
            pred = pred[0] if isinstance(pred, (tuple, list)) else pred
            pred = pred.float()
            for c in combos:
                dims = [d + 2 for d in c]
                extra = predictor(torch.flip(window, dims))
                extra = extra[0] if isinstance(extra, (tuple, list)) else extra
                pred = pred + torch.flip(extra.float(), dims)
            pred = pred / (len(combos) + 1)
            if out is None:
                out = torch.zeros((x.shape[0], pred.shape[1], *padded))
                count = torch.zeros(padded)
            out[(slice(b, b + 1), slice(None), *sl)] += pred * weight
            if b == 0:
                count[sl] += weight
    out = out / count
    crop = tuple(slice(before, before + s) for (before, _), s in zip(pads, spatial))
    return out[(slice(None), slice(None), *crop)].contiguous()

