"""medseg_fast.io: geometry kept exactly for NIfTI / NRRD / MHA / DICOM series, array axis order, atomic writes."""

from __future__ import annotations

import os

import numpy as np
import pytest
from medseg_fast.io import DataError, Meta, atomic_path, read_image, resample, write_image

ROT = np.array([[0.0, 0.0, 1.0], [0.6, 0.8, 0.0], [-0.8, 0.6, 0.0]])  # a proper rotation, axes mixed


def _meta3():
    return Meta((2.5, 0.75, 0.8), (-12.5, 30.25, 101.0), ROT)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"])
@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32])
def test_round_trip_formats(tmp_path, rng, suffix, dtype):
    a = (rng.normal(size=(5, 7, 11)) * 100).astype(dtype)
    meta = _meta3()
    path = tmp_path / f"img{suffix}"
    write_image(path, a, meta)
    b, m = read_image(path)
    assert b.dtype == a.dtype
    assert b.shape == (5, 7, 11)
    np.testing.assert_array_equal(b, a)
    # NIfTI stores float32 geometry: compare to that precision, the others exactly
    tol = 1e-5 if suffix.startswith(".nii") else 1e-12
    np.testing.assert_allclose(m.spacing, meta.spacing, rtol=tol)
    np.testing.assert_allclose(m.origin, meta.origin, rtol=tol, atol=tol)
    np.testing.assert_allclose(m.direction, meta.direction, atol=tol)
    assert m.extra["source"] == str(path)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_array_axis_order_matches_simpleitk(tmp_path):
    import SimpleITK as sitk

    a = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    write_image(tmp_path / "x.nrrd", a, Meta((3.0, 2.0, 1.0), (0, 0, 0), np.eye(3)))
    img = sitk.ReadImage(str(tmp_path / "x.nrrd"))
    assert img.GetSize() == (4, 3, 2)  # ITK (x, y, z)
    assert img.GetSpacing() == (1.0, 2.0, 3.0)
    assert img.GetPixel(3, 2, 1) == a[1, 2, 3]


def test_physical_point_convention(tmp_path):
    """origin + direction @ (spacing * index), all in array axis order, equals ITK's physical point."""
    import SimpleITK as sitk

    meta = _meta3()
    write_image(tmp_path / "x.mha", np.zeros((5, 7, 11), np.uint8), meta)
    img = sitk.ReadImage(str(tmp_path / "x.mha"))
    idx = np.array([4, 2, 9])  # (z, y, x)
    ours = np.asarray(meta.origin) + meta.direction @ (np.asarray(meta.spacing) * idx)
    itk = img.TransformIndexToPhysicalPoint([int(i) for i in idx[::-1]])
    np.testing.assert_allclose(ours[::-1], itk, atol=1e-9)


def test_nifti_affine_agrees_with_nibabel(tmp_path):
    import nibabel as nib

    meta = _meta3()
    write_image(tmp_path / "x.nii.gz", np.zeros((5, 7, 11), np.int16), meta)
    aff = nib.load(str(tmp_path / "x.nii.gz")).affine  # RAS, voxel index (i, j, k) = (x, y, z)
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    itk_dir = meta.direction[::-1, ::-1]
    expected = lps_to_ras @ itk_dir @ np.diag(meta.itk_spacing)
    np.testing.assert_allclose(aff[:3, :3], expected, atol=1e-5)
    np.testing.assert_allclose(aff[:3, 3], lps_to_ras @ np.asarray(meta.itk_origin), atol=1e-4)


def test_2d_image(tmp_path):
    a = np.arange(35, dtype=np.uint8).reshape(5, 7)
    write_image(tmp_path / "x.nrrd", a, Meta((0.5, 0.25), (1.0, 2.0), np.eye(2)))
    b, m = read_image(tmp_path / "x.nrrd")
    np.testing.assert_array_equal(a, b)
    assert m.spacing == (0.5, 0.25)
    assert m.origin == (1.0, 2.0)


def test_dicom_series_round_trip(tmp_path, rng):
    a = rng.integers(-1000, 2000, size=(4, 6, 5)).astype(np.int16)
    meta = Meta((2.0, 0.7, 0.9), (-50.0, 10.0, 20.0), np.eye(3))
    write_image(tmp_path / "series", a, meta, format="dicom")
    files = sorted(os.listdir(tmp_path / "series"))
    assert len(files) == 4
    assert all(f.endswith(".dcm") for f in files)
    b, m = read_image(tmp_path / "series")
    np.testing.assert_array_equal(b, a)
    assert m.same_geometry(meta)


