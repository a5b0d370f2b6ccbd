"""DICOM series folders: the largest series of a folder read in slice order, and a minimal CT-like series
written from a 3-D integer array."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ._meta import DataError, _sitk

__all__ = ["read_dicom_series", "write_dicom_series"]


def read_dicom_series(folder: Path) -> Any:
    """The largest DICOM series in ``folder`` as a SimpleITK image (files in GDCM's slice order)."""
    sitk = _sitk()
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise DataError(f"{folder}: folder holds no DICOM series")
    files = max((reader.GetGDCMSeriesFileNames(str(folder), s) for s in series), key=len)
    reader.SetFileNames(files)
    return reader.Execute()


def write_dicom_series(folder: Path, image: Any, array: np.ndarray) -> None:
    """A minimal CT-like DICOM series (SimpleITK's documented recipe): geometry in per-slice tags."""
    sitk = _sitk()
    if array.ndim != 3:
        raise DataError(f"{folder}: DICOM series output needs a 3-D array, got {array.ndim}-D")
    if not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"{folder}: DICOM series output needs integer voxels, got {array.dtype}")
    if array.dtype not in (np.int16, np.uint16, np.uint8):
        image = sitk.Cast(image, sitk.sitkInt16)
    folder.mkdir(parents=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series_uid = "1.2.826.0.1.3680043.2.1125." + str(uuid.uuid4().int)[:30]
    direction = image.GetDirection()
    now = time.strftime("%Y%m%d"), time.strftime("%H%M%S")
    common = [
        ("0008|0031", now[1]), ("0008|0021", now[0]), ("0008|0060", "CT"), ("0020|000e", series_uid),
        ("0020|000d", series_uid + ".1"), ("0008|103e", "medseg_fast"),
        ("0020|0037", "\\".join(map(str, (direction[0], direction[3], direction[6],
                                         direction[1], direction[4], direction[7])))),
        ("0028|0030", "\\".join(map(str, image.GetSpacing()[1::-1]))),
        ("0018|0050", str(image.GetSpacing()[2])),
    ]
    for k in range(image.GetDepth()):
        s = image[:, :, k]
        for tag, value in common:
            s.SetMetaData(tag, value)
        s.SetMetaData("0020|0032", "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, k)))))
        s.SetMetaData("0020|0013", str(k + 1))
        s.SetMetaData("0008|0018", f"{series_uid}.{k + 1}")
        writer.SetFileName(str(folder / f"slice_{k:04d}.dcm"))
        writer.Execute(s)
