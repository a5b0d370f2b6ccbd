"""NaN and infinite voxels of float NIfTI files, which ITK's NIfTI reader turns into 0 without a word.

A NaN that reads back as 0 HU (water) is a silent wrong answer, so float NIfTI voxels are scanned for
non-finite values as they stream past (in chunks; gzip decompressed and discarded). Only when some are
found is the voxel data read a second time, straight from the file, and those voxels put back.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._check import NIFTI_FLOAT_TYPES, NiftiLayout, _inflate
from ._meta import DataError

_CHUNK = 1 << 22


def _voxel_chunks(p: Path, layout: NiftiLayout, nbytes: int):
    """The voxel bytes of `p` in chunks (the file was checked to hold all of them)."""
    with open(p, "rb") as fh:
        if layout.gzipped:
            blocks: list[bytes] = []

            def keep_voxels(offset: int, block: bytes) -> None:
                lo = max(layout.vox_offset - offset, 0)
                hi = min(len(block), layout.vox_offset + nbytes - offset)
                if lo < hi:
                    blocks.append(block[lo:hi])

            _inflate(fh, p, "gzip", sink=keep_voxels)
            yield from blocks
            return
        fh.seek(layout.vox_offset)
        left = nbytes
        while left > 0:
            block = fh.read(min(_CHUNK, left))
            if not block:
                return
            left -= len(block)
            yield block


def _float_dtype(layout: NiftiLayout | None) -> np.dtype | None:
    if layout is None or layout.datatype not in NIFTI_FLOAT_TYPES:
        return None
    return np.dtype(layout.byte_order + NIFTI_FLOAT_TYPES[layout.datatype])


def count_nonfinite(p: Path, layout: NiftiLayout | None, itk_size: tuple[int, ...]) -> int:
    """Number of NaN / infinite voxels stored in a float NIfTI file (0 for other files)."""
    dtype = _float_dtype(layout)
    if dtype is None:
        return 0
    if layout.nonfinite is not None:  # counted while the file check decompressed it
        return layout.nonfinite
    count, carry = 0, b""
    for block in _voxel_chunks(p, layout, math.prod(itk_size) * dtype.itemsize):
        block = carry + block
        usable = len(block) - len(block) % dtype.itemsize
        carry = block[usable:]
        values = np.frombuffer(block, dtype, count=usable // dtype.itemsize)
        count += values.size - int(np.count_nonzero(np.isfinite(values)))
    return count


def restore_nonfinite(p: Path, layout: NiftiLayout, itk_size: tuple[int, ...], array: np.ndarray) -> np.ndarray:
    """`array` (as ITK read it) with the file's NaN / infinite voxels put back.

    Raises DataError when ITK's array is not the file's voxels in the expected order, so that the
    positions cannot be restored with certainty.
    """
    dtype = _float_dtype(layout)
    raw = np.frombuffer(b"".join(_voxel_chunks(p, layout, math.prod(itk_size) * dtype.itemsize)), dtype)
    slope, inter = layout.scl_slope, layout.scl_inter
    values, zero = raw.astype(array.dtype), 0.0  # zero: what ITK makes of a non-finite voxel
    if math.isfinite(slope) and slope != 0 and (slope, inter) != (1.0, 0.0):
        zero = inter if math.isfinite(inter) else 0.0
        values = (raw.astype(np.float64) * slope + zero).astype(array.dtype)
    bad = ~np.isfinite(values)
    if values.size != array.size:
        raise DataError(f"{p}: holds {int(bad.sum())} NaN or infinite voxel(s), which ITK reads as 0, and their "
                        f"positions could not be restored (ITK shape {array.shape})")
    values = values.reshape(array.shape)
    bad = bad.reshape(array.shape)
    good = ~bad
    # ITK scales in the voxel type, we in double: agreement to float rounding, not bit for bit
    scale = float(np.abs(values[good]).max()) if good.any() else 0.0
    if not (np.allclose(array[good], values[good], rtol=1e-5, atol=1e-6 * scale) and np.all(array[bad] == np.float32(zero))):
        raise DataError(f"{p}: holds {int(bad.sum())} NaN or infinite voxel(s), which ITK reads as 0, and their "
                        "positions could not be restored (voxel order differs)")
    out = np.array(array, copy=True)
    out[bad] = values[bad]
    return out