def test_bool_and_float64_and_torch(tmp_path):
    import torch

    write_image(tmp_path / "b.nii.gz", np.ones((2, 2, 2), bool))
    assert read_image(tmp_path / "b.nii.gz")[0].dtype == np.uint8
    write_image(tmp_path / "f.nii.gz", np.ones((2, 2, 2), np.float64))
    assert read_image(tmp_path / "f.nii.gz")[0].dtype == np.float32
    write_image(tmp_path / "t.nii.gz", torch.arange(8, dtype=torch.int16).reshape(2, 2, 2))
    np.testing.assert_array_equal(read_image(tmp_path / "t.nii.gz")[0].ravel(), np.arange(8))


def test_meta_dict_round_trip():
    meta = _meta3()
    clone = Meta.from_dict(meta.to_dict())
    assert clone.same_geometry(meta)
    assert clone.spacing == meta.spacing


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.nii\.gz: no such file"):
        read_image(tmp_path / "nope.nii.gz")


def test_corrupt_file(tmp_path):
    (tmp_path / "bad.nii.gz").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"bad\.nii\.gz: cannot read image"):
        read_image(tmp_path / "bad.nii.gz")


def test_empty_dicom_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no DICOM series"):
        read_image(tmp_path / "empty")


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match="cannot create the output folder"):
        write_image(blocker / "sub" / "x.nii.gz", np.zeros((2, 2, 2), np.uint8))


def test_geometry_dimension_mismatch(tmp_path):
    with pytest.raises(DataError, match="array has 3 dimensions but the geometry has 2"):
        write_image(tmp_path / "x.nii.gz", np.zeros((2, 2, 2)), Meta.identity((1.0, 1.0)))


def test_atomic_write_interrupted_leaves_nothing(tmp_path, monkeypatch):
    import SimpleITK as sitk

    target = tmp_path / "out.nii.gz"
    real = sitk.WriteImage

    def write_then_interrupt(image, path, *args):
        real(image, path, *args)  # the temp file is complete on disk ...
        raise KeyboardInterrupt  # ... but the user presses Ctrl-C before the rename

    monkeypatch.setattr(sitk, "WriteImage", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_image(target, np.zeros((3, 3, 3), np.int16))
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")

    def half_write():
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        half_write()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_folder_replaces(tmp_path):
    target = tmp_path / "series"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]


def test_resample_keeps_physical_extent_like_simpleitk(rng):
    """Our resample's geometry and values agree with SimpleITK's linear resampler on the same output grid."""
    import SimpleITK as sitk

    a = rng.random((6, 9, 8)).astype(np.float32)
    meta = _meta3()
    y, m = resample(a, meta, (1.25, 1.5, 0.4))
    assert y.shape == (12, 4, 16)
    # first and last voxel centres bound the same field of view
    lo = np.asarray(meta.origin) - meta.direction @ (np.asarray(meta.spacing) / 2)
    lo_new = np.asarray(m.origin) - m.direction @ (np.asarray(m.spacing) / 2)
    np.testing.assert_allclose(lo_new, lo, atol=1e-9)
    img = sitk.GetImageFromArray(a)
    meta.apply_to(img)
    ref = sitk.Image(list(reversed(y.shape)), sitk.sitkFloat32)
    m.apply_to(ref)
    out = sitk.GetArrayFromImage(sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear, 0.0))
    inner = (slice(1, -1), slice(1, -1), slice(1, -1))  # ITK does not extrapolate at the border
    np.testing.assert_allclose(y[inner], out[inner], atol=1e-5)


def test_resample_labels_nearest_and_errors():
    lab = np.zeros((4, 4, 4), np.uint8)
    lab[:2] = 3
    y, m = resample(lab, Meta.identity((2.0, 1.0, 1.0)), (1.0, 1.0, 1.0), order=0)
    assert y.dtype == np.uint8
    assert y.shape == (8, 4, 4)
    assert set(np.unique(y)) == {0, 3}
    with pytest.raises(ValueError, match="spacing must have 3 positive values"):
        resample(lab, Meta.identity((2.0, 1.0, 1.0)), (1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="order must be 0 or 1"):
        resample(lab, Meta.identity((2.0, 1.0, 1.0)), (1.0, 1.0, 1.0), order=3)
