"""Evaluation: per-case, per-class Dice, IoU, HD95, ASSD and surface Dice to ``metrics.csv``; a JSON summary
with mean and standard deviation per class; optional lesion-wise scores (``lesions.csv``); PNG overlays of
prediction vs ground truth (three orthogonal views through the ground truth's centre of mass, PASCAL VOC colour
map, legend of class names; 2-D label maps as colour PNGs) and ``report.html``."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import Progress
from ..report import blend, gray, legend, orthogonal_views, png_bytes, side_by_side, voc_colormap, write_report
from ..io import DataError, atomic_path, is_image_path, is_temp_name, read_image, strip_suffix, write_text_atomic
from ..lesion import lesion_wise as lesion_wise_case
from ..metrics import evaluate as evaluate_case

__all__ = ["evaluate", "summarize", "voc_colormap", "overlay_png", "overlay_picture", "write_png", "check_label_map", "MAX_CLASSES",
           "METRICS", "CONVENTION", "EMPTY_DICE", "LESION_METRICS"]

log = logging.getLogger(__name__)
MAX_CLASSES = 255  # distinct foreground values a label map may hold when no classes are declared
METRICS = ("dice", "iou", "hd95", "assd", "surface_dice")
# MONAI's definitions, empty masks included (see medseg_fast.metrics): a class absent from both maps has Dice and
# IoU 1 (DiceMetric / MeanIoU with ignore_empty=False) and NaN distances; absent from one map: Dice, IoU and
# surface Dice 0, HD95 NaN, ASSD inf. summarize() leaves NaN / inf out of the means.
CONVENTION = "monai"
EMPTY_DICE = 1.0
# Per case and class with lesion_wise=True (medseg_fast.lesion.lesion_wise): detection counts, F1, the BraTS 2023
# lesion-wise Dice / HD95 and panoptic quality.
LESION_METRICS = ("lesion_tp", "lesion_fp", "lesion_fn", "lesion_f1", "lesion_dice", "lesion_hd95", "pq")
LESION_FIELDS = ("case", "class", "name", "kind", "lesion", "volume_mm3", "pred_volume_mm3", "dice", "iou", "hd95",
                 "detected", "counted", "pred_lesions")


def write_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) or (H, W) uint8 array as PNG (Pillow), atomically."""
    from PIL import Image

    with atomic_path(path, verify=_check_png) as tmp:
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format="PNG")


def _check_png(p: Path) -> None:
    """The PNG decodes completely (a short write on a full disk does not)."""
    from PIL import Image

    try:
        with Image.open(p) as im:
            im.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{p}: PNG does not read back ({exc})") from None


def overlay_picture(pred: np.ndarray, gt: np.ndarray, image: np.ndarray | None = None, *,
                    spacing: Sequence[float] | None = None, names: Mapping[int, str] | None = None,
                    min_size: int = 256) -> np.ndarray:
    """RGB overlay of a case with a legend of the class names and colours: for 3-D, the axial, coronal and
    sagittal views through the ground truth's centre of mass (ground truth left, prediction right, filled with
    contours, square pixels); for 2-D, ground truth and prediction side by side (the colour map itself when
    there is no image)."""
    cmap = voc_colormap()
    if names is None:
        names = {int(c): str(int(c)) for c in np.union1d(np.unique(gt), np.unique(pred)) if c != 0}
    if gt.ndim == 3:
        return orthogonal_views(pred, gt, image, spacing or (1.0, 1.0, 1.0), names, size=max(min_size, 200))
    if image is None:
        panels = [cmap[gt.astype(np.int64) % 256], cmap[pred.astype(np.int64) % 256]]
    else:
        g = gray(image)
        panels = [blend(g, gt, cmap), blend(g, pred, cmap)]
    body = side_by_side(panels, gap=2)
    return np.concatenate([body, legend(names, cmap, body.shape[1])], 0) if names else body


def overlay_png(path: str | os.PathLike, pred: np.ndarray, gt: np.ndarray, image: np.ndarray | None = None, *,
                spacing: Sequence[float] | None = None, min_size: int = 256,
                names: Mapping[int, str] | None = None) -> None:
    """Write :func:`overlay_picture` as a PNG, atomically."""
    write_png(path, overlay_picture(pred, gt, image, spacing=spacing, names=names, min_size=min_size))


