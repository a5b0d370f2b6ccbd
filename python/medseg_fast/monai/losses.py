"""MONAI loss classes on the fused Dice/focal kernel (value and gradient).

``DiceLoss``, ``FocalLoss``, ``GeneralizedDiceLoss``, ``DiceCELoss`` and ``DiceFocalLoss``
subclass MONAI's classes: the constructor (arguments, defaults, validation) is MONAI's. The
forward pass reads the logits once to get, per (batch item, class), ``I = sum p t``,
``P = sum p`` (``p**2`` with ``squared_pred``) and ``G = sum t`` in float64 (plus the focal
terms), then applies MONAI's formula, weights and reduction to those sums in torch; the
backward pass is one more kernel pass. Activations the kernel computes: ``sigmoid=True`` and
``softmax=True`` (two or more channels); targets: label maps with ``to_onehot_y=True`` (never
expanded to one-hot) or one-hot / soft targets of the input's shape.

Everything else -- ``other_act``, no activation, ``ignore_index``, ``soft_label=True`` with
soft targets, 16-bit logits, per-class focal ``alpha`` or ``weight`` -- runs MONAI's own forward.
DiceCELoss keeps MONAI's cross-entropy term (torch) and uses the fused Dice term. As in MONAI,
a MetaTensor input or target gives a MetaTensor loss (the input's meta, else the target's).
"""

from __future__ import annotations

import warnings
from typing import Any

import monai.losses as _ml
import torch
from monai.data import MetaTensor
from monai.utils import LossReduction

from ..losses._fused import SUM_G, SUM_I, SUM_P, SUM_TN, SUM_TP, SegConfig, seg_sums
from ..losses._inputs import poison_if_bad

__all__ = ["DiceLoss", "FocalLoss", "GeneralizedDiceLoss", "DiceCELoss", "DiceFocalLoss"]


def _sums(input: torch.Tensor, target: torch.Tensor, *, act: str, to_onehot_y: bool, include_background: bool,
          squared_pred: bool = False, term: str = "none", gamma: float = 2.0, soft_ok: bool = True):
    """(sums (B, K, 5), counts, bad, first) from the kernel, or None when MONAI's code must run.

    Emits MONAI's single-channel warnings in MONAI's order when the fast path is taken.
    """
    if not isinstance(input, torch.Tensor) or not isinstance(target, torch.Tensor):
        return None
    if input.dtype not in (torch.float32, torch.float64) or input.dim() < 3 or target.dim() != input.dim():
        return None
    if input.device != target.device or target.shape[0] != input.shape[0] or target.shape[2:] != input.shape[2:]:
        return None
    K = int(input.shape[1])
    if act == "softmax" and K == 1:
        return None
    onehot = True
    if to_onehot_y and K > 1:
        if target.shape[1] != 1:
            return None
        onehot = False
        if target.is_floating_point():
            target = target.long()           # MONAI's one_hot reads labels as long
    else:
        if target.shape != input.shape:
            return None
        if not soft_ok and not bool(((target == 0) | (target == 1)).all()):
            return None
        if not target.is_floating_point() and K == 1:
            target = target.to(input.dtype)  # one channel: the values themselves, not a class map
    warns = []
    if to_onehot_y and K == 1:
        warns.append("single channel prediction, `to_onehot_y=True` ignored.")
    if not include_background and K == 1:
        warns.append("single channel prediction, `include_background=False` ignored.")
    first = 0 if (include_background or K == 1) else 1
    config = SegConfig(act=act, term=term, term_first=first, gamma=float(gamma), squared_pred=bool(squared_pred))
    try:
        sums, counts, bad = seg_sums(input, target, onehot, config)
    except ValueError:
        return None                           # e.g. labels out of range: MONAI raises its own error
    for w in warns:
        warnings.warn(w, stacklevel=4)
    return sums, counts, bad, first


