"""Parity of the segmentation metrics with MONAI, MedPy, the surface-distance package and the
brute-force reference, per convention; empty masks; properties; evaluate(); errors."""

from __future__ import annotations

import warnings

import medseg_fast
import numpy as np
import pytest
import scipy.ndimage as ndi
from conftest import load_volume, to_device
from medseg_fast import metrics as M
from medseg_fast.reference import metrics as ref

torch = pytest.importorskip("torch")
monai_metrics = pytest.importorskip("monai.metrics")
medpy_binary = pytest.importorskip("medpy.metric.binary")
sd = pytest.importorskip("surface_distance")


def blobs(rng, shape, count=3, radius=(2.0, 6.0)):
    idx = np.indices(shape).astype(np.float64)
    mask = np.zeros(shape, bool)
    for _ in range(count):
        center = [rng.uniform(0, s) for s in shape]
        r = rng.uniform(*radius)
        mask |= sum(((i - c) / r) ** 2 for i, c in zip(idx, center)) <= 1
    return mask


def pairs(rng, shape):
    """(pred, gt) pairs: independent blobs, shifted copy, dilated copy, eroded-and-shifted copy."""
    gt = blobs(rng, shape)
    while not gt.any():
        gt = blobs(rng, shape)
    other = blobs(rng, shape)
    shifted = np.roll(gt, 2, axis=gt.ndim - 1)
    dilated = ndi.binary_dilation(gt, iterations=2)
    eroded = np.roll(ndi.binary_erosion(gt), -1, axis=0)
    return [(p, gt) for p in (other, shifted, dilated, eroded) if p.any()]


