"""Synthetic abdominal CT phantoms with organ label maps: a dataset for demos and tests, made in seconds.

Geometry is defined in millimetres in the LPS patient frame (x to the patient's left, y posterior, z
superior) and sampled on an anisotropic grid whose spacing varies a little between cases, as in real
collections. Intensities are typical portal-venous-phase Hounsfield units: air -1000, fat -100,
muscle / soft tissue 50, liver 105, spleen 125, kidneys 175 (cortex) / 35 (pelvis, unlabelled-looking but
labelled as kidney), vertebral bone 350 (cancellous) and 900 (cortical), bowel gas pockets -950;
a small blur and Gaussian noise (sigma 18 HU) are added. Organs are warped ellipsoids with random
size, pose and shape, so no two cases match.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import DataError, Meta, check_image_file, write_image, write_text_atomic

__all__ = ["LABELS", "HU", "PhantomConfig", "make_phantom", "make_dataset"]

#: label values of the organ map
LABELS = {"background": 0, "liver": 1, "spleen": 2, "kidney_left": 3, "kidney_right": 4}

#: nominal Hounsfield units of the tissues
HU = {"air": -1000.0, "gas": -950.0, "fat": -100.0, "soft_tissue": 50.0, "liver": 105.0, "spleen": 125.0,
      "kidney_cortex": 175.0, "kidney_pelvis": 35.0, "bone_cancellous": 350.0, "bone_cortical": 900.0}


@dataclass
class PhantomConfig:
    """Size and difficulty of the phantoms.

    ``fov_mm`` is the field of view (z, y, x); ``spacing`` the nominal voxel size (z, y, x) in mm, jittered
    per case by up to ``spacing_jitter`` (relative); ``noise_hu`` the noise standard deviation.
    """

    fov_mm: tuple[float, float, float] = (160.0, 240.0, 300.0)
    spacing: tuple[float, float, float] = (5.5, 3.25, 3.25)
    spacing_jitter: float = 0.08
    noise_hu: float = 18.0
    blur_sigma_mm: float = 1.5
    scale: float = 1.0  # organ size factor


def _rotation_z(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])  # (z, y, x) coordinates, rotation in the y-x plane


def _ellipsoid(coords: np.ndarray, center: Sequence[float], radii: Sequence[float], theta: float) -> np.ndarray:
    """Normalized radius (<= 1 inside) of a rotated ellipsoid; coords has shape (3, *grid) in (z, y, x) mm."""
    d = coords - np.asarray(center, dtype=np.float32).reshape(3, 1, 1, 1)
    r = _rotation_z(theta).astype(np.float32)
    d = np.tensordot(r.T, d, axes=1)
    return np.sqrt(sum((d[i] / radii[i]) ** 2 for i in range(3)))


def make_phantom(seed: int, config: PhantomConfig | None = None) -> tuple[np.ndarray, np.ndarray, Meta]:
    """One synthetic CT volume.

    Returns
    -------
    ct : numpy.ndarray
        int16 Hounsfield units, (z, y, x).
    labels : numpy.ndarray
        uint8 organ map with the values of :data:`LABELS`.
    meta : Meta
        Spacing (z, y, x), origin and identity direction.

    Examples
    --------
    >>> ct, lab, meta = make_phantom(0)
    >>> ct.dtype, lab.max() <= 4, len(meta.spacing)
    (dtype('int16'), True, 3)
    """
    cfg = config or PhantomConfig()
    rng = np.random.default_rng(seed)
    spacing = np.asarray(cfg.spacing) * (1.0 + rng.uniform(-cfg.spacing_jitter, cfg.spacing_jitter, 3))
    spacing[2] = spacing[1]  # square in-plane pixels
    shape = tuple(max(int(round(f / s)), 8) for f, s in zip(cfg.fov_mm, spacing))
    origin = tuple(-(n - 1) * s / 2.0 for n, s in zip(shape, spacing))
    axes = [np.float32(o) + np.arange(n, dtype=np.float32) * np.float32(s) for o, n, s in zip(origin, shape, spacing)]
    z, y, x = np.meshgrid(*axes, indexing="ij")
    coords = np.stack([z, y, x])
    # smooth random warp shared by all structures (a few sinusoids, amplitude ~4 mm)
    for _ in range(3):
        k = rng.normal(size=3)
        k = k / np.linalg.norm(k) / rng.uniform(40.0, 80.0)
        phase = rng.uniform(0, 2 * np.pi)
        amp = rng.uniform(1.5, 4.0) * rng.normal(size=3)
        wave = np.sin(np.tensordot(k.astype(np.float32), coords, axes=1) * 2 * np.pi + phase)
        coords = coords + amp.astype(np.float32).reshape(3, 1, 1, 1) * wave[None]
    sc = cfg.scale * rng.uniform(0.9, 1.1)
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731

    ct = np.full(shape, HU["air"], dtype=np.float32)
    labels = np.zeros(shape, dtype=np.uint8)
    # body: an elliptic cylinder with a subcutaneous fat layer
    ax, ay = u(130, 145), u(95, 110)
    body_r = np.sqrt((coords[2] / ax) ** 2 + ((coords[1] - 5) / ay) ** 2)
    body = body_r <= 1.0
    fat_t = u(8, 16)
    inner = np.sqrt((coords[2] / (ax - fat_t)) ** 2 + ((coords[1] - 5) / (ay - fat_t)) ** 2) <= 1.0
    ct[body] = HU["fat"]
    ct[inner] = HU["soft_tissue"]
    # retroperitoneal fat and bowel gas pockets
    for _ in range(rng.integers(3, 7)):
        c = (u(-60, 60), u(-60, 10), u(-60, 60))
        blob = _ellipsoid(coords, c, (u(8, 20), u(6, 14), u(6, 14)), u(0, np.pi)) <= 1.0
        ct[blob & inner] = HU["gas"] if rng.random() < 0.5 else HU["fat"]
    # spine: vertebral body and spinal canal posterior in the midline
    spine_y = 5 + ay * 0.55
    vert = np.sqrt((coords[2] / 20.0) ** 2 + ((coords[1] - spine_y) / 17.0) ** 2)
    ct[vert <= 1.0] = HU["bone_cortical"]
    ct[vert <= 0.8] = HU["bone_cancellous"]
    canal = np.sqrt((coords[2] / 8.0) ** 2 + ((coords[1] - spine_y - 25) / 7.0) ** 2) <= 1.0
    ct[canal] = 15.0
    # organs (painted in this order; later ones win where they touch)
    liver_c = (u(0, 25), u(-20, 5), u(-70, -50))
    liver = _ellipsoid(coords, liver_c, (60 * sc, u(50, 60) * sc, u(60, 72) * sc), u(-0.3, 0.3))
    cut = (coords[2] - liver_c[2]) + 0.6 * (coords[0] - liver_c[0]) < u(35, 50)  # medial-inferior taper
    liver_m = (liver <= 1.0) & cut & inner
    spleen_c = (u(10, 35), u(20, 40), u(65, 85))
    spleen_m = (_ellipsoid(coords, spleen_c, (u(40, 50) * sc, u(30, 38) * sc, u(22, 28) * sc), u(-0.6, -0.2))
                <= 1.0) & inner
    kid = {}
    for name, side in (("kidney_left", 1.0), ("kidney_right", -1.0)):
        # the right kidney sits lower than the left one (pushed down by the liver)
        c = (u(-50, -25) - (15.0 if side < 0 else 0.0), spine_y - u(5, 15), side * u(48, 60))
        r = _ellipsoid(coords, c, (u(42, 52) * sc, u(24, 30) * sc, u(22, 28) * sc), side * u(0.2, 0.5))
        kid[name] = (r <= 1.0, r <= 0.45)
    for name, mask, hu in (("liver", liver_m, HU["liver"]), ("spleen", spleen_m, HU["spleen"])):
        ct[mask] = hu
        labels[mask] = LABELS[name]
    for name, (outer, pelvis) in kid.items():
        m = outer & inner
        ct[m] = HU["kidney_cortex"]
        ct[pelvis & inner] = HU["kidney_pelvis"]
        labels[m] = LABELS[name]
    # liver texture (low-frequency enhancement variation) and a few hypodense lesions (still liver)
    for _ in range(rng.integers(0, 3)):
        les = _ellipsoid(coords, tuple(np.add(liver_c, rng.normal(0, 15, 3))), (u(6, 12),) * 3, 0.0) <= 1.0
        ct[les & liver_m] = HU["liver"] - u(30, 50)
    # scanner blur and noise
    if cfg.blur_sigma_mm > 0:
        from scipy.ndimage import gaussian_filter

        ct = gaussian_filter(ct, sigma=[cfg.blur_sigma_mm / s for s in spacing], mode="nearest")
    ct += rng.normal(0.0, cfg.noise_hu, size=shape).astype(np.float32)
    ct = np.clip(np.rint(ct), -1024, 3071).astype(np.int16)
    return ct, labels, Meta(tuple(spacing), origin, np.eye(3), {"phantom_seed": seed})


def _complete(p: Path) -> bool:
    """An existing file that reads back whole (a write cut short by a full disk is regenerated)."""
    try:
        return p.exists() and check_image_file(p) is not None
    except DataError:
        return False


def make_dataset(out: str | os.PathLike, n_train: int = 8, n_test: int = 2, *, seed: int = 0,
                 config: PhantomConfig | None = None, prefix: str = "phantom") -> Path:
    """Write a phantom dataset in the nnU-Net / MSD layout: ``imagesTr/``, ``labelsTr/``, ``imagesTs/``,
    ``labelsTs/`` (ground truth of the held-out cases, for evaluation) and ``dataset.json``.

    Returns the dataset folder. Cases already present are not regenerated (the files are written atomically).
    """
    root = Path(out)
    for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    training = []
    for i in range(n_train + n_test):
        split = "Tr" if i < n_train else "Ts"
        case = f"{prefix}_{i:03d}"
        img_p = root / f"images{split}" / f"{case}_0000.nii.gz"
        lab_p = root / f"labels{split}" / f"{case}.nii.gz"
        if not (_complete(img_p) and _complete(lab_p)):
            ct, lab, meta = make_phantom(seed * 100003 + i, config)
            write_image(lab_p, lab, meta)
            write_image(img_p, ct, meta)
        if split == "Tr":
            training.append({"image": f"./imagesTr/{case}_0000.nii.gz", "label": f"./labelsTr/{case}.nii.gz"})
    info = {
        "name": "MedsegFastPhantom",
        "description": "synthetic abdominal CT (medseg_fast.data.phantom)",
        "channel_names": {"0": "CT"},
        "modality": {"0": "CT"},
        "labels": dict(LABELS),
        "numTraining": n_train,
        "numTest": n_test,
        "file_ending": ".nii.gz",
        "training": training,
    }
    write_text_atomic(root / "dataset.json", json.dumps(info, indent=2))
    return root
