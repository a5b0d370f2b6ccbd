"""FocalLoss: softmax or sigmoid focal loss on the fused kernel (no Dice term)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .dice_focal import DiceFocalLoss

__all__ = ["FocalLoss"]


class FocalLoss(torch.nn.Module):
    """Focal loss (Lin et al. 2017) from integer or one-hot targets, fused kernel.

    Mean over voxels and included classes of ``w_c alpha_c (1 - p_t)^gamma (-log p_t)``.
    ``softmax=True`` equals ``monai.losses.FocalLoss(use_softmax=True, to_onehot_y=True)`` and
    ``softmax=False`` equals ``FocalLoss(use_softmax=False, to_onehot_y=True)`` (sigmoid per class),
    with the same include_background, gamma, alpha and weight (MONAI 1.6). With ``gamma=0``,
    ``softmax=True`` and no alpha/weight it is the cross-entropy divided by the number of classes.

    Parameters
    ----------
    softmax : bool
        Softmax over classes (True) or a sigmoid per class (False).
    include_background, gamma, alpha, weight, ignore_index
        As in :class:`DiceFocalLoss`.

    Examples
    --------
    >>> import torch
    >>> from medseg_fast.losses import FocalLoss
    >>> logits = torch.randn(1, 3, 8, 8, 8, requires_grad=True)
    >>> loss = FocalLoss(gamma=2.0)(logits, torch.randint(0, 3, (1, 8, 8, 8)))
    """

    def __init__(self, *, softmax: bool = True, include_background: bool = True, gamma: float = 2.0,
                 alpha: float | Sequence[float] | None = None,
                 weight: float | Sequence[float] | torch.Tensor | None = None,
                 ignore_index: int | None = None) -> None:
        super().__init__()
        act = "softmax" if softmax else "sigmoid"
        self.fused = DiceFocalLoss(softmax=softmax, include_background=include_background, gamma=gamma, alpha=alpha,
                                   lambda_dice=0.0, weight=weight, ignore_index=ignore_index, focal_activation=act)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Focal loss of logits ``input`` (B, K, *spatial) against ``target``."""
        return self.fused(input, target)
