"""Reading and writing images (:func:`read_image`, :func:`write_image`): checked reads, verified atomic writes."""

from __future__ import annotations

import errno
import logging
import math
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import _check_writable, _fsync_dir, _fsync_path, _write_failed, atomic_path
from ._capture import _Capture, _raise_or_log
from ._check import _check_header
from ._dicom import read_dicom_series, write_dicom_series
from ._meta import IMAGE_SUFFIXES, DataError, Meta, _sitk, is_image_path
from ._nonfinite import count_nonfinite, restore_nonfinite

__all__ = ["read_image", "write_image"]

log = logging.getLogger("medseg_fast.io")


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, Meta]:
    """Read an image file (NIfTI, NRRD, MHA/MHD) or a DICOM series folder.

    The file is checked before it is read (:func:`check_image_file`): a truncated or corrupt file, a header
    that promises more voxels than the file holds, or a NaN, infinite, zero or negative voxel size is an
    error, never a zero-filled or silently re-spaced volume. ITK's warnings do not reach stderr: those that
    mean bad data raise :class:`DataError`, the others go to the ``medseg_fast.io`` logger.

    Parameters
    ----------
    path : str or path-like
        A file, or a folder holding one DICOM series (the largest series if there are several).

    Returns
    -------
    array : numpy.ndarray
        Voxels in array axis order (z, y, x), in the file's own dtype. Vector images give ``(*spatial, C)``.
    meta : Meta
        Spacing, origin and direction in array axis order; ``meta.extra["source"]`` is the path.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    DataError
        The file exists but cannot be read as an image, is truncated or corrupt, or has invalid geometry (the
        message names it).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.nii.gz")
    >>> write_image(p, np.zeros((4, 5, 6), np.int16), Meta.identity((3.0, 1.0, 1.0)))
    >>> a, m = read_image(p)
    >>> a.shape, m.spacing
    ((4, 5, 6), (3.0, 1.0, 1.0))
    """
    sitk = _sitk()
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(errno.ENOENT, f"{p}: no such file or folder", str(p))
    header = _check_header(p)
    cap = _Capture()
    try:
        with cap:
            image = read_dicom_series(p) if p.is_dir() else sitk.ReadImage(str(p))
    except DataError:
        raise
    except RuntimeError as exc:  # SimpleITK reports every read failure as RuntimeError
        reason = str(exc).strip().splitlines()
        detail = next((line.strip() for line in reason if "ERROR" in line.upper() or "unable" in line.lower()),
                      reason[-1] if reason else "")
        raise DataError(f"{p}: cannot read image ({detail[:200]})") from None
    # ITK's own warnings can mean bad data; other libraries' stderr chatter on reads (GDCM on real DICOM
    # series) is only logged: the byte and header checks above already caught short data
    _raise_or_log(p, cap.messages(stderr=False), "read")
    for line in cap.messages()[len(cap.messages(stderr=False)):]:
        log.warning("%s: %s", p, line)
    meta = Meta.from_sitk(image)
    bad = [s for s in meta.spacing if not (math.isfinite(s) and s > 0)]
    if bad:
        raise DataError(f"{p}: voxel spacing {meta.spacing} (array axis order) holds {bad[0]}, expected finite "
                        "positive sizes in mm")
    if not (np.isfinite(meta.origin).all() and np.isfinite(meta.direction).all()):
        raise DataError(f"{p}: origin {meta.origin} or direction holds a non-finite value")
    array = sitk.GetArrayFromImage(image)
    if header is not None and header.nifti is not None and count_nonfinite(p, header.nifti, header.itk_size):
        array = restore_nonfinite(p, header.nifti, header.itk_size, array)
    meta.extra["source"] = str(p)
    return array, meta


_WRITE_KINDS = "biuf"  # bool, signed and unsigned integers, floats


