"""DeepSupervisionLoss: a loss over the outputs of a deeply supervised network (nnU-Net weights)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable

import torch

__all__ = ["DeepSupervisionLoss"]


def _resize_target(target: torch.Tensor, spatial: tuple[int, ...], logits_ndim: int) -> torch.Tensor:
    """Nearest-neighbour resize of a class map or one-hot target to `spatial` (MONAI's "nearest-exact")."""
    squeeze = target.dim() == logits_ndim - 1
    t = target.unsqueeze(1) if squeeze else target
    if tuple(t.shape[2:]) == spatial:
        return target
    out = torch.nn.functional.interpolate(t.to(torch.float32) if not t.is_floating_point() else t,
                                          size=spatial, mode="nearest-exact")
    out = out.to(target.dtype)
    return out[:, 0] if squeeze else out


class DeepSupervisionLoss(torch.nn.Module):
    """Weighted sum of ``loss`` over a deeply supervised network's outputs (highest resolution first).

    Default weights are ``1 / 2**i`` normalised to sum to 1, as nnU-Net (nnU-Net v2 also gives the
    lowest resolution weight 0: pass ``weights=`` for that). A single target is resized to every
    output with nearest-neighbour ("nearest-exact", as MONAI DeepSupervisionLoss); a sequence of
    targets (one per output, as nnU-Net's data loader makes) is used as given. With
    ``weights=[1, 0.5, 0.25, ...]`` unnormalised (``normalize=False``) this equals
    ``monai.losses.DeepSupervisionLoss(loss, weight_mode="exp")`` for up to 5 levels.

    Parameters
    ----------
    loss : callable
        ``loss(input, target) -> scalar`` (any loss of this package, or another).
    weights : sequence of float, optional
        One weight per output; default ``1 / 2**i``.
    normalize : bool
        Divide the weights by their sum.

    Examples
    --------
    >>> import torch
    >>> from medseg_fast.losses import DeepSupervisionLoss, DiceFocalLoss
    >>> outs = [torch.randn(1, 2, 16, 16, 16), torch.randn(1, 2, 8, 8, 8)]
    >>> loss = DeepSupervisionLoss(DiceFocalLoss())(outs, torch.randint(0, 2, (1, 16, 16, 16)))
    """

    def __init__(self, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], weights: Sequence[float] | None = None,
                 *, normalize: bool = True) -> None:
        super().__init__()
        if not callable(loss):
            raise TypeError(f"loss must be callable, got {type(loss).__name__}")
        if weights is not None and any(float(w) < 0 for w in weights):
            raise ValueError(f"weights must be non-negative, got {list(weights)}")
        self.loss = loss
        self.weights = None if weights is None else [float(w) for w in weights]
        self.normalize = bool(normalize)

    def level_weights(self, levels: int) -> list[float]:
        """The weight of each of `levels` outputs."""
        if self.weights is None:
            w = [1.0 / 2**i for i in range(levels)]
        else:
            if len(self.weights) < levels:
                raise ValueError(f"weights must have one value per output ({levels}), got {len(self.weights)}")
            w = self.weights[:levels]
        if self.normalize:
            total = sum(w)
            if total <= 0:
                raise ValueError(f"weights must not all be zero, got {w}")
            w = [x / total for x in w]
        return w

    def forward(self, input: torch.Tensor | Sequence[torch.Tensor],
                target: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """Weighted loss over ``input`` (a tensor or a sequence of outputs, highest resolution first)."""
        if isinstance(input, torch.Tensor):
            return self.loss(input, target)
        outputs = list(input)
        if not outputs:
            raise ValueError("input must hold at least one output")
        weights = self.level_weights(len(outputs))
        if isinstance(target, torch.Tensor):
            targets = [_resize_target(target, tuple(o.shape[2:]), o.dim()) for o in outputs]
        else:
            targets = list(target)
            if len(targets) != len(outputs):
                raise ValueError(f"target must be one tensor or one per output ({len(outputs)}), got {len(targets)}")
        total = None
        for w, o, t in zip(weights, outputs, targets):
            if w == 0.0:
                continue
            term = w * self.loss(o, t)
            total = term if total is None else total + term
        if total is None:
            total = outputs[0].sum() * 0.0
        return total
