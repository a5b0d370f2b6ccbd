"""medseg_fast.io under hostile files (issue 15): short reads, corrupt headers and bad voxel sizes are
DataErrors naming the file; writes are verified before the rename (a full disk never leaves a broken file);
arrays read back with their shape and dtype or are refused; DICOM output needs an explicit format."""

from __future__ import annotations

import errno
import gzip
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from medseg_fast.io import (
    DataError,
    Meta,
    atomic_path,
    check_image_file,
    clean_stale_temp_files,
    is_temp_name,
    read_image,
    write_image,
    write_text_atomic,
)

FORMATS = [".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"]


@pytest.fixture
def rng(request):
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def _volume(rng, shape=(6, 7, 8)):
    return rng.integers(1, 1000, size=shape).astype(np.int16)  # no zeros: a zero fill would show


def _nifti(tmp_path, rng, name="x.nii"):
    p = tmp_path / name
    write_image(p, _volume(rng), Meta.identity((2.0, 1.5, 1.0)))
    return p


def _edit_nifti(src: Path, dst: Path, fmt: str, offset: int, value) -> Path:
    b = bytearray(src.read_bytes())
    struct.pack_into(fmt, b, offset, value)
    dst.write_bytes(bytes(b))
    return dst


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------------------------------- short reads
def test_truncated_gzip_nifti(tmp_path, rng):
    p = _nifti(tmp_path, rng, "x.nii.gz")
    data = p.read_bytes()
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.nii\.gz: .*truncated file: the gzip stream ends"):
        read_image(cut)


def test_gzip_nifti_with_short_stream(tmp_path, rng):
    """A complete gzip stream that holds fewer voxel bytes than the header promises."""
    raw = _nifti(tmp_path, rng).read_bytes()
    short = tmp_path / "short.nii.gz"
    short.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataError, match=r"short\.nii\.gz: .*needs 672 bytes of voxel data, the file holds 572"):
        read_image(short)


def test_truncated_uncompressed_nifti(tmp_path, rng):
    raw = _nifti(tmp_path, rng).read_bytes()
    cut = tmp_path / "cut.nii"
    cut.write_bytes(raw[: len(raw) - 10])
    with pytest.raises(DataError, match=r"cut\.nii: .*needs 672 bytes of voxel data, the file holds 662"):
        read_image(cut)


def test_header_only_nifti(tmp_path, rng):
    raw = _nifti(tmp_path, rng).read_bytes()
    hdr = tmp_path / "hdr.nii"
    hdr.write_bytes(raw[:352])
    with pytest.raises(DataError, match=r"hdr\.nii: .*the file holds 0"):
        read_image(hdr)
    tiny = tmp_path / "tiny.nii"
    tiny.write_bytes(raw[:100])
    with pytest.raises(DataError, match=r"tiny\.nii: .*shorter than a NIfTI header"):
        read_image(tiny)


def test_huge_vox_offset(tmp_path, rng):
    bad = _edit_nifti(_nifti(tmp_path, rng), tmp_path / "vox.nii", "<f", 108, 1e9)
    with pytest.raises(DataError, match=r"vox\.nii: .*truncated file"):
        read_image(bad)
    neg = _edit_nifti(_nifti(tmp_path, rng), tmp_path / "neg.nii", "<f", 108, 10.0)
    with pytest.raises(DataError, match=r"neg\.nii: .*vox_offset is 10\.0, expected >= 348"):
        read_image(neg)


def test_sizeof_hdr_999(tmp_path, rng):
    bad = _edit_nifti(_nifti(tmp_path, rng), tmp_path / "sz.nii", "<i", 0, 999)
    with pytest.raises(DataError, match=r"sz\.nii: .*sizeof_hdr is 999, expected 348"):
        read_image(bad)


@pytest.mark.parametrize("value", [float("nan"), 0.0, float("inf"), -2.0])
@pytest.mark.parametrize("axis", [1, 3])
def test_bad_pixdim(tmp_path, rng, value, axis):
    bad = _edit_nifti(_nifti(tmp_path, rng), tmp_path / "pix.nii", "<f", 76 + 4 * axis, value)
    with pytest.raises(DataError, match=rf"pix\.nii: .*pixdim\[{axis}\] .* is {value}, expected a finite positive"):
        read_image(bad)


