"""The fused kernel call and its ``torch.autograd.Function``.

One forward pass over the logits gives, per (batch item b, class k), five sums in float64::

    I  = sum_v p*t        P  = sum_v p   (p**2 with squared_pred)
    G  = sum_v t   (t**2 with squared_pred)
    Tp = sum_v t*term     Tn = sum_v (1-t)*term

where p is the Dice activation (softmax over classes, or a sigmoid per class), t the one-hot
target (built on the fly from integer labels: no one-hot tensor exists) and ``term`` a per-element
loss term (softmax focal, sigmoid focal, or the exponential-logarithmic cross term). Every loss of
the family is a small torch formula on these (B, K, 5) sums, so autograd gives d loss / d sums and
the backward kernel turns that into d loss / d logits in one pass, recomputing the activation from
the logits (nothing of the logits' size is saved besides the caller's own logits and target).
"""

from __future__ import annotations

import contextlib

import functools
from dataclasses import dataclass
from typing import Any

import torch

from .. import _backend, _ext

__all__ = ["SegConfig", "seg_sums", "SUM_I", "SUM_P", "SUM_G", "SUM_TP", "SUM_TN"]

# Positions of the five sums in the last axis of the (B, K, 5) result, as the kernels define them.
_SEG_SUM = _ext.cpu_module().SegSum
SUM_I, SUM_P, SUM_G, SUM_TP, SUM_TN = (int(_SEG_SUM.I), int(_SEG_SUM.P), int(_SEG_SUM.G), int(_SEG_SUM.Tp),
                                       int(_SEG_SUM.Tn))


@dataclass(frozen=True)
class SegConfig:
    """What the kernel computes (see module docstring).

    ``act`` names a ``DiceAct`` (``"softmax"``, ``"sigmoid"``) and ``term`` a ``PixelTerm``
    (``"none"``, ``"focal_softmax"``, ``"focal_sigmoid"``, ``"explog_softmax"``) of the extension
    module; :meth:`for_kernel` turns the names into that module's typed ``SegLossConfig``.
    """

    act: str = "softmax"
    term: str = "none"
    term_first: int = 0
    gamma: float = 2.0
    squared_pred: bool = False
    ignore_index: int | None = None
    explog_eps: float = 1e-7

    def for_kernel(self, module: Any, onehot: bool) -> Any:
        """This configuration as ``module.SegLossConfig`` (module: ``_C`` or ``_C_cuda``)."""
        return module.SegLossConfig(
            act=_member(module.DiceAct, self.act, "act"), term=_member(module.PixelTerm, self.term, "term"),
            term_first=int(self.term_first), gamma=float(self.gamma), squared_pred=bool(self.squared_pred),
            onehot=bool(onehot), ignore_index=None if self.ignore_index is None else int(self.ignore_index),
            explog_eps=float(self.explog_eps))


@functools.lru_cache(maxsize=64)
def _kernel_config(module: Any, config: SegConfig, onehot: bool) -> Any:
    """``config.for_kernel`` cached (the kernels only read it): a loss makes the same few configs every step."""
    return config.for_kernel(module, onehot)


def _member(enum: Any, name: str, what: str) -> Any:
    """The member of a bound enum called ``name``; ValueError naming the choices otherwise."""
    members = enum.__members__
    if not isinstance(name, str) or name not in members:
        raise ValueError(f"{what} must be one of {tuple(members)}, got {name!r}")
    return members[name]


def _collapse_spatial(shape: tuple[int, ...], strides: list[tuple[int, ...]]) -> tuple[list[int], list[list[int]]] | None:
    """Spatial axes merged where every array is contiguous across them; None if more than 3 remain."""
    out_shape, out_strides = _backend.plan_layout(shape, *strides, order_by=None)
    if len(out_shape) > 3:
        return None
    while len(out_shape) < 3:
        out_shape.insert(0, 1)
        for s in out_strides:
            s.insert(0, 0)
    return out_shape, out_strides


def _target_strides(target: torch.Tensor, onehot: bool, spatial_ndim: int) -> tuple[int, int, tuple[int, ...]]:
    st = target.stride()
    if onehot:
        return st[0], st[1], tuple(st[2:])
    if target.dim() == spatial_ndim + 2:   # (B, 1, *spatial)
        return st[0], 0, tuple(st[2:])
    return st[0], 0, tuple(st[1:])          # (B, *spatial)


def _plan(logits: torch.Tensor, target: torch.Tensor, onehot: bool, grad: torch.Tensor | None = None):
    """(dims, descriptors) for the kernel, or None when the spatial axes cannot be collapsed to 3."""
    spatial = tuple(logits.shape[2:])
    lst = logits.stride()
    tb, tk, ts = _target_strides(target, onehot, len(spatial))
    arrays = [tuple(lst[2:]), ts]
    if grad is not None:
        arrays.append(tuple(grad.stride()[2:]))
    plan = _collapse_spatial(spatial, arrays)
    if plan is None:
        return None
    n, ss = plan
    dims = [int(logits.shape[0]), int(logits.shape[1]), *n]
    descs = [
        (logits.data_ptr(), _backend.dtype_name(logits.dtype), [lst[0], lst[1], *ss[0]]),
        (target.data_ptr(), _backend.dtype_name(target.dtype), [tb, tk, *ss[1]]),
    ]
    if grad is not None:
        gst = grad.stride()
        descs.append((grad.data_ptr(), _backend.dtype_name(grad.dtype), [gst[0], gst[1], *ss[2]]))
    return dims, descs