def _like_monai(loss: torch.Tensor, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The loss as MONAI returns it: a MetaTensor (same autograd graph) carrying the meta of
    ``input`` when it is a MetaTensor, else of ``target``, else the plain tensor."""
    src = input if isinstance(input, MetaTensor) else target if isinstance(target, MetaTensor) else None
    if src is None:
        return loss
    out = loss.as_subclass(MetaTensor)
    out.copy_meta_from(src)
    return out


def _reduce(f: torch.Tensor, reduction: str, spatial: int) -> torch.Tensor:
    if reduction == LossReduction.MEAN.value:
        return torch.mean(f)
    if reduction == LossReduction.SUM.value:
        return torch.sum(f)
    if reduction == LossReduction.NONE.value:
        return f.view(list(f.shape[0:2]) + [1] * spatial)
    raise ValueError(f'Unsupported reduction: {reduction}, available options are ["mean", "sum", "none"].')


def _act(loss: Any) -> str | None:
    if loss.other_act is not None or loss.sigmoid == loss.softmax:
        return None
    return "sigmoid" if loss.sigmoid else "softmax"


class DiceLoss(_ml.DiceLoss):
    """``monai.losses.DiceLoss`` on the fused kernel: MONAI's arguments, values and gradients.

    MONAI's weight rule is kept: ``weight`` is applied only when more than one class remains
    (after dropping the background); with one sigmoid channel, or two channels and
    ``include_background=False``, it is ignored. (:class:`medseg_fast.losses.DiceLoss`
    multiplies a weight in even then.) See the module docstring for the cases that run MONAI's code.

    Examples
    --------
    >>> import torch
    >>> from medseg_fast.monai import DiceLoss
    >>> logits = torch.randn(2, 3, 8, 8, 8, requires_grad=True)
    >>> labels = torch.randint(0, 3, (2, 1, 8, 8, 8))
    >>> DiceLoss(to_onehot_y=True, softmax=True)(logits, labels).backward()
    """

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        act = _act(self)
        got = None
        if act is not None and self.ignore_index is None:
            got = _sums(input, target, act=act, to_onehot_y=self.to_onehot_y,
                        include_background=self.include_background, squared_pred=self.squared_pred,
                        soft_ok=not self.soft_label or self.squared_pred)
        if got is None:
            return super().forward(input, target)
        sums, _, bad, first = got
        s = sums[:, first:]
        if self.batch:
            s = s.sum(0)
        i, p, g = s[..., SUM_I], s[..., SUM_P], s[..., SUM_G]
        denom = 2.0 * (p + g - i) if self.jaccard else p + g
        f = 1.0 - (2.0 * i + self.smooth_nr) / (denom + self.smooth_dr)
        classes = s.shape[-1 - 1] if s.dim() > 1 else s.shape[0]
        classes = int(sums.shape[1] - first)
        if self.class_weight is not None and classes != 1:
            if self.class_weight.ndim == 0:
                self.class_weight = torch.as_tensor([self.class_weight] * classes)
            elif self.class_weight.shape[0] != classes:
                raise ValueError(
                    "The length of the `weight` sequence should be the same as the number of classes. "
                    "If `include_background=False`, the weight should not include the background category class 0.")
            if self.class_weight.min() < 0:
                raise ValueError("the value/values of the `weight` should be no less than 0.")
            f = f * self.class_weight.to(f)
        out = _reduce(f, self.reduction, input.dim() - 2)
        return _like_monai(poison_if_bad(out, bad).to(input.dtype), input, target)


class FocalLoss(_ml.FocalLoss):
    """``monai.losses.FocalLoss`` on the fused kernel (``reduction="mean"``, scalar or no ``alpha``,
    no ``weight``): MONAI's sigmoid (default) or softmax (``use_softmax=True``) focal term, values
    and gradients; as in MONAI the loss is float32 and, with ``include_background=False``, the
    softmax runs over the foreground channels only. Other settings run MONAI's code.

    One deliberate difference: with ``use_softmax=True`` over a single channel (two channels and
    ``include_background=False``) and ``0 < gamma < 1`` the loss is identically 0; MONAI's
    autograd returns NaN gradients there (``(1 - p) ** gamma`` differentiated at ``p = 1``),
    this class the exact gradient 0."""

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        got = None
        if (self.reduction == LossReduction.MEAN.value and self.class_weight is None and self.ignore_index is None
                and (self.alpha is None or isinstance(self.alpha, float))
                and not (self.use_softmax and input.shape[1] == 1)):
            term = "focal_softmax" if self.use_softmax else "focal_sigmoid"
            got = _sums(input, target, act="softmax" if self.use_softmax else "sigmoid",
                        to_onehot_y=self.to_onehot_y, include_background=self.include_background, term=term,
                        gamma=self.gamma)
        if got is None:
            return super().forward(input, target)
        sums, counts, bad, first = got
        alpha = self.alpha
        if self.use_softmax and first == 1 and alpha is not None:
            warnings.warn("`include_background=False`, scalar `alpha` ignored when using softmax.", stacklevel=2)
            alpha = None
        s = sums[:, first:]
        tp, tn = s[..., SUM_TP], s[..., SUM_TN]
        kc = s.shape[1]
        if not self.use_softmax:
            per = tp + tn if alpha is None else alpha * tp + (1.0 - alpha) * tn
        elif alpha is None:
            per = tp
        else:
            fac = torch.full((kc,), alpha, dtype=tp.dtype, device=tp.device)
            fac[0] = 1.0 - alpha
            per = fac * tp
        loss = per.sum() / (counts.sum().to(per.dtype) * kc).clamp_min(1.0)
        return _like_monai(poison_if_bad(loss, bad).to(torch.float32), input, target)


class GeneralizedDiceLoss(_ml.GeneralizedDiceLoss):
    """``monai.losses.GeneralizedDiceLoss`` on the fused kernel: MONAI's class weights
    (``w_type``), infinite-weight rule, batch mode and reductions applied to the kernel's sums."""

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        act = _act(self)
        got = None if act is None else _sums(input, target, act=act, to_onehot_y=self.to_onehot_y,
                                               include_background=self.include_background,
                                               soft_ok=not self.soft_label)
        if got is None:
            return super().forward(input, target)
        sums, _, bad, first = got
        s = sums[:, first:]
        if self.batch:
            s = s.sum(0)
        tp, p, g = s[..., SUM_I], s[..., SUM_P], s[..., SUM_G]
        denominator = p + g
        w = self.w_func(g.float()).to(g.dtype)
        infs = torch.isinf(w)
        w = torch.where(infs, torch.zeros_like(w), w)
        if self.batch:
            w = w + infs * torch.max(w)
        else:
            w = w + infs * torch.max(w, dim=1)[0].unsqueeze(dim=1)
        dim = 0 if self.batch else 1
        numer = 2.0 * (tp * w).sum(dim, keepdim=True) + self.smooth_nr
        denom = (denominator * w).sum(dim, keepdim=True) + self.smooth_dr
        f = 1.0 - numer / denom
        out = _reduce(f, self.reduction, input.dim() - 2)
        return _like_monai(poison_if_bad(out, bad).to(input.dtype), input, target)


class DiceCELoss(_ml.DiceCELoss):
    """``monai.losses.DiceCELoss``: the Dice term on the fused kernel (:class:`DiceLoss`), the
    cross-entropy term MONAI's own (torch); constructor and forward are MONAI's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dice.__class__ = DiceLoss     # same state, fused forward


class DiceFocalLoss(_ml.DiceFocalLoss):
    """``monai.losses.DiceFocalLoss``: both terms on the fused kernel (:class:`DiceLoss`,
    :class:`FocalLoss`, each falling back to MONAI's code where it must); MONAI's forward."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dice.__class__ = DiceLoss
        self.focal.__class__ = FocalLoss
