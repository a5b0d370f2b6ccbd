"""The training loss of the pipelines by name: nnU-Net's Dice + cross-entropy (or Dice + focal) with
deep supervision, built from this package's losses.

Kept beside the losses it composes so that ``pipelines/`` names a loss and never assembles one itself.
"""

from __future__ import annotations

import torch

# the package's public names, not its private module layout (which may change)
from . import CrossEntropyLoss, DeepSupervisionLoss, DiceFocalLoss, DiceLoss

__all__ = ["LOSSES", "make_loss", "deep_supervision_weights"]

LOSSES = ("dice_ce", "dice_focal")


class _Sum(torch.nn.Module):
    """``a(x, y) + b(x, y)``."""

    def __init__(self, a: torch.nn.Module, b: torch.nn.Module) -> None:
        super().__init__()
        self.a, self.b = a, b

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.a(logits, target) + self.b(logits, target)


def deep_supervision_weights(levels: int) -> list[float]:
    """nnU-Net's weights ``1, 1/2, 1/4, ...`` over ``1 + levels`` outputs, normalized to sum 1.

    Examples
    --------
    >>> deep_supervision_weights(2)
    [0.5714285714285714, 0.2857142857142857, 0.14285714285714285]
    """
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 0:
        raise ValueError(f"deep_supervision_levels must be an integer >= 0, got {levels!r}")
    w = [0.5**i for i in range(1 + levels)]
    total = sum(w)
    return [v / total for v in w]


def make_loss(kind: str = "dice_ce", *, deep_supervision_levels: int = 0) -> torch.nn.Module:
    """The pipelines' training loss.

    Parameters
    ----------
    kind : {"dice_ce", "dice_focal"}
        ``"dice_ce"``: :class:`DiceLoss` + :class:`CrossEntropyLoss` (nnU-Net's Dice + CE);
        ``"dice_focal"``: :class:`DiceFocalLoss`. Soft Dice over the batch, background excluded.
    deep_supervision_levels : int
        Extra lower-resolution outputs; :class:`DeepSupervisionLoss` weights the ``1 + levels`` outputs by
        :func:`deep_supervision_weights` (highest resolution first, targets resized by nearest).

    Returns
    -------
    torch.nn.Module
        Maps ``(logits or list of logits, int64 target (B, *spatial))`` to a scalar.

    Examples
    --------
    >>> import torch
    >>> loss = make_loss("dice_ce", deep_supervision_levels=1)
    >>> target = torch.zeros(1, 8, 8, 8, dtype=torch.long)
    >>> float(loss([torch.zeros(1, 2, 8, 8, 8), torch.zeros(1, 2, 4, 4, 4)], target)) > 0
    True
    """
    if kind not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")
    weights = deep_supervision_weights(deep_supervision_levels)
    inner: torch.nn.Module
    if kind == "dice_focal":
        inner = DiceFocalLoss(include_background=False, batch=True)
    else:
        inner = _Sum(DiceLoss(include_background=False, batch=True), CrossEntropyLoss())
    return DeepSupervisionLoss(inner, weights)
