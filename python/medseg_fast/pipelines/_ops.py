"""The kernels the pipelines call, behind one small seam.

Every function here has the signature of the medseg_fast kernel that serves it (see API.md). When that
kernel family is present in the package (``medseg_fast.resample``, ``components``, ``sliding_window``,
``metrics``, ``losses``) it is used; otherwise a plain torch / numpy / scipy fallback runs (marked
``REPLACE``: delete it once every build ships the kernel). ``MEDSEG_FAST_PIPELINE_FALLBACK=1`` forces the
fallbacks (for A/B checks). Nothing else in ``pipelines/`` or ``data/`` calls scipy, MONAI or a kernel directly.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "resample_image",
    "resample_seg",
    "postprocess_largest",
    "compute_metrics",
    "make_loss",
    "infer_volume",
    "backends",
    "METRICS",
]

METRICS = ("dice", "iou", "hd95", "assd", "surface_dice")


def _kernel(module: str, name: str) -> Callable[..., Any] | None:
    """``medseg_fast.<module>.<name>`` when that family is built into this package, else None."""
    if os.environ.get("MEDSEG_FAST_PIPELINE_FALLBACK") == "1":
        return None
    try:
        mod = importlib.import_module(f"medseg_fast.{module}")
        fn = getattr(mod, name)
        from .. import _ext

        _ext.cpu_module()  # the compiled extension must be importable too
    except (ImportError, AttributeError):
        return None
    return fn


def backends() -> dict[str, str]:
    """Which implementation each pipeline operation uses: ``"kernel"`` or ``"fallback"``."""
    table = {
        "resample_image": ("resample", "resample"),
        "resample_seg": ("resample", "resample_labels"),
        "postprocess_largest": ("components", "keep_largest_per_class"),
        "compute_metrics": ("metrics", "evaluate"),
        "infer_volume": ("sliding_window", "sliding_window_inference"),
        "make_loss": ("losses", "DeepSupervisionLoss"),
    }
    return {op: ("kernel" if _kernel(m, n) else "fallback") for op, (m, n) in table.items()}


# --------------------------------------------------------------------------------------------- resampling
def resample_image(x: np.ndarray, out_shape: Sequence[int], *, spacing: Sequence[float] | None = None,
                   new_spacing: Sequence[float] | None = None, order: int = 1) -> np.ndarray:
    """Resample a (C, *spatial) float array (numpy, or torch on any device) to ``out_shape`` (spatial),
    linear interpolation; the result is the same kind on the same device.

    REPLACE with ``medseg_fast.resample(x, out_shape, spacing=spacing, new_spacing=new_spacing, order=order)``
    when merged. Fallback: ``torch.nn.functional.interpolate(trilinear, align_corners=False)``, which the
    kernel equals for order 1 without separate z (API.md).
    """
    out_shape = tuple(int(s) for s in out_shape)
    if tuple(x.shape[1:]) == out_shape:
        return x
    kernel = _kernel("resample", "resample")
    if kernel is not None:
        return kernel(x, out_shape, spacing=spacing, new_spacing=new_spacing, order=order)
    is_torch = isinstance(x, torch.Tensor)
    t = (x.float() if is_torch else torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))[None]
    mode = "nearest" if order == 0 else ("bilinear" if len(out_shape) == 2 else "trilinear")
    kwargs = {} if order == 0 else {"align_corners": False}
    out = F.interpolate(t, size=out_shape, mode=mode, **kwargs)[0]
    return out if is_torch else out.numpy()


def resample_seg(labels: np.ndarray, out_shape: Sequence[int], *, num_classes: int | None = None,
                 order: int = 1) -> np.ndarray:
    """Resample an integer label map: each class interpolated (linear) and the argmax taken.

    REPLACE with ``medseg_fast.resample_labels(labels, out_shape, num_classes=num_classes, order=order)``.
    Fallback: one class at a time with a running maximum (no one-hot volume in memory).
    """
    out_shape = tuple(int(s) for s in out_shape)
    if tuple(labels.shape) == out_shape:
        return labels
    kernel = _kernel("resample", "resample_labels")
    if kernel is not None:
        return kernel(labels, out_shape, num_classes=num_classes, order=order)
    k = int(num_classes if num_classes is not None else int(labels.max(initial=0)) + 1)
    src = torch.from_numpy(np.ascontiguousarray(labels))
    if order == 0:
        out = F.interpolate(src[None, None].float(), size=out_shape, mode="nearest")[0, 0]
        return out.numpy().astype(labels.dtype)
    mode = "bilinear" if len(out_shape) == 2 else "trilinear"
    best = torch.full(out_shape, -1.0)
    arg = torch.zeros(out_shape, dtype=torch.int64)
    for c in range(k):
        p = F.interpolate((src == c)[None, None].float(), size=out_shape, mode=mode, align_corners=False)[0, 0]
        better = p > best
        best = torch.where(better, p, best)
        arg[better] = c
    return arg.numpy().astype(labels.dtype)


# --------------------------------------------------------------------------------------------- postprocessing
def postprocess_largest(labelmap: np.ndarray, classes: Sequence[int] | None = None,
                        connectivity: int = 26) -> np.ndarray:
    """Keep the largest connected component of each class; the other voxels of that class become 0.

    REPLACE with ``medseg_fast.keep_largest_per_class(labelmap, classes=classes, connectivity=connectivity)``.
    """
    kernel = _kernel("components", "keep_largest_per_class")
    if kernel is not None:
        return kernel(labelmap, classes=None if classes is None else list(classes), connectivity=connectivity)
    from scipy import ndimage

    out = labelmap.copy()
    classes = [int(c) for c in np.unique(labelmap) if c != 0] if classes is None else list(classes)
    full = labelmap.ndim == 3 and connectivity == 26 or labelmap.ndim == 2 and connectivity == 8
    structure = ndimage.generate_binary_structure(labelmap.ndim, labelmap.ndim if full else 1)
    for c in classes:
        lab, n = ndimage.label(labelmap == c, structure=structure)
        if n > 1:
            sizes = np.bincount(lab.ravel())
            sizes[0] = 0
            out[(lab != 0) & (lab != int(np.argmax(sizes)))] = 0
    return out


# --------------------------------------------------------------------------------------------- metrics
def _surface(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(mask.ndim, 1),
                                          border_value=0)


def _surface_distances(a: np.ndarray, b: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Distances from the surface voxels of ``a`` to the surface of ``b`` and back (MONAI's voxel surfaces)."""
    from scipy import ndimage

    sa, sb = _surface(a), _surface(b)
    da = ndimage.distance_transform_edt(~sb, sampling=spacing)[sa]
    db = ndimage.distance_transform_edt(~sa, sampling=spacing)[sb]
    return da, db


