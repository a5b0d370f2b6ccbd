"""Reading and writing medical images (NIfTI, NRRD, MHA, DICOM series) with their geometry, via SimpleITK.

Arrays are numpy, in **array axis order**: (z, y, x) for a 3-D volume, (y, x) for a 2-D image (SimpleITK's
``GetArrayFromImage`` order). :class:`Meta` gives spacing, origin and direction in the same array axis order,
so ``meta.spacing[0]`` is the spacing along ``array.shape[0]``; ITK's own (x, y, z) order is available as
``meta.itk_spacing`` etc. The physical position of voxel index ``i`` (array order) is
``origin + direction @ (spacing * i)``. Writes are atomic: the file (or DICOM folder) is written under a
temporary name next to the target and renamed into place, so an interrupted run never leaves a half-written
output.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Meta", "DataError", "read_image", "write_image", "resample", "atomic_path", "is_image_path", "IMAGE_SUFFIXES",
           "strip_suffix"]

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


class DataError(ValueError):
    """Bad user data (unreadable file, mismatched geometry, unknown label): the message names the file."""


@dataclass
class Meta:
    """Geometry of an image, in array axis order (z, y, x for 3-D).

    Attributes
    ----------
    spacing : tuple of float
        Voxel size in mm along each array axis.
    origin : tuple of float
        Physical position (mm) of the first voxel, components in array axis order (z, y, x).
    direction : numpy.ndarray
        ``(ndim, ndim)`` direction cosines in array axis order: column ``j`` is the physical direction of
        array axis ``j``. (ITK's matrix with rows and columns reversed.)
    extra : dict
        Free-form metadata kept alongside (e.g. ``{"source": path}``).
    """

    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spacing = tuple(float(s) for s in self.spacing)
        self.origin = tuple(float(o) for o in self.origin)
        self.direction = np.asarray(self.direction, dtype=np.float64).reshape(len(self.spacing), len(self.spacing))

    @classmethod
    def identity(cls, spacing: tuple[float, ...]) -> Meta:
        """Geometry with the given spacing, zero origin and identity direction."""
        n = len(spacing)
        return cls(tuple(spacing), (0.0,) * n, np.eye(n))

    @property
    def ndim(self) -> int:
        return len(self.spacing)

    @property
    def itk_spacing(self) -> tuple[float, ...]:
        return tuple(reversed(self.spacing))

    @property
    def itk_origin(self) -> tuple[float, ...]:
        return tuple(reversed(self.origin))

    @property
    def itk_direction(self) -> tuple[float, ...]:
        return tuple(float(v) for v in self.direction[::-1, ::-1].ravel())

    @classmethod
    def from_sitk(cls, image: Any) -> Meta:
        n = image.GetDimension()
        d = np.asarray(image.GetDirection(), dtype=np.float64).reshape(n, n)
        return cls(tuple(reversed(image.GetSpacing())), tuple(reversed(image.GetOrigin())), d[::-1, ::-1].copy())

    def apply_to(self, image: Any) -> None:
        """Set this geometry on a SimpleITK image."""
        image.SetSpacing(self.itk_spacing)
        image.SetOrigin(self.itk_origin)
        image.SetDirection(self.itk_direction)

    def to_dict(self) -> dict[str, Any]:
        return {"spacing": list(self.spacing), "origin": list(self.origin),
                "direction": self.direction.tolist(), "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Meta:
        return cls(tuple(d["spacing"]), tuple(d["origin"]), np.asarray(d["direction"]), dict(d.get("extra", {})))

    def same_geometry(self, other: Meta, tol: float = 1e-4) -> bool:
        """Spacing, origin and direction equal within ``tol`` (relative for spacing, mm for origin)."""
        return (self.ndim == other.ndim
                and np.allclose(self.spacing, other.spacing, rtol=tol, atol=0)
                and np.allclose(self.origin, other.origin, atol=max(tol, tol * max(map(abs, self.origin), default=0)))
                and np.allclose(self.direction, other.direction, atol=tol))


def is_image_path(path: str | os.PathLike) -> bool:
    """True for a path with a supported image suffix (a DICOM series is a folder instead)."""
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def strip_suffix(name: str) -> str:
    """``"case_0000.nii.gz"`` -> ``"case_0000"``."""
    low = name.lower()
    for s in IMAGE_SUFFIXES + (".dcm",):
        if low.endswith(s):
            return name[: -len(s)]
    return name


def _sitk():
    try:
        import SimpleITK as sitk
    except ImportError:  # pragma: no cover - SimpleITK is a pipeline dependency
        raise ImportError("medseg_fast.io needs SimpleITK: pip install SimpleITK") from None
    return sitk


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, Meta]:
    """Read an image file (NIfTI, NRRD, MHA/MHD) or a DICOM series folder.

    Parameters
    ----------
    path : str or path-like
        A file, or a folder holding one DICOM series (the largest series if there are several).

    Returns
    -------
    array : numpy.ndarray
        Voxels in array axis order (z, y, x), in the file's own dtype. Vector images give (*spatial, C).
    meta : Meta
        Spacing, origin and direction in array axis order; ``meta.extra["source"]`` is the path.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    DataError
        The file exists but cannot be read as an image (the message names it).

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
        raise FileNotFoundError(f"{p}: no such file or folder")
    try:
        if p.is_dir():
            reader = sitk.ImageSeriesReader()
            series = reader.GetGDCMSeriesIDs(str(p))
            if not series:
                raise DataError(f"{p}: folder holds no DICOM series")
            files = max((reader.GetGDCMSeriesFileNames(str(p), s) for s in series), key=len)
            reader.SetFileNames(files)
            image = reader.Execute()
        else:
            image = sitk.ReadImage(str(p))
    except DataError:
        raise
    except RuntimeError as exc:  # SimpleITK reports every read failure as RuntimeError
        reason = str(exc).strip().splitlines()
        detail = next((line.strip() for line in reason if "ERROR" in line.upper() or "unable" in line.lower()),
                      reason[-1] if reason else "")
        raise DataError(f"{p}: cannot read image ({detail[:200]})") from None
    array = sitk.GetArrayFromImage(image)
    meta = Meta.from_sitk(image)
    meta.extra["source"] = str(p)
    return array, meta


def resample(x: Any, meta: Meta, spacing: Sequence[float], order: int = 1) -> tuple[np.ndarray, Meta]:
    """Resample an image (``(*spatial)`` or ``(C, *spatial)``) to ``spacing`` (array axis order, mm), keeping
    its physical extent; returns the array and its new geometry.

    The new shape is ``round(shape * meta.spacing / spacing)``; the spacing actually used is
    ``meta.spacing * shape / new_shape`` (equal to ``spacing`` up to rounding) and the origin moves so that
    the field of view stays the same (voxel centres as ``align_corners=False`` interpolation). ``order`` 0
    is nearest (label maps: integer arrays give integer results), 1 is linear.

    Examples
    --------
    >>> import numpy as np
    >>> y, m = resample(np.zeros((4, 10, 10), np.float32), Meta.identity((3.0, 1.0, 1.0)), (1.5, 2.0, 2.0))
    >>> y.shape, m.spacing
    ((8, 5, 5), (1.5, 2.0, 2.0))
    """
    from .pipelines import _ops

    a = np.asarray(x)
    nd = meta.ndim
    if a.ndim not in (nd, nd + 1):
        raise ValueError(f"x must have {nd} or {nd + 1} dimensions for a {nd}-D geometry, got shape {a.shape}")
    target = tuple(float(s) for s in spacing)
    if len(target) != nd or min(target) <= 0:
        raise ValueError(f"spacing must have {nd} positive values, got {tuple(spacing)}")
    if order not in (0, 1):
        raise ValueError(f"order must be 0 or 1, got {order}")
    shape = a.shape[-nd:]
    new_shape = tuple(max(int(round(n * s / t)), 1) for n, s, t in zip(shape, meta.spacing, target))
    if order == 0 and np.issubdtype(a.dtype, np.integer):
        out = _ops.resample_image(a.reshape(-1, *shape).astype(np.float32), new_shape, order=0)
        out = out.astype(a.dtype).reshape(*a.shape[:-nd], *new_shape)
    else:
        # plain (bi/tri)linear on the new grid: no nnU-Net "separate z" here, whatever the anisotropy
        out = _ops.resample_image(a.reshape(-1, *shape).astype(np.float32), new_shape,
                                  order=order).reshape(*a.shape[:-nd], *new_shape)
    new_spacing = tuple(s * n / m for s, n, m in zip(meta.spacing, shape, new_shape))
    offset = np.array([0.5 * (ns / s) - 0.5 for s, ns in zip(meta.spacing, new_spacing)]) * np.asarray(meta.spacing)
    origin = tuple(np.asarray(meta.origin) + meta.direction @ offset)
    return out, Meta(new_spacing, origin, meta.direction.copy(), dict(meta.extra))


def _tmp_name(target: Path) -> Path:
    # keep the full suffix (".nii.gz"): SimpleITK picks the format from it
    name = target.name
    suffix = next((s for s in IMAGE_SUFFIXES + (".npz", ".json", ".csv", ".png", ".pt") if name.lower().endswith(s)), "")
    stem = name[: len(name) - len(suffix)]
    return target.with_name(f".{stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``, on any error (Ctrl-C
    included) delete it. Works for files and folders (an existing target folder is replaced).

    Examples
    --------
    >>> import tempfile, os
    >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> open(target).read()
    'done'
    """
    target = Path(path)
    tmp = _tmp_name(target)
    try:
        yield tmp
        if tmp.is_dir():
            if target.exists():
                old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
                os.replace(target, old)
                os.replace(tmp, target)
                _remove(old)
            else:
                os.replace(tmp, target)
        else:
            os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise


def _remove(p: Path) -> None:
    import shutil

    with contextlib.suppress(FileNotFoundError):
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()


def _check_writable(p: Path) -> None:
    parent = p.parent if str(p.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{p}: cannot create the output folder ({exc.strerror or exc})") from None
    if not os.access(parent, os.W_OK):
        raise DataError(f"{p}: output folder {parent} is not writable")


def write_image(path: str | os.PathLike, array: Any, meta: Meta | None = None, *, compress: bool = True) -> None:
    """Write ``array`` (array axis order) with the geometry ``meta``, atomically.

    The format follows the suffix (``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha``, ``.mhd``); a path without a
    known suffix is written as a DICOM series folder (one file per slice; integer data, 3-D only).
    Booleans are written as uint8, float64 as float32. Torch tensors are accepted (copied to the CPU).

    Raises
    ------
    DataError
        The output cannot be written (the message names the path), or ``meta`` does not match the array.
    """
    sitk = _sitk()
    p = Path(path)
    if hasattr(array, "detach"):  # torch tensor
        array = array.detach().cpu().numpy()
    a = np.asarray(array)
    if a.dtype == bool:
        a = a.astype(np.uint8)
    elif a.dtype == np.float64:
        a = a.astype(np.float32)
    elif a.dtype == np.float16:
        a = a.astype(np.float32)
    if meta is None:
        meta = Meta.identity((1.0,) * a.ndim)
    if a.ndim != meta.ndim:
        raise DataError(f"{p}: array has {a.ndim} dimensions but the geometry has {meta.ndim}")
    _check_writable(p)
    image = sitk.GetImageFromArray(np.ascontiguousarray(a))
    meta.apply_to(image)
    dicom = not is_image_path(p)
    detached = str(p).lower().endswith((".mhd", ".nhdr"))
    try:
        if detached:
            _write_detached(sitk, image, p)
            return
        with atomic_path(p) as tmp:
            if dicom:
                _write_dicom_series(tmp, image, a)
            else:
                sitk.WriteImage(image, str(tmp), compress and str(p).lower().endswith(".gz") or False)
    except RuntimeError as exc:
        raise DataError(f"{p}: cannot write image ({str(exc).strip().splitlines()[-1][:200]})") from None


def _write_detached(sitk: Any, image: Any, p: Path) -> None:
    """Header + data file formats (.mhd/.raw, .nhdr/.raw): the header names the data file, so both are
    written with their final names in a temporary folder and moved into place, data first, header last."""
    import shutil

    tmpdir = p.parent / f".{p.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmpdir.mkdir()
    try:
        sitk.WriteImage(image, str(tmpdir / p.name), False)
        for f in sorted(tmpdir.iterdir(), key=lambda f: f.name == p.name):
            os.replace(f, p.parent / f.name)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _write_dicom_series(folder: Path, image: Any, array: np.ndarray) -> None:
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
