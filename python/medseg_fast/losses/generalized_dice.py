"""GeneralizedDiceLoss (Sudre et al. 2017) on the fused kernel."""

from __future__ import annotations

import torch

from ._fused import SUM_G, SUM_I, SUM_P, SegConfig, seg_sums
from ._inputs import check_pair, poison_if_bad, result_dtype

__all__ = ["GeneralizedDiceLoss"]


class GeneralizedDiceLoss(torch.nn.Module):
    """Generalised Dice loss (Sudre et al., DLMIA 2017, https://arxiv.org/abs/1707.03237).

    ``1 - 2 sum_c w_c sum p t / sum_c w_c sum (p + t)`` with ``w_c = 1 / (sum t)^2`` ("square"),
    ``1 / sum t`` ("simple") or 1 ("uniform"), per batch item (or over the batch with ``batch=True``),
    then averaged. As in MONAI, a class absent from the target gets the largest finite weight of
    its row. Equals ``monai.losses.GeneralizedDiceLoss(softmax=True, to_onehot_y=True)`` (or
    ``sigmoid=True``) with the same include_background, w_type, batch and smooth terms (MONAI 1.6).
    The weights do not carry gradient.

    Parameters
    ----------
    softmax : bool
        Softmax over classes (True) or a sigmoid per class (False).
    include_background : bool
        If False, class 0 is left out.
    w_type : {"square", "simple", "uniform"}
        Class weighting.
    batch : bool
        Sums over the whole batch.
    smooth_nr, smooth_dr : float
        Added to numerator and denominator.
    ignore_index : int, optional
        Label whose voxels contribute nothing.

    Examples
    --------
    >>> import torch
    >>> from medseg_fast.losses import GeneralizedDiceLoss
    >>> logits = torch.randn(2, 3, 8, 8, 8, requires_grad=True)
    >>> loss = GeneralizedDiceLoss()(logits, torch.randint(0, 3, (2, 8, 8, 8)))
    """

    def __init__(self, *, softmax: bool = True, include_background: bool = True, w_type: str = "square",
                 batch: bool = False, smooth_nr: float = 1e-5, smooth_dr: float = 1e-5,
                 ignore_index: int | None = None) -> None:
        super().__init__()
        if w_type not in ("square", "simple", "uniform"):
            raise ValueError(f"w_type must be 'square', 'simple' or 'uniform', got {w_type!r}")
        self.softmax = bool(softmax)
        self.include_background = bool(include_background)
        self.w_type = w_type
        self.batch = bool(batch)
        self.smooth_nr = float(smooth_nr)
        self.smooth_dr = float(smooth_dr)
        self.ignore_index = ignore_index

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Generalised Dice loss of logits ``input`` (B, K, *spatial) against ``target``."""
        target, onehot = check_pair(input, target, ignore_index=self.ignore_index,
                                    need_classes=2 if self.softmax else 1)
        K = int(input.shape[1])
        first = 0 if (self.include_background or K == 1) else 1
        config = SegConfig(act="softmax" if self.softmax else "sigmoid", term="none",
                           ignore_index=self.ignore_index)
        sums, _, bad = seg_sums(input, target, onehot, config)
        s = sums[:, first:]
        if self.batch:
            s = s.sum(dim=0, keepdim=True)
        i, p, g = s[..., SUM_I], s[..., SUM_P], s[..., SUM_G]
        ground = g.detach()
        if self.w_type == "square":
            w = torch.reciprocal(ground * ground)
        elif self.w_type == "simple":
            w = torch.reciprocal(ground)
        else:
            w = torch.ones_like(ground)
        infs = torch.isinf(w)
        w = torch.where(infs, torch.zeros_like(w), w)
        w = w + infs * w.max(dim=1, keepdim=True)[0]
        numer = 2.0 * (i * w).sum(dim=1) + self.smooth_nr
        denom = ((p + g) * w).sum(dim=1) + self.smooth_dr
        loss = (1.0 - numer / denom).mean()
        return poison_if_bad(loss, bad).to(result_dtype(input))
