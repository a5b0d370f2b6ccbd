"""Preprocessing (as nnU-Net): crop to the non-zero region, normalize (CT: clip to the foreground
0.5/99.5 percentiles, z-score with dataset statistics; other modalities: per-case z-score), resample to the
target spacing. Cases are cached as ``.npz`` files written atomically (temp file, fsync, every member read
back, then rename), so an interrupted run resumes where it stopped and never leaves a half-written case;
a cached case that does not read back is redone, and temporary files of a killed run are never read as
cases (:func:`case_files`) and are removed by the next run. Ranks of a ``torchrun`` launch each take every
``world_size``-th case."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import ct_normalize, mr_normalize, resample, resample_labels
from .._progress import Progress
from ..io import DataError, Meta, atomic_path, check_zip, clean_stale_temp_files, is_temp_name, write_text_atomic
from .dataset import Case, DatasetInfo, find_cases, load_dataset
from .fingerprint import compute_fingerprint, load_case

__all__ = ["make_plan", "preprocess_image", "preprocess_dataset", "load_plan", "load_preprocessed",
           "crop_to_nonzero", "case_files", "PLAN_FILE", "MAX_LOCATIONS"]

log = logging.getLogger(__name__)
PLAN_FILE = "plans.json"
MAX_LOCATIONS = 4000  # foreground voxel positions kept per class for oversampling


def lateral_axis(meta: Meta) -> int:
    """The array axis closest to the patient's left-right direction (physical x in ITK's LPS frame)."""
    return int(np.argmax(np.abs(meta.direction[-1, :])))


def has_sided_labels(labels: dict[int, str]) -> bool:
    """True when class names say left / right: mirroring that axis would swap them."""
    return any(re.search(r"(^|[^a-z])(left|right|l|r)([^a-z]|$)", name.lower()) for name in labels.values())


def make_plan(info: DatasetInfo, fingerprint: dict[str, Any],
              target_spacing: Sequence[float] | None = None) -> dict[str, Any]:
    """The preprocessing plan: target spacing, normalization per channel, classes, and the augmentation
    axes (mirroring along the left-right axis is left out when classes are sided, e.g. ``kidney_left``)."""
    norms = []
    for c, name in enumerate(info.channels):
        if name.upper() == "CT":
            norms.append({"scheme": "ct", "stats": fingerprint["foreground_intensity_properties_per_channel"][str(c)]})
        else:
            norms.append({"scheme": "zscore"})
    plan = {
        "target_spacing": [float(s) for s in (target_spacing or fingerprint["target_spacing"])],
        "normalization": norms,
        "channels": list(info.channels),
        "labels": {str(k): v for k, v in info.labels.items()},
        "num_classes": info.num_classes,
        "classes": info.classes,
    }
    ndim = len(plan["target_spacing"])
    lat = fingerprint.get("lateral_axis")
    sided = has_sided_labels(info.labels) and lat is not None
    plan["mirror_axes"] = [a for a in range(ndim) if not (sided and a == lat)]
    plan["rot90_ok"] = not sided
    plan["hash"] = hashlib.sha1(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:12]
    return plan


def crop_to_nonzero(image: np.ndarray) -> tuple[tuple[slice, ...], list[list[int]]]:
    """Bounding box of voxels that are non-zero in any channel (the whole volume if none is)."""
    nz = np.any(image != 0, axis=0)
    if not nz.any():
        return tuple(slice(0, s) for s in image.shape[1:]), [[0, s] for s in image.shape[1:]]
    bbox = []
    for ax in range(nz.ndim):
        any_ax = np.any(nz, axis=tuple(i for i in range(nz.ndim) if i != ax))
        idx = np.flatnonzero(any_ax)
        bbox.append([int(idx[0]), int(idx[-1]) + 1])
    return tuple(slice(a, b) for a, b in bbox), bbox


def _normalize(image: np.ndarray, plan: dict[str, Any]) -> np.ndarray:
    out = np.empty(image.shape, dtype=np.float32)
    for c, norm in enumerate(plan["normalization"]):
        if norm["scheme"] == "ct":
            out[c] = ct_normalize(image[c], stats=norm["stats"])
        else:
            out[c] = mr_normalize(image[c], method="zscore")
    return out


def resampled_shape(shape: Sequence[int], spacing: Sequence[float], target: Sequence[float]) -> tuple[int, ...]:
    return tuple(max(int(round(n * s / t)), 1) for n, s, t in zip(shape, spacing, target))


def preprocess_image(image: np.ndarray, meta: Meta, plan: dict[str, Any],
                     label: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Crop, normalize and resample one case.

    Parameters
    ----------
    image : numpy.ndarray
        (C, *spatial) raw intensities.
    meta : Meta
        Its geometry (spacing in array axis order).
    plan : dict
        From :func:`make_plan`.
    label : numpy.ndarray, optional
        Label map of the same spatial shape.

    Returns
    -------
    data : numpy.ndarray
        (C, *resampled) float32.
    seg : numpy.ndarray or None
        int8 label map on the resampled grid.
    props : dict
        What is needed to map a prediction back: original shape, crop box, shape after cropping, geometry.
    """
    crop, bbox = crop_to_nonzero(image)
    img = image[(slice(None), *crop)]
    data = _normalize(img, plan)
    new_shape = resampled_shape(img.shape[1:], meta.spacing, plan["target_spacing"])
    data = resample(data, new_shape, spacing=meta.spacing, new_spacing=plan["target_spacing"], order=1)
    seg = None
    if label is not None:
        seg = resample_labels(label[crop].astype(np.int16), new_shape, num_classes=plan["num_classes"], order=1)
        seg = seg.astype(np.int8)
    props = {"original_shape": list(image.shape[1:]), "bbox": bbox, "cropped_shape": list(img.shape[1:]),
             "meta": meta.to_dict()}
    return np.ascontiguousarray(data, dtype=np.float32), seg, props


