"""Checks of image files before SimpleITK reads them: the header parses, voxel sizes are finite and positive,
and every voxel byte the header promises is present (gzip / zlib streams counted in chunks)."""

from __future__ import annotations

import math
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._meta import DataError

__all__ = ["check_image_file"]

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
    # NIfTI only: where the voxels are and how they are stored, for the non-finite float check
    nifti: NiftiLayout | None = None


@dataclass
class NiftiLayout:
    gzipped: bool
    vox_offset: int
    datatype: int
    byte_order: str        # "<" or ">"
    scl_slope: float
    scl_inter: float
    nonfinite: int | None = None  # NaN / inf float voxels, when counted on the way (gzip streams)


# NIfTI datatype codes of real floating-point voxels
NIFTI_FLOAT_TYPES = {16: "f4", 64: "f8"}


def _nifti_byte_order(head: bytes) -> tuple[str, int] | None:
    """(struct byte order, sizeof_hdr) of a NIfTI-1 (348) or NIfTI-2 (540) header, or None."""
    for order in "<>":
        sizeof_hdr = struct.unpack(order + "i", head[:4])[0]
        if sizeof_hdr in (348, 540):
            return order, sizeof_hdr
    return None


def _nifti_layout_fields(head: bytes) -> tuple[str, int, float] | None:
    """(byte order, datatype, vox_offset) of a NIfTI header, or None when it is not one (or cut)."""
    found = _nifti_byte_order(head)
    if found is None:
        return None
    order, sizeof_hdr = found
    if sizeof_hdr == 348:
        return order, struct.unpack(order + "h", head[70:72])[0], struct.unpack(order + "f", head[108:112])[0]
    if len(head) < 540:
        return None
    return order, struct.unpack(order + "h", head[12:14])[0], struct.unpack(order + "q", head[168:176])[0]


class NonfiniteScan:
    """Counts non-finite float voxels in a decompressed NIfTI stream as it passes (see ``_nonfinite``).
    The header is parsed from the first block (a header is at most 540 bytes, far below one block);
    streams that are not float voxels are passed over."""

    def __init__(self) -> None:
        self._head = bytearray()
        self._carry = b""   # the bytes of a voxel split between two blocks
        self._decided: str | None = None

    def __call__(self, offset: int, block: bytes) -> None:
        if offset < 540:
            self._head += block[: 540 - offset]
        if self._decided is None:
            self._decide()
        if not self._decided:
            return
        start = max(self._vox_offset - offset, 0)
        if start >= len(block):
            return
        data = self._carry + block[start:]
        usable = len(data) - len(data) % self._dtype.itemsize
        self._carry = data[usable:]
        values = np.frombuffer(data, self._dtype, count=usable // self._dtype.itemsize)
        self._seen += values.size
        self._bad += values.size - int(np.count_nonzero(np.isfinite(values)))

    def _decide(self) -> None:
        if len(self._head) < 348:
            return
        self._decided = ""
        fields = _nifti_layout_fields(bytes(self._head))
        if fields is None:
            return
        order, datatype, vox_offset = fields
        if datatype in NIFTI_FLOAT_TYPES and math.isfinite(vox_offset) and vox_offset >= 0:
            self._dtype = np.dtype(order + NIFTI_FLOAT_TYPES[datatype])
            self._vox_offset = int(vox_offset)
            self._seen = self._bad = 0
            self._decided = "float"

    def count(self, vox_offset: int, datatype: int, order: str, voxels: int) -> int | None:
        """Non-finite voxels seen (None when this stream is not float voxels, or was not fully seen)."""
        if self._decided != "float" or self._vox_offset != vox_offset or self._seen < voxels:
            return None if datatype in NIFTI_FLOAT_TYPES else 0
        return self._bad


def _inflate(fh: Any, p: Path, what: str, keep: int = 0, sink: Any = None) -> tuple[bytes, int]:
    """Decompress a gzip (``what="gzip"``, members in sequence) or zlib stream from ``fh`` in chunks,
    discarding the output: the first ``keep`` bytes and the total size. DataError when cut or corrupt.
    ``sink(offset, block)``, when given, sees every decompressed block on its way out."""
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
                if sink is not None and out:
                    sink(total, out)
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
            scan = NonfiniteScan()
            head, total = _inflate(fh, p, "gzip", keep=540, sink=scan)
        else:
            head, total = fh.read(540), os.fstat(fh.fileno()).st_size
        if len(head) < 348:
            raise DataError(f"{p}: truncated file: {len(head)} bytes, shorter than a NIfTI header (348)")
        found = _nifti_byte_order(head)
        if found is None:
            raise DataError(f"{p}: sizeof_hdr is {struct.unpack('<i', head[:4])[0]}, expected 348 (NIfTI-1) or "
                            "540 (NIfTI-2): not a NIfTI file or a corrupt header")
        order, sizeof_hdr = found
        if sizeof_hdr == 348:
            magic = head[344:348]
            if magic[:3] not in (b"n+1", b"ni1"):
                raise DataError(f"{p}: NIfTI-1 magic is {magic!r}, expected b'n+1\\x00'")
            dims = struct.unpack(order + "8h", head[40:56])
            datatype, bitpix = struct.unpack(order + "2h", head[70:74])
            pixdim = struct.unpack(order + "8f", head[76:108])
            vox_offset = struct.unpack(order + "f", head[108:112])[0]
            scl_slope, scl_inter = struct.unpack(order + "2f", head[112:120])
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
            scl_slope, scl_inter = struct.unpack(order + "2d", head[176:192])
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
    nonfinite = scan.count(int(vox_offset), datatype, order, math.prod(size)) if gz else None
    layout = NiftiLayout(gz, int(vox_offset), int(datatype), order, float(scl_slope), float(scl_inter), nonfinite)
    return _Header(tuple(int(s) for s in size), itemsize, layout)


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

