"""DiceLoss: soft Dice on the fused kernel (no focal term)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .dice_focal import DiceFocalLoss

__all__ = ["DiceLoss"]


class DiceLoss(torch.nn.Module):
    """Soft Dice loss (Milletari et al. 2016) from integer or one-hot targets, fused kernel.

    ``mean over (batch,) class of w_c * (1 - (2 sum p t + smooth_nr) / (sum t + sum p + smooth_dr))``,
    with ``p`` the softmax (or per-class sigmoid with ``softmax=False``) of the logits.
    Equals ``monai.losses.DiceLoss(softmax=True, to_onehot_y=True)`` (or ``sigmoid=True``) with the same
    include_background, weight, batch, squared_pred, smooth_nr, smooth_dr and ignore_index (MONAI 1.6).

    Parameters
    ----------
    softmax : bool
        Softmax over classes (True) or a sigmoid per class (False).
    include_background, weight, ignore_index, batch, squared_pred, smooth_nr, smooth_dr
        As in :class:`DiceFocalLoss`.

    Examples
    --------
    >>> import torch
    >>> from medseg_fast.losses import DiceLoss
    >>> logits = torch.randn(1, 3, 8, 8, 8, requires_grad=True)
    >>> loss = DiceLoss()(logits, torch.randint(0, 3, (1, 8, 8, 8)))
    """

    def __init__(self, *, softmax: bool = True, include_background: bool = True,
                 weight: float | Sequence[float] | torch.Tensor | None = None, ignore_index: int | None = None,
                 batch: bool = False, squared_pred: bool = False, smooth_nr: float = 1e-5,
                 smooth_dr: float = 1e-5) -> None:
        super().__init__()
        self.fused = DiceFocalLoss(softmax=softmax, include_background=include_background, lambda_focal=0.0,
                                   weight=weight, ignore_index=ignore_index, batch=batch, squared_pred=squared_pred,
                                   smooth_nr=smooth_nr, smooth_dr=smooth_dr)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Dice loss of logits ``input`` (B, K, *spatial) against ``target``."""
        return self.fused(input, target)