def class_locations(seg: np.ndarray, classes: Sequence[int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Up to :data:`MAX_LOCATIONS` voxel positions of each class (for foreground oversampling)."""
    out = {}
    for c in classes:
        idx = np.flatnonzero(seg.ravel() == c)
        if idx.size > MAX_LOCATIONS:
            idx = np.sort(rng.choice(idx, MAX_LOCATIONS, replace=False))
        out[str(c)] = np.stack(np.unravel_index(idx, seg.shape), axis=1).astype(np.int32)
    return out


def load_plan(out_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(out_dir) / PLAN_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: missing; run `medseg-fast preprocess` first") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def preprocess_dataset(dataset: str | os.PathLike, out_dir: str | os.PathLike, *, rank: int = 0,
                       world_size: int = 1, target_spacing: Sequence[float] | None = None,
                       overwrite: bool = False, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fingerprint and preprocess every training case of ``dataset`` into ``out_dir``.

    Writes ``out_dir/plans.json`` (fingerprint + plan) and ``out_dir/cases/CASE.npz``. Finished cases of
    an earlier run with the same plan are kept (resume); a different plan is an error unless ``overwrite``.
    With ``world_size > 1`` this rank preprocesses cases ``rank::world_size`` (the plan is computed by
    every rank identically; rank 0 writes it).

    Returns the plan.
    """
    t_start = time.time()
    info = load_dataset(dataset)
    cases = find_cases(info, "Tr")
    out = Path(out_dir)
    try:
        (out / "cases").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{out / 'cases'}: cannot create the output folder ({exc.strerror or exc})") from None
    # temporary files of a killed run: removed when their writer is gone, reported otherwise
    clean_stale_temp_files(out / "cases", older_than=t_start)
    clean_stale_temp_files(out, older_than=t_start)
    plan_path = out / PLAN_FILE
    fingerprint = None
    if plan_path.exists() and not overwrite:
        old = load_plan(out)
        if old.get("fingerprint", {}).get("cases") == [c.case_id for c in cases]:
            fingerprint = old["fingerprint"]  # resume: the fingerprint is still valid
    if fingerprint is None:
        fingerprint = compute_fingerprint(info, cases)
    plan = make_plan(info, fingerprint, target_spacing)
    plan["fingerprint"] = fingerprint
    if plan_path.exists():
        old = load_plan(out)
        if old.get("hash") != plan["hash"]:
            if not overwrite:
                raise DataError(f"{plan_path}: cache was made with a different plan (hash {old.get('hash')} vs "
                                f"{plan['hash']}); use --overwrite or another output folder")
            for f in case_files(out):
                f.unlink()
    if rank == 0:
        write_text_atomic(plan_path, json.dumps(plan, indent=1))
    mine = [case for i, case in enumerate(cases) if i % world_size == rank]
    with Progress("preprocess", len(mine)) as bar:
        for case in mine:
            target = out / "cases" / f"{case.case_id}.npz"
            cached = target.exists() and _cached_ok(target, plan["hash"])
            if not cached:
                preprocess_case_to(case, info, plan, target)
                if progress:
                    progress(case.case_id)
            bar.update(1, item=f"{case.case_id} (cached)" if cached else case.case_id)
    return plan


def preprocess_case_to(case: Case, info: DatasetInfo, plan: dict[str, Any], target: Path) -> None:
    """Preprocess one case and write it atomically to ``target`` (.npz)."""
    image, label, meta = load_case(case, info)
    data, seg, props = preprocess_image(image, meta, plan, label)
    rng = np.random.default_rng(int(hashlib.sha1(case.case_id.encode()).hexdigest()[:8], 16))
    locs = class_locations(seg, plan["classes"], rng) if seg is not None else {}
    props["case_id"] = case.case_id
    props["plan_hash"] = plan["hash"]
    # atomic_path fsyncs, then check_zip reads every member back (CRC) before the rename: a full disk
    # never leaves a case that a later run would skip as done
    with atomic_path(target, verify=check_zip) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, data=data, seg=seg if seg is not None else np.zeros(0, np.int8),
                     props=np.frombuffer(json.dumps(props).encode(), dtype=np.uint8),
                     **{f"loc_{k}": v for k, v in locs.items()})


def case_files(out_dir: str | os.PathLike) -> list[Path]:
    """The cached cases of a preprocessed folder, sorted; temporary files of interrupted writes are never
    among them."""
    folder = Path(out_dir) / "cases"
    if not folder.is_dir():
        return []
    return sorted(f for f in folder.iterdir()
                  if f.name.endswith(".npz") and not f.name.startswith(".") and not is_temp_name(f.name))


def _cached_ok(target: Path, plan_hash: str) -> bool:
    """A finished case of this plan that reads back; anything else is redone (with a warning)."""
    try:
        check_zip(target)
        props = load_preprocessed(target)["props"]
    except DataError as exc:
        log.warning("%s; preprocessing it again", exc)
        return False
    return props.get("plan_hash") == plan_hash


def load_preprocessed(path: str | os.PathLike) -> dict[str, Any]:
    """A cached case: ``{"data", "seg", "props", "locations": {class: (n, ndim) int32}}``.

    Raises
    ------
    DataError
        The file is not a complete cached case (truncated, corrupt, members missing); the message names it.
    """
    import zipfile
    import zlib

    try:
        # our own handle: np.load leaks its file when the zip directory is unreadable
        with open(path, "rb") as fh, np.load(fh) as z:
            out = {
                "data": z["data"],
                "seg": z["seg"],
                "props": json.loads(bytes(z["props"]).decode()),
                "locations": {k[4:]: z[k] for k in z.files if k.startswith("loc_")},
            }
    except FileNotFoundError:
        raise DataError(f"{path}: cached case not found") from None
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, OSError, zlib.error, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable preprocessed case ({type(exc).__name__}: {str(exc)[:120]}); "
                        "delete it and run `medseg-fast preprocess` again") from None
    if not isinstance(out["props"], dict) or out["data"].ndim < 3:
        raise DataError(f"{path}: not a preprocessed case (data shape {out['data'].shape})")
    return out
