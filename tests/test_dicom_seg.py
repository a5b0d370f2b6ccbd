"""DICOM SEG output: round trip through highdicom and pydicom (masks, geometry, references, codes), highdicom's
own checks, and the bad inputs (not DICOM, uneven slices, unknown classes) leaving no file behind."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_volume

from medseg_fast.io import DataError, read_image, write_dicom_seg

hd = pytest.importorskip("highdicom")
pydicom = pytest.importorskip("pydicom")


def make_series(folder, vol, spacing, origin=(-40.0, 12.5, 100.0), positions=None):
    """A CT series (one file per slice) of ``vol`` (z, y, x) with pydicom; file names in reverse slice order,
    so readers must sort by position."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    nz, ny, nx = vol.shape
    for k in range(nz):
        uid = generate_uid()
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = CTImageStorage, uid
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "CT", "Test^CT", "P1", "", "O"
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", "A1"
        ds.ReferringPhysicianName, ds.SeriesNumber, ds.InstanceNumber = "", 1, k + 1
        z = origin[2] + (positions[k] if positions is not None else k * spacing[0])
        ds.ImagePositionPatient = [origin[0], origin[1], z]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [spacing[1], spacing[2]], spacing[0]
        ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = ny, nx, 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = np.ascontiguousarray(vol[k], dtype=np.int16).tobytes()
        ds.save_as(folder / f"IM{nz - k:04d}.dcm", enforce_file_format=True)
    return folder


@pytest.fixture(scope="module")
def ct_series(tmp_path_factory):
    ct, spacing = load_volume("ct_chest_lung2_crop_hu.nii.gz")
    ct = ct[:12, :40, :48]  # small, non-square slices
    folder = make_series(tmp_path_factory.mktemp("dcm") / "series", ct, spacing)
    return folder, ct, spacing


def _labels(ct):
    lab = np.zeros(ct.shape, np.uint8)
    lab[ct > -400] = 1  # soft tissue
    lab[ct > 300] = 3  # bone (class 2 is declared but absent: an empty segment)
    return lab


CLASSES = {1: "soft tissue", 2: "nothing", 3: {"name": "bone", "category": ("91723000", "SCT", "Anatomical Structure"),
                                              "type": ("272673000", "SCT", "Bone")}}


@pytest.mark.parametrize("kind", ["binary", "labelmap"])
def test_round_trip(ct_series, tmp_path, kind):
    folder, ct, spacing = ct_series
    image, meta = read_image(folder)
    assert np.array_equal(image, ct)
    lab = _labels(ct)
    before = lab.copy()
    out = write_dicom_seg(lab, folder, CLASSES, tmp_path / "seg.dcm", meta=meta, segmentation_type=kind)
    assert np.array_equal(lab, before)
    seg = hd.seg.segread(out)  # highdicom parses and checks the object
    segments = {int(d.SegmentNumber): d for d in seg.SegmentSequence if int(d.SegmentNumber) > 0}  # LABELMAP adds 0
    assert [segments[n].SegmentLabel for n in sorted(segments)] == ["soft tissue", "nothing", "bone"]
    assert segments[3].SegmentedPropertyTypeCodeSequence[0].CodeValue == "272673000"
    assert segments[1].SegmentedPropertyCategoryCodeSequence[0].CodeValue == "85756007"
    sources = sorted((pydicom.dcmread(p, stop_before_pixels=True) for p in folder.iterdir()),
                     key=lambda d: float(d.ImagePositionPatient[2]))
    uids = [d.SOPInstanceUID for d in sources]
    got = seg.get_pixels_by_source_instance(uids, combine_segments=True, skip_overlap_checks=True)
    want = np.array([0, 1, 2, 3], np.uint8)[lab]  # segment numbers 1..3 for values 1..3
    assert np.array_equal(np.asarray(got), want)
    # geometry and references, read with pydicom
    ds = pydicom.dcmread(out)
    src = sources[0]
    assert ds.FrameOfReferenceUID == src.FrameOfReferenceUID and ds.StudyInstanceUID == src.StudyInstanceUID
    assert ds.SeriesInstanceUID != src.SeriesInstanceUID and ds.SOPInstanceUID not in uids
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == src.SeriesInstanceUID
    assert {r.ReferencedSOPInstanceUID for r in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence} == set(uids)
    measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert [float(v) for v in measures.PixelSpacing] == pytest.approx(spacing[1:])
    assert float(measures.SliceThickness) == pytest.approx(spacing[0])
    pos = {tuple(float(v) for v in d.ImagePositionPatient) for d in sources}
    frame_pos = {tuple(float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient)
                 for f in ds.PerFrameFunctionalGroupsSequence}
    assert frame_pos <= pos
    assert len(frame_pos) == (int(lab.any(axis=(1, 2)).sum()) if kind == "binary" else ct.shape[0])
    assert (ds.Rows, ds.Columns) == ct.shape[1:]


def test_reversed_label_order_is_flipped(ct_series, tmp_path):
    folder, ct, _ = ct_series
    _, meta = read_image(folder)
    lab = _labels(ct)
    lab[0] = 1  # make the first slice different from the last
    from medseg_fast.io import Meta

    last = np.asarray(meta.origin, float) + meta.direction @ (np.asarray(meta.spacing) * [ct.shape[0] - 1, 0, 0])
    flipped = Meta(meta.spacing, tuple(last), meta.direction)
    out = write_dicom_seg(lab[::-1], folder, CLASSES, tmp_path / "seg.dcm", meta=flipped)
    seg = hd.seg.segread(out)
    sources = sorted((pydicom.dcmread(p, stop_before_pixels=True) for p in folder.iterdir()),
                     key=lambda d: float(d.ImagePositionPatient[2]))
    got = seg.get_pixels_by_source_instance([d.SOPInstanceUID for d in sources], combine_segments=True,
                                            skip_overlap_checks=True)
    assert np.array_equal(np.asarray(got), np.array([0, 1, 2, 3], np.uint8)[lab])


def test_bad_inputs_leave_nothing(ct_series, tmp_path):
    folder, ct, spacing = ct_series
    lab = _labels(ct)
    out = tmp_path / "seg.dcm"
    with pytest.raises(ValueError, match=r"labels hold values \[3\]"):
        write_dicom_seg(lab, folder, {1: "soft tissue"}, out)
    with pytest.raises(ValueError, match="shape of the source series"):
        write_dicom_seg(lab[:-1], folder, CLASSES, out)
    nifti = tmp_path / "img"
    nifti.mkdir()
    (nifti / "x.nii.gz").write_bytes(b"not dicom")
    with pytest.raises(DataError, match=r"x\.nii\.gz: not a DICOM file"):
        write_dicom_seg(lab, nifti, CLASSES, out)
    with pytest.raises(DataError, match="needs a DICOM series folder"):
        write_dicom_seg(lab, nifti / "x.nii.gz", CLASSES, out)
    gap = np.arange(ct.shape[0], dtype=float) * spacing[0]
    gap[7:] += spacing[0]  # a missing slice
    uneven = make_series(tmp_path / "uneven", ct, spacing, positions=gap)
    with pytest.raises(DataError, match=r"IM\d{4}\.dcm: inconsistent slice spacing: 10 mm"):
        write_dicom_seg(lab, uneven, CLASSES, out)
    with pytest.raises(ValueError, match="segmentation_type"):
        write_dicom_seg(lab, folder, CLASSES, out, segmentation_type="fractional")
    assert list(tmp_path.glob("*seg*")) == []  # no output, no temporary file
