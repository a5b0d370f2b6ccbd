"""Dataset fingerprint (as nnU-Net): spacings, shapes, foreground intensity statistics, and the target
spacing the network works at. Reading the fingerprint also checks the data: every label map must share
its image's geometry and hold only the values ``dataset.json`` declares."""

from __future__ import annotations

import os

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import intensity_stats
from ..io import DataError, Meta, read_image
from .dataset import Case, DatasetInfo

__all__ = ["load_case", "compute_fingerprint", "target_spacing"]


def require_finite(image: np.ndarray, path: str | os.PathLike) -> None:
    """Refuse an image holding NaN or infinite voxels: normalizing it would spread NaN through
    the statistics (numpy's rule, which the normalizers follow) and into every prediction."""
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        bad = int(image.size - np.count_nonzero(np.isfinite(image)))
        raise DataError(f"{path}: image holds {bad} NaN or infinite voxel(s); fix or mask them before "
                        f"preprocessing or prediction")


def load_case(case: Case, info: DatasetInfo | None = None) -> tuple[np.ndarray, np.ndarray | None, Meta]:
    """Read a case: (image (C, *spatial) in the file dtype, label map or None, geometry), checked.

    Raises
    ------
    DataError
        Channels or label with a different shape or geometry than the first channel, or label values not
        declared in ``dataset.json`` (each message names the offending file).
    """
    first, meta = read_image(case.images[0])
    require_finite(first, case.images[0])
    chans = [first]
    for p in case.images[1:]:
        a, m = read_image(p)
        require_finite(a, p)
        if a.shape != first.shape or not m.same_geometry(meta):
            raise DataError(f"{p}: geometry differs from {case.images[0].name} "
                            f"(shape {a.shape} vs {first.shape}, spacing {m.spacing} vs {meta.spacing})")
        chans.append(a)
    label = None
    if case.label is not None:
        label, lm = read_image(case.label)
        if label.shape != first.shape or not lm.same_geometry(meta, tol=1e-3):
            raise DataError(f"{case.label}: label geometry differs from its image {case.images[0].name} "
                            f"(shape {label.shape} vs {first.shape}, spacing {_r(lm.spacing)} vs {_r(meta.spacing)}, "
                            f"origin {_r(lm.origin)} vs {_r(meta.origin)})")
        if not np.issubdtype(label.dtype, np.integer):
            if not np.all(np.mod(label, 1) == 0):
                raise DataError(f"{case.label}: label map holds non-integer values")
        label = label.astype(np.int16, copy=False)
        if info is not None:
            values = np.unique(label)
            bad = sorted(int(v) for v in values if int(v) not in info.labels)
            if bad:
                raise DataError(f"{case.label}: label values {bad} are not in dataset.json labels "
                                f"{sorted(info.labels)}")
    return np.stack(chans), label, meta


def _r(t: Sequence[float]) -> tuple[float, ...]:
    return tuple(round(float(v), 4) for v in t)


def target_spacing(spacings: np.ndarray, shapes: np.ndarray, anisotropy_threshold: float = 3.0) -> list[float]:
    """nnU-Net's rule: the median spacing, except that for strongly anisotropic data (max/min median spacing
    > ``anisotropy_threshold``) the low-resolution axis gets the 10th percentile of its spacings."""
    target = np.median(spacings, axis=0)
    worst = int(np.argmax(target))
    others = [i for i in range(len(target)) if i != worst]
    if others and target[worst] > anisotropy_threshold * min(target[others]):
        median_shape = np.median(shapes, axis=0)
        if median_shape[worst] * anisotropy_threshold < min(median_shape[others]):
            target[worst] = max(np.percentile(spacings[:, worst], 10), max(target[others]) * 1.00001)
    return [float(v) for v in target]


def compute_fingerprint(info: DatasetInfo, cases: Sequence[Case], *, samples_per_case: int = 10000,
                        seed: int = 1234) -> dict[str, Any]:
    """Spacings, shapes, per-channel foreground intensity statistics (from up to ``samples_per_case``
    foreground voxels per case, as nnU-Net), and the target spacing."""
    rng = np.random.default_rng(seed)
    spacings, shapes, lateral = [], [], []
    samples: list[list[np.ndarray]] = [[] for _ in info.channels]
    for case in cases:
        image, label, meta = load_case(case, info)
        spacings.append(meta.spacing)
        lateral.append(int(np.argmax(np.abs(meta.direction[-1, :]))))
        shapes.append(image.shape[1:])
        fg = label > 0 if label is not None else np.ones(image.shape[1:], bool)
        for c in range(image.shape[0]):
            vals = image[c][fg]
            if vals.size > samples_per_case:
                vals = rng.choice(vals, samples_per_case, replace=False)
            samples[c].append(vals.astype(np.float32))
    sp, sh = np.asarray(spacings, dtype=np.float64), np.asarray(shapes, dtype=np.float64)
    stats = []
    for c, chunks in enumerate(samples):
        vals = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        if vals.size == 0:
            raise DataError(f"{info.root}: no foreground voxels in any label map (channel {c})")
        s = intensity_stats(vals, percentiles=(0.5, 50.0, 99.5))
        stats.append({"mean": s["mean"], "std": s["std"], "min": s["min"], "max": s["max"],
                      "median": float(s["percentiles"][1]), "percentile_00_5": float(s["percentiles"][0]),
                      "percentile_99_5": float(s["percentiles"][2])})
    target = target_spacing(sp, sh)
    return {
        "cases": [c.case_id for c in cases],
        "spacings": sp.tolist(),
        "shapes": sh.astype(int).tolist(),
        "median_spacing": np.median(sp, axis=0).tolist(),
        "target_spacing": target,
        "median_shape_after_resampling": np.median(sh * sp / np.asarray(target), axis=0).round().astype(int).tolist(),
        "foreground_intensity_properties_per_channel": {str(c): s for c, s in enumerate(stats)},
        "lateral_axis": int(np.bincount(lateral).argmax()) if lateral else None,
        "channels": list(info.channels),
        "labels": {str(k): v for k, v in info.labels.items()},
    }
