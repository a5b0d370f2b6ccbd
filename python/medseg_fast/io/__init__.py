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

Modules, by job: ``_meta`` (:class:`Meta`, :class:`DataError`, path names), ``_check`` (header and byte-count
checks), ``_capture`` (ITK warnings and C-level stderr), ``_atomic`` (verified atomic writes, temporary
files), ``_image`` (:func:`read_image`, :func:`write_image`), ``_dicom`` (DICOM series), ``_dicom_seg``
(:func:`write_dicom_seg`, DICOM SEG via highdicom, imported on first use), ``_resample`` (:func:`resample` with
the geometry).
"""

from __future__ import annotations

from ._atomic import (
    _tmp_name,  # noqa: F401 - used by the tests of temporary names
    atomic_path,
    check_zip,
    clean_stale_temp_files,
    is_temp_name,
    write_text_atomic,
)
from ._check import check_image_file
from ._dicom_seg import read_source_series, write_dicom_seg
from ._image import read_image, write_image
from ._meta import IMAGE_SUFFIXES, DataError, Meta, is_image_path, strip_suffix
from ._resample import resample

__all__ = ["Meta", "DataError", "read_image", "write_image", "resample", "atomic_path", "is_image_path", "IMAGE_SUFFIXES",
           "strip_suffix", "write_text_atomic", "is_temp_name", "clean_stale_temp_files", "check_image_file",
           "check_zip", "write_dicom_seg", "read_source_series"]
