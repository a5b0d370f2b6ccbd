"""Reference segmentation losses in plain torch ops (explicit one-hot, softmax and focal tensors).

Written for clarity: every intermediate of the logits' size exists. The fused kernels in
``medseg_fast.losses`` are compared with these (and these with MONAI) by the parity tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["one_hot_target", "dice_focal_loss", "cross_entropy_loss", "generalized_dice_loss", "exp_log_loss",
           "boundary_loss", "signed_distance_map"]


def one_hot_target(target: torch.Tensor, classes: int, spatial_ndim: int,
                   ignore_index: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(one-hot float64 (B, K, *spatial), valid mask (B, 1, *spatial)) of a class map or one-hot target."""
    if target.dim() == spatial_ndim + 2 and (target.shape[1] == classes and (classes > 1 or target.is_floating_point())):
        t = target.to(torch.float64)
        return t, torch.ones_like(t[:, :1])
    labels = target[:, 0] if target.dim() == spatial_ndim + 2 else target
    labels = labels.long()
    valid = torch.ones_like(labels, dtype=torch.bool)
    if ignore_index is not None:
        valid = labels != ignore_index
    safe = torch.where(valid, labels, torch.zeros_like(labels))
    if classes == 1:
        t = safe.unsqueeze(1).to(torch.float64)
    else:
        t = F.one_hot(safe, classes).movedim(-1, 1).to(torch.float64)
    v = valid.unsqueeze(1).to(torch.float64)
    return t * v, v


def _activation(logits: torch.Tensor, softmax: bool, first: int = 0) -> torch.Tensor:
    if softmax:
        return torch.softmax(logits[:, first:], dim=1)
    return torch.sigmoid(logits[:, first:])


def dice_focal_loss(logits: torch.Tensor, target: torch.Tensor, *, softmax: bool = True,
                    include_background: bool = True, gamma: float = 2.0,
                    alpha: float | Sequence[float] | None = None, lambda_dice: float = 1.0,
                    lambda_focal: float = 1.0, weight: float | Sequence[float] | None = None,
                    ignore_index: int | None = None, batch: bool = False, squared_pred: bool = False,
                    smooth_nr: float = 1e-5, smooth_dr: float = 1e-5,
                    focal_activation: str | None = None) -> torch.Tensor:
    """medseg_fast.losses.DiceFocalLoss written out with explicit tensors (see its docstring)."""
    x = logits.to(torch.float64)
    K = x.shape[1]
    sdim = x.dim() - 2
    t, valid = one_hot_target(target, K, sdim, ignore_index)
    first = 0 if (include_background or K == 1) else 1
    axes = list(range(2, x.dim()))
    # Dice
    p = _activation(x, softmax) * valid
    pc, tc = p[:, first:], t[:, first:]
    red = [0, *axes] if batch else axes
    inter = (pc * tc).sum(red)
    pred_o = (pc * pc).sum(red) if squared_pred else pc.sum(red)
    ground_o = (tc * tc).sum(red) if squared_pred else tc.sum(red)
    f = 1.0 - (2.0 * inter + smooth_nr) / (ground_o + pred_o + smooth_dr)
    kc = K - first
    w = None if weight is None else torch.as_tensor(weight, dtype=torch.float64).expand(kc)
    if w is not None:
        f = f * w
    dice = f.mean()
    # Focal
    act = focal_activation or ("softmax" if softmax else "sigmoid")
    if act == "softmax":
        logp = torch.log_softmax(x[:, first:], dim=1)
        fl = -(1.0 - logp.exp()).pow(gamma) * logp * tc
        if alpha is not None:
            if isinstance(alpha, (int, float)):
                if first == 0:
                    fac = torch.tensor([1.0 - alpha] + [float(alpha)] * (kc - 1), dtype=torch.float64)
                    fl = fl * fac.view(1, -1, *[1] * sdim)
            else:
                fl = fl * torch.as_tensor(alpha, dtype=torch.float64).view(1, -1, *[1] * sdim)
    else:
        xc = x[:, first:]
        bce = F.binary_cross_entropy_with_logits(xc, tc, reduction="none")
        q = torch.sigmoid(-xc * (2.0 * tc - 1.0))
        fl = q.pow(gamma) * bce
        if alpha is not None:
            if isinstance(alpha, (int, float)):
                fl = fl * (tc * alpha + (1.0 - tc) * (1.0 - alpha))
            else:
                a = torch.as_tensor(alpha, dtype=torch.float64).view(1, -1, *[1] * sdim)
                fl = fl * torch.where(tc == 1, a, torch.ones_like(a))
        fl = fl * valid
    if w is not None:
        fl = fl * w.view(1, -1, *[1] * sdim)
    n = valid.sum() * kc
    focal = fl.sum() / n.clamp_min(1.0)
    return lambda_dice * dice + lambda_focal * focal


