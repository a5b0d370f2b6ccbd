"""Reference sliding-window inference: a plain torch loop (pad, predict, weighted add, divide, crop).

Written for clarity: every window is sliced out of a padded copy of the input, predicted, multiplied
by the importance map and added to a full-size output and count map, as MONAI and nnU-Net do.
Where the windows start and how they are weighted comes from the plan math
(:class:`medseg_fast._sliding_plan.WindowPlan`, pure numpy, checked against nnU-Net's and MONAI's
own code by the tests), so this loop checks the kernels' gather, blending and normalisation.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Callable

import torch
import torch.nn.functional as F

from .._sliding_plan import WindowPlan

__all__ = ["sliding_window_inference"]


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
    plan = WindowPlan(tuple(spatial), patch, overlap=overlap, mode=mode, sigma_scale=sigma_scale, positions=positions)
    pads = plan.padding
    flat = [v for before_after in reversed(pads) for v in before_after]
    xp = F.pad(x, flat) if any(flat) else x
    padded = xp.shape[2:]
    # Window starts in the padded image (the plan's origins are image coordinates, negative in padding).
    starts = [(origins + before).tolist() for origins, (before, _) in zip(plan.axis_origins, pads)]
    weight = torch.from_numpy(plan.importance_map.copy())
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

