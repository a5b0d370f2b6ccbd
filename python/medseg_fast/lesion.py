"""Lesion-wise (instance) metrics: match predicted to ground-truth connected components, then score
every lesion and the detection.

Lesions are the connected components of each class (:func:`medseg_fast.label`, 26-connectivity in 3-D
by default). Matching rules (``match=``):

* ``"overlap"`` -- BraTS 2023: a predicted component matches every ground-truth lesion it touches
  (after the lesion is dilated ``dilation`` times, below). One prediction may match several lesions and
  one lesion several predictions; a lesion's prediction is the union of its matches.
* ``"iou"`` -- panoptic quality (Kirillov et al., CVPR 2019): one-to-one pairs with IoU >= ``iou_threshold``,
  taken greedily by decreasing IoU (for a threshold > 0.5 the pairs are unique whatever the order).

BraTS 2023 lesion-wise scores, as the challenge's evaluation code computes them
(github.com/rachitsaluja/BraTS-2023-Metrics, ``brats_metrics.py``; Kazerooni et al., "The Brain Tumor
Segmentation (BraTS) Challenge 2023", arXiv:2305.17033):

1. The ground truth is dilated ``dilation`` times with the 3x3x3 18-neighbourhood structure
   (``scipy.ndimage.generate_binary_structure(3, 2)``); ground-truth components that fall in one component of
   the dilated mask become one lesion (its voxels stay the original, undilated ones).
2. Each lesion is dilated again the same way; the predicted components it then touches are its matches.
3. Per lesion: Dice and HD95 (surface-distance package, ``compute_robust_hausdorff(.., 95)``, our
   ``convention="deepmind"``) between the lesion and the union of its matches; a missed lesion (FN) scores
   Dice 0 and HD95 ``fp_distance`` (374 mm).
4. Lesions of volume <= ``min_volume`` mm^3 are left out of the counts and the scores (their matches are
   not false positives either). Predicted components matching no lesion are false positives, each scoring
   Dice 0 and HD95 374.
5. ``lesion_dice = sum(Dice) / (lesions + FP)``, ``lesion_hd95 = (sum(HD95) + 374 FP) / (lesions + FP)``;
   with neither lesions nor FP, 1 and 0.

The challenge settings are in :data:`BRATS2023` (GLI: dilation 3, min_volume 50; MET: 1 and 2; ...).
Detection counts: TP = detected (counted) lesions, FN = missed ones, FP = unmatched predictions;
``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``, ``f1 = 2 TP / (2 TP + FP + FN)`` (NaN when the
denominator is 0). Panoptic quality always uses the IoU matching (``iou_threshold``) over all lesions:
``sq`` = mean IoU of the pairs, ``rq = TP / (TP + FP/2 + FN/2)``, ``pq = sq * rq`` (NaN with no lesion at all).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _validate as V
from . import components as _cc
from . import metrics as _metrics

__all__ = ["lesion_wise", "BRATS2023", "MATCH_RULES", "dilate"]

MATCH_RULES = ("overlap", "iou")
# (dilation, min_volume mm^3) per BraTS 2023 sub-challenge, from get_challenge_parameters() in brats_metrics.py
BRATS2023 = {
    "GLI": {"dilation": 3, "min_volume": 50.0},
    "SSA": {"dilation": 3, "min_volume": 50.0},
    "MEN": {"dilation": 1, "min_volume": 50.0},
    "PED": {"dilation": 3, "min_volume": 50.0},
    "MET": {"dilation": 1, "min_volume": 2.0},
}
FP_DISTANCE = 374.0  # BraTS 2023's HD95 of a missed or a false-positive lesion (mm)


def _offsets(ndim: int) -> list[tuple[int, ...]]:
    """Neighbours of scipy's generate_binary_structure(ndim, 2): at most two axes moved."""
    return [d for d in itertools.product((-1, 0, 1), repeat=ndim) if 0 < sum(map(abs, d)) <= 2]


def dilate(mask: np.ndarray, iterations: int) -> np.ndarray:
    """Binary dilation with the rank-2 structure (18-neighbourhood in 3-D, 8 in 2-D), ``iterations`` times;
    outside the array counts as background (``scipy.ndimage.binary_dilation(mask, structure, iterations)``)."""
    cur = np.asarray(mask, dtype=bool)
    for _ in range(iterations):
        out = cur.copy()
        for d in _offsets(cur.ndim):
            dst = tuple(slice(max(k, 0), n + min(k, 0)) for k, n in zip(d, cur.shape))
            src = tuple(slice(max(-k, 0), n + min(-k, 0)) for k, n in zip(d, cur.shape))
            out[dst] |= cur[src]
        cur = out
    return cur


