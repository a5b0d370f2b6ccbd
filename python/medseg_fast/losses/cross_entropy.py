"""CrossEntropyLoss: softmax cross-entropy with class weights on the fused kernel."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._fused import SUM_G, SUM_TP, SegConfig, seg_sums
from ._inputs import check_pair, class_vector, poison_if_bad, result_dtype

__all__ = ["CrossEntropyLoss"]


class CrossEntropyLoss(torch.nn.Module):
    """Softmax cross-entropy for segmentation logits, fused (no log-softmax tensor is stored).

    Equals ``torch.nn.CrossEntropyLoss(weight=weight, ignore_index=ignore_index)`` (reduction "mean"):
    with integer targets ``sum_v w_{y_v} (-log p_{y_v}) / sum_v w_{y_v}`` over the non-ignored voxels;
    with one-hot / probability targets ``mean_v sum_c w_c t_c (-log p_c)``. The cross-entropy of
    MONAI's ``DiceCELoss`` is this loss.

    Parameters
    ----------
    weight : sequence of float, optional
        One weight per class.
    ignore_index : int, optional
        Label whose voxels are skipped (torch's default -100).

    Examples
    --------
    >>> import torch
    >>> from medseg_fast.losses import CrossEntropyLoss
    >>> logits = torch.randn(2, 3, 8, 8, 8, requires_grad=True)
    >>> loss = CrossEntropyLoss(weight=[0.2, 1.0, 1.0])(logits, torch.randint(0, 3, (2, 8, 8, 8)))
    """

    def __init__(self, weight: Sequence[float] | torch.Tensor | None = None, *, ignore_index: int | None = -100) -> None:
        super().__init__()
        self.weight = weight
        self.ignore_index = ignore_index

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of logits ``input`` (B, K, *spatial) against ``target``."""
        # ignore_index applies to class maps; one-hot / probability targets have no labels to ignore.
        target, onehot = check_pair(input, target, need_classes=2)
        K = int(input.shape[1])
        weight = class_vector(self.weight, K, "weight", device=input.device, allow_scalar=False)
        config = SegConfig(act="softmax", term="focal_softmax", gamma=0.0,
                           ignore_index=None if onehot else self.ignore_index)
        sums, counts, bad = seg_sums(input, target, onehot, config)
        nll = sums[..., SUM_TP]
        if weight is not None:
            nll = nll * weight
        if onehot:
            denom = torch.tensor(float(input.shape[0] * input[0, 0].numel()), dtype=torch.float64,
                                 device=input.device)
        elif weight is not None:
            denom = (sums[..., SUM_G].detach() * weight).sum()
        else:
            denom = counts.sum().to(torch.float64)
        loss = nll.sum() / denom
        return poison_if_bad(loss, bad).to(result_dtype(input))