def _cuda_path(t: torch.Tensor) -> bool:
    """Whether `t` takes the CUDA drivers: a CUDA tensor, or a CPU tensor inside
    `medseg_fast._ext.emulate_cuda` (tests: the drivers run on the CPU)."""
    return t.is_cuda or (_ext.emulating_cuda() and t.device.type == "cpu")


def _module_for(t: torch.Tensor):
    return _ext.module_for("cuda" if _cuda_path(t) else "cpu")


def _on_device(t: torch.Tensor):
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def _stream(t: torch.Tensor) -> int:
    return int(torch.cuda.current_stream(t.device).cuda_stream) if t.is_cuda else 0


def _aligned(t: torch.Tensor) -> torch.Tensor:
    """`t`, or an aligned copy when its data address is not a multiple of its item size (e.g. from
    ``torch.frombuffer`` at an odd offset): the kernels read through typed pointers, and a misaligned
    one is undefined behaviour in C++ (as in _backend.view)."""
    return t.clone(memory_format=torch.contiguous_format) if t.data_ptr() % t.element_size() else t


def _forward(logits: torch.Tensor, target: torch.Tensor, onehot: bool, config: SegConfig):
    logits, target = _aligned(logits), _aligned(target)
    planned = _plan(logits, target, onehot)
    if planned is None:   # more than 3 non-mergeable spatial axes: one documented copy
        logits, target = logits.contiguous(), target.contiguous()
        planned = _plan(logits, target, onehot)
    dims, (ldesc, tdesc) = planned
    B, K = dims[0], dims[1]
    sums = torch.zeros((B, K, 5), dtype=torch.float64, device=logits.device)
    counts = torch.zeros((B,), dtype=torch.int64, device=logits.device)
    mod = _module_for(logits)
    cfg = _kernel_config(mod, config, bool(onehot))
    if _cuda_path(logits):
        bad = torch.zeros((), dtype=torch.int64, device=logits.device)
        with _on_device(logits):
            mod.seg_loss_sums(dims, cfg, ldesc, tdesc, sums.data_ptr(), counts.data_ptr(), bad.data_ptr(),
                              _stream(logits))
    else:
        n_bad = mod.seg_loss_sums(dims, cfg, ldesc, tdesc, sums.data_ptr(), counts.data_ptr())
        if n_bad:
            raise ValueError(
                f"target must hold class labels in [0, {max(K, 2) if K == 1 else K})"
                + (f" or ignore_index={config.ignore_index}" if config.ignore_index is not None else "")
                + f", got {n_bad} voxel(s) outside that range"
            )
        bad = torch.zeros((), dtype=torch.int64)
    return sums, counts, bad


def _backward(logits: torch.Tensor, target: torch.Tensor, onehot: bool, config: SegConfig,
              grad_sums: torch.Tensor) -> torch.Tensor:
    logits, target = _aligned(logits), _aligned(target)
    grad = torch.empty_like(logits, memory_format=torch.preserve_format)
    planned = _plan(logits, target, onehot, grad)
    if planned is None:
        logits, target = logits.contiguous(), target.contiguous()
        grad = torch.empty_like(logits, memory_format=torch.contiguous_format)
        planned = _plan(logits, target, onehot, grad)
    dims, (ldesc, tdesc, gdesc) = planned
    gs = grad_sums.to(device=logits.device, dtype=torch.float64).contiguous()
    mod = _module_for(logits)
    cfg = _kernel_config(mod, config, bool(onehot))
    if _cuda_path(logits):
        with _on_device(logits):
            mod.seg_loss_grad(dims, cfg, ldesc, tdesc, gs.data_ptr(), gdesc, _stream(logits))
    else:
        mod.seg_loss_grad(dims, cfg, ldesc, tdesc, gs.data_ptr(), gdesc)
    return grad


class SegSums(torch.autograd.Function):
    """(logits, target) -> (sums (B, K, 5) float64, counts (B,) int64, bad () int64); differentiable in logits."""

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, target: torch.Tensor, onehot: bool, config: SegConfig):
        sums, counts, bad = _forward(logits, target, onehot, config)
        ctx.save_for_backward(logits, target)
        ctx.onehot = onehot
        ctx.config = config
        ctx.mark_non_differentiable(counts, bad)
        return sums, counts, bad

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_sums: torch.Tensor | None, _gc: Any, _gb: Any):
        logits, target = ctx.saved_tensors
        if grad_sums is None or not ctx.needs_input_grad[0]:
            return None, None, None, None
        return _backward(logits, target, ctx.onehot, ctx.config, grad_sums), None, None, None


def seg_sums(logits: torch.Tensor, target: torch.Tensor, onehot: bool, config: SegConfig):
    """Differentiable kernel sums; see the module docstring. Inputs must be validated already."""
    return SegSums.apply(logits, target, onehot, config)