def test_itk_warnings_do_not_leak(tmp_path, rng, capfd):
    """ITK's warning about an inconsistent sform goes into the DataError, not onto stderr."""
    p = _nifti(tmp_path, rng)
    bad = _edit_nifti(p, tmp_path / "sform.nii", "<f", 312 + 8, 5.0)  # srow_z scale 5 vs pixdim 2
    capfd.readouterr()
    with pytest.raises(DataError, match=r"sform\.nii: .*unexpected scales in sform"):
        read_image(bad)
    out, err = capfd.readouterr()
    assert err == "" and out == ""


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_truncated_attached_nrrd_mha(tmp_path, rng, suffix):
    p = tmp_path / f"x{suffix}"
    write_image(p, _volume(rng))
    data = p.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[:-7])
    with pytest.raises(DataError, match=r"cut\.(nrrd|mha): .*needs 672 bytes of voxel data, the file holds 665"):
        read_image(cut)


@pytest.mark.parametrize("suffix", [".nhdr", ".mhd"])
def test_short_detached_data_file(tmp_path, rng, suffix):
    p = tmp_path / f"x{suffix}"
    write_image(p, _volume(rng))
    raw = tmp_path / "x.raw"
    raw.write_bytes(raw.read_bytes()[:100])
    with pytest.raises(DataError, match=r"x\.raw: .*needs 672 bytes of voxel data, the file holds 100"):
        read_image(p)
    raw.unlink()
    with pytest.raises(DataError, match=r"its data file .*x\.raw does not exist"):
        read_image(p)


