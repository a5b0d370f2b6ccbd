"""Lesion-wise metrics: parity with the plain reference (BraTS 2023 definitions, panoptic quality), with
panoptica where installed, and the class / empty / bad-input rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import load_volume

from medseg_fast.lesion import BRATS2023, dilate, lesion_wise
from medseg_fast.reference import lesion as R

ndimage = pytest.importorskip("scipy.ndimage")


def _blobs(rng, shape, density=0.12, smooth=3):
    """Random lesions: a smoothed noise field thresholded at its (1 - density) quantile."""
    f = ndimage.uniform_filter(rng.random(shape), smooth)
    return (f > np.quantile(f, 1 - density)).astype(np.uint8)


def _perturbed(rng, gt):
    """A plausible prediction: shifted by a voxel, some lesions dropped, some false positives added."""
    pred = np.roll(gt, rng.integers(-1, 2, gt.ndim), axis=tuple(range(gt.ndim))).copy()
    cc, n = R.components(pred)
    for k in rng.choice(np.arange(1, n + 1), size=n // 4, replace=False) if n else []:
        pred[cc == k] = 0
    for _ in range(3):
        idx = tuple(int(rng.integers(0, s)) for s in gt.shape)
        pred[idx] = 1
    return pred


def _check_brats(ours, ref):
    assert (ours["tp"], ours["fn"], ours["fp"]) == (ref["tp"], ref["fn"], ref["fp"])
    assert ours["lesion_dice"] == pytest.approx(ref["lesion_dice"], rel=1e-12, abs=1e-12)
    assert ours["lesion_hd95"] == pytest.approx(ref["lesion_hd95"], rel=1e-5, abs=1e-5)
    ours_rows = sorted((r["volume_mm3"], r["dice"], r["hd95"]) for r in ours["lesions"])
    ref_rows = sorted((r["volume_mm3"], r["dice"], r["hd95"]) for r in ref["lesions"])
    assert len(ours_rows) == len(ref_rows)
    for a, b in zip(ours_rows, ref_rows):
        assert a[0] == pytest.approx(b[0]) and a[1] == pytest.approx(b[1], abs=1e-12)
        assert (math.isinf(a[2]) and math.isinf(b[2])) or a[2] == pytest.approx(b[2], rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("dilation,min_volume", [(0, 0.0), (1, 2.0), (2, 20.0), (3, 50.0)])
def test_brats_parity_random(rng, dilation, min_volume):
    pytest.importorskip("surface_distance")
    shape = tuple(int(s) for s in rng.integers(9, 31, 3))
    spacing = tuple(float(s) for s in rng.uniform(0.5, 2.0, 3))
    gt = _blobs(rng, shape, density=float(rng.uniform(0.03, 0.2)))
    pred = _perturbed(rng, gt)
    before = pred.copy(), gt.copy()
    ours = lesion_wise(pred, gt, spacing, dilation=dilation, min_volume=min_volume)
    assert np.array_equal(before[0], pred) and np.array_equal(before[1], gt)
    ref = R.brats_lesion_wise(pred, gt, spacing, dilation=dilation, min_volume=min_volume)
    _check_brats(ours, ref)
    assert ours["num_pred_lesions"] == R.components(pred)[1]


def test_brats_parity_real_volume(rng):
    pytest.importorskip("surface_distance")
    gt, spacing = load_volume("ct_chest_lung2_crop_tumor_label.nii.gz")
    gt = (gt > 0).astype(np.uint8)
    # split the tumour into lesions: remove two planes, so the lesions are near each other (dilation merges them)
    gt[:, 60:62] = 0
    gt[:, :, 64] = 0
    pred = _perturbed(rng, gt)
    for preset in ("GLI", "MET"):
        ours = lesion_wise(pred, gt, spacing, **BRATS2023[preset])
        _check_brats(ours, R.brats_lesion_wise(pred, gt, spacing, **BRATS2023[preset]))


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.8])
def test_panoptic_parity(rng, threshold):
    shape = tuple(int(s) for s in rng.integers(8, 26, 3))
    gt = _blobs(rng, shape, density=0.1, smooth=2)
    pred = _perturbed(rng, gt)
    ours = lesion_wise(pred, gt, match="iou", iou_threshold=threshold)
    ref = R.panoptic_quality(pred, gt, threshold)
    assert (ours["tp"], ours["fp"], ours["fn"]) == (ref["tp"], ref["fp"], ref["fn"])
    for k in ("pq", "sq", "rq"):
        assert ours[k] == pytest.approx(ref[k], rel=1e-12)
    assert ours["f1"] == pytest.approx(2 * ref["tp"] / (2 * ref["tp"] + ref["fp"] + ref["fn"]))


def test_panoptic_vs_panoptica(rng):
    panoptica = pytest.importorskip("panoptica")
    panoptica.disable_citation_reminder() if hasattr(panoptica, "disable_citation_reminder") else None
    gt = _blobs(rng, (14, 21, 19), density=0.1, smooth=2)
    pred = _perturbed(rng, gt)
    ev = panoptica.Panoptica_Evaluator(
        expected_input=panoptica.InputType.SEMANTIC,
        instance_approximator=panoptica.ConnectedComponentsInstanceApproximator(),
        instance_matcher=panoptica.NaiveThresholdMatching(matching_threshold=0.5), verbose=False)
    theirs = ev.evaluate(pred, gt, verbose=False)["ungrouped"]
    ours = lesion_wise(pred, gt, match="iou")
    assert (ours["tp"], ours["fp"], ours["fn"]) == (theirs.tp, theirs.fp, theirs.fn)
    for k in ("pq", "sq", "rq"):
        assert ours[k] == pytest.approx(getattr(theirs, k), rel=1e-9)


def test_classes_are_scored_separately(rng):
    shape = (13, 17, 11)
    gt = _blobs(rng, shape, 0.1, 2) + 2 * _blobs(rng, shape, 0.1, 2) * 1
    gt[gt == 3] = 2
    pred = _perturbed(rng, gt > 0).astype(np.uint8) * np.where(rng.random(shape) < 0.5, 1, 2).astype(np.uint8)
    both = lesion_wise(pred, gt, (1.0, 0.8, 1.3), classes=[1, 2], dilation=1)
    for c in (1, 2):
        alone = lesion_wise(pred == c, gt == c, (1.0, 0.8, 1.3), dilation=1)
        for k in ("tp", "fp", "fn", "lesion_dice", "lesion_hd95", "pq", "num_gt_lesions", "num_pred_lesions"):
            assert both[c][k] == pytest.approx(alone[k], nan_ok=True), k


def test_empty_and_missed():
    z = np.zeros((6, 7, 8), np.uint8)
    r = lesion_wise(z, z)
    assert (r["tp"], r["fp"], r["fn"], r["lesion_dice"], r["lesion_hd95"]) == (0, 0, 0, 1.0, 0.0)
    assert math.isnan(r["pq"]) and math.isnan(r["f1"])
    g = z.copy()
    g[1:3, 1:3, 1:3] = 1
    r = lesion_wise(z, g)
    assert (r["tp"], r["fn"], r["lesion_dice"], r["lesion_hd95"], r["pq"]) == (0, 1, 0.0, 374.0, 0.0)
    assert math.isinf(r["lesions"][0]["hd95"]) and r["lesions"][0]["detected"] is False
    r = lesion_wise(g, z, fp_distance=100.0)
    assert (r["fp"], r["lesion_hd95"], r["fp_lesions"][0]["volume_mm3"]) == (1, 100.0, 8.0)


def test_dilate_equals_scipy(rng):
    m = rng.random((9, 12, 7)) < 0.05
    struct = ndimage.generate_binary_structure(3, 2)
    for k in (1, 2):
        assert np.array_equal(dilate(m, k), ndimage.binary_dilation(m, struct, iterations=k))
    m2 = rng.random((11, 6)) < 0.1
    assert np.array_equal(dilate(m2, 2), ndimage.binary_dilation(m2, ndimage.generate_binary_structure(2, 2), 2))


def test_bad_input():
    a = np.zeros((4, 4, 4), np.uint8)
    with pytest.raises(ValueError, match="same shape"):
        lesion_wise(a, a[:3])
    with pytest.raises(TypeError, match="pred must be a bool or integer"):
        lesion_wise(a.astype(np.float32), a)
    with pytest.raises(ValueError, match="match"):
        lesion_wise(a, a, match="any")
    with pytest.raises(ValueError, match="dilation"):
        lesion_wise(a, a, dilation=-1)
    with pytest.raises(ValueError, match="iou_threshold"):
        lesion_wise(a, a, iou_threshold=0)
    with pytest.raises(ValueError, match="classes"):
        lesion_wise(a, a, classes=[0, 1])
    with pytest.raises(ValueError, match="gt must hold non-negative"):
        lesion_wise(a, a.astype(np.int8) - 1)


def test_evaluate_cli_lesion_wise(rng, tmp_path, capsys):
    import csv
    import io
    import json

    from medseg_fast.cli import main
    from medseg_fast.io import Meta, write_image

    shape, spacing = (10, 14, 12), (2.0, 0.8, 0.8)
    meta = Meta(spacing, (0.0, 0.0, 0.0), np.eye(3))
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    gts, preds = {}, {}
    for case in ("a", "b"):
        gt = _blobs(rng, shape, 0.1, 2) * rng.integers(1, 3, shape).astype(np.uint8)
        gt = np.where(gt > 0, 1 + (np.arange(shape[2]) >= 6), 0).astype(np.uint8)  # class 2 on the right half
        pred = _perturbed(rng, gt > 0) * np.where(np.arange(shape[2]) >= 6, 2, 1).astype(np.uint8)
        write_image(tmp_path / "gt" / f"{case}.nii.gz", gt, meta)
        write_image(tmp_path / "pred" / f"{case}.nii.gz", pred, meta)
        gts[case], preds[case] = gt, pred
    out = tmp_path / "e"
    rc = main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--out", str(out),
               "--lesion-wise", "--lesion-dilation", "1", "--no-overlays", "--classes", "1", "2"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert cap.out.count("\nevaluate ") + cap.out.startswith("evaluate ") == 2  # one progress line per case
    assert "done in" in cap.out
    rows = list(csv.DictReader(io.StringIO((out / "metrics.csv").read_text())))
    assert len(rows) == 4
    for r in rows:
        want = lesion_wise(preds[r["case"]], gts[r["case"]], spacing, classes=[1, 2], dilation=1,
                           convention="monai")[int(r["class"])]
        assert (int(r["lesion_tp"]), int(r["lesion_fp"]), int(r["lesion_fn"])) == (want["tp"], want["fp"], want["fn"])
        assert float(r["lesion_dice"]) == pytest.approx(want["lesion_dice"], rel=1e-5)
        assert float(r["lesion_hd95"]) == pytest.approx(want["lesion_hd95"], rel=1e-5)
    lesions = list(csv.DictReader(io.StringIO((out / "lesions.csv").read_text())))
    n = sum(len(v["lesions"]) + len(v["fp_lesions"]) for c in "ab"
            for v in lesion_wise(preds[c], gts[c], spacing, classes=[1, 2], dilation=1).values())
    assert len(lesions) == n and {x["kind"] for x in lesions} <= {"gt", "fp"}
    summary = json.loads((out / "summary.json").read_text())
    tot = summary["lesion_totals"]["1"]
    assert tot["tp"] == sum(int(r["lesion_tp"]) for r in rows if r["class"] == "1")
    # bad lesion options: one line, exit 2, before any case is read
    rc = main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--out", str(out),
               "--lesion-wise", "--iou-threshold", "1.5"])
    err = capsys.readouterr().err
    assert rc == 2 and "iou_threshold" in err and err.count("\n") == 1
    rc = main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--out", str(out),
               "--brats", "GLI"])
    assert rc == 2 and "--lesion-wise" in capsys.readouterr().err
