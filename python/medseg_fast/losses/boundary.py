"""BoundaryLoss (Kervadec et al. 2019) on the fused kernel."""

from __future__ import annotations

import torch

from ._fused import SUM_I, SegConfig, seg_sums
from ._inputs import check_pair, result_dtype
from ._signed_distance import class_signed_distance

__all__ = ["BoundaryLoss"]


class BoundaryLoss(torch.nn.Module):
    """Boundary loss (Kervadec et al., MIDL 2019 / MedIA 2021, https://arxiv.org/abs/1812.07032).

    ``mean over (batch, class) of (1/N) sum_v p_c(v) phi_c(v)``, with ``phi_c`` the signed distance map
    of the class-c target mask (negative inside: ``-(d - 1)``, positive outside, as MONAI) and N the
    voxel count. Equals ``monai.losses.BoundaryLoss(softmax=True, to_onehot_y=True)`` (or
    ``sigmoid=True``) with the same include_background (MONAI 1.6). The sum runs on the fused
    kernel (the distance map is passed as the kernel's soft target; no softmax tensor is stored).

    The distance maps are computed from the target with scipy on the host for now; they will come
    from ``medseg_fast.distance.signed_distance`` (on the training device) once that lands. Pass
    precomputed maps with ``forward(input, target, distance=...)`` to skip that step (e.g. computed
    once per case in the data loader).

    Parameters
    ----------
    softmax : bool
        Softmax over classes (True) or a sigmoid per class (False).
    include_background : bool
        If False, class 0 is left out (Kervadec et al. use the foreground classes only).

    Examples
    --------
    >>> import torch
    >>> from medseg_fast.losses import BoundaryLoss
    >>> logits = torch.randn(1, 2, 8, 8, 8, requires_grad=True)
    >>> loss = BoundaryLoss(include_background=False)(logits, torch.randint(0, 2, (1, 8, 8, 8)))
    """

    def __init__(self, *, softmax: bool = True, include_background: bool = True) -> None:
        super().__init__()
        self.softmax = bool(softmax)
        self.include_background = bool(include_background)

    def forward(self, input: torch.Tensor, target: torch.Tensor, distance: torch.Tensor | None = None) -> torch.Tensor:
        """Boundary loss of logits ``input`` (B, K, *spatial); ``distance`` (B, K, *spatial) overrides the maps."""
        target, onehot = check_pair(input, target, need_classes=2 if self.softmax else 1)
        K = int(input.shape[1])
        if distance is None:
            distance = class_signed_distance(target, K, onehot, input.dim() - 2,
                                             dtype=torch.float64 if input.dtype == torch.float64 else torch.float32)
        elif tuple(distance.shape) != tuple(input.shape):
            raise ValueError(f"distance must have the shape of input: input.shape={tuple(input.shape)}, "
                             f"distance.shape={tuple(distance.shape)}")
        first = 0 if (self.include_background or K == 1) else 1
        config = SegConfig(act="softmax" if self.softmax else "sigmoid", term="none")
        sums, _, _ = seg_sums(input, distance, True, config)
        n = float(input[0, 0].numel())
        loss = (sums[:, first:, SUM_I] / n).mean()
        return loss.to(result_dtype(input))