def compute_metrics(pred: np.ndarray, gt: np.ndarray, classes: Sequence[int],
                    spacing: Sequence[float] | None = None,
                    metrics: Sequence[str] = METRICS, *, tolerance: float = 2.0) -> list[dict[str, Any]]:
    """One row per class: ``{"class": c, "dice": ..., "iou": ..., "hd95": ..., "assd": ..., "surface_dice": ...}``.

    Conventions follow MONAI: HD95 is the larger of the two directed 95th percentiles, ASSD the mean of both
    directed distance sets; distances in mm. Both masks empty: Dice/IoU 1 and distances 0; exactly one empty:
    Dice/IoU 0 and distances NaN. Surface Dice at ``tolerance`` mm (Nikolov et al. 2021, voxel surfaces).

    REPLACE with ``medseg_fast.metrics.evaluate(pred, gt, classes, spacing, metrics, tolerance=tolerance,
    empty=1.0)`` when merged (same rows: ``{"class": c, "<metric>": float}``; its MONAI convention is the one
    used here).
    """
    spacing = tuple(float(s) for s in (spacing if spacing is not None else (1.0,) * pred.ndim))
    kernel = _kernel("metrics", "evaluate")
    if kernel is not None:
        rows = kernel(pred, gt, list(classes), spacing, list(metrics), tolerance=tolerance, empty=1.0)
        # the kernel follows MONAI for empty masks (NaN / inf); keep this function's documented convention
        for row in rows:
            in_pred, in_gt = bool((pred == row["class"]).any()), bool((gt == row["class"]).any())
            if in_pred and in_gt:
                continue
            both = not in_pred and not in_gt
            fix = {"hd95": 0.0 if both else math.nan, "assd": 0.0 if both else math.nan,
                   "surface_dice": 1.0 if both else 0.0}
            row.update({k: v for k, v in fix.items() if k in row})
        return rows
    rows = []
    for c in classes:
        p, g = pred == c, gt == c
        np_, ng = int(p.sum()), int(g.sum())
        inter = int((p & g).sum())
        row: dict[str, Any] = {"class": int(c)}
        if "dice" in metrics:
            row["dice"] = 1.0 if np_ + ng == 0 else 2.0 * inter / (np_ + ng)
        if "iou" in metrics:
            union = np_ + ng - inter
            row["iou"] = 1.0 if union == 0 else inter / union
        dist_metrics = [m for m in ("hd95", "assd", "surface_dice") if m in metrics]
        if dist_metrics:
            if np_ == 0 and ng == 0:
                vals = {"hd95": 0.0, "assd": 0.0, "surface_dice": 1.0}
            elif np_ == 0 or ng == 0:
                vals = {"hd95": math.nan, "assd": math.nan, "surface_dice": 0.0}
            else:
                da, db = _surface_distances(p, g, spacing)
                vals = {
                    "hd95": float(max(np.percentile(da, 95), np.percentile(db, 95))),
                    "assd": float((da.sum() + db.sum()) / (da.size + db.size)),
                    "surface_dice": float(((da <= tolerance).sum() + (db <= tolerance).sum()) / (da.size + db.size)),
                }
            row.update({m: vals[m] for m in dist_metrics})
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------- losses
class _DiceCE(nn.Module):
    """Soft Dice (batch, background excluded, smooth 1e-5, MONAI DiceLoss semantics) + cross-entropy or focal."""

    def __init__(self, kind: str = "dice_ce", gamma: float = 2.0) -> None:
        super().__init__()
        self.kind, self.gamma = kind, gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        k = logits.shape[1]
        target = target.long()
        logp = F.log_softmax(logits, dim=1)
        p = logp.exp()
        onehot = F.one_hot(target, k).movedim(-1, 1).to(p.dtype)
        dims = (0, *range(2, logits.ndim))
        inter = (p * onehot).sum(dims)[1:]
        denom = (p.sum(dims) + onehot.sum(dims))[1:]
        dice = 1.0 - ((2.0 * inter + 1e-5) / (denom + 1e-5)).mean()
        if self.kind == "dice_focal":
            logpt = logp.gather(1, target[:, None])[:, 0]
            ce = (-(1.0 - logpt.exp()) ** self.gamma * logpt).mean()
        else:
            ce = F.nll_loss(logp, target)
        return dice + ce