def _collect(path: Path, what: str) -> dict[str, Path]:
    if not path.exists():
        raise DataError(f"{path}: no such file or folder ({what})")
    if path.is_file():
        return {strip_suffix(path.name): path}
    files = {strip_suffix(p.name): p for p in sorted(path.iterdir())
             if is_image_path(p) and not p.name.startswith(".") and not is_temp_name(p.name)}
    if not files:
        raise DataError(f"{path}: no label images found ({what})")
    return files


def _distinct(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values; integer maps of a small range are counted in chunks (no sort, no big copy)."""
    if a.size == 0:
        return np.zeros(0, a.dtype)
    lo, hi = a.min(), a.max()
    if a.dtype.kind not in "iu" or int(hi) - int(lo) >= 1 << 16:
        return np.unique(a)
    counts = np.zeros(int(hi) - int(lo) + 1, np.int64)
    flat = a.reshape(-1)
    step = 1 << 22
    for i in range(0, flat.size, step):
        counts += np.bincount((flat[i:i + step].astype(np.int64) - int(lo)), minlength=counts.size)
    return (np.flatnonzero(counts) + int(lo)).astype(a.dtype)


def check_label_map(path: str | os.PathLike, labels: np.ndarray, declared: Sequence[int] | None = None, *,
                    source: str = "the declared classes") -> list[int]:
    """Check that ``labels`` (read from ``path``) is a label map and return its non-zero values, sorted.

    A label map holds non-negative whole numbers (integer or integral float voxels); with ``declared``
    (foreground class values, e.g. from ``dataset.json``) every non-zero value must be declared; without it
    at most :data:`MAX_CLASSES` distinct non-zero values are accepted (a CT image given as a label map holds
    thousands, negative ones included).

    Raises
    ------
    DataError
        Not a label map, or undeclared values; the message names ``path`` and the offending values.
    """
    a = np.asarray(labels)
    if a.dtype.kind == "b":
        a = a.view(np.uint8)
    elif a.dtype.kind == "f":
        finite = np.isfinite(a)
        if not finite.all():
            raise DataError(f"{path}: not a label map: holds non-finite values ({int((~finite).sum())} voxels)")
        frac = a[np.mod(a, 1) != 0]
        if frac.size:
            raise DataError(f"{path}: not a label map: holds non-integer values (e.g. {float(frac[0]):g}); "
                            "expected whole class numbers")
    elif a.dtype.kind not in "iu":
        raise DataError(f"{path}: not a label map: dtype {a.dtype}, expected integer class values")
    values = _distinct(a)
    if values.size and values[0] < 0:
        raise DataError(f"{path}: not a label map: holds negative values (min {values[0]:g}); expected class "
                        "values >= 0 (an image given as a label map?)")
    found = [int(v) for v in values if v != 0]
    if declared is not None:
        allowed = set(int(c) for c in declared)
        bad = [v for v in found if v not in allowed]
        if bad:
            raise DataError(f"{path}: label values {bad[:10]}{' ...' if len(bad) > 10 else ''} are not in "
                            f"{source} {sorted(allowed)}")
    elif len(found) > MAX_CLASSES:
        raise DataError(f"{path}: not a label map: {len(found)} distinct non-zero values (more than {MAX_CLASSES}); "
                        "an image given as a label map? Declare the classes (--labels dataset.json or --classes)")
    return found


def _finite_stats(values: list[float]) -> dict[str, float]:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "n": int(v.size)}


def summarize(rows: list[dict[str, Any]], metrics: Sequence[str]) -> dict[str, Any]:
    """Mean / std per class and metric (NaN / inf distances, from an empty mask, are left out; ``n`` counts
    the values used)."""
    per_class: dict[str, dict[str, Any]] = {}
    names = {}
    for r in rows:
        names.setdefault(r["class"], r.get("name", str(r["class"])))
    for c, name in sorted(names.items()):
        sel = [r for r in rows if r["class"] == c]
        per_class[name] = {m: _finite_stats([r[m] for r in sel]) for m in metrics}
        per_class[name]["class"] = c
    mean = {m: float(np.mean([v[m]["mean"] for v in per_class.values() if not math.isnan(v[m]["mean"])]))
            if any(not math.isnan(v[m]["mean"]) for v in per_class.values()) else math.nan for m in metrics}
    return {"per_class": per_class, "mean": mean, "mean_dice": mean.get("dice", math.nan),
            "num_cases": len({r["case"] for r in rows})}


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def _csv(fields: list[str], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else " ".join(map(str, v)) if isinstance(v, list) else v)
                    for k, v in r.items()})
    return buf.getvalue()


def _lesion_totals(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Detection counts summed over the cases per class, and the precision / recall / F1 of those sums."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        t = out.setdefault(r["name"], {"tp": 0, "fp": 0, "fn": 0})
        for k in ("tp", "fp", "fn"):
            t[k] += int(r[f"lesion_{k}"])
    for t in out.values():
        tp, fp, fn = t["tp"], t["fp"], t["fn"]
        t["precision"] = tp / (tp + fp) if tp + fp else math.nan
        t["recall"] = tp / (tp + fn) if tp + fn else math.nan
        t["f1"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan
    return out


def evaluate(pred: str | os.PathLike, gt: str | os.PathLike, out: str | os.PathLike, *,
             labels: dict[int, str] | None = None, images: str | os.PathLike | None = None,
             metrics: Sequence[str] = METRICS, tolerance: float = 2.0, overlays: bool = True,
             labels_source: str | None = None, lesion_wise: bool = False,
             lesion_options: dict[str, Any] | None = None, report: bool = True,
             report_max_images: int = 200) -> dict[str, Any]:
    """Compare predicted label maps with the ground truth, case by case (matched by file name).

    Parameters
    ----------
    pred, gt : path-like
        Files or folders of label maps.
    out : path-like
        Output folder: ``metrics.csv``, ``summary.json``, ``overlays/CASE.png``.
    labels : dict, optional
        Class value -> name (e.g. from ``dataset.json``): the declared classes. A value in a prediction or
        ground truth that is not declared is an error (:class:`DataError` naming the file and the values).
        Default: every non-zero value in the ground truth or the prediction of each case (at most
        :data:`MAX_CLASSES`).
    images : path-like, optional
        Folder (or file) of the images, ``CASE_0000.nii.gz`` or ``CASE.nii.gz``, drawn under the overlays.

    labels_source : str, optional
        Where ``labels`` came from, for error messages (e.g. the ``dataset.json`` path).
    lesion_wise : bool
        Also score each class lesion by lesion (:func:`medseg_fast.lesion.lesion_wise`): the
        :data:`LESION_METRICS` columns in ``metrics.csv``, one row per lesion (and per false positive) in
        ``lesions.csv``, and ``lesion_totals`` (TP / FP / FN summed over cases, precision, recall, F1) in the
        summary.
    lesion_options : dict, optional
        Keyword arguments of :func:`~medseg_fast.lesion.lesion_wise` (``match``, ``iou_threshold``,
        ``dilation``, ``min_volume``, ``convention``, ...); e.g. ``medseg_fast.lesion.BRATS2023["GLI"]``.
        The per-lesion HD95 follows :data:`CONVENTION` (MONAI's voxel surfaces, as the other surface
        metrics here) unless ``convention`` is given (BraTS 2023 itself uses ``"deepmind"``).

    report : bool
        Also write ``report.html``: one self-contained page (no network; images inlined) with the per-class
        summary (mean, std, median, worst cases), a sortable per-case table and each case's overlay (axial,
        coronal, sagittal through the ground truth's centre of mass, legend of class names and colours).
    report_max_images : int
        Overlays inlined in the report (the first cases in name order; the tables list every case).

    Both maps must be label maps (non-negative whole numbers, :func:`check_label_map`) of the same shape and
    geometry. Returns the summary dict (also written to ``summary.json``).
    """
    if isinstance(report_max_images, bool) or not isinstance(report_max_images, int) or report_max_images < 0:
        raise ValueError(f"report_max_images must be an integer >= 0, got {report_max_images!r}")
    preds, gts = _collect(Path(pred), "predictions"), _collect(Path(gt), "ground truth")
    if Path(pred).is_file() and Path(gt).is_file():
        preds = {next(iter(gts)): Path(pred)}
    missing = sorted(set(gts) - set(preds))
    if missing:
        raise DataError(f"{Path(pred)}: no prediction for case(s) {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    outdir = Path(out)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{outdir}: cannot create the output folder ({exc.strerror or exc})") from None
    image_files: dict[str, Path] = {}
    if images is not None:
        found = _collect(Path(images), "images")
        if Path(images).is_file() and len(gts) == 1:
            image_files[next(iter(gts))] = Path(images)  # one case, one image: whatever its name
        else:
            for cid, p in found.items():
                image_files[cid[:-5] if cid.endswith("_0000") else cid] = p
        unmatched = sorted(set(gts) - set(image_files))
        if unmatched and overlays:
            log.warning("%s: no image for case(s) %s; their overlays are drawn without one", images, unmatched[:5])
    if overlays:
        (outdir / "overlays").mkdir(exist_ok=True)
    rows: list[dict[str, Any]] = []
    lesion_rows: list[dict[str, Any]] = []
    report_images: dict[str, bytes] = {}
    lesion_opts = dict(lesion_options or {})
    declared = None if labels is None else [int(c) for c in labels if int(c) != 0]
    source = "the given labels" if labels_source is None else labels_source
    bar = Progress("evaluate", len(gts))
    for cid in sorted(gts):
        g, gmeta = read_image(gts[cid])
        p, pmeta = read_image(preds[cid])
        if p.shape != g.shape:
            raise DataError(f"{preds[cid]}: shape {p.shape} differs from the ground truth {gts[cid]} {g.shape}")
        if not pmeta.same_geometry(gmeta, tol=1e-3):
            raise DataError(f"{preds[cid]}: geometry (spacing/origin/direction) differs from {gts[cid]}")
        in_gt = check_label_map(gts[cid], g, declared, source=source)
        in_pred = check_label_map(preds[cid], p, declared, source=source)
        # undeclared classes: every value in either map, so a class only predicted still counts (Dice 0)
        classes = sorted(declared) if declared is not None else sorted(set(in_gt) | set(in_pred))
        case_rows = evaluate_case(p, g, classes, gmeta.spacing, list(metrics), convention=CONVENTION,
                                  tolerance=tolerance, empty=EMPTY_DICE)
        per_lesion = {}
        if lesion_wise and classes:
            opts = {"convention": CONVENTION, **lesion_opts}
            if "hd95" in metrics and opts["convention"] == CONVENTION and opts.get("percentile", 95) == 95:
                opts["known_hd"] = {r["class"]: r["hd95"] for r in case_rows}  # one-lesion classes: no recompute
            per_lesion = lesion_wise_case(p, g, gmeta.spacing, classes=classes, **opts)
        for r in case_rows:
            name = labels.get(r["class"], str(r["class"])) if labels else str(r["class"])
            rows.append({"case": cid, "name": name, **r})
            if lesion_wise:
                lw = per_lesion[r["class"]]
                rows[-1].update({f"lesion_{k}": lw[k] for k in ("tp", "fp", "fn", "f1")},
                                lesion_dice=lw["lesion_dice"], lesion_hd95=lw["lesion_hd95"], pq=lw["pq"])
                base = {"case": cid, "class": r["class"], "name": name}
                lesion_rows += [{**base, "kind": "gt", **x} for x in lw["lesions"]]
                lesion_rows += [{**base, "kind": "fp", "detected": False, "counted": True, **x}
                                for x in lw["fp_lesions"]]
        if overlays or (report and len(report_images) < report_max_images):
            img = read_image(image_files[cid])[0] if cid in image_files else None
            if img is not None and img.shape != g.shape:
                log.warning("%s: shape %s differs from %s %s; overlay drawn without the image", image_files[cid],
                            img.shape, gts[cid], g.shape)
                img = None
            names = {c: (labels.get(c, str(c)) if labels else str(c)) for c in classes}
            picture = png_bytes(overlay_picture(p, g, img, spacing=gmeta.spacing, names=names))  # encoded once
            if overlays:
                write_text_atomic(outdir / "overlays" / f"{cid}.png", picture)
            if report and len(report_images) < report_max_images:
                report_images[cid] = picture
        bar.update(1, item=cid)
    bar.close()
    all_metrics = [*metrics, *(LESION_METRICS if lesion_wise else ())]
    write_text_atomic(outdir / "metrics.csv", _csv(["case", "class", "name", *all_metrics], rows))
    if lesion_wise:
        write_text_atomic(outdir / "lesions.csv", _csv(list(LESION_FIELDS), lesion_rows))
    summary = summarize(rows, all_metrics)
    if lesion_wise:
        summary["lesion_totals"] = _lesion_totals(rows)
        summary["lesion_options"] = lesion_opts
    summary["tolerance_mm"] = tolerance
    summary["cases"] = sorted(gts)
    write_text_atomic(outdir / "summary.json", json.dumps(_json_safe(summary), indent=1))
    if report:
        notes = [f"{len(gts)} case(s); surface metrics follow MONAI's definitions (surface Dice tolerance "
                 f"{tolerance:g} mm); NaN / inf values (empty masks) are left out of the statistics."]
        if len(report_images) < len(gts):
            notes.append(f"Overlays of the first {len(report_images)} cases (report_max_images).")
        write_report(outdir / "report.html", rows, all_metrics, report_images, notes=notes,
                     title=f"Evaluation of {Path(pred).name} against {Path(gt).name}")
    return summary