def cross_entropy_loss(logits: torch.Tensor, target: torch.Tensor, weight=None, ignore_index: int = -100) -> torch.Tensor:
    """torch.nn.functional.cross_entropy on class maps (the definition medseg_fast matches)."""
    x = logits.to(torch.float64)
    if target.dim() == x.dim() and target.shape[1] == x.shape[1]:
        w = None if weight is None else torch.as_tensor(weight, dtype=torch.float64)
        return F.cross_entropy(x, target.to(torch.float64), weight=w)
    labels = target[:, 0] if target.dim() == x.dim() else target
    w = None if weight is None else torch.as_tensor(weight, dtype=torch.float64)
    return F.cross_entropy(x, labels.long(), weight=w, ignore_index=ignore_index)


def generalized_dice_loss(logits: torch.Tensor, target: torch.Tensor, *, softmax: bool = True,
                          include_background: bool = True, w_type: str = "square", batch: bool = False,
                          smooth_nr: float = 1e-5, smooth_dr: float = 1e-5) -> torch.Tensor:
    """Generalised Dice (Sudre et al. 2017) with MONAI's handling of absent classes."""
    x = logits.to(torch.float64)
    K = x.shape[1]
    t, _ = one_hot_target(target, K, x.dim() - 2)
    first = 0 if (include_background or K == 1) else 1
    p = _activation(x, softmax)[:, first:]
    t = t[:, first:]
    red = list(range(2, x.dim()))
    if batch:
        red = [0, *red]
    inter = (p * t).sum(red)
    denom = (p + t).sum(red)
    g = t.sum(red)
    w = {"square": 1.0 / (g * g), "simple": 1.0 / g, "uniform": torch.ones_like(g)}[w_type]
    if batch:
        w = w.unsqueeze(0)
        inter, denom = inter.unsqueeze(0), denom.unsqueeze(0)
    infs = torch.isinf(w)
    w = torch.where(infs, torch.zeros_like(w), w)
    w = w + infs * w.max(dim=1, keepdim=True)[0]
    f = 1.0 - (2.0 * (inter * w).sum(1) + smooth_nr) / ((denom * w).sum(1) + smooth_dr)
    return f.mean()


def exp_log_loss(logits: torch.Tensor, target: torch.Tensor, *, include_background: bool = True,
                 w_dice: float = 0.8, w_cross: float = 0.2, gamma_dice: float = 0.3, gamma_cross: float = 0.3,
                 smooth: float = 1.0, batch: bool = False, eps: float = 1e-7) -> torch.Tensor:
    """Wong et al. 2018 exponential logarithmic loss (label weights from batch frequencies)."""
    x = logits.to(torch.float64)
    K = x.shape[1]
    t, valid = one_hot_target(target, K, x.dim() - 2)
    first = 0 if include_background else 1
    p = torch.softmax(x, 1)
    red = list(range(2, x.dim()))
    if batch:
        red = [0, *red]
    pc, tc = p[:, first:], t[:, first:]
    dice = (2.0 * (pc * tc).sum(red) + smooth) / ((pc + tc).sum(red) + smooth)
    l_dice = (-torch.log(dice)).clamp_min(eps).pow(gamma_dice).mean()
    freq = t.sum([0, *range(2, x.dim())])
    wl = torch.where(freq > 0, (freq.sum() / freq.clamp_min(1e-300)).sqrt(), torch.zeros_like(freq))
    nll = (-torch.log_softmax(x, 1)).clamp_min(eps).pow(gamma_cross)
    per_voxel = (nll * t * wl.view(1, -1, *[1] * (x.dim() - 2))).sum(1)
    l_cross = per_voxel.sum() / valid.sum()
    return w_dice * l_dice + w_cross * l_cross


def signed_distance_map(mask: np.ndarray) -> np.ndarray:
    """-(d_fg - 1) inside, d_bg outside, zeros for an empty or full mask (MONAI BoundaryLoss)."""
    from scipy.ndimage import distance_transform_edt

    mask = np.asarray(mask, dtype=bool)
    if not mask.any() or mask.all():
        return np.zeros(mask.shape)
    return np.where(mask, 1.0 - distance_transform_edt(mask), distance_transform_edt(~mask))


def boundary_loss(logits: torch.Tensor, target: torch.Tensor, *, softmax: bool = True,
                  include_background: bool = True) -> torch.Tensor:
    """Kervadec et al. 2019: mean over (batch, class) of mean_v p * phi."""
    x = logits.to(torch.float64)
    K = x.shape[1]
    t, _ = one_hot_target(target, K, x.dim() - 2)
    p = _activation(x, softmax)
    phi = np.zeros(t.shape)
    tn = t.detach().cpu().numpy()
    for b in range(t.shape[0]):
        for c in range(K):
            phi[b, c] = signed_distance_map(tn[b, c] > 0.5)
    first = 0 if (include_background or K == 1) else 1
    prod = (p * torch.from_numpy(phi))[:, first:]
    return prod.flatten(2).mean(2).mean()