class _DeepSupervision(nn.Module):
    """Weighted sum over deep-supervision outputs; targets down-sampled by nearest to each output's size."""

    def __init__(self, loss: nn.Module, weights: Sequence[float]) -> None:
        super().__init__()
        self.loss, self.weights = loss, [float(w) for w in weights]

    def forward(self, outputs: torch.Tensor | list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            return self.loss(outputs, target)
        total = outputs[0].new_zeros(())
        for w, out in zip(self.weights, outputs):
            t = target
            if tuple(out.shape[2:]) != tuple(target.shape[1:]):
                t = F.interpolate(target[:, None].float(), size=out.shape[2:], mode="nearest")[:, 0].long()
            total = total + w * self.loss(out, t)
        return total


def make_loss(kind: str = "dice_ce", *, deep_supervision_levels: int = 0) -> nn.Module:
    """The training loss: ``"dice_ce"`` (Dice + cross-entropy, nnU-Net) or ``"dice_focal"``, with nnU-Net's
    deep-supervision weights (1, 1/2, 1/4, ..., normalized) over ``1 + deep_supervision_levels`` outputs.

    REPLACE the inner loss with ``medseg_fast.losses.DiceFocalLoss(include_background=False, batch=True)`` /
    ``DiceLoss(include_background=False, batch=True) + CrossEntropyLoss()`` and the wrapper with
    ``medseg_fast.losses.DeepSupervisionLoss(inner, weights)`` (same default weights, highest resolution
    first, targets resized by nearest).
    The module maps ``(logits or list of logits, int64 target (B, *spatial))`` to a scalar.
    """
    if kind not in ("dice_ce", "dice_focal"):
        raise ValueError(f"loss must be 'dice_ce' or 'dice_focal', got {kind!r}")
    n = 1 + int(deep_supervision_levels)
    w = np.array([0.5**i for i in range(n)])
    weights = (w / w.sum()).tolist()
    if _kernel("losses", "DeepSupervisionLoss") is not None:
        from .. import losses

        inner: nn.Module
        if kind == "dice_focal":
            inner = losses.DiceFocalLoss(include_background=False, batch=True)
        else:
            inner = _Sum(losses.DiceLoss(include_background=False, batch=True), losses.CrossEntropyLoss())
        return losses.DeepSupervisionLoss(inner, weights)
    return _DeepSupervision(_DiceCE(kind), weights)


class _Sum(nn.Module):
    """``a(x, y) + b(x, y)``."""

    def __init__(self, a: nn.Module, b: nn.Module) -> None:
        super().__init__()
        self.a, self.b = a, b

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.a(logits, target) + self.b(logits, target)


# --------------------------------------------------------------------------------------------- inference
def _gaussian(patch: Sequence[int], sigma_scale: float = 0.125) -> torch.Tensor:
    axes = []
    for s in patch:
        c = (s - 1) / 2.0
        g = torch.exp(-0.5 * ((torch.arange(s, dtype=torch.float64) - c) / max(s * sigma_scale, 1e-6)) ** 2)
        axes.append(g)
    w = axes[0]
    for g in axes[1:]:
        w = w[..., None] * g
    w = w / w.max()
    return w.clamp_min(w[w > 0].min()).float()


def _starts(size: int, patch: int, overlap: float) -> list[int]:
    if size <= patch:
        return [0]
    n = math.ceil((size - patch) / (patch * (1 - overlap))) + 1
    step = (size - patch) / max(n - 1, 1)
    return [round(i * step) for i in range(n)]


@torch.no_grad()
def infer_volume(x: torch.Tensor, predictor: Callable[[torch.Tensor], torch.Tensor], patch_size: Sequence[int], *,
                 overlap: float = 0.5, batch_size: int = 4, mode: str = "gaussian", sigma_scale: float = 0.125,
                 mirror_axes: Sequence[int] | None = None, device: Any = None, output_device: Any = None,
                 progress: bool = False) -> torch.Tensor:
    """Sliding-window inference of ``x`` (B, C, *spatial) with ``spatial >= patch_size``: the predictor's
    outputs (n, K, *patch) blended with a Gaussian importance map (nnU-Net positions), optionally averaged
    over mirrored inputs along ``mirror_axes`` (spatial axis indices). Returns (B, K, *spatial) float32.

    REPLACE with ``medseg_fast.sliding_window_inference(x, predictor, patch_size, overlap=..., batch_size=...,
    mode=..., sigma_scale=..., positions="nnunet", mirror_axes=..., device=..., output_device=...)``.
    """
    kernel = _kernel("sliding_window", "sliding_window_inference")
    if kernel is not None:
        return kernel(x, predictor, patch_size, overlap=overlap, batch_size=batch_size, mode=mode,
                      sigma_scale=sigma_scale, positions="nnunet", mirror_axes=mirror_axes, device=device,
                      output_device=output_device, progress=progress)
    device = torch.device(device) if device is not None else x.device
    out_dev = torch.device(output_device) if output_device is not None else x.device
    spatial = tuple(x.shape[2:])
    patch = tuple(int(p) for p in patch_size)
    if any(s < p for s, p in zip(spatial, patch)):
        raise ValueError(f"x spatial shape {spatial} must be >= patch_size {patch} (pad first)")
    weight = _gaussian(patch, sigma_scale) if mode == "gaussian" else torch.ones(patch)
    weight = weight.to(out_dev)
    grids = [_starts(s, p, overlap) for s, p in zip(spatial, patch)]
    origins = [tuple(o) for o in np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, len(patch))]
    flips = [()] + [(a + 2,) for a in (mirror_axes or ())]

    def run(batch: torch.Tensor) -> torch.Tensor:
        acc = None
        for f in flips:
            inp = batch.flip(f) if f else batch
            y = predictor(inp.to(device)).float()
            y = y.flip(f) if f else y
            acc = y if acc is None else acc + y
        return acc / len(flips)

    results = []
    for b in range(x.shape[0]):
        acc = wsum = None
        for i in range(0, len(origins), batch_size):
            chunk = origins[i:i + batch_size]
            patches = torch.stack([x[b][(slice(None), *(slice(o, o + p) for o, p in zip(org, patch)))]
                                   for org in chunk])
            y = run(patches).to(out_dev)
            if acc is None:
                acc = torch.zeros((y.shape[1], *spatial), device=out_dev)
                wsum = torch.zeros(spatial, device=out_dev)
            for j, org in enumerate(chunk):
                sl = tuple(slice(o, o + p) for o, p in zip(org, patch))
                acc[(slice(None), *sl)] += y[j] * weight
                wsum[sl] += weight
        results.append(acc / wsum)
    return torch.stack(results)
