"""Reading and writing medical images (NIfTI, NRRD, MHA, DICOM series) with their geometry, via SimpleITK.

Arrays are numpy, in **array axis order**: (z, y, x) for a 3-D volume, (y, x) for a 2-D image (SimpleITK's
``GetArrayFromImage`` order). :class:`Meta` gives spacing, origin and direction in the same array axis order,
so ``meta.spacing[0]`` is the spacing along ``array.shape[0]``; ITK's own (x, y, z) order is available as
``meta.itk_spacing`` etc. The physical position of voxel index ``i`` (array order) is
``origin + direction @ (spacing * i)``.

Reads are checked: the header is parsed here and the voxel bytes it promises are counted (gzip streams
decompressed in chunks) before SimpleITK reads the file, so a truncated or corrupt file, a huge
``vox_offset``, a bad ``sizeof_hdr`` or a NaN / zero / negative voxel size raises :class:`DataError` naming
the file instead of giving a zero-filled or re-spaced volume. ITK's warnings never reach stderr.

Writes are atomic and verified: the file (or DICOM folder) is written under a temporary name next to the
target (``.NAME.tmp-PID-XXXXXXXX.SUFFIX``, see :func:`is_temp_name`), fsynced, checked (the header reads
back with the array's shape, every voxel byte is there), and only then renamed into place; on any failure
(full disk, I/O error, Ctrl-C) the temporary file is removed and a :class:`DataError` names the target.
An array reads back with its shape and dtype (or :func:`write_image` refuses it).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import re
import struct
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Meta", "DataError", "read_image", "write_image", "resample", "atomic_path", "is_image_path", "IMAGE_SUFFIXES",
           "strip_suffix", "write_text_atomic", "is_temp_name", "clean_stale_temp_files", "check_image_file"]

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
log = logging.getLogger(__name__)


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


# ------------------------------------------------------------------------------------------ file checks
# SimpleITK zero-fills short reads (NIfTI, NRRD, MetaImage) and takes NaN or zero voxel sizes without an error,
# so every file is checked here first: its header is parsed and the bytes its data needs are counted (gzip
# streams are decompressed chunk by chunk and discarded, so no second copy of the volume is held).

_CHUNK = 1 << 20
# NIfTI datatype code -> bytes per voxel
_NIFTI_SIZES = {2: 1, 4: 2, 8: 4, 16: 4, 32: 8, 64: 8, 128: 3, 256: 1, 512: 2, 768: 4, 1024: 8, 1280: 8,
                1536: 16, 1792: 16, 2048: 32, 2304: 4}
_NRRD_SIZES = {}
for _names, _n in ((("signed char", "int8", "int8_t", "char", "uchar", "unsigned char", "uint8", "uint8_t"), 1),
                   (("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort",
                     "unsigned short", "unsigned short int", "uint16", "uint16_t"), 2),
                   (("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t", "float"), 4),
                   (("longlong", "long long", "long long int", "signed long long", "signed long long int", "int64",
                     "int64_t", "ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t",
                     "double"), 8)):
    for _name in _names:
        _NRRD_SIZES[_name] = _n
_MET_SIZES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
              "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8}
for _k, _v in list(_MET_SIZES.items()):
    _MET_SIZES[_k + "_ARRAY"] = _v


@dataclass
class _Header:
    """What a file header promises: the size in ITK (x, y, z, ...) order and bytes per voxel (0: unknown)."""

    itk_size: tuple[int, ...]
    itemsize: int


def _inflate(fh: Any, p: Path, what: str, keep: int = 0) -> tuple[bytes, int]:
    """Decompress a gzip (``what="gzip"``, members in sequence) or zlib stream from ``fh`` in chunks,
    discarding the output: the first ``keep`` bytes and the total size. DataError when cut or corrupt."""
    wbits = 31 if what == "gzip" else 15
    d = zlib.decompressobj(wbits)
    head = bytearray()
    total = 0
    pending = b""
    try:
        while True:
            if d.eof:
                rest = d.unused_data
                if what != "gzip" or not rest[:2] == b"\x1f\x8b":
                    break  # end of the stream (trailing bytes after it are ignored, as zlib readers do)
                d, pending = zlib.decompressobj(wbits), rest  # another gzip member follows
            data = pending or fh.read(_CHUNK)
            pending = b""
            if not data:
                raise EOFError
            out = d.decompress(data, 4 * _CHUNK)
            while True:
                total += len(out)
                if len(head) < keep:
                    head += out[: keep - len(head)]
                if not d.unconsumed_tail:
                    break
                out = d.decompress(d.unconsumed_tail, 4 * _CHUNK)
    except EOFError:
        raise DataError(f"{p}: truncated file: the {what} stream ends after {total} bytes, before its end "
                        "marker") from None
    except zlib.error as exc:
        raise DataError(f"{p}: corrupt {what} data after {total} bytes ({exc})") from None
    return bytes(head), total


def _short(p: Path, need: int, have: int, what: str = "voxel data") -> DataError:
    return DataError(f"{p}: truncated file: the header needs {need} bytes of {what}, the file holds {max(have, 0)}")


def _check_nifti(p: Path) -> _Header:
    with open(p, "rb") as fh:
        # by content, as ITK's znzlib: a .nii.gz may be stored uncompressed, a .nii gzipped
        gz = fh.read(2) == b"\x1f\x8b"
        fh.seek(0)
        if gz:
            head, total = _inflate(fh, p, "gzip", keep=540)
        else:
            head, total = fh.read(540), os.fstat(fh.fileno()).st_size
        if len(head) < 348:
            raise DataError(f"{p}: truncated file: {len(head)} bytes, shorter than a NIfTI header (348)")
        for order in "<>":
            sizeof_hdr = struct.unpack(order + "i", head[:4])[0]
            if sizeof_hdr in (348, 540):
                break
        else:
            raise DataError(f"{p}: sizeof_hdr is {struct.unpack('<i', head[:4])[0]}, expected 348 (NIfTI-1) or "
                            "540 (NIfTI-2): not a NIfTI file or a corrupt header")
        if sizeof_hdr == 348:
            magic = head[344:348]
            if magic[:3] not in (b"n+1", b"ni1"):
                raise DataError(f"{p}: NIfTI-1 magic is {magic!r}, expected b'n+1\\x00'")
            dims = struct.unpack(order + "8h", head[40:56])
            datatype, bitpix = struct.unpack(order + "2h", head[70:74])
            pixdim = struct.unpack(order + "8f", head[76:108])
            vox_offset = struct.unpack(order + "f", head[108:112])[0]
        else:
            if len(head) < 540:
                raise DataError(f"{p}: truncated file: {len(head)} bytes, shorter than a NIfTI-2 header (540)")
            magic = head[4:12]
            if magic[:3] not in (b"n+2", b"ni2"):
                raise DataError(f"{p}: NIfTI-2 magic is {magic!r}, expected b'n+2\\x00...'")
            datatype, bitpix = struct.unpack(order + "2h", head[12:16])
            dims = struct.unpack(order + "8q", head[16:80])
            pixdim = struct.unpack(order + "8d", head[104:168])
            vox_offset = struct.unpack(order + "q", head[168:176])[0]
        if magic[1:2] == b"i":
            raise DataError(f"{p}: header says the voxels are in a separate .img file (magic {magic[:3]!r}); "
                            "a .nii file must hold them (magic n+1 / n+2)")
        ndim = dims[0]
        if not 1 <= ndim <= 7:
            raise DataError(f"{p}: dim[0] is {ndim}, expected 1..7 dimensions")
        size = dims[1: ndim + 1]
        if min(size) < 1:
            raise DataError(f"{p}: dim[1:{ndim + 1}] is {list(size)}, expected sizes >= 1")
        for i in range(1, min(ndim, 3) + 1):
            if not (math.isfinite(pixdim[i]) and pixdim[i] > 0):
                raise DataError(f"{p}: pixdim[{i}] (voxel size along axis {i - 1} of the file) is {pixdim[i]}, "
                                "expected a finite positive size in mm")
        itemsize = _NIFTI_SIZES.get(datatype, bitpix // 8 if bitpix > 0 and bitpix % 8 == 0 else 0)
        if itemsize <= 0:
            raise DataError(f"{p}: unknown NIfTI datatype {datatype} (bitpix {bitpix})")
        if not (math.isfinite(vox_offset) and sizeof_hdr <= vox_offset < 2**62):
            raise DataError(f"{p}: vox_offset is {vox_offset}, expected >= {sizeof_hdr} (the header size)")
        need = int(vox_offset) + math.prod(size) * itemsize
        have = total
        if have < need:
            raise _short(p, need - int(vox_offset), have - int(vox_offset))
    return _Header(tuple(int(s) for s in size), itemsize)


def _text_header(fh: Any, p: Path, limit: int = 1 << 20) -> tuple[list[str], int]:
    """Lines of a text header up to the first empty line (NRRD) or EOF; and the byte offset after it."""
    lines, offset = [], 0
    while offset < limit:
        raw = fh.readline()
        if not raw:
            break
        offset += len(raw)
        line = raw.decode("latin-1").rstrip("\r\n")
        if not line:
            break
        lines.append(line)
    return lines, offset


def _ints(p: Path, key: str, value: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value.split())
    except ValueError:
        raise DataError(f"{p}: header field {key!r} is {value!r}, expected whole numbers") from None
    if not out or min(out) < 1:
        raise DataError(f"{p}: header field {key!r} is {value!r}, expected sizes >= 1")
    return out


def _spacings(p: Path, key: str, values: Sequence[str]) -> None:
    for v in values:
        try:
            x = float(v)
        except ValueError:
            continue  # "nan" parses; other words (e.g. "none" for a vector axis) are not voxel sizes
        if not (math.isfinite(x) and x > 0):
            raise DataError(f"{p}: header field {key!r} holds {v}, expected finite positive voxel sizes (mm)")


def _check_nrrd(p: Path) -> _Header | None:
    with open(p, "rb") as fh:
        first = fh.readline(64)
        if not first.startswith(b"NRRD"):
            raise DataError(f"{p}: not a NRRD file (first bytes {first[:8]!r}, expected b'NRRD000x')")
        lines, offset = _text_header(fh, p)
        offset += len(first)
        fields: dict[str, str] = {}
        for line in lines:
            if line.startswith("#") or ":=" in line or ": " not in line:
                continue
            k, v = line.split(": ", 1)
            fields[k.strip().lower()] = v.strip()
        if "sizes" not in fields or "type" not in fields:
            raise DataError(f"{p}: NRRD header lacks 'sizes' or 'type'")
        sizes = _ints(p, "sizes", fields["sizes"])
        if "spacings" in fields:
            _spacings(p, "spacings", fields["spacings"].split())
        itemsize = _NRRD_SIZES.get(fields["type"].lower(), 0)
        encoding = fields.get("encoding", "raw").lower()
        datafile = fields.get("data file", fields.get("datafile"))
        skip = int(fields.get("byte skip", fields.get("byteskip", "0")) or 0)
        header = _Header(sizes, itemsize)
        if not itemsize or encoding not in ("raw", "gzip", "gz") or fields.get("line skip", "0") != "0":
            return header  # text / bzip2 encodings and line skips: left to ITK
        need = math.prod(sizes) * itemsize
        if datafile is None:
            src, start = p, offset
        else:
            if len(datafile.split()) > 1 or datafile.upper().startswith("LIST"):
                return header  # one file per slice: left to ITK
            src, start = (p.parent / datafile), 0
            if not src.is_file():
                raise DataError(f"{p}: its data file {src} does not exist")
        with open(src, "rb") as data:
            total = os.fstat(data.fileno()).st_size
            if encoding == "raw":
                have = total - start - max(skip, 0) if skip >= 0 else total - start
                if have < need:
                    raise _short(src, need, have)
            else:
                data.seek(start)
                have = _inflate(data, src, "gzip")[1]
                if have - max(skip, 0) < need:
                    raise _short(src, need, have - max(skip, 0))
    return header


def _check_meta(p: Path) -> _Header | None:
    with open(p, "rb") as fh:
        fields: dict[str, str] = {}
        offset = 0
        while offset < (1 << 20):
            raw = fh.readline()
            if not raw:
                break
            offset += len(raw)
            line = raw.decode("latin-1").strip()
            if "=" not in line:
                continue
            k, v = (x.strip() for x in line.split("=", 1))
            fields[k.lower()] = v
            if k.lower() == "elementdatafile":
                break
        if "dimsize" not in fields or "elementdatafile" not in fields:
            raise DataError(f"{p}: not a MetaImage file (no DimSize / ElementDataFile in the header)")
        sizes = _ints(p, "DimSize", fields["dimsize"])
        spacing_key = next((k for k in ("elementspacing", "elementsize") if k in fields), None)
        if spacing_key:
            _spacings(p, spacing_key, fields[spacing_key].split())
        itemsize = _MET_SIZES.get(fields.get("elementtype", "").upper(), 0)
        channels = int(fields.get("elementnumberofchannels", "1") or 1)
        header = _Header(sizes, itemsize * channels if channels > 1 else itemsize)
        datafile = fields["elementdatafile"]
        if (not itemsize or fields.get("binarydata", "true").lower() != "true"
                or datafile.upper() == "LIST" or len(datafile.split()) > 1):
            return header  # ASCII data or one file per slice: left to ITK
        need = math.prod(sizes) * itemsize * channels
        hsize = int(fields.get("headersize", "0") or 0)
        compressed = fields.get("compresseddata", "false").lower() == "true"
        if datafile.upper() == "LOCAL":
            src, start = p, offset
        else:
            src, start = p.parent / datafile, 0
            if not src.is_file():
                raise DataError(f"{p}: its data file {src} does not exist")
        with open(src, "rb") as data:
            total = os.fstat(data.fileno()).st_size
            if not compressed:
                have = total - start - max(hsize, 0) if hsize >= 0 else total - start
                if have < need:
                    raise _short(src, need, have)
            else:
                data.seek(start + max(hsize, 0))
                have = _inflate(data, src, "zlib")[1]
                if have < need:
                    raise _short(src, need, have)
    return header


def check_image_file(path: str | os.PathLike) -> tuple[int, ...] | None:
    """Check an image file without reading it into memory: the header parses, the voxel sizes are finite and
    positive, and the file (or its data file) holds every byte of voxel data the header promises (gzip and
    zlib streams are decompressed and counted, in chunks).

    Returns the shape in array axis order (None for a folder or a format whose data is not counted).

    Raises
    ------
    DataError
        Truncated, corrupt or inconsistent file; the message names it and says what is wrong.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.nii.gz")
    >>> write_image(p, np.zeros((4, 5, 6), np.int16))
    >>> check_image_file(p)
    (4, 5, 6)
    """
    h = _check_header(Path(path))
    return None if h is None else tuple(reversed(h.itk_size))


def _check_header(p: Path) -> _Header | None:
    low = p.name.lower()
    if p.is_dir():
        return None
    try:
        if low.endswith((".nii", ".nii.gz")):
            return _check_nifti(p)
        if low.endswith((".nrrd", ".nhdr")):
            return _check_nrrd(p)
        if low.endswith((".mha", ".mhd")):
            return _check_meta(p)
    except DataError as exc:
        msg = str(exc)
        if msg.startswith(f"{p}: "):
            raise DataError(f"{p}: cannot read image ({msg[len(str(p)) + 2:]})") from None
        raise
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, struct.error) as exc:
        raise DataError(f"{p}: cannot read image (bad header: {exc})") from None
    return None


# ITK warnings that mean the data is wrong, not merely unusual
_BAD_DATA_WARNINGS = re.compile(r"unexpected scales|short read|truncat|not enough|premature|"
                                r"could not read|failed to read|fewer|unable", re.IGNORECASE)


_CAPTURE_LOCK = threading.Lock()
_CAPTURE: dict[str, Any] = {"depth": 0, "logger": None, "old": None, "fd": None, "tmp": None, "msgs": []}


def _itk_logger() -> Any:
    """One ITK logger for the process that appends to the shared message list (kept alive while installed)."""
    if _CAPTURE["logger"] is None:
        sitk = _sitk()

        class _Logger(sitk.LoggerBase):
            def DisplayText(self, t: str) -> None:
                _CAPTURE["msgs"].append(t)

            DisplayErrorText = DisplayWarningText = DisplayGenericOutputText = DisplayText

            def DisplayDebugText(self, t: str) -> None:
                pass

        _CAPTURE["logger"] = _Logger()
    return _CAPTURE["logger"]


class _Capture:
    """While active: ITK warnings go to a list (not stderr) and C-level writes to file descriptor 2 (niftilib
    prints its errors there) go to a temporary file; both are handed back afterwards. Nested and concurrent
    uses (threads) share one installation, undone by the last to leave, so stderr is always restored."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.stderr = ""

    def __enter__(self) -> _Capture:
        with _CAPTURE_LOCK:
            st = _CAPTURE
            if st["depth"] == 0:
                st["msgs"] = []
                st["old"] = _itk_logger().SetAsGlobalITKLogger()
                try:
                    sys.stderr.flush()
                    tmp = tempfile.TemporaryFile()
                    fd = os.dup(2)
                    os.dup2(tmp.fileno(), 2)
                    st["fd"], st["tmp"] = fd, tmp
                except (OSError, ValueError, AttributeError):  # no usable fd 2 (embedded, closed): no capture
                    st["fd"] = st["tmp"] = None
            st["depth"] += 1
            self._first = len(st["msgs"])
            self._offset = os.fstat(st["tmp"].fileno()).st_size if st["tmp"] is not None else 0
        return self

    def __exit__(self, *exc: Any) -> None:
        with _CAPTURE_LOCK:
            st = _CAPTURE
            self.warnings = st["msgs"][self._first:]
            if st["tmp"] is not None:
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    sys.stderr.flush()
                self.stderr = os.pread(st["tmp"].fileno(), 1 << 20, self._offset).decode("utf-8", "replace")
            st["depth"] -= 1
            if st["depth"] == 0:
                st["old"].SetAsGlobalITKLogger()
                st["old"] = None
                if st["fd"] is not None:
                    os.dup2(st["fd"], 2)
                    os.close(st["fd"])
                    st["tmp"].close()
                    st["fd"] = st["tmp"] = None

    def messages(self, stderr: bool = True) -> list[str]:
        """Captured ITK messages (and, with ``stderr``, the C-level stderr text) as one line each, ITK's
        source-file preamble dropped."""
        out = []
        for text in self.warnings + ([self.stderr] if stderr and self.stderr.strip() else []):
            lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("WARNING: In ")]
            out.extend(re.sub(r"\w+ \(0x[0-9a-f]+\): ", "", ln) for ln in lines)
        return out


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
        Voxels in array axis order (z, y, x), in the file's own dtype. Vector images give (*spatial, C).
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
    _check_header(p)
    cap = _Capture()
    try:
        with cap:
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
    meta.extra["source"] = str(p)
    return array, meta