def _box(bbox: np.ndarray, margin: int, shape: tuple[int, ...]) -> tuple[slice, ...]:
    nd = len(shape)
    return tuple(slice(max(int(bbox[a]) - margin, 0), min(int(bbox[nd + a]) + margin, shape[a])) for a in range(nd))


def _components(labels: np.ndarray, classes: list[int] | None, connectivity: int, dilation: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Lesion map (int32, lesions 1..N) and the class of each lesion (index 0 unused)."""
    if classes is None:
        fg = labels != 0
        if not dilation:
            cc, n = _cc.label(fg, connectivity, return_num=True)
            return cc, np.ones(n + 1, np.int64)
        kept = fg.astype(np.uint8)
        classes = [1]
    else:
        top = int(labels.max()) if labels.size else 0
        keep = np.zeros(max(top, max(classes, default=0)) + 1, labels.dtype)
        keep[classes] = classes
        kept = labels if np.array_equal(keep[:top + 1], np.arange(top + 1)) else keep[labels]
        if not dilation:
            cc, n = _cc.label(kept, connectivity, return_num=True)
            # a component's class is the value at any of its voxels: take its first one, found among the
            # starts of the runs of equal labels (far fewer than the voxels)
            flat = cc.reshape(-1)
            starts = np.flatnonzero(flat[1:] != flat[:-1]) + 1
            starts = np.concatenate([[0], starts]) if flat.size else starts
            ids, first = np.unique(flat[starts], return_index=True)
            cls = np.zeros(n + 1, np.int64)
            cls[ids] = kept.reshape(-1)[starts[first]]
            return cc, cls
    # dilation: lesions closer than the dilation merge (BraTS step 1), class by class inside its box
    out = np.zeros(labels.shape, np.int32)
    boxes = _cc.component_stats(kept)["bboxes"]
    cls_of = [0]
    for c in classes:
        if c >= len(boxes) or not (boxes[c, labels.ndim:] > boxes[c, :labels.ndim]).all():
            continue
        sl = _box(boxes[c], dilation, labels.shape)
        m = kept[sl] == c
        grown, n = _cc.label(dilate(m, dilation), connectivity, return_num=True)
        view = out[sl]
        view[m] = grown[m] + (len(cls_of) - 1)
        cls_of += [c] * n
    return out, np.asarray(cls_of, np.int64)


def _pair_counts(g: np.ndarray, p: np.ndarray, ng: int, np_: int) -> dict[tuple[int, int], int]:
    """Voxels shared by each (ground-truth lesion, predicted lesion) pair."""
    both = (g > 0) & (p > 0)
    gi, pi = g[both].astype(np.int64), p[both].astype(np.int64)
    if (ng + 1) * (np_ + 1) <= 1 << 24:
        counts = np.bincount(gi * (np_ + 1) + pi, minlength=(ng + 1) * (np_ + 1))
        codes = np.flatnonzero(counts)
        vals = counts[codes]
    else:
        codes, vals = np.unique(gi * (np_ + 1) + pi, return_counts=True)
    return {(int(c // (np_ + 1)), int(c % (np_ + 1))): int(v) for c, v in zip(codes, vals)}


def _iou_pairs(ov: dict, gsize: np.ndarray, psize: np.ndarray, gcls: np.ndarray, pcls: np.ndarray,
               threshold: float) -> dict[int, tuple[int, float]]:
    """One-to-one pairs with IoU >= threshold, greedily by decreasing IoU: gt lesion -> (pred lesion, IoU)."""
    cand = []
    for (g, p), n in ov.items():
        if gcls[g] == pcls[p]:
            iou = n / (gsize[g] + psize[p] - n)
            if iou >= threshold:
                cand.append((-iou, g, p))
    cand.sort()
    used_g: dict[int, tuple[int, float]] = {}
    used_p: set[int] = set()
    for neg, g, p in cand:
        if g not in used_g and p not in used_p:
            used_g[g] = (p, -neg)
            used_p.add(p)
    return used_g


def _touching(gcc: np.ndarray, pcc: np.ndarray, ng: int, dilation: int, ov: dict) -> dict[int, set[int]]:
    """Predicted lesions touching each ground-truth lesion, the lesion dilated ``dilation`` times (BraTS step 2)."""
    out: dict[int, set[int]] = {g: set() for g in range(1, ng + 1)}
    if not dilation:
        for g, p in ov:
            out[g].add(p)
        return out
    boxes = _cc.component_stats(gcc)["bboxes"]
    for g in range(1, ng + 1):
        sl = _box(boxes[g], dilation, gcc.shape)
        reach = dilate(gcc[sl] == g, dilation)
        hit = np.unique(pcc[sl][reach])
        out[g].update(int(v) for v in hit if v)
    return out


def _hd(pcc: np.ndarray, gcc: np.ndarray, gbox: np.ndarray, pbox: np.ndarray, matches: dict[int, list[int]],
        spacing, percentile: float, convention: str) -> dict[int, float]:
    """HD (percentile) between each lesion and the union of its matches, each inside the box of both (the
    surface kernel then reads only that box; a whole-volume call per batch of lesions cost more)."""
    nd = gcc.ndim
    pct = None if percentile < 0 else percentile

    def one(g: int) -> float:
        ps = matches[g]
        b = np.concatenate([gbox[[g]], pbox[ps]])
        sl = tuple(slice(int(b[:, a].min()), int(b[:, nd + a].max())) for a in range(nd))
        sub_p = pcc[sl]
        pm = sub_p == ps[0] if len(ps) == 1 else np.isin(sub_p, ps)
        return _metrics.hausdorff(pm, gcc[sl] == g, spacing, percentile=pct, convention=convention)

    return {g: one(g) for g, ps in matches.items() if ps}


def _stats(cc: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Sizes and bounding boxes of lesions 0..n (index = lesion number, also when the last ones are absent)."""
    st = _cc.component_stats(cc)
    sizes = np.zeros(n + 1, np.int64)
    boxes = np.zeros((n + 1, 2 * cc.ndim), np.int64)
    k = min(len(st["sizes"]), n + 1)
    sizes[:k], boxes[:k] = st["sizes"][:k], st["bboxes"][:k]
    return {"sizes": sizes, "bboxes": boxes}


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


def _score(lesions: list[dict], fp: list[dict], pq_pairs: list[float], n_gt: int, n_pred: int,
           fp_distance: float) -> dict[str, Any]:
    counted = [r for r in lesions if r["counted"]]
    tp = sum(r["detected"] for r in counted)
    fn = len(counted) - tp
    nfp = len(fp)
    den = len(counted) + nfp
    hd = [fp_distance if not np.isfinite(r["hd95"]) else r["hd95"] for r in counted]
    pq_tp = len(pq_pairs)
    rq_den = pq_tp + 0.5 * (n_pred - pq_tp) + 0.5 * (n_gt - pq_tp)
    sq = float(np.mean(pq_pairs)) if pq_pairs else (float("nan") if not rq_den else 0.0)
    rq = _ratio(pq_tp, rq_den)
    return {
        "tp": tp, "fp": nfp, "fn": fn,
        "precision": _ratio(tp, tp + nfp), "recall": _ratio(tp, tp + fn), "f1": _ratio(2 * tp, 2 * tp + nfp + fn),
        "lesion_dice": float(sum(r["dice"] for r in counted) / den) if den else 1.0,
        "lesion_hd95": float((sum(hd) + fp_distance * nfp) / den) if den else 0.0,
        "pq": sq * rq if rq == rq else float("nan"), "sq": sq, "rq": rq,
        "num_gt_lesions": n_gt, "num_pred_lesions": n_pred,
        "lesions": lesions, "fp_lesions": fp,
    }


def _as_labels(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch (CPU or CUDA): a host copy
        x = x.detach().cpu().numpy()
    elif hasattr(x, "get") and type(x).__module__.startswith("cupy"):
        x = x.get()
    a = np.asarray(x)
    if a.dtype.kind == "b":
        return a.view(np.uint8)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be a bool or integer label map, got dtype={a.dtype}")
    if a.dtype.kind == "i" and a.size and a.min() < 0:
        raise ValueError(f"{name} must hold non-negative labels, got min {int(a.min())}")
    return a


def lesion_wise(
    pred: Any,
    gt: Any,
    spacing: float | Sequence[float] | None = None,
    *,
    classes: Sequence[int] | None = None,
    match: str = "overlap",
    iou_threshold: float = 0.5,
    dilation: int = 0,
    min_volume: float = 0.0,
    connectivity: int | None = None,
    percentile: float = 95.0,
    convention: str = "deepmind",
    fp_distance: float = FP_DISTANCE,
    known_hd: dict[int, float] | None = None,
) -> dict[str, Any] | dict[int, dict[str, Any]]:
    """Match predicted to ground-truth lesions (connected components) and score each lesion and the detection.

    Parameters
    ----------
    pred, gt : array
        Label maps (bool or non-negative integers) of the same 2-D or 3-D shape; numpy, torch or cupy (GPU
        inputs are copied to the host).
    spacing : float or sequence of float, optional
        Voxel size per axis (array axis order, mm); volumes and distances use it. Default 1.
    classes : sequence of int, optional
        Score each of these label values separately (lesions are components of one class; a prediction of
        another class never matches). Default: every nonzero voxel is one foreground class.
    match : {"overlap", "iou"}
        The matching rule (module docstring): any overlap after ``dilation`` (BraTS 2023), or one-to-one
        IoU >= ``iou_threshold`` (panoptic quality).
    iou_threshold : float in (0, 1]
        IoU of a pair for ``match="iou"`` and for ``pq`` / ``sq`` / ``rq`` (always IoU matching).
    dilation : int >= 0
        BraTS 2023 dilation iterations (18-neighbourhood): lesions closer than it merge, and a prediction
        within it of a lesion matches (``match="overlap"`` only). 0 = plain overlap.
    min_volume : float >= 0
        Lesions of volume <= min_volume mm^3 are left out of counts and scores (BraTS: 50 for GLI).
    connectivity : int, optional
        Of the components: 6/18/26 in 3-D, 4/8 in 2-D; default 26 / 8 (as BraTS, cc3d's 26).
    percentile : float
        Of the per-lesion Hausdorff distance (95: HD95), reported as ``hd95``; ``-1`` for the maximum.
    convention : {"deepmind", "monai", "medpy"}
        Surface definition of the per-lesion HD (:mod:`medseg_fast.metrics`); BraTS uses ``"deepmind"``.
    fp_distance : float
        HD95 given to a missed lesion and to a false positive in ``lesion_hd95`` (BraTS: 374 mm).
    known_hd : dict, optional
        class -> the Hausdorff distance (same ``percentile`` and ``convention``) of the whole class, when the
        caller has it already (:func:`medseg_fast.pipelines.evaluate` does): a lesion that is its class's only
        lesion and matches every predicted lesion of the class compares the same masks, so it takes that value.

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1``, ``lesion_dice``, ``lesion_hd95`` (BraTS
        2023 lesion-wise scores), ``pq``, ``sq``, ``rq``, ``num_gt_lesions``, ``num_pred_lesions``;
        ``lesions``: one dict per ground-truth lesion (``lesion``, ``volume_mm3``, ``pred_lesions``,
        ``pred_volume_mm3``, ``dice``, ``iou``, ``hd95`` -- inf when missed --, ``detected``, ``counted``);
        ``fp_lesions``: one dict per false positive (``lesion``, ``volume_mm3``). Lesion numbers are those of
        :func:`medseg_fast.label` on each map (after the dilation merge for ``gt``). With ``classes``: a dict
        class -> such a dict.

    Examples
    --------
    >>> import numpy as np
    >>> from medseg_fast.lesion import lesion_wise
    >>> gt = np.zeros((12, 12, 12), np.uint8); gt[1:4, 1:4, 1:4] = 1; gt[8:11, 8:11, 8:11] = 1
    >>> pred = np.zeros_like(gt); pred[1:4, 1:4, 1:4] = 1; pred[6, 0, 10] = 1
    >>> r = lesion_wise(pred, gt)
    >>> r["tp"], r["fn"], r["fp"], round(r["lesion_dice"], 3), r["lesion_hd95"]
    (1, 1, 1, 0.333, 249.33333333333334)
    """
    p, g = _as_labels(pred, "pred"), _as_labels(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt must have the same shape, got pred {p.shape} and gt {g.shape}")
    if p.ndim not in (2, 3):
        raise ValueError(f"pred and gt must be 2-D or 3-D label maps (one case), got shape={p.shape}")
    sp = V.spacing(spacing, p.ndim, what="label map")
    match = V.choice(match, "match", MATCH_RULES)
    if not (V.is_number(iou_threshold) and 0 < iou_threshold <= 1):
        raise ValueError(f"iou_threshold must be a number in (0, 1], got {iou_threshold!r}")
    dilation = V.integer(dilation, "dilation", minimum=0)
    if not (V.is_number(min_volume) and min_volume >= 0):
        raise ValueError(f"min_volume must be a number >= 0 (mm^3), got {min_volume!r}")
    if not (V.is_number(fp_distance) and np.isfinite(fp_distance) and fp_distance >= 0):
        raise ValueError(f"fp_distance must be a finite number >= 0 (mm), got {fp_distance!r}")
    if not (V.is_number(percentile) and (percentile == -1 or 0 <= percentile <= 100)):
        raise ValueError(f"percentile must be in [0, 100] or -1 (maximum), got {percentile!r}")
    V.choice(convention, "convention", _metrics.CONVENTIONS)
    conn = (26 if p.ndim == 3 else 8) if connectivity is None else connectivity
    ks = None if classes is None else V.classes(classes)
    if ks is not None and 0 in ks:
        raise ValueError(f"classes must be foreground values (not 0), got {list(classes)!r}")
    voxel = float(np.prod(sp))

    gcc, gcls = _components(g, ks, conn, dilation)
    pcc, pcls = _components(p, ks, conn, 0)
    ng, npred = len(gcls) - 1, len(pcls) - 1
    gstat, pstat = _stats(gcc, ng), _stats(pcc, npred)  # sizes and boxes in one pass each
    gsize, psize = gstat["sizes"], pstat["sizes"]
    ov = {k: v for k, v in _pair_counts(gcc, pcc, ng, npred).items() if gcls[k[0]] == pcls[k[1]]}
    pq = _iou_pairs(ov, gsize, psize, gcls, pcls, float(iou_threshold))
    if match == "iou":
        matches = {gi: ([pq[gi][0]] if gi in pq else []) for gi in range(1, ng + 1)}
    else:
        touch = _touching(gcc, pcc, ng, dilation, ov)
        matches = {gi: sorted(q for q in ps if pcls[q] == gcls[gi]) for gi, ps in touch.items()}
    reuse: dict[int, float] = {}
    if known_hd and ks is not None:
        n_g = np.bincount(gcls[1:], minlength=max(ks) + 1)
        n_p = np.bincount(pcls[1:], minlength=max(ks) + 1)
        reuse = {gi: float(known_hd[c]) for gi, ps in matches.items()
                 if (c := int(gcls[gi])) in known_hd and n_g[c] == 1 and ps and len(ps) == n_p[c]}
    hd = _hd(pcc, gcc, gstat["bboxes"], pstat["bboxes"], {gi: ps for gi, ps in matches.items() if gi not in reuse},
             sp, float(percentile), convention)
    hd.update(reuse)
    matched_pred = set(itertools.chain.from_iterable(matches.values()))

    per_class: dict[int, dict[str, Any]] = {}
    for c in (ks if ks is not None else [1]):
        lesions = []
        for gi in np.flatnonzero(gcls == c):
            if gi == 0:
                continue
            ps = matches[int(gi)]
            inter = sum(ov.get((int(gi), q), 0) for q in ps)
            pv = int(sum(psize[q] for q in ps))
            vol = float(gsize[gi]) * voxel
            lesions.append({
                "lesion": int(gi), "volume_mm3": vol, "pred_lesions": [int(q) for q in ps],
                "pred_volume_mm3": pv * voxel, "dice": 2.0 * inter / (gsize[gi] + pv),
                "iou": inter / (gsize[gi] + pv - inter), "hd95": hd.get(int(gi), float("inf")),
                "detected": bool(ps), "counted": vol > min_volume,
            })
        fp = [{"lesion": int(q), "volume_mm3": float(psize[q]) * voxel}
              for q in np.flatnonzero(pcls == c) if q and int(q) not in matched_pred]
        pairs = [iou for gi, (_, iou) in pq.items() if gcls[gi] == c]
        per_class[c] = _score(lesions, fp, pairs, int((gcls[1:] == c).sum()), int((pcls[1:] == c).sum()),
                              float(fp_distance))
    return per_class[1] if ks is None else per_class
