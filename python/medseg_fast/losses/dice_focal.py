"""DiceFocalLoss: soft Dice + focal loss on the fused kernel."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

from ._formulas import dice_from_sums, focal_from_sums
from ._fused import SegConfig, seg_sums
from ._inputs import check_pair, class_vector, poison_if_bad, result_dtype

__all__ = ["DiceFocalLoss"]


class DiceFocalLoss(torch.nn.Module):
    """Soft Dice loss plus focal loss, fused: the logits are read once forward and once backward.

    ``loss = lambda_dice * Dice + lambda_focal * Focal`` where, per (batch item, class) or per class
    with ``batch=True``, ``Dice = mean w_c (1 - (2 sum p t + smooth_nr) / (sum t + sum p + smooth_dr))``
    and ``Focal`` is the mean over voxels and classes of ``w_c alpha_c (1 - p_t)^gamma (-log p_t)``
    (softmax focal) or of the sigmoid focal term of Lin et al. 2017 (``focal_activation="sigmoid"``).

    Equal to MONAI (1.6) in value and gradient:

    - ``focal_activation="sigmoid"``: ``monai.losses.DiceFocalLoss(to_onehot_y=True, softmax=True, ...)``
      with the same include_background, gamma, alpha, weight, lambdas, batch, squared_pred, smooth terms
      (MONAI's focal term there is sigmoid-based).
    - default (softmax focal term): ``DiceLoss(softmax=True, to_onehot_y=True) + FocalLoss(use_softmax=True,
      to_onehot_y=True)``. As in MONAI, with ``include_background=False`` the focal softmax is taken over
      the foreground classes only, and a scalar ``alpha`` is then ignored (with a warning).
    - ``softmax=False``: per-class sigmoid for Dice (``DiceLoss(sigmoid=True)``) and focal
      (``FocalLoss(use_softmax=False)``): multi-label or single-channel binary segmentation.

    Differences from MONAI: ``ignore_index`` voxels are removed from every sum and the focal mean
    is taken over the remaining voxels x classes (MONAI divides by the voxel count only); a batch
    with every voxel ignored gives focal 0. Integer targets are never expanded to one-hot.

    Parameters
    ----------
    softmax : bool
        Softmax over classes (True) or a sigmoid per class (False) for the Dice term.
    include_background : bool
        If False, class 0 is left out of the Dice and focal terms.
    gamma : float
        Focal exponent (>= 0).
    alpha : float or sequence of float, optional
        Focal balance: scalar (``1 - alpha`` for background / negatives, ``alpha`` otherwise, as MONAI)
        or one value per included class.
    lambda_dice, lambda_focal : float
        Weights of the two terms (>= 0).
    weight : float or sequence of float, optional
        Per-class weights of both terms (one per included class).
    ignore_index : int, optional
        Label whose voxels contribute nothing (integer targets only).
    batch : bool
        Dice sums over the whole batch before the ratio.
    squared_pred : bool
        Squares of p and t in the Dice denominator.
    smooth_nr, smooth_dr : float
        Added to the Dice numerator and denominator.
    focal_activation : {None, "softmax", "sigmoid"}
        Activation of the focal term; None uses the Dice activation.

    Notes
    -----
    Logits may be float32, float16 or bfloat16 (computed in float32, sums in float64) or float64
    (computed in float64). The loss is float32 for 16-bit logits. On the CPU, labels outside
    ``[0, K)`` (other than ``ignore_index``) raise ValueError; on CUDA they are detected without a
    host synchronisation and the loss becomes NaN.

    Examples
    --------
    >>> import torch
    >>> from medseg_fast.losses import DiceFocalLoss
    >>> logits = torch.randn(2, 3, 8, 8, 8, requires_grad=True)
    >>> labels = torch.randint(0, 3, (2, 8, 8, 8))
    >>> loss = DiceFocalLoss()(logits, labels)
    >>> loss.backward()
    """

    def __init__(self, *, softmax: bool = True, include_background: bool = True, gamma: float = 2.0,
                 alpha: float | Sequence[float] | None = None, lambda_dice: float = 1.0, lambda_focal: float = 1.0,
                 weight: float | Sequence[float] | torch.Tensor | None = None, ignore_index: int | None = None,
                 batch: bool = False, squared_pred: bool = False, smooth_nr: float = 1e-5, smooth_dr: float = 1e-5,
                 focal_activation: str | None = None) -> None:
        super().__init__()
        if focal_activation not in (None, "softmax", "sigmoid"):
            raise ValueError(f"focal_activation must be None, 'softmax' or 'sigmoid', got {focal_activation!r}")
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        if lambda_dice < 0 or lambda_focal < 0:
            raise ValueError(f"lambda_dice and lambda_focal must be >= 0, got {lambda_dice} and {lambda_focal}")
        if isinstance(alpha, (int, float)) and not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if ignore_index is not None and not isinstance(ignore_index, int):
            raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__}")
        self.softmax = bool(softmax)
        self.include_background = bool(include_background)
        self.gamma = float(gamma)
        self.alpha = alpha
        self.lambda_dice = float(lambda_dice)
        self.lambda_focal = float(lambda_focal)
        self.weight = weight
        self.ignore_index = ignore_index
        self.batch = bool(batch)
        self.squared_pred = bool(squared_pred)
        self.smooth_nr = float(smooth_nr)
        self.smooth_dr = float(smooth_dr)
        act = focal_activation or ("softmax" if softmax else "sigmoid")
        self.focal_activation = act

    def _config(self, first: int) -> SegConfig:
        if self.lambda_focal == 0.0:
            term = "none"
        else:
            term = "focal_softmax" if self.focal_activation == "softmax" else "focal_sigmoid"
        return SegConfig(act="softmax" if self.softmax else "sigmoid", term=term, term_first=first,
                         gamma=self.gamma, squared_pred=self.squared_pred, ignore_index=self.ignore_index)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of logits ``input`` (B, K, *spatial) against ``target`` (class map or one-hot)."""
        need = 2 if (self.softmax or self.focal_activation == "softmax") else 1
        target, onehot = check_pair(input, target, ignore_index=self.ignore_index, need_classes=need)
        K = int(input.shape[1])
        first = 0 if (self.include_background or K == 1) else 1
        kc = K - first
        weight = class_vector(self.weight, kc, "weight", device=input.device)
        alpha = self.alpha
        if alpha is not None and not isinstance(alpha, (int, float)):
            alpha = class_vector(alpha, kc, "alpha", device=input.device, allow_scalar=False)
        elif alpha is not None and self.focal_activation == "softmax" and first == 1:
            warnings.warn("`include_background=False`, scalar `alpha` ignored when using softmax.", stacklevel=2)
            alpha = None
        sums, counts, bad = seg_sums(input, target, onehot, self._config(first))
        loss = sums.new_zeros(())
        if self.lambda_dice:
            loss = loss + self.lambda_dice * dice_from_sums(sums, first=first, batch=self.batch,
                                                            smooth_nr=self.smooth_nr, smooth_dr=self.smooth_dr,
                                                            weight=weight)
        if self.lambda_focal:
            loss = loss + self.lambda_focal * focal_from_sums(sums, counts, first=first,
                                                              sigmoid=self.focal_activation == "sigmoid",
                                                              alpha=alpha, weight=weight)
        return poison_if_bad(loss, bad).to(result_dtype(input))
