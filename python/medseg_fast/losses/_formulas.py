"""Loss formulas on the kernel's per-(batch, class) sums (float64, differentiable by autograd)."""

from __future__ import annotations

import torch

from ._fused import SUM_G, SUM_I, SUM_P, SUM_TN, SUM_TP

__all__ = ["dice_from_sums", "focal_from_sums"]


def dice_from_sums(sums: torch.Tensor, *, first: int, batch: bool, smooth_nr: float, smooth_dr: float,
                   weight: torch.Tensor | None) -> torch.Tensor:
    """MONAI DiceLoss (reduction="mean"): mean over (batch,) class of w_c * (1 - (2I + nr) / (G + P + dr))."""
    s = sums[:, first:]
    if batch:
        s = s.sum(dim=0, keepdim=True)
    i, p, g = s[..., SUM_I], s[..., SUM_P], s[..., SUM_G]
    f = 1.0 - (2.0 * i + smooth_nr) / (g + p + smooth_dr)
    if weight is not None:
        f = f * weight
    return f.mean()


def focal_from_sums(sums: torch.Tensor, counts: torch.Tensor, *, first: int, sigmoid: bool,
                    alpha: float | torch.Tensor | None, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of the focal term over the counted voxels x included classes (MONAI FocalLoss, reduction="mean")."""
    s = sums[:, first:]
    tp, tn = s[..., SUM_TP], s[..., SUM_TN]
    kc = s.shape[1]
    if sigmoid:
        if alpha is None:
            per = tp + tn
        elif isinstance(alpha, torch.Tensor):
            per = alpha * tp + tn                  # per-class alpha on positives only (MONAI)
        else:
            per = alpha * tp + (1.0 - alpha) * tn
    else:
        if alpha is None:
            per = tp
        elif isinstance(alpha, torch.Tensor):
            per = alpha * tp
        else:
            fac = torch.full((kc,), float(alpha), dtype=tp.dtype, device=tp.device)
            fac[0] = 1.0 - float(alpha)            # (1 - alpha) for the background class (MONAI)
            per = fac * tp
    if weight is not None:
        per = per * weight
    denom = counts.sum().to(per.dtype) * kc
    return per.sum() / denom.clamp_min(1.0)
