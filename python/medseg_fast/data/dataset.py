"""Datasets in the nnU-Net v2 / Medical Segmentation Decathlon layout.

::

    DATASET/
      dataset.json          {"channel_names" or "modality": {"0": "CT"}, "labels": {...}, "file_ending": ".nii.gz"}
      imagesTr/CASE_0000.nii.gz [CASE_0001.nii.gz ...]   one file per channel (nnU-Net v2)
      labelsTr/CASE.nii.gz
      imagesTs/ labelsTs/   optional held-out cases

``labels`` may map names to values (nnU-Net v2) or values to names (MSD); MSD's single 4-D image per case
(``imagesTr/CASE.nii.gz``) is not supported: split channels into ``_0000``, ``_0001`` files.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io import IMAGE_SUFFIXES, DataError, strip_suffix

__all__ = ["Case", "DatasetInfo", "load_dataset", "find_cases"]


@dataclass
class Case:
    """One case: its identifier, one image path per channel, and the label path (None when unlabelled)."""

    case_id: str
    images: list[Path]
    label: Path | None = None


@dataclass
class DatasetInfo:
    """What ``dataset.json`` says: channel names, modality of channel 0, classes (value -> name)."""

    root: Path
    channels: list[str]
    labels: dict[int, str]
    file_ending: str = ".nii.gz"
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def modality(self) -> str:
        return self.channels[0].upper() if self.channels else "CT"

    @property
    def classes(self) -> list[int]:
        """Foreground class values, sorted."""
        return sorted(v for v in self.labels if v != 0)

    @property
    def num_classes(self) -> int:
        """Output channels of a network: max label value + 1."""
        return max(self.labels) + 1


def _parse_labels(path: Path, labels: Any) -> dict[int, str]:
    if not isinstance(labels, dict) or not labels:
        raise DataError(f"{path}: 'labels' must be a non-empty mapping")
    out: dict[int, str] = {}
    for k, v in labels.items():
        if isinstance(v, int) and not isinstance(v, bool):  # nnU-Net v2: name -> value
            out[int(v)] = str(k)
        elif isinstance(k, str) and re.fullmatch(r"\d+", k):  # MSD: "value" -> name
            out[int(k)] = str(v)
        else:
            raise DataError(f"{path}: cannot read label entry {k!r}: {v!r} (expected name -> int or 'int' -> name; "
                            "region-based labels are not supported)")
    if 0 not in out:
        raise DataError(f"{path}: 'labels' must contain background 0")
    return out


def load_dataset(root: str | os.PathLike) -> DatasetInfo:
    """Read and check ``root/dataset.json``.

    Raises
    ------
    DataError
        Missing or malformed ``dataset.json`` (the message names the file and the problem).
    """
    root = Path(root)
    path = root / "dataset.json"
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder does not exist")
    if not path.is_file():
        raise DataError(f"{path}: missing (a dataset folder needs dataset.json, imagesTr/ and labelsTr/)")
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object")
    chans = raw.get("channel_names", raw.get("modality"))
    if not isinstance(chans, dict) or not chans:
        raise DataError(f"{path}: needs 'channel_names' (or 'modality'), e.g. {{\"0\": \"CT\"}}")
    try:
        channels = [str(chans[k]) for k in sorted(chans, key=int)]
    except ValueError:
        raise DataError(f"{path}: channel keys must be '0', '1', ...; got {sorted(chans)}") from None
    labels = _parse_labels(path, raw.get("labels"))
    return DatasetInfo(root, channels, labels, str(raw.get("file_ending", ".nii.gz")), raw)


def find_cases(info: DatasetInfo, split: str = "Tr", *, require_labels: bool = True) -> list[Case]:
    """Cases of ``imagesTr`` (``split="Tr"``) or ``imagesTs``, sorted by identifier.

    Raises
    ------
    DataError
        No images, a missing channel file, or (with ``require_labels``) a missing label file.
    """
    img_dir, lab_dir = info.root / f"images{split}", info.root / f"labels{split}"
    if not img_dir.is_dir():
        raise DataError(f"{img_dir}: folder does not exist")
    nchan = len(info.channels)
    found: dict[str, dict[int, Path]] = {}
    for p in sorted(img_dir.iterdir()):
        if not p.name.lower().endswith(IMAGE_SUFFIXES) or p.name.startswith("."):
            continue
        m = re.fullmatch(r"(.+)_(\d{4})", strip_suffix(p.name))
        if not m:
            raise DataError(f"{p}: image names must end in _0000 (channel index), as in nnU-Net")
        found.setdefault(m.group(1), {})[int(m.group(2))] = p
    if not found:
        raise DataError(f"{img_dir}: no images found")
    cases = []
    for cid, chans in sorted(found.items()):
        missing = [c for c in range(nchan) if c not in chans]
        if missing:
            raise DataError(f"{img_dir}: case {cid} lacks channel file(s) {[f'{cid}_{c:04d}' for c in missing]}")
        label = next((lab_dir / f"{cid}{s}" for s in IMAGE_SUFFIXES if (lab_dir / f"{cid}{s}").exists()), None)
        if label is None and require_labels:
            raise DataError(f"{lab_dir / (cid + info.file_ending)}: label file missing for case {cid}")
        cases.append(Case(cid, [chans[c] for c in range(nchan)], label))
    return cases
