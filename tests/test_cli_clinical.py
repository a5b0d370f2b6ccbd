"""The clinical outputs through the command: predict --format dicom-seg (good and bad input: one-line error,
exit 2, no file left), --quiet, --log-level / --log-file on every subcommand."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from medseg_fast.cli import main
from medseg_fast.io import read_image

hd = pytest.importorskip("highdicom")
pydicom = pytest.importorskip("pydicom")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--tiny", "--out", str(out), "--threads", "1", "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def series(demo, tmp_path_factory):
    from test_dicom_seg import make_series

    img, meta = read_image(demo / "dataset" / "imagesTs" / "phantom_002_0000.nii.gz")
    return make_series(tmp_path_factory.mktemp("dcm") / "series", img, meta.spacing)


def _one_line(capsys, rc, match):
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("medseg-fast: error: ") and match in err, err


def test_predict_dicom_seg(demo, series, tmp_path, capsys):
    model = str(demo / "model" / "checkpoint_final.pt")
    ds_json = json.loads((demo / "dataset" / "dataset.json").read_text())
    ds = tmp_path / "ds"
    shutil.copytree(demo / "dataset", ds)
    ds_json["snomed"] = {"liver": {"category": ["91723000", "SCT", "Anatomical Structure"],
                                   "type": ["10200004", "SCT", "Liver"]}}
    (ds / "dataset.json").write_text(json.dumps(ds_json))
    out = tmp_path / "seg.dcm"
    rc = main(["predict", "--model", model, "--input", str(series), "--output", str(out), "--format", "dicom-seg",
               "--labels", str(ds), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    seg = hd.seg.segread(out)
    names = [d.SegmentLabel for d in seg.SegmentSequence]
    assert names == ["liver", "spleen", "kidney_left", "kidney_right"]
    assert seg.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue == "10200004"
    # the segments are the label map predict writes as NIfTI
    nii = tmp_path / "seg.nii.gz"
    assert main(["predict", "--model", model, "--input", str(series), "--output", str(nii), "--quiet"]) == 0
    labels, _ = read_image(nii)
    uids = [d.SOPInstanceUID for d in sorted((pydicom.dcmread(p, stop_before_pixels=True) for p in series.iterdir()),
                                             key=lambda d: float(d.ImagePositionPatient[2]))]
    got = np.asarray(seg.get_pixels_by_source_instance(uids, combine_segments=True, skip_overlap_checks=True))
    assert np.array_equal(got, labels)
    capsys.readouterr()

    # bad input: one line naming the file, exit 2, nothing written
    bad = tmp_path / "bad.dcm"
    nifti_in = demo / "dataset" / "imagesTs" / "phantom_002_0000.nii.gz"
    rc = main(["predict", "--model", model, "--input", str(nifti_in), "--output", str(bad), "--format", "dicom-seg"])
    _one_line(capsys, rc, "phantom_002_0000.nii.gz: --format dicom-seg needs a DICOM series folder")
    del ds_json["labels"]["spleen"]
    (ds / "dataset.json").write_text(json.dumps(ds_json))
    rc = main(["predict", "--model", model, "--input", str(series), "--output", str(bad), "--format", "dicom-seg",
               "--labels", str(ds)])
    _one_line(capsys, rc, "dataset.json: class value(s) [2] of the model are missing")
    uneven = tmp_path / "uneven"
    shutil.copytree(series, uneven)
    victim = sorted(uneven.iterdir())[3]
    victim.unlink()  # a missing slice
    rc = main(["predict", "--model", model, "--input", str(uneven), "--output", str(bad), "--format", "dicom-seg"])
    _one_line(capsys, rc, "inconsistent slice spacing")
    rc = main(["predict", "--model", model, "--input", str(series), "--output", str(tmp_path / "x.nii.gz"),
               "--dicom-seg-type", "labelmap"])
    _one_line(capsys, rc, "--dicom-seg-type needs --format dicom-seg")
    assert not bad.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_quiet_and_log_options(demo, tmp_path, capsys):
    gt = demo / "dataset" / "labelsTs"
    pred = demo / "predictions"
    log = tmp_path / "run.log"
    rc = main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--out", str(tmp_path / "e"), "--log-level", "info",
               "--log-file", str(log)])
    out = capsys.readouterr().out
    assert rc == 0 and "evaluate 1/1 phantom_002 100%" in out
    assert log.exists()
    rc = main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--out", str(tmp_path / "e"), "--quiet"])
    assert rc == 0 and "evaluate 1/1" not in capsys.readouterr().out
    for cmd in ("bench", "demo", "preprocess", "train", "predict", "evaluate", "config"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = capsys.readouterr().out
        assert "--quiet" in text and "--log-level" in text and "--log-file" in text, cmd
    rc = main(["config", "--log-file", str(tmp_path / "no" / "such" / "dir.log")])
    _one_line(capsys, rc, "--log-file")
