"""ExpLogLoss: exponential logarithmic loss (Wong et al. 2018) on the fused kernel."""

from __future__ import annotations

import torch

from ._fused import SUM_G, SUM_I, SUM_P, SUM_TP, SegConfig, seg_sums
from ._inputs import check_pair, poison_if_bad, result_dtype

__all__ = ["ExpLogLoss"]


class ExpLogLoss(torch.nn.Module):
    """Exponential logarithmic loss (Wong, Moradi, Tang, Syeda-Mahmood, MICCAI 2018, arXiv:1809.00076).

    ``L = w_dice * mean_(b,)c (-ln Dice_c)^gamma_dice + w_cross * mean_v w_l (-ln p_l(v))^gamma_cross``
    with the smoothed soft Dice ``Dice_c = (2 sum p t + smooth) / (sum (p + t) + smooth)``, l the label of
    voxel v and the label weights ``w_l = ((sum_k f_k) / f_l) ** 0.5`` from the label frequencies f
    of the batch (or given as ``class_weights``). Paper defaults: w_dice 0.8, w_cross 0.2, both
    gammas 0.3, smooth 1. For gamma < 1 the derivative of ``a**gamma`` is unbounded at 0, so both
    ``-ln`` values are clamped below at ``eps`` (no gradient below it). No MONAI counterpart; the
    reference is ``medseg_fast.reference.losses.exp_log_loss``.

    Parameters
    ----------
    include_background : bool
        If False, class 0 is left out of the Dice term (the cross term keeps every voxel).
    w_dice, w_cross, gamma_dice, gamma_cross : float
        Term weights and exponents.
    smooth : float
        Additive smoothing of the Dice ratio.
    class_weights : sequence of float, optional
        The w_l (one per class) instead of the batch frequencies.
    batch : bool
        Dice over the whole batch.
    ignore_index : int, optional
        Label whose voxels contribute nothing.
    eps : float
        Clamp of the ``-ln`` values.

    Examples
    --------
    >>> import torch
    >>> from medseg_fast.losses import ExpLogLoss
    >>> logits = torch.randn(2, 3, 8, 8, 8, requires_grad=True)
    >>> loss = ExpLogLoss()(logits, torch.randint(0, 3, (2, 8, 8, 8)))
    """

    def __init__(self, *, include_background: bool = True, w_dice: float = 0.8, w_cross: float = 0.2,
                 gamma_dice: float = 0.3, gamma_cross: float = 0.3, smooth: float = 1.0,
                 class_weights=None, batch: bool = False, ignore_index: int | None = None,
                 eps: float = 1e-7) -> None:
        super().__init__()
        if gamma_dice < 0 or gamma_cross < 0:
            raise ValueError(f"gamma_dice and gamma_cross must be >= 0, got {gamma_dice} and {gamma_cross}")
        self.include_background = bool(include_background)
        self.w_dice, self.w_cross = float(w_dice), float(w_cross)
        self.gamma_dice, self.gamma_cross = float(gamma_dice), float(gamma_cross)
        self.smooth = float(smooth)
        self.class_weights = class_weights
        self.batch = bool(batch)
        self.ignore_index = ignore_index
        self.eps = float(eps)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Exp-log loss of logits ``input`` (B, K, *spatial) against ``target``."""
        from ._inputs import class_vector

        target, onehot = check_pair(input, target, ignore_index=self.ignore_index, need_classes=2)
        K = int(input.shape[1])
        first = 0 if self.include_background else 1
        config = SegConfig(act="softmax", term="explog_softmax", gamma=self.gamma_cross,
                           ignore_index=self.ignore_index, explog_eps=self.eps)
        sums, counts, bad = seg_sums(input, target, onehot, config)
        s = sums[:, first:]
        if self.batch:
            s = s.sum(dim=0, keepdim=True)
        dice = (2.0 * s[..., SUM_I] + self.smooth) / (s[..., SUM_G] + s[..., SUM_P] + self.smooth)
        l_dice = (-torch.log(dice)).clamp_min(self.eps).pow(self.gamma_dice).mean()
        w = class_vector(self.class_weights, K, "class_weights", device=input.device, allow_scalar=False)
        if w is None:
            freq = sums[..., SUM_G].detach().sum(dim=0)
            w = torch.where(freq > 0, (freq.sum() / freq.clamp_min(1e-300)).sqrt(), torch.zeros_like(freq))
        l_cross = (sums[..., SUM_TP] * w).sum() / counts.sum().clamp_min(1).to(torch.float64)
        loss = self.w_dice * l_dice + self.w_cross * l_cross
        return poison_if_bad(loss, bad).to(result_dtype(input))