def monai_call(fn, pred, gt, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = torch.from_numpy(pred[None, None].astype(np.float32))
        g = torch.from_numpy(gt[None, None].astype(np.float32))
        return float(fn(p, g, **kwargs).item())


def deepmind_distances(gt, pred, spacing):
    """surface_distance.compute_surface_distances (it uses scipy/numpy names that now warn)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sd.compute_surface_distances(gt, pred, spacing)


def close(a, b, rtol):
    if np.isnan(b):
        return np.isnan(a)
    if np.isinf(b):
        return a == b
    return abs(a - b) <= rtol * max(abs(b), 1e-12)


@pytest.mark.parametrize("shape", [(15, 17, 19), (1, 20, 21), (23, 29)])
def test_monai_convention(rng, shape):
    for pred, gt in pairs(rng, shape):
        sp = tuple(rng.uniform(0.5, 2.0, len(shape)))
        for pct in (None, 95, 50):
            ours = M.hausdorff(pred, gt, sp, percentile=pct)
            theirs = monai_call(monai_metrics.compute_hausdorff_distance, pred, gt, percentile=pct, spacing=sp)
            assert close(ours, theirs, 2e-6), (pct, ours, theirs)
            ours_d = M.hausdorff(pred, gt, sp, percentile=pct, directed=True)
            theirs_d = monai_call(monai_metrics.compute_hausdorff_distance, pred, gt, percentile=pct, spacing=sp,
                                  directed=True)
            assert close(ours_d, theirs_d, 2e-6)
        for symmetric in (True, False):
            ours = M.average_surface_distance(pred, gt, sp, symmetric=symmetric)
            theirs = monai_call(monai_metrics.compute_average_surface_distance, pred, gt, symmetric=symmetric,
                                spacing=sp)
            assert close(ours, theirs, 2e-6)
        if len(shape) == 3:
            for tol in (0.5, 1.0, 2.5):
                ours = M.surface_dice(pred, gt, tol, sp, convention="monai")
                theirs = monai_call(monai_metrics.compute_surface_dice, pred, gt, class_thresholds=[tol], spacing=sp)
                assert close(ours, theirs, 1e-6)


@pytest.mark.parametrize("shape", [(15, 17, 19), (23, 29), (40,)])
def test_medpy_convention(rng, shape):
    for pred, gt in pairs(rng, shape):
        sp = tuple(rng.uniform(0.5, 2.0, len(shape)))
        assert close(M.hausdorff(pred, gt, sp, convention="medpy"), medpy_binary.hd(pred, gt, sp), 1e-12)
        assert close(M.hausdorff(pred, gt, sp, percentile=95, convention="medpy"), medpy_binary.hd95(pred, gt, sp),
                     1e-12)
        assert close(M.average_surface_distance(pred, gt, sp, convention="medpy"), medpy_binary.assd(pred, gt, sp),
                     1e-12)
        assert close(M.average_surface_distance(pred, gt, sp, symmetric=False, convention="medpy"),
                     medpy_binary.asd(pred, gt, sp), 1e-12)


@pytest.mark.parametrize("shape", [(15, 17, 19), (2, 18, 21), (23, 29)])
def test_deepmind_convention(rng, shape):
    for pred, gt in pairs(rng, shape):
        sp = tuple(rng.uniform(0.5, 2.0, len(shape)))
        dists = deepmind_distances(gt, pred, sp)
        for pct in (95, 100, 50):
            assert close(M.hausdorff(pred, gt, sp, percentile=pct, convention="deepmind"),
                         sd.compute_robust_hausdorff(dists, pct), 1e-12)
        assert close(M.hausdorff(pred, gt, sp, convention="deepmind"), sd.compute_robust_hausdorff(dists, 100), 1e-12)
        gt_to_pred, pred_to_gt = sd.compute_average_surface_distance(dists)
        assert close(M.average_surface_distance(pred, gt, sp, convention="deepmind"),
                     (gt_to_pred + pred_to_gt) / 2, 1e-12)
        assert close(M.average_surface_distance(pred, gt, sp, symmetric=False, convention="deepmind"), pred_to_gt,
                     1e-12)
        for tol in (0.0, 1.0, 2.0):
            assert close(M.surface_dice(pred, gt, tol, sp), sd.compute_surface_dice_at_tolerance(dists, tol), 1e-12)


@pytest.mark.parametrize("convention", ["monai", "medpy", "deepmind"])
def test_matches_brute_force_reference(rng, convention, device):
    shape = (14, 16) if convention == "deepmind" else (9, 10, 11)
    for pred, gt in pairs(rng, shape):
        sp = tuple(rng.uniform(0.5, 2.0, len(shape)))
        pd, gd = to_device(pred, device), to_device(gt, device)
        for pct in (None, 95):
            assert close(M.hausdorff(pd, gd, sp, percentile=pct, convention=convention),
                         ref.hausdorff(pred, gt, sp, pct, convention=convention), 2e-6)
        for symmetric in (True, False):
            assert close(M.average_surface_distance(pd, gd, sp, symmetric=symmetric, convention=convention),
                         ref.average_surface_distance(pred, gt, sp, symmetric, convention=convention), 2e-6)
        if convention != "medpy":
            assert close(M.surface_dice(pd, gd, 1.5, sp, convention=convention),
                         ref.surface_dice(pred, gt, 1.5, sp, convention=convention), 2e-6)


def test_empty_masks_follow_each_peer(monkeypatch):
    monkeypatch.setattr(np, "Inf", np.inf, raising=False)   # surface_distance still spells np.Inf
    full = np.zeros((8, 9, 10), bool)
    full[2:6, 3:7, 2:8] = True
    empty = np.zeros_like(full)
    sp = (1.0, 1.5, 0.7)
    for pred, gt in [(empty, empty), (full, empty), (empty, full)]:
        for pct in (None, 95):
            theirs = monai_call(monai_metrics.compute_hausdorff_distance, pred, gt, percentile=pct, spacing=sp)
            assert close(M.hausdorff(pred, gt, sp, percentile=pct), theirs, 0)
        for symmetric in (True, False):
            theirs = monai_call(monai_metrics.compute_average_surface_distance, pred, gt, symmetric=symmetric,
                                spacing=sp)
            assert close(M.average_surface_distance(pred, gt, sp, symmetric=symmetric), theirs, 0)
        theirs = monai_call(monai_metrics.compute_surface_dice, pred, gt, class_thresholds=[1.0], spacing=sp)
        assert close(M.surface_dice(pred, gt, 1.0, sp, convention="monai"), theirs, 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dists = deepmind_distances(gt, pred, sp)
            a, b = sd.compute_average_surface_distance(dists)
            assert close(M.hausdorff(pred, gt, sp, percentile=95, convention="deepmind"),
                         sd.compute_robust_hausdorff(dists, 95), 0)
            assert close(M.average_surface_distance(pred, gt, sp, convention="deepmind"), (a + b) / 2, 0)
            assert close(M.average_surface_distance(pred, gt, sp, symmetric=False, convention="deepmind"), b, 0)
            assert close(M.surface_dice(pred, gt, 1.0, sp), sd.compute_surface_dice_at_tolerance(dists, 1.0), 0)
        # MedPy raises RuntimeError on empty masks; documented here as nan.
        assert np.isnan(M.hausdorff(pred, gt, sp, convention="medpy"))
        assert np.isnan(M.average_surface_distance(pred, gt, sp, convention="medpy"))
    assert np.isnan(M.dice(empty, empty))
    assert M.dice(empty, empty, empty=1.0) == 1.0
    assert M.dice(full, empty) == 0.0
    assert M.iou(empty, full) == 0.0


def test_properties(rng):
    for pred, gt in pairs(rng, (13, 14, 15)):
        sp = (1.2, 0.8, 2.0)
        for conv in ("monai", "medpy", "deepmind"):
            for pct in (None, 95):
                h = M.hausdorff(pred, gt, sp, percentile=pct, convention=conv)
                assert h == M.hausdorff(gt, pred, sp, percentile=pct, convention=conv)   # symmetric
                assert M.hausdorff(gt, gt, sp, percentile=pct, convention=conv) == 0.0
                padded = [np.pad(m, ((2, 3), (0, 4), (5, 1))) for m in (pred, gt)]
                assert M.hausdorff(*padded, sp, percentile=pct, convention=conv) == h   # padding invariant
            if not np.array_equal(pred, gt):
                assert M.hausdorff(pred, gt, sp, convention=conv) > 0
            assert M.average_surface_distance(pred, pred, sp, convention=conv) == 0.0
            assert M.surface_dice(pred, pred, 0.0, sp, convention=conv if conv != "medpy" else "monai") == 1.0


def test_real_tumour_label():
    label, sp = load_volume("ct_chest_lung2_crop_tumor_label.nii.gz")
    gt = label != 0
    pred = ndi.binary_dilation(np.roll(gt, 3, axis=2), iterations=1)
    assert close(M.hausdorff(pred, gt, sp, percentile=95),
                 monai_call(monai_metrics.compute_hausdorff_distance, pred, gt, percentile=95, spacing=sp), 2e-6)
    assert close(M.hausdorff(pred, gt, sp, percentile=95, convention="medpy"), medpy_binary.hd95(pred, gt, sp), 1e-12)
    assert close(M.average_surface_distance(pred, gt, sp, convention="medpy"), medpy_binary.assd(pred, gt, sp), 1e-12)
    dists = deepmind_distances(gt, pred, sp)
    assert close(M.hausdorff(pred, gt, sp, percentile=95, convention="deepmind"),
                 sd.compute_robust_hausdorff(dists, 95), 1e-12)
    assert close(M.surface_dice(pred, gt, 2.0, sp), sd.compute_surface_dice_at_tolerance(dists, 2.0), 1e-12)


@pytest.fixture(scope="module")
def atlas_pair():
    labels, sp = load_volume("dk_atlas_mni_1mm.nii.gz")
    gt = labels[40:120, 50:150, 40:130].astype(np.int16)      # a crop keeps the test fast
    pred = np.roll(gt, (1, -2, 1), axis=(0, 1, 2))
    pred[ndi.binary_erosion(pred > 0, iterations=3) & (np.indices(pred.shape)[0] % 7 == 0)] = 0
    return pred, gt, sp


def test_evaluate_atlas_matches_single_calls_and_peers(atlas_pair):
    pred, gt, sp = atlas_pair
    classes = [int(c) for c in np.unique(gt) if c != 0]
    assert len(classes) > 20
    classes.append(9999)     # absent from both
    rows = M.evaluate(pred, gt, classes, sp, metrics=("dice", "iou", "hd", "hd95", "assd", "asd", "surface_dice"),
                      tolerance=1.0)
    assert [r["class"] for r in rows] == classes
    absent = rows[-1]
    assert np.isnan(absent["dice"])
    assert np.isnan(absent["hd95"])
    for row in rows[:-1:9]:
        p, g = pred == row["class"], gt == row["class"]
        assert row["dice"] == pytest.approx(M.dice(p, g), rel=1e-15)
        assert row["iou"] == pytest.approx(ref.iou(p, g), rel=1e-12)
        assert row["hd"] == M.hausdorff(p, g, sp)
        assert row["hd95"] == M.hausdorff(p, g, sp, percentile=95)
        assert row["assd"] == M.average_surface_distance(p, g, sp)
        assert row["asd"] == M.average_surface_distance(p, g, sp, symmetric=False)
        assert row["surface_dice"] == M.surface_dice(p, g, 1.0, sp, convention="monai")
    for row in rows[:-1:20]:
        p, g = pred == row["class"], gt == row["class"]
        theirs = monai_call(monai_metrics.compute_hausdorff_distance, p, g, percentile=95, spacing=sp)
        assert close(row["hd95"], theirs, 2e-6)
        assert close(row["dice"], float(monai_metrics.compute_dice(
            torch.from_numpy(p[None, None]).float(), torch.from_numpy(g[None, None]).float()).item()), 1e-6)
    medpy_rows = M.evaluate(pred, gt, classes[:-1:15], sp, metrics=("hd95", "assd"), convention="medpy")
    for row in medpy_rows:
        p, g = pred == row["class"], gt == row["class"]
        assert close(row["hd95"], medpy_binary.hd95(p, g, sp), 1e-12)
        assert close(row["assd"], medpy_binary.assd(p, g, sp), 1e-12)


def test_evaluate_thread_count_independent(atlas_pair):
    pred, gt, sp = atlas_pair
    classes = [int(c) for c in np.unique(gt)][1:30]
    previous = medseg_fast.get_num_threads()
    try:
        medseg_fast.set_num_threads(1)
        one = M.evaluate(pred, gt, classes, sp, metrics=("dice", "hd95", "assd"), convention="deepmind")
        medseg_fast.set_num_threads(2)
        two = M.evaluate(pred, gt, classes, sp, metrics=("dice", "hd95", "assd"), convention="deepmind")
    finally:
        medseg_fast.set_num_threads(previous)
    assert one == two


def test_overlap_metrics(rng):
    for _ in range(5):
        shape = tuple(int(s) for s in rng.integers(1, 12, 3))
        pred = rng.integers(0, 4, shape)
        gt = rng.integers(0, 4, shape)
        cm = M.confusion_matrix(pred, gt, 3)
        np.testing.assert_array_equal(cm, ref.confusion_matrix(pred, gt, 3))
        assert M.pixel_accuracy(pred, gt) == pytest.approx(np.mean(pred == gt), rel=1e-15)
        p3, g3 = pred % 3, gt % 3
        ious = [ref.iou(p3 == c, g3 == c) for c in range(3)]
        assert M.mean_iou(p3, g3, 3) == pytest.approx(np.nanmean(ious), rel=1e-12)
        assert M.dice(pred == 1, gt == 1) == pytest.approx(ref.dice(pred == 1, gt == 1), rel=1e-15, nan_ok=True)
        np.testing.assert_allclose(M.dice(pred, gt, classes=[1, 2, 3]),
                                   [ref.dice(pred == c, gt == c) for c in (1, 2, 3)], rtol=1e-15)
    pred = rng.random((2, 3, 5, 6, 7)) > 0.5      # more than 3 axes: not pooled into one number
    gt = rng.random((2, 3, 5, 6, 7)) > 0.5
    with pytest.raises(ValueError, match=r"dice scores one case: pred must have 1 to 3 axes.*layout='bc'"):
        M.dice(pred, gt)
    np.testing.assert_allclose(M.dice(pred, gt, layout="bc"),
                               [[ref.dice(pred[b, c], gt[b, c]) for c in range(3)] for b in range(2)], rtol=1e-15)
    assert M.mean_iou(np.zeros(5, int), np.zeros(5, int), 3) == 1.0
    assert M.mean_iou(np.zeros(5, int), np.zeros(5, int), 3, ignore_absent=False) == 1.0
    assert M.mean_iou(np.array([0, 1]), np.array([0, 0]), 3, ignore_absent=False) == pytest.approx((0.5 + 0 + 1) / 3)


def test_dice_iou_vs_monai(rng):
    for _ in range(3):
        pred, gt = blobs(rng, (12, 13, 14)), blobs(rng, (12, 13, 14))
        p = torch.from_numpy(pred[None, None]).float()
        g = torch.from_numpy(gt[None, None]).float()
        assert close(M.dice(pred, gt), float(monai_metrics.compute_dice(p, g).item()), 1e-6)
        assert close(M.iou(pred, gt), float(monai_metrics.compute_iou(p, g).item()), 1e-6)


def test_layouts_dtypes_and_torch(rng, device):
    pred, gt = pairs(rng, (12, 14, 16))[1]
    sp = (1.1, 0.9, 1.3)
    expected = M.hausdorff(pred, gt, sp, percentile=95)
    variants = [
        (pred.astype(np.uint8), gt.astype(np.int32)),
        (pred.astype(np.float32) * 0.5, gt.astype(np.float64)),
        (np.asfortranarray(pred), gt),
        (torch.from_numpy(pred), torch.from_numpy(gt)),
    ]
    for p, g in variants:
        assert M.hausdorff(to_device(p, device), to_device(g, device), sp, percentile=95) == expected
    if device != "cpu":   # device inputs give exactly the numpy results
        pd, gd = to_device(pred, device), to_device(gt, device)
        assert M.surface_dice(pd, gd, 1.0, sp) == M.surface_dice(pred, gt, 1.0, sp)
        assert M.dice(pd, gd) == M.dice(pred, gt)
    t_pred, t_gt = pred.transpose(2, 0, 1), gt.transpose(2, 0, 1)
    assert M.hausdorff(t_pred, t_gt, (1.3, 1.1, 0.9), percentile=95) == pytest.approx(expected, rel=1e-6)
    before = pred.copy()
    M.evaluate(pred.astype(np.uint8), gt.astype(np.uint8), [1], sp)
    np.testing.assert_array_equal(pred, before)


def test_bad_input():
    a = np.zeros((4, 5, 6), bool)
    with pytest.raises(ValueError, match=r"gt must have the shape of pred: pred.shape=\(4, 5, 6\), gt.shape=\(4, 5, 7\)"):
        M.hausdorff(a, np.zeros((4, 5, 7), bool))
    with pytest.raises(ValueError, match=r"spacing must have 3 positive values for a 3-D mask, got \(1.0, 0.0, 1.0\)"):
        M.hausdorff(a, a, (1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="spacing must have 3 positive values"):
        M.average_surface_distance(a, a, (1.0, 1.0))
    with pytest.raises(ValueError, match=r"convention must be one of \('monai', 'medpy', 'deepmind'\), got 'scipy'"):
        M.hausdorff(a, a, convention="scipy")
    with pytest.raises(ValueError, match=r"percentile must be None or a number in \[0, 100\], got 101"):
        M.hausdorff(a, a, percentile=101)
    with pytest.raises(ValueError, match="tolerance must be a finite number >= 0"):
        M.surface_dice(a, a, -1.0)
    with pytest.raises(ValueError, match="must be the same kind of array on the same device"):
        M.dice(a, torch.from_numpy(a))
    with pytest.raises(ValueError, match="1-D, 2-D or 3-D"):
        M.hausdorff(np.zeros((2, 2, 2, 2), bool), np.zeros((2, 2, 2, 2), bool))
    with pytest.raises(ValueError, match="deepmind.*2-D or 3-D"):
        M.hausdorff(np.ones(5, bool), np.ones(5, bool), convention="deepmind")
    with pytest.raises(ValueError, match="metrics must name metrics from"):
        M.evaluate(a, a, [1], metrics=("dice", "volume"))
    with pytest.raises(ValueError, match="tolerance"):
        M.evaluate(a, a, [1], metrics=("surface_dice",))
    with pytest.raises(ValueError, match="classes must not repeat a label"):
        M.evaluate(a, a, [1, 1])
    with pytest.raises(ValueError, match=r"num_classes must be in 1\.\.65536 \(a K x K table\), got 0"):
        M.confusion_matrix(a, a, 0)
    with pytest.raises(ValueError, match="pred must hold integer labels"):
        M.evaluate(np.full((3, 3), 0.5), np.zeros((3, 3)), [1])


# ----------------------------------------------------------------------------- distance paths
# Surface distances come from a nearest-neighbour search (cell grid, then a tree of cell boxes for
# queries far from the other surface) or, when that would cost more, an exact EDT of the union
# box. Both return the exact minimum of the same rounded squared distances, so every path must
# give bit-identical results. "auto-small-budget" aborts the search part-way and falls back.
_PATHS = ("nearest", "edt", "auto", "auto-small-budget")
_ALL_METRICS = ("hd", "hd95", "hd50", "assd", "asd", "surface_dice")


def _by_path(monkeypatch, pred, gt, sp, convention, classes=None):
    out = {}
    for path in _PATHS:
        monkeypatch.setattr(M, "_surface_path", path)
        if classes is None:
            rows = M.evaluate(pred.astype(np.uint8), gt.astype(np.uint8), [1], sp, metrics=_ALL_METRICS,
                              convention=convention, tolerance=1.3)
        else:
            rows = M.evaluate(pred, gt, classes, sp, metrics=_ALL_METRICS, convention=convention, tolerance=1.3)
        out[path] = [[r[k] for k in _ALL_METRICS] for r in rows]
    return out


def _assert_identical(results):
    first = np.array(results["nearest"], dtype=np.float64)
    for path, values in results.items():
        np.testing.assert_array_equal(np.array(values, dtype=np.float64), first, err_msg=path)


def _far_pair(rng, shape):
    """Two blobs in opposite corners: most queries are far and finish in the tree of cell boxes."""
    pred, gt = np.zeros(shape, bool), np.zeros(shape, bool)
    a = tuple(slice(0, max(1, s // 4)) for s in shape)
    b = tuple(slice(s - max(1, s // 3), s) for s in shape)
    pred[a] = blobs(rng, shape, count=2, radius=(3.0, 6.0))[a] | (rng.random(pred[a].shape) < 0.2)
    gt[b] = rng.random(gt[b].shape) < 0.5
    return pred, gt


@pytest.mark.parametrize("convention", ["monai", "medpy", "deepmind"])
def test_surface_paths_bit_identical(rng, monkeypatch, convention):
    spacings = [(1.5, 0.96, 0.96), (2.5, 0.8, 0.8), (1.0, 1.0, 1.0), (0.7, 1.3, 0.45)]
    for shape in [(15, 17, 19), (2, 23, 29), (31, 7, 11), (1, 1, 37)]:
        if convention == "deepmind" and shape[1] == 1:
            continue
        for k, (pred, gt) in enumerate(pairs(rng, shape) + [_far_pair(rng, shape)]):
            sp = spacings[k % len(spacings)]
            _assert_identical(_by_path(monkeypatch, pred, gt, sp, convention))
    noise_p, noise_g = rng.random((12, 13, 14)) < 0.3, rng.random((12, 13, 14)) < 0.1
    _assert_identical(_by_path(monkeypatch, noise_p, noise_g, (1.1, 0.9, 0.7), convention))


def test_surface_paths_bit_identical_real_volumes(monkeypatch):
    label, sp = load_volume("ct_chest_lung2_crop_tumor_label.nii.gz")
    gt = label != 0
    for pred in (ndi.binary_dilation(np.roll(gt, 3, axis=2), iterations=1), np.roll(gt, (1, -9, 14), axis=(0, 1, 2))):
        for convention in ("monai", "medpy", "deepmind"):
            _assert_identical(_by_path(monkeypatch, pred, gt, sp, convention))
    labels, sp = load_volume("dk_atlas_mni_1mm.nii.gz")
    gt = labels[50:90, 60:120, 50:100].astype(np.int16)
    pred = np.roll(gt, (2, -3, 5), axis=(0, 1, 2))
    classes = [int(c) for c in np.unique(gt) if c != 0][::4]
    _assert_identical(_by_path(monkeypatch, pred, gt, (1.2, 0.9, 1.0), "monai", classes))


def test_surface_distances_are_exact_minimum(rng):
    """Every distance is sqrt(min over surface voxels of ((dz*s0)**2 + (dy*s1)**2) + (dx*s2)**2)."""
    for shape, sp in [((12, 14, 16), (1.5, 0.96, 0.96)), ((9, 30, 8), (0.7, 1.3, 0.45)), ((16, 15, 14), (2.5, 0.8, 0.8))]:
        for pred, gt in pairs(rng, shape) + [_far_pair(rng, shape)]:
            ip, ig = np.argwhere(ref.voxel_surface(pred)), np.argwhere(ref.voxel_surface(gt))
            d = np.abs(ip[:, None, :] - ig[None, :, :]).astype(np.float64)
            sq = ((d[..., 0] * sp[0]) ** 2 + (d[..., 1] * sp[1]) ** 2) + (d[..., 2] * sp[2]) ** 2
            pred_to_gt, gt_to_pred = np.sqrt(sq.min(1)), np.sqrt(sq.min(0))
            assert M.hausdorff(pred, gt, sp, directed=True, convention="medpy") == pred_to_gt.max()
            assert M.hausdorff(gt, pred, sp, directed=True, convention="medpy") == gt_to_pred.max()
            pooled = np.concatenate([pred_to_gt, gt_to_pred])
            for pct in (95, 50, 12.5):
                assert M.hausdorff(pred, gt, sp, percentile=pct, convention="medpy") == np.percentile(pooled, pct)


def test_surface_search_thread_count_independent(rng):
    shape = (40, 48, 44)
    gt = blobs(rng, shape, count=6, radius=(4.0, 12.0))
    pred = np.roll(ndi.binary_dilation(gt), (3, -20, 15), axis=(0, 1, 2))   # wrapped parts lie far away
    previous = medseg_fast.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            medseg_fast.set_num_threads(threads)
            results.append([M.hausdorff(pred, gt, (1.5, 0.96, 0.96), percentile=p, convention=c)
                            for c in ("monai", "medpy", "deepmind") for p in (None, 95)])
    finally:
        medseg_fast.set_num_threads(previous)
    assert results[0] == results[1] == results[2]
