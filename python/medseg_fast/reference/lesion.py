"""Plain reference of the lesion-wise metrics (:mod:`medseg_fast.lesion`), written from the published
definitions with whole-volume masks and loops (small inputs only).

* BraTS 2023 lesion-wise Dice / HD95: the steps of ``get_lesion_wise_score`` and
  ``get_lesion_wise_results`` in github.com/rachitsaluja/BraTS-2023-Metrics (``brats_metrics.py``):
  dilate the ground truth (``generate_binary_structure(3, 2)``, ``dilation`` iterations), merge the
  components that share a dilated component, dilate each lesion again and take the predicted components it
  touches; FN and FP lesions score Dice 0 and HD95 374; lesions <= ``min_volume`` mm^3 are dropped.
* Panoptic quality (Kirillov et al., "Panoptic Segmentation", CVPR 2019): pairs with IoU >= threshold
  (greedy by decreasing IoU), PQ = sum(IoU of pairs) / (TP + FP/2 + FN/2).

HD95 comes from DeepMind's surface-distance package (``compute_robust_hausdorff(.., 95)``), which is what
BraTS runs.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

__all__ = ["components", "brats_lesion_wise", "panoptic_quality"]

FP_DISTANCE = 374.0


def components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Full-connectivity components (26 in 3-D, 8 in 2-D), scipy's numbering."""
    return ndimage.label(mask, structure=np.ones((3,) * mask.ndim, bool))


def _hd95(a: np.ndarray, b: np.ndarray, spacing) -> float:
    import surface_distance

    if a.ndim == 2:  # the package wants 3-D for 3-D spacing; a 2-D mask as one slice keeps its definition
        a, b, spacing = a[None], b[None], (1.0, *spacing)
    with warnings.catch_warnings():  # the package uses scipy.ndimage.filters names that now warn
        warnings.simplefilter("ignore", DeprecationWarning)
        sd = surface_distance.compute_surface_distances(a.astype(bool), b.astype(bool), tuple(spacing))
    return float(surface_distance.compute_robust_hausdorff(sd, 95))


def brats_lesion_wise(pred: np.ndarray, gt: np.ndarray, spacing=None, *, dilation: int = 0,
                      min_volume: float = 0.0) -> dict:
    """BraTS 2023 lesion-wise scores of one binary class (nonzero = foreground)."""
    pred, gt = np.asarray(pred) != 0, np.asarray(gt) != 0
    spacing = tuple(float(s) for s in (spacing or (1.0,) * gt.ndim))
    voxel = float(np.prod(spacing))
    struct = ndimage.generate_binary_structure(gt.ndim, 2)
    gt_cc, _ = components(gt)
    pred_cc, _ = components(pred)
    if dilation:
        grown_cc, n_grown = components(ndimage.binary_dilation(gt, struct, iterations=dilation))
        lesions = [gt & (grown_cc == k) for k in range(1, n_grown + 1)]
    else:
        lesions = [gt_cc == k for k in range(1, gt_cc.max() + 1)]
    matched_pred: set[int] = set()
    rows = []
    for lesion in lesions:
        reach = ndimage.binary_dilation(lesion, struct, iterations=dilation) if dilation else lesion
        hits = sorted(set(np.unique(pred_cc[reach]).tolist()) - {0})
        matched_pred.update(hits)
        p = np.isin(pred_cc, hits) if hits else np.zeros_like(lesion)
        dice = 2.0 * (p & lesion).sum() / (p.sum() + lesion.sum())
        hd = _hd95(lesion, p, spacing) if hits else float("inf")
        rows.append({"volume_mm3": lesion.sum() * voxel, "dice": float(dice), "hd95": hd,
                     "pred_volume_mm3": p.sum() * voxel, "detected": bool(hits)})
    fp = [k for k in range(1, pred_cc.max() + 1) if k not in matched_pred]
    counted = [r for r in rows if r["volume_mm3"] > min_volume]
    den = len(counted) + len(fp)
    hd_sum = sum(FP_DISTANCE if not np.isfinite(r["hd95"]) else r["hd95"] for r in counted)
    tp = sum(r["detected"] for r in counted)
    return {
        "tp": tp, "fn": len(counted) - tp, "fp": len(fp), "lesions": rows,
        "lesion_dice": sum(r["dice"] for r in counted) / den if den else 1.0,
        "lesion_hd95": (hd_sum + FP_DISTANCE * len(fp)) / den if den else 0.0,
    }


def panoptic_quality(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> dict:
    """PQ, SQ, RQ and the TP / FP / FN counts of the IoU matching, one binary class."""
    pred_cc, n_pred = components(np.asarray(pred) != 0)
    gt_cc, n_gt = components(np.asarray(gt) != 0)
    cand = []
    for i in range(1, n_gt + 1):
        g = gt_cc == i
        for j in range(1, n_pred + 1):
            p = pred_cc == j
            inter = (g & p).sum()
            if inter:
                iou = inter / (g | p).sum()
                if iou >= threshold:
                    cand.append((iou, i, j))
    cand.sort(key=lambda t: (-t[0], t[1], t[2]))
    used_g, used_p, ious = set(), set(), []
    for iou, i, j in cand:
        if i not in used_g and j not in used_p:
            used_g.add(i)
            used_p.add(j)
            ious.append(iou)
    tp = len(ious)
    fp, fn = n_pred - tp, n_gt - tp
    den = tp + 0.5 * fp + 0.5 * fn
    sq = float(np.mean(ious)) if ious else (0.0 if den else float("nan"))
    rq = tp / den if den else float("nan")
    return {"tp": tp, "fp": fp, "fn": fn, "sq": sq, "rq": rq, "pq": sq * rq if den else float("nan")}