def _raise_or_log(p: Path, messages: list[str], what: str) -> None:
    bad = [m for m in messages if _BAD_DATA_WARNINGS.search(m) or m.startswith("** ERROR")]
    if bad:
        raise DataError(f"{p}: {what} failed: {bad[0][:200]}")
    for m in messages:
        log.warning("%s: %s", p, m)


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


_TEMP_RE = re.compile(r"^\..+\.(?:tmp-(\d+)-[0-9a-f]{8}|old-[0-9a-f]{8})")


def is_temp_name(name: str) -> bool:
    """True for the name of a temporary file or folder of :func:`atomic_path` (``.CASE.tmp-PID-XXXXXXXX.npz``),
    e.g. one left behind by a killed run: never an input or a finished output."""
    return bool(_TEMP_RE.match(name))


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists under another user, or cannot tell: keep the file
    return True


def clean_stale_temp_files(folder: str | os.PathLike, *, older_than: float) -> list[Path]:
    """Remove the temporary files of :func:`atomic_path` in ``folder`` left by killed writers.

    A temporary file is removed when it was last modified before ``older_than`` (a ``time.time()`` value,
    typically the start of this run) and the process named in it no longer runs on this machine; any other
    temporary file (a writer may still be at work, e.g. another rank) is kept and reported with a logging
    warning. Returns the removed paths.

    Examples
    --------
    >>> import tempfile, time, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> clean_stale_temp_files(d, older_than=time.time())
    []
    """
    removed, kept = [], []
    root = Path(folder)
    if not root.is_dir():
        return removed
    for f in sorted(root.iterdir()):
        m = _TEMP_RE.match(f.name)
        if not m:
            continue
        try:
            mtime = f.lstat().st_mtime
        except FileNotFoundError:
            continue  # its writer just renamed or removed it
        if mtime < older_than and not (m.group(1) and _pid_alive(int(m.group(1)))):
            _remove(f)
            removed.append(f)
        else:
            kept.append(f.name)
    if removed:
        log.warning("%s: removed %d temporary file(s) left by an interrupted run: %s", root, len(removed),
                    ", ".join(f.name for f in removed[:5]))
    if kept:
        log.warning("%s: temporary file(s) of a running or recent writer ignored: %s", root, ", ".join(kept[:5]))
    return removed