def test_truncated_compressed_nrrd_and_mha(tmp_path, rng):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(_volume(rng, (20, 30, 40)))
    for suffix in (".nrrd", ".mha"):
        p = tmp_path / f"z{suffix}"
        sitk.WriteImage(img, str(p), True)
        data = p.read_bytes()
        cut = tmp_path / f"zcut{suffix}"
        cut.write_bytes(data[: len(data) - len(data) // 3])
        with pytest.raises(DataError, match=rf"zcut\{suffix}: .*(truncated|corrupt)"):
            read_image(cut)
        assert read_image(p)[0].shape == (20, 30, 40)


def test_nrrd_bad_spacing_in_header(tmp_path, rng):
    p = tmp_path / "x.nrrd"
    write_image(p, _volume(rng), Meta.identity((2.0, 1.0, 1.0)))
    text = p.read_bytes()
    head, _, body = text.partition(b"\n\n")
    head = head.replace(b"space directions: (1,0,0) (0,1,0) (0,0,2)", b"space directions: (1,0,0) (0,1,0) (0,0,0)")
    head += b"\nspacings: nan 1 1"
    (tmp_path / "s.nrrd").write_bytes(head + b"\n\n" + body)
    with pytest.raises(DataError, match=r"s\.nrrd: .*'spacings' holds nan"):
        read_image(tmp_path / "s.nrrd")


def test_check_image_file_returns_shape_and_stays_lazy(tmp_path, rng):
    for suffix in FORMATS:
        p = tmp_path / f"c{suffix}"
        write_image(p, _volume(rng, (3, 4, 5)))
        assert check_image_file(p) == (3, 4, 5)


# ------------------------------------------------------------------------------------------- verified writes
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha", ".mhd"])
def test_write_image_fsync_failure_leaves_nothing(tmp_path, rng, monkeypatch, suffix):
    target = tmp_path / f"out{suffix}"
    monkeypatch.setattr(os, "fsync", _enospc)
    with pytest.raises(DataError, match=rf"out\{suffix}: write failed \(No space left on device\)"):
        write_image(target, _volume(rng))
    assert list(tmp_path.iterdir()) == []


def test_write_text_atomic_failures(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    target.write_text("old")
    monkeypatch.setattr(os, "fsync", _enospc)
    with pytest.raises(DataError, match=r"summary\.json: write failed \(No space left on device\)"):
        write_text_atomic(target, '{"new": 1}')
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []
    monkeypatch.undo()

    real_open = open

    class ShortFile:
        """A file whose write silently stores only half (as a full disk can on close)."""

        def __init__(self, path, mode):
            self.fh = real_open(path, mode)

        def write(self, data):
            return self.fh.write(data[: len(data) // 2])

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    import builtins

    monkeypatch.setattr(builtins, "open", lambda p, m="r", *a, **k: ShortFile(p, m) if "w" in m else real_open(p, m))
    with pytest.raises(DataError, match=r"summary\.json: write failed .*5 bytes on disk, 10 written"):
        write_text_atomic(target, '{"new": 1}')
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_atomic_path_verify_and_missing_output(tmp_path):
    target = tmp_path / "x.npz"
    with pytest.raises(DataError, match=r"x\.npz: write failed \(no output was produced\)"):
        with atomic_path(target):
            pass

    def refuse(p):
        raise DataError(f"{p}: bad content")

    with pytest.raises(DataError, match=r"x\.npz: write failed \(bad content\)"):
        with atomic_path(target, verify=refuse) as tmp:
            tmp.write_bytes(b"abc")
    assert list(tmp_path.iterdir()) == []


_FSIZE_SCRIPT = r"""
import resource, signal, sys
import numpy as np
from medseg_fast.io import write_image, DataError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
a = np.random.default_rng(0).integers(0, 30000, (20, 30, 40)).astype(np.int16)  # does not compress
for suffix in sys.argv[2:]:
    try:
        write_image(sys.argv[1] + "/out" + suffix, a)
        print(suffix, "WROTE")
    except DataError as exc:
        print(suffix, "DataError", exc)
"""


def test_real_short_writes_are_refused(tmp_path):
    """RLIMIT_FSIZE makes every write past 20 kB fail for real (the NIfTI writer only prints a warning)."""
    res = subprocess.run([sys.executable, "-c", _FSIZE_SCRIPT, str(tmp_path), *FORMATS], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == len(FORMATS)
    for suffix, line in zip(FORMATS, lines):
        assert line.startswith(f"{suffix} DataError "), line
        assert f"out{suffix}: " in line
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------- round trips
SHAPES = [(6, 1, 6), (1, 6, 6), (6, 6, 1), (1, 1, 1), (5, 6), (1, 6), (5, 1), (2, 3, 4, 5), (1, 2, 2, 5, 3),
          (2, 1, 2, 5, 3), (2, 3, 4, 1)]


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_round_trip_keeps_shape_with_size_one_axes(tmp_path, rng, suffix, shape):
    a = rng.integers(0, 100, size=shape).astype(np.int16)
    n = len(shape)
    meta = Meta(tuple(0.5 + i for i in range(n)), tuple(float(i) for i in range(n)), np.eye(n))
    p = tmp_path / f"x{suffix}"
    if suffix.startswith(".nii") and n > 3 and shape[0] == 1:
        with pytest.raises(ValueError, match=r"array shape \(1, .*NIfTI cannot keep a size-1 leading axis"):
            write_image(p, a, meta)
        assert list(tmp_path.iterdir()) == []
        return
    write_image(p, a, meta)
    b, m = read_image(p)
    assert b.shape == shape
    assert b.dtype == a.dtype
    np.testing.assert_array_equal(b, a)
    np.testing.assert_allclose(m.spacing, meta.spacing, rtol=1e-6)
    np.testing.assert_allclose(m.origin, meta.origin, atol=1e-6)


@pytest.mark.parametrize("shape", [(), (7,), (1, 2, 3, 4, 5, 6)], ids=str)
def test_unsupported_ndim(tmp_path, shape):
    with pytest.raises(ValueError, match=rf"array must be 2-D to 5-D .* got shape {shape}".replace("(", r"\(")
                       .replace(")", r"\)")):
        write_image(tmp_path / "x.nii.gz", np.zeros(shape, np.uint8))


def test_empty_axis_refused(tmp_path):
    with pytest.raises(ValueError, match=r"array shape \(3, 0, 2\) has an empty axis"):
        write_image(tmp_path / "x.nrrd", np.zeros((3, 0, 2), np.uint8))


@pytest.mark.parametrize("spacing", [(1.0, -1.0, 1.0), (0.0, 1.0, 1.0), (float("nan"), 1.0, 1.0),
                                     (1.0, 1.0, float("inf"))])
def test_bad_spacing_refused(tmp_path, spacing):
    with pytest.raises(ValueError, match=r"meta\.spacing must be finite and > 0"):
        write_image(tmp_path / "x.nii.gz", np.zeros((2, 2, 2), np.uint8), Meta.identity(spacing))
    assert list(tmp_path.iterdir()) == []


def test_bad_origin_and_direction_refused(tmp_path):
    with pytest.raises(ValueError, match=r"meta\.origin must be finite"):
        write_image(tmp_path / "x.nrrd", np.zeros((2, 2, 2), np.uint8), Meta((1, 1, 1), (0, np.nan, 0), np.eye(3)))
    with pytest.raises(ValueError, match=r"meta\.direction must be a finite invertible matrix"):
        write_image(tmp_path / "x.nrrd", np.zeros((2, 2, 2), np.uint8), Meta((1, 1, 1), (0, 0, 0), np.zeros((3, 3))))


KEPT = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64, np.float32]


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
@pytest.mark.parametrize("dtype", KEPT + [bool, np.float16, np.float64, ">i2", ">f8", "<u4"], ids=str)
def test_dtype_round_trip(tmp_path, suffix, dtype):
    a = np.arange(24).reshape(2, 3, 4).astype(dtype)
    p = tmp_path / f"x{suffix}"
    write_image(p, a)
    b, _ = read_image(p)
    native = np.dtype(dtype).newbyteorder("=")
    expected = {np.dtype(bool): np.uint8, np.dtype(np.float16): np.float32, np.dtype(np.float64): np.float32}.get(
        native, native)
    assert b.dtype == np.dtype(expected)
    np.testing.assert_array_equal(b, a.astype(b.dtype))


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, object, "U3", "datetime64[s]", np.longdouble],
                         ids=str)
def test_unsupported_dtype_refused(tmp_path, dtype):
    a = np.zeros((2, 2, 2), dtype=dtype)
    with pytest.raises(TypeError, match=r"array dtype must be bool, int8\.\.int64, uint8\.\.uint64 or float16/32/64"):
        write_image(tmp_path / "x.mha", a)
    assert list(tmp_path.iterdir()) == []


def test_input_array_not_modified(tmp_path):
    a = np.arange(24, dtype=">i2").reshape(2, 3, 4)
    before = a.copy()
    write_image(tmp_path / "x.nrrd", a)
    assert a.dtype == np.dtype(">i2")
    np.testing.assert_array_equal(a, before)


# ------------------------------------------------------------------------------------------- DICOM needs a format
def test_path_without_suffix_needs_explicit_dicom(tmp_path):
    a = np.zeros((3, 4, 5), np.int16)
    with pytest.raises(ValueError, match=r"path .*out has no image suffix \(one of \.nii\.gz, \.nii.*format='dicom'"):
        write_image(tmp_path / "out", a)
    with pytest.raises(ValueError, match=r"path .*out\.nii\.bak has no image suffix"):
        write_image(tmp_path / "out.nii.bak", a)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match=r"format='dicom' writes a series folder"):
        write_image(tmp_path / "out.nii.gz", a, format="dicom")
    with pytest.raises(ValueError, match=r"format must be None .* or 'dicom', got 'png'"):
        write_image(tmp_path / "out", a, format="png")
    write_image(tmp_path / "series", a, Meta.identity((2.0, 1.0, 1.0)), format="dicom")
    assert read_image(tmp_path / "series")[0].shape == (3, 4, 5)


@pytest.mark.parametrize("shape", [(6, 1, 6), (6, 6, 1)], ids=str)
def test_dicom_refuses_size_one_slices(tmp_path, shape):
    with pytest.raises(ValueError, match=r"DICOM slices \(axes 1, 2\) need >= 2 rows and columns"):
        write_image(tmp_path / "series", np.zeros(shape, np.int16), format="dicom")
    with pytest.raises(TypeError, match=r"array must hold integers for DICOM"):
        write_image(tmp_path / "series", np.zeros((2, 3, 3), np.float32), format="dicom")


# ------------------------------------------------------------------------------------------- temp files
def test_temp_names():
    from medseg_fast.io import _tmp_name

    t = _tmp_name(Path("/x/case_001.npz"))
    assert is_temp_name(t.name)
    assert is_temp_name(".series.old-0123abcd")
    assert not is_temp_name("case_001.npz")
    assert not is_temp_name(".hidden.npz")


def test_clean_stale_temp_files(tmp_path):
    dead = tmp_path / ".case.tmp-999999999-0123abcd.npz"  # no such pid
    mine = tmp_path / f".case2.tmp-{os.getpid()}-0123abcd.npz"
    fresh = tmp_path / ".case3.tmp-999999999-89abcdef.npz"
    keep = tmp_path / "case.npz"
    for f in (dead, mine, fresh, keep):
        f.write_bytes(b"x")
    old = time.time() - 3600
    for f in (dead, mine, keep):
        os.utime(f, (old, old))
    removed = clean_stale_temp_files(tmp_path, older_than=time.time() - 60)
    assert removed == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, fresh.name, keep.name])


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_geometry_the_format_cannot_keep_is_refused(tmp_path, suffix):
    """NIfTI orthonormalizes a sheared direction and NRRD folds shear into the spacing: refused, not changed."""
    shear = np.array([[1.0, 0.3, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    meta = Meta((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), shear)
    with pytest.raises(ValueError, match=rf"meta cannot be stored in .*x\{suffix}: it reads back as"):
        write_image(tmp_path / f"x{suffix}", np.zeros((3, 4, 5), np.uint8), meta)
    assert list(tmp_path.iterdir()) == []
    write_image(tmp_path / "x.mha", np.zeros((3, 4, 5), np.uint8), meta)
    np.testing.assert_allclose(read_image(tmp_path / "x.mha")[1].direction, shear)


def test_nifti_4d_direction_mixing_spatial_and_extra_axis_refused(tmp_path):
    rot = np.eye(4)
    rot[:3, :3] = [[0.0, 0.0, 1.0], [0.6, 0.8, 0.0], [-0.8, 0.6, 0.0]]  # array axis 0 is NIfTI's 4th dimension
    meta = Meta((1.0, 2.0, 3.0, 4.0), (1.0, 2.0, 3.0, 4.0), rot)
    with pytest.raises(ValueError, match=r"meta cannot be stored in .*x\.nii\.gz"):
        write_image(tmp_path / "x.nii.gz", np.zeros((2, 3, 4, 5), np.uint8), meta)
    for suffix in (".nrrd", ".mha"):
        write_image(tmp_path / f"x{suffix}", np.zeros((2, 3, 4, 5), np.uint8), meta)
        assert read_image(tmp_path / f"x{suffix}")[1].same_geometry(meta)


def test_uncompressed_data_under_gz_name_still_reads(tmp_path, rng):
    """Some tools store a .nii.gz uncompressed; ITK reads it, so the byte check goes by content too."""
    p = _nifti(tmp_path, rng)
    plain = tmp_path / "plain.nii.gz"
    plain.write_bytes(p.read_bytes())
    np.testing.assert_array_equal(read_image(plain)[0], read_image(p)[0])
    plain.write_bytes(p.read_bytes()[:-1])
    with pytest.raises(DataError, match=r"plain\.nii\.gz: .*needs 672 bytes of voxel data, the file holds 671"):
        read_image(plain)


def test_nearly_orthonormal_direction_still_writes_to_nifti(tmp_path, caplog):
    """Scanner cosines off by 2e-4 are orthonormalized by NIfTI (logged), not refused."""
    d = np.eye(3)
    d[0, 1] = 2e-4
    with caplog.at_level("WARNING", logger="medseg_fast.io"):
        write_image(tmp_path / "x.nii.gz", np.zeros((3, 4, 5), np.uint8), Meta((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), d))
    np.testing.assert_allclose(read_image(tmp_path / "x.nii.gz")[1].direction, d, atol=2e-4)
    assert "coerced to orthogonal" in caplog.text


# ------------------------------------------------------------------------------------------- non-finite voxels
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd", ".mha"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_inf_voxels_read_back(tmp_path, suffix, dtype):
    # ITK's NIfTI reader turns NaN and +-inf into 0 (water, for CT): they must come back as written.
    a = np.linspace(-3, 3, 7 * 5 * 6, dtype=dtype).reshape(7, 5, 6)
    a[2, 2, 2], a[0, 1, 3], a[6, 4, 5] = np.nan, np.inf, -np.inf
    write_image(tmp_path / f"x{suffix}", a, Meta.identity((2.0, 1.0, 1.0)))
    b, _ = read_image(tmp_path / f"x{suffix}")
    np.testing.assert_array_equal(b, a.astype(np.float32))


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nan_voxels_of_foreign_nifti(tmp_path, suffix):
    # Written by another tool: float64 voxels, and float32 with scl_slope / scl_inter.
    nib = pytest.importorskip("nibabel")
    a = np.random.default_rng(7).standard_normal((6, 5, 4))
    a[1, 2, 3], a[5, 0, 0] = np.nan, -np.inf
    nib.save(nib.Nifti1Image(np.asfortranarray(a.transpose(2, 1, 0)), np.eye(4)), tmp_path / f"d{suffix}")
    got, _ = read_image(tmp_path / f"d{suffix}")
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, a)
    img = nib.Nifti1Image(np.asfortranarray(a.astype(np.float32).transpose(2, 1, 0)), np.eye(4))
    img.header.set_slope_inter(2.0, 1.0)  # nibabel stores floats unscaled with these header values
    nib.save(img, tmp_path / f"s{suffix}")
    got, _ = read_image(tmp_path / f"s{suffix}")
    np.testing.assert_allclose(got, a.astype(np.float32) * 2 + 1, rtol=1e-6)
    assert np.isnan(got[1, 2, 3]) and got[5, 0, 0] == -np.inf


def test_finite_and_integer_nifti_untouched(tmp_path):
    a = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    write_image(tmp_path / "i.nii.gz", a, Meta.identity((1.0, 1.0, 1.0)))
    got, _ = read_image(tmp_path / "i.nii.gz")
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, a)