def _prepare_array(p: Path, array: Any, fmt: str) -> np.ndarray:
    if hasattr(array, "detach"):  # torch tensor
        t = array.detach().cpu()
        array = (t.float() if str(t.dtype) == "torch.bfloat16" else t).numpy()  # numpy has no bfloat16
    a = np.asarray(array)
    if a.dtype.kind not in _WRITE_KINDS or a.dtype.itemsize > 8:
        raise TypeError(f"array dtype must be bool, int8..int64, uint8..uint64 or float16/32/64 to write {p}, "
                        f"got {a.dtype}")
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))  # same values, native byte order
    if a.dtype == bool:
        a = a.astype(np.uint8)
    elif a.dtype in (np.float64, np.float16):
        a = a.astype(np.float32)
    if fmt == "dicom":
        if a.ndim != 3:
            raise ValueError(f"array must be 3-D for DICOM series output to {p}, got shape {a.shape}")
        if a.dtype.kind not in "iu":
            raise TypeError(f"array must hold integers for DICOM series output to {p}, got {a.dtype}")
        if min(a.shape[1:]) < 2:
            raise ValueError(f"array shape {a.shape}: DICOM slices (axes 1, 2) need >= 2 rows and columns ({p})")
    elif not 2 <= a.ndim <= 5:
        raise ValueError(f"array must be 2-D to 5-D (array axis order) to write {p}, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"array shape {a.shape} has an empty axis; cannot write {p}")
    if fmt == "nifti" and a.ndim > 3 and a.shape[0] == 1:
        # NIfTI readers drop trailing size-1 dimensions (dim[ndim] = 1): it would read back as (*shape[1:])
        raise ValueError(f"array shape {a.shape}: NIfTI cannot keep a size-1 leading axis of a {a.ndim}-D array "
                         f"({p}); squeeze it or write .nrrd / .mha")
    return a


def _check_meta_values(p: Path, meta: Meta, a: np.ndarray) -> None:
    if a.ndim != meta.ndim:
        raise DataError(f"{p}: array has {a.ndim} dimensions but the geometry has {meta.ndim}")
    if not all(math.isfinite(s) and s > 0 for s in meta.spacing):
        raise ValueError(f"meta.spacing must be finite and > 0 (mm) to write {p}, got {meta.spacing}")
    if not all(math.isfinite(o) for o in meta.origin):
        raise ValueError(f"meta.origin must be finite to write {p}, got {meta.origin}")
    if not np.isfinite(meta.direction).all() or abs(np.linalg.det(meta.direction)) < 1e-6:
        raise ValueError(f"meta.direction must be a finite invertible matrix to write {p}, got "
                         f"{meta.direction.tolist()}")


def write_image(path: str | os.PathLike, array: Any, meta: Meta | None = None, *, compress: bool = True,
                format: str | None = None) -> None:
    """Write ``array`` (array axis order) with the geometry ``meta``, atomically and verified.

    The format follows the suffix (``.nii.gz``, ``.nii``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``). A DICOM
    series folder (one file per slice, modality CT, a new study UID; integer 3-D data) is written only with
    ``format="dicom"`` and a path without an image suffix. Arrays may be 2-D to 5-D; they read back with the
    same shape (NIfTI refuses a size-1 leading axis of a 4-D/5-D array, which its readers drop). dtypes:
    int8..int64, uint8..uint64 and float32 are kept; bool is written as uint8, float16 and float64 as float32;
    big-endian input is byte-swapped (same values); anything else is refused. Torch tensors are accepted
    (bfloat16 as float32).

    The written file is fsynced and checked before it is renamed into place (the header reads back with the
    array's shape and the file holds every voxel byte), so a full disk or an I/O error never leaves a
    broken file under ``path``.

    Raises
    ------
    ValueError, TypeError
        Unsupported array (shape, dtype), geometry (non-finite or non-positive spacing) or path.
    DataError
        The output cannot be written or does not read back (the message names the path), or ``meta`` does
        not match the array.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.nrrd")
    >>> write_image(p, np.zeros((6, 1, 6), np.uint8), Meta.identity((2.0, 1.0, 1.0)))
    >>> read_image(p)[0].shape
    (6, 1, 6)
    """
    sitk = _sitk()
    p = Path(path)
    if format not in (None, "dicom"):
        raise ValueError(f"format must be None (from the suffix of path) or 'dicom', got {format!r}")
    if format == "dicom" and is_image_path(p):
        raise ValueError(f"path {p} has an image suffix; format='dicom' writes a series folder: give a folder path")
    if format is None and not is_image_path(p):
        raise ValueError(f"path {p} has no image suffix (one of {', '.join(IMAGE_SUFFIXES)}); pass "
                         "format='dicom' to write a DICOM series folder")
    fmt = format or ("nifti" if str(p).lower().endswith((".nii", ".nii.gz")) else "itk")
    a = _prepare_array(p, array, fmt)
    if meta is None:
        meta = Meta.identity((1.0,) * a.ndim)
    _check_meta_values(p, meta, a)
    _check_writable(p)
    image = sitk.GetImageFromArray(np.ascontiguousarray(a), isVector=False)
    try:
        meta.apply_to(image)
    except RuntimeError as exc:
        raise ValueError(f"meta does not fit the array of shape {a.shape} for {p}: "
                         f"{str(exc).strip().splitlines()[-1][:200]}") from None
    detached = str(p).lower().endswith((".mhd", ".nhdr"))
    try:
        if detached:
            _write_detached(sitk, image, p, a, meta)
            return
        with atomic_path(p, verify=lambda t: _verify_image(t, a, fmt, meta, p)) as tmp:
            cap = _Capture()
            with cap:
                if fmt == "dicom":
                    write_dicom_series(tmp, image, a)
                else:
                    sitk.WriteImage(image, str(tmp), compress and str(p).lower().endswith(".gz") or False)
            _raise_or_log(p, cap.messages(), "write")
    except RuntimeError as exc:
        raise DataError(f"{p}: cannot write image ({str(exc).strip().splitlines()[-1][:200]})") from None


def _verify_image(tmp: Path, a: np.ndarray, fmt: str, meta: Meta, target: Path) -> None:
    """The written file reads back: our header check (every voxel byte present), then ITK's header with the
    array's shape and the geometry ``meta`` (to float32 precision, as NIfTI stores it)."""
    sitk = _sitk()
    h = _check_header(tmp)
    if h is not None and (tuple(reversed(h.itk_size)) != a.shape or h.itemsize not in (0, a.dtype.itemsize)):
        raise DataError(f"{tmp}: header holds shape {tuple(reversed(h.itk_size))} of {h.itemsize}-byte voxels, "
                        f"expected {a.shape} of {a.dtype.itemsize}")
    cap = _Capture()
    try:
        with cap:
            if fmt == "dicom":
                reader = sitk.ImageSeriesReader()
                reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp)))
                info: Any = reader.Execute()
            else:
                info = sitk.ImageFileReader()
                info.SetFileName(str(tmp))
                info.ReadImageInformation()
            got = tuple(reversed(info.GetSize()))
            n = len(got)
            back = Meta(tuple(reversed(info.GetSpacing())), tuple(reversed(info.GetOrigin())),
                        np.asarray(info.GetDirection(), np.float64).reshape(n, n)[::-1, ::-1])
    except RuntimeError as exc:
        raise DataError(f"{tmp}: does not read back ({str(exc).strip().splitlines()[-1][:200]})") from None
    if got != a.shape:
        raise DataError(f"{tmp}: reads back with shape {got}, expected {a.shape}")
    # direction to 1e-3: scanners' slightly non-orthonormal cosines, orthonormalized by NIfTI, still pass
    same = (np.allclose(back.spacing, meta.spacing, rtol=1e-4, atol=0)
            and np.allclose(back.origin, meta.origin, atol=max(1e-4, 1e-6 * max(map(abs, meta.origin), default=0)))
            and np.allclose(back.direction, meta.direction, atol=1e-3))
    if not same:
        raise ValueError(f"meta cannot be stored in {target}: it reads back as spacing {back.spacing}, origin "
                         f"{back.origin}, direction {back.direction.round(6).tolist()} (given {meta.spacing}, "
                         f"{meta.origin}, {meta.direction.round(6).tolist()}); NIfTI keeps only orthonormal directions "
                         "of the last 3 axes and NRRD no shear: write .mha, or give an orthonormal direction")


def _write_detached(sitk: Any, image: Any, p: Path, a: np.ndarray, meta: Meta) -> None:
    """Header + data file formats (.mhd/.raw, .nhdr/.raw): the header names the data file, so both are
    written with their final names in a temporary folder, verified, and moved into place, data first,
    header last."""
    tmpdir = p.parent / f".{p.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmpdir.mkdir()
    try:
        cap = _Capture()
        try:
            with cap:
                sitk.WriteImage(image, str(tmpdir / p.name), False)
            _raise_or_log(p, cap.messages(), "write")
            _fsync_path(tmpdir)
            _verify_image(tmpdir / p.name, a, "itk", meta, p)
        except (OSError, DataError) as exc:
            raise _write_failed(p, tmpdir / p.name, exc) from exc
        for f in sorted(tmpdir.iterdir(), key=lambda f: f.name == p.name):
            os.replace(f, p.parent / f.name)
        _fsync_dir(p.parent)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