def _fsync_path(p: Path) -> None:
    """fsync a file, or every file of a folder and the folder: delayed write errors (a full disk on NFS, thin
    volumes) surface here, before the rename, instead of after it."""
    if p.is_dir():
        for f in p.rglob("*"):
            if f.is_file():
                _fsync_path(f)
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF) or not p.is_dir():  # some file systems: no dir fsync
            raise
    finally:
        os.close(fd)


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):  # durability of the rename only; the data is already synced
        fd = os.open(d if str(d) else ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_failed(target: Path, tmp: Path, exc: BaseException) -> DataError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    reason = " ".join(reason.replace(f"{tmp}: ", "").replace(str(tmp), "the temporary file").split())
    return DataError(f"{target}: write failed ({reason[:300]}); nothing was written")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, verify: Any = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``, on any error (Ctrl-C
    included) delete it. Works for files and folders (an existing target folder is replaced).

    Before the rename the temporary file (every file of a folder) is fsynced and, if given,
    ``verify(tmp)`` is called (it raises when the content is wrong, e.g. a short write on a full disk);
    write errors (``OSError`` of the temporary file, a failed fsync, a missing result) become a
    :class:`DataError` naming ``path``, and the temporary file is removed.

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
        try:
            yield tmp
            if not tmp.exists():
                raise DataError(f"{target}: write failed (no output was produced); nothing was written")
            _fsync_path(tmp)
            if verify is not None:
                verify(tmp)
        except OSError as exc:
            if exc.filename in (None, str(tmp), tmp) or isinstance(exc.filename, str) and exc.filename.startswith(
                    str(tmp)):
                raise _write_failed(target, tmp, exc) from exc
            raise
        except DataError as exc:
            if str(tmp) in str(exc):
                raise _write_failed(target, tmp, exc) from exc
            raise
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
        _fsync_dir(target.parent)
    except BaseException:
        _remove(tmp)
        raise


def _check_size(p: Path, expected: int) -> None:
    size = p.stat().st_size
    if size != expected:
        raise DataError(f"{p}: {size} bytes on disk, {expected} written (short write)")


def write_text_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write text (UTF-8) or bytes to ``path`` atomically: flush, fsync and close checked, the size on disk
    compared with what was written, then renamed into place (:func:`atomic_path`).

    Raises
    ------
    DataError
        The write failed (full disk, quota, I/O error); the message names ``path``. Nothing is left behind.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a.json")
    >>> write_text_atomic(p, '{"ok": 1}')
    >>> open(p).read()
    '{"ok": 1}'
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with atomic_path(path, verify=lambda t: _check_size(t, len(raw))) as tmp, open(tmp, "wb") as fh:
        fh.write(raw)


def _check_zip(p: Path) -> None:
    """A zip container (``.npz``, torch ``.pt``) whose every member reads back with its CRC."""
    import zipfile

    try:
        with zipfile.ZipFile(p) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError) as exc:
        raise DataError(f"{p}: not a complete zip container ({exc})") from None
    if bad is not None:
        raise DataError(f"{p}: member {bad} fails its CRC check (corrupt)")


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
                    _write_dicom_series(tmp, image, a)
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
    import shutil

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
