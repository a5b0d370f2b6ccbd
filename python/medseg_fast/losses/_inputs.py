"""Validation of (logits, target) pairs and loss options, with messages naming the argument."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .. import _ext

__all__ = ["check_pair", "class_vector", "result_dtype", "poison_if_bad"]

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_KERNEL_TARGET_DTYPES = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
                         torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_pair(input: torch.Tensor, target: torch.Tensor, *, ignore_index: int | None = None,
               need_classes: int = 1, allow_onehot: bool = True) -> tuple[torch.Tensor, bool]:
    """Validate logits (B, K, *spatial) and target; return (target as the kernel reads it, onehot).

    Integer class maps (B, *spatial) or (B, 1, *spatial) are used as they are (no one-hot tensor);
    a target with K channels is taken as one-hot (or soft) class scores.
    """
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor of logits, got {type(input).__module__}.{type(input).__name__}")
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__module__}.{type(target).__name__}")
    if input.dtype not in _FLOATS:
        raise TypeError(f"input (logits) must be float32, float16, bfloat16 or float64, got dtype={input.dtype}")
    if input.dim() < 3:
        raise ValueError(f"input must have shape (B, K, *spatial) with at least one spatial axis, got shape={tuple(input.shape)}")
    if input.device != target.device:
        raise ValueError(f"target must be on the device of input: input.device={input.device}, target.device={target.device}")
    B, K = int(input.shape[0]), int(input.shape[1])
    spatial = tuple(input.shape[2:])
    if K < need_classes:
        raise ValueError(f"input must have at least {need_classes} channels (classes) here, got shape={tuple(input.shape)}")
    onehot = False
    if target.dim() == input.dim() and target.shape[1] == K and (K > 1 or target.is_floating_point()):
        onehot = True
    elif target.dim() == input.dim() and target.shape[1] == 1:
        pass
    elif target.dim() == input.dim() - 1:
        pass
    else:
        raise ValueError(
            "target must be a class map (B, *spatial) or (B, 1, *spatial), or one-hot (B, K, *spatial), matching "
            f"input (B, K, *spatial): input.shape={tuple(input.shape)}, target.shape={tuple(target.shape)}"
        )
    t_batch = int(target.shape[0])
    t_spatial = tuple(target.shape[2:]) if target.dim() == input.dim() else tuple(target.shape[1:])
    if t_batch != B or t_spatial != spatial:
        raise ValueError(
            "target must have the batch size and spatial shape of input: "
            f"input.shape={tuple(input.shape)}, target.shape={tuple(target.shape)}"
        )
    if onehot and not allow_onehot:
        raise ValueError(f"target must be an integer class map here, got one-hot shape={tuple(target.shape)}")
    if onehot and ignore_index is not None:
        raise ValueError("ignore_index needs an integer class-map target, got a one-hot target "
                         f"shape={tuple(target.shape)}; zero the ignored voxels' logits gradient another way")
    if target.is_complex():
        raise TypeError(f"target must be real, got dtype={target.dtype}")
    if target.dtype not in _KERNEL_TARGET_DTYPES:
        target = target.to(torch.int64)   # uint16/32/64: one documented conversion
    return target, onehot


def class_vector(value: float | Sequence[float] | torch.Tensor | None, classes: int, name: str,
                 *, device: torch.device, allow_scalar: bool = True, nonnegative: bool = True) -> torch.Tensor | None:
    """A per-class float64 vector of length `classes` (scalars broadcast), or None."""
    if value is None:
        return None
    v = torch.as_tensor(value, dtype=torch.float64).detach()
    if v.dim() == 0:
        if not allow_scalar:
            raise ValueError(f"{name} must have {classes} values, got a scalar")
        v = v.expand(classes)
    if v.dim() != 1 or v.numel() != classes:
        raise ValueError(
            f"{name} must have one value per included class ({classes}; without the background when "
            f"include_background=False), got {v.numel()} values"
        )
    if nonnegative and bool((v < 0).any()):
        raise ValueError(f"{name} values must be non-negative, got {v.tolist()}")
    return v.to(device)


def result_dtype(input: torch.Tensor) -> torch.dtype:
    """Loss dtype: the logits' dtype for float32/float64, float32 for 16-bit logits."""
    return input.dtype if input.dtype in (torch.float32, torch.float64) else torch.float32


def poison_if_bad(loss: torch.Tensor, bad: torch.Tensor) -> torch.Tensor:
    """On CUDA, out-of-range labels are reported without a host sync: the loss becomes NaN (also
    under `medseg_fast._ext.emulate_cuda`, where the CUDA drivers run on CPU tensors)."""
    if not (loss.is_cuda or _ext.emulating_cuda()):
        return loss
    return torch.where(bad > 0, torch.full_like(loss, float("nan")), loss)
