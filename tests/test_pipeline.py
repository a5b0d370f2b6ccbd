"""Dataset, phantom, fingerprint, preprocessing (resume, atomic cache), sampling, augmentation, the pipelines on
the kernels (metrics against MONAI, empty masks included; the kernels each stage calls), the training loss, CLI
errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from medseg_fast.cli import main
from medseg_fast.data import (
    LABELS,
    AugmentConfig,
    PatchSampler,
    PhantomConfig,
    augment_batch,
    find_cases,
    load_dataset,
    load_preprocessed,
    make_dataset,
    make_phantom,
    preprocess_dataset,
)
from medseg_fast.data.fingerprint import target_spacing
from medseg_fast.data.phantom import HU
from medseg_fast.io import DataError, Meta, read_image, write_image
from medseg_fast.losses.factory import make_loss
from medseg_fast.pipelines.evaluate import METRICS, evaluate

torch.set_num_threads(1)
SMALL = PhantomConfig(fov_mm=(60.0, 200.0, 260.0), spacing=(6.0, 5.0, 5.0))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("ds") / "Dataset", 3, 1, seed=3, config=SMALL)


# ------------------------------------------------------------------------------------------- phantom
def test_phantom_tissues_and_labels():
    ct, lab, meta = make_phantom(5)
    assert ct.dtype == np.int16
    assert lab.dtype == np.uint8
    assert ct.shape == lab.shape
    assert meta.spacing[0] > 1.5 * meta.spacing[1]  # anisotropic, thick slices
    assert set(np.unique(lab)) == set(LABELS.values())
    noise = 3 * 18.0
    for name, value in (("liver", 1), ("spleen", 2), ("kidney_left", 3)):
        med = float(np.median(ct[lab == value]))
        ref = HU[name] if name in HU else HU["kidney_cortex"]
        assert abs(med - ref) < noise, (name, med)
    assert np.median(ct[0, :3, :3]) < -900  # air in the corner
    assert ct.max() > 500  # cortical bone
    assert (ct < -50).sum() > 0
    assert ((ct > -150) & (ct < -50)).sum() > 100


def test_phantom_deterministic_and_varied():
    a = make_phantom(1, SMALL)
    b = make_phantom(1, SMALL)
    c = make_phantom(2, SMALL)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[0].shape != c[0].shape or not np.array_equal(a[1], c[1])


# ------------------------------------------------------------------------------------------- dataset
def test_dataset_layout(dataset):
    info = load_dataset(dataset)
    assert info.modality == "CT"
    assert info.classes == [1, 2, 3, 4]
    assert info.num_classes == 5
    cases = find_cases(info)
    assert [c.case_id for c in cases] == ["phantom_000", "phantom_001", "phantom_002"]
    assert all(c.label is not None and c.label.exists() for c in cases)
    assert len(find_cases(info, "Ts")) == 1


def test_dataset_msd_labels(tmp_path, dataset):
    raw = json.loads((dataset / "dataset.json").read_text())
    raw["labels"] = {str(v): k for k, v in raw["labels"].items()}  # MSD style "1": "liver"
    raw.pop("channel_names")
    (tmp_path / "dataset.json").write_text(json.dumps(raw))
    info = load_dataset(tmp_path)
    assert info.labels[1] == "liver"
    assert info.channels == ["CT"]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, r"dataset\.json: missing"),
        ("{not json", "not valid JSON"),
        ('{"labels": {"background": 0}}', "needs 'channel_names'"),
        ('{"channel_names": {"0": "CT"}, "labels": {"a": 1}}', "must contain background 0"),
    ],
)
def test_dataset_json_errors(tmp_path, content, match):
    if content is not None:
        (tmp_path / "dataset.json").write_text(content)
    with pytest.raises(DataError, match=match):
        load_dataset(tmp_path)


def _copy_dataset(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_label_geometry_mismatch(tmp_path, dataset):
    ds = _copy_dataset(dataset, tmp_path / "ds")
    lab_path = ds / "labelsTr" / "phantom_001.nii.gz"
    lab, meta = read_image(lab_path)
    write_image(lab_path, lab, Meta(tuple(s * 1.5 for s in meta.spacing), meta.origin, meta.direction))
    with pytest.raises(DataError, match=r"phantom_001\.nii\.gz: label geometry differs from its image"):
        preprocess_dataset(ds, tmp_path / "pp")


def test_label_values_not_declared(tmp_path, dataset):
    ds = _copy_dataset(dataset, tmp_path / "ds")
    lab_path = ds / "labelsTr" / "phantom_000.nii.gz"
    lab, meta = read_image(lab_path)
    lab[0, 0, 0] = 9
    write_image(lab_path, lab, meta)
    with pytest.raises(DataError, match=r"phantom_000\.nii\.gz: label values \[9\] are not in dataset\.json"):
        preprocess_dataset(ds, tmp_path / "pp")


# ------------------------------------------------------------------------------------------- fingerprint
def test_target_spacing_rule():
    sp = np.array([[3.0, 1.0, 1.0], [5.0, 0.8, 0.8], [4.0, 0.9, 0.9]])
    assert target_spacing(sp, np.array([[100, 200, 200]] * 3)) == [4.0, 0.9, 0.9]
    # strongly anisotropic with few slices: the thick axis gets the 10th percentile (nnU-Net)
    sp = np.array([[5.0, 1.0, 1.0], [6.0, 1.0, 1.0], [8.0, 1.0, 1.0]])
    t = target_spacing(sp, np.array([[20, 256, 256]] * 3))
    assert t[1:] == [1.0, 1.0]
    assert t[0] == pytest.approx(np.percentile([5.0, 6.0, 8.0], 10))


# ------------------------------------------------------------------------------------------- preprocessing
def test_preprocess_outputs(tmp_path, dataset):
    plan = preprocess_dataset(dataset, tmp_path / "pp")
    fp = plan["fingerprint"]
    stats = plan["normalization"][0]["stats"]
    assert 60 < stats["mean"] < 180
    assert stats["percentile_00_5"] < stats["percentile_99_5"]
    assert plan["target_spacing"] == pytest.approx(np.median(fp["spacings"], axis=0).tolist())
    case = load_preprocessed(tmp_path / "pp" / "cases" / "phantom_000.npz")
    data, seg = case["data"], case["seg"]
    assert data.dtype == np.float32
    assert data.shape[0] == 1
    assert seg.shape == data.shape[1:]
    assert set(np.unique(seg)) <= {0, 1, 2, 3, 4}
    fg = data[0][seg > 0]
    assert abs(float(fg.mean())) < 0.6
    assert 0.5 < float(fg.std()) < 1.6
    for c, locs in case["locations"].items():
        assert (seg[tuple(locs.T)] == int(c)).all()


def test_preprocess_resume_after_interrupt(tmp_path, dataset, monkeypatch):
    """Ctrl-C during the second case: the first case is complete, no temp file is left, and a rerun only
    does the missing cases (finished files are not rewritten)."""
    import medseg_fast.data.preprocess as pre

    out = tmp_path / "pp"
    real = pre.preprocess_image
    calls = []

    def interrupt_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pre, "preprocess_image", interrupt_second)
    with pytest.raises(KeyboardInterrupt):
        preprocess_dataset(dataset, out)
    files = sorted(p.name for p in (out / "cases").iterdir())
    assert files == ["phantom_000.npz"]
    first_mtime = (out / "cases" / "phantom_000.npz").stat().st_mtime_ns

    # interrupted while writing: the temp file goes away, the target never appears
    def interrupt_in_savez(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pre, "preprocess_image", real)
    monkeypatch.setattr(np, "savez", interrupt_in_savez)
    with pytest.raises(KeyboardInterrupt):
        preprocess_dataset(dataset, out)
    assert sorted(p.name for p in (out / "cases").iterdir()) == ["phantom_000.npz"]
    monkeypatch.undo()

    done = []
    preprocess_dataset(dataset, out, progress=done.append)
    assert done == ["phantom_001", "phantom_002"]
    assert (out / "cases" / "phantom_000.npz").stat().st_mtime_ns == first_mtime
    assert sorted(p.name for p in (out / "cases").iterdir()) == ["phantom_000.npz", "phantom_001.npz",
                                                                   "phantom_002.npz"]


def test_preprocess_other_plan_refused(tmp_path, dataset):
    preprocess_dataset(dataset, tmp_path / "pp")
    with pytest.raises(DataError, match="cache was made with a different plan"):
        preprocess_dataset(dataset, tmp_path / "pp", target_spacing=(7.0, 7.0, 7.0))
    plan = preprocess_dataset(dataset, tmp_path / "pp", target_spacing=(7.0, 7.0, 7.0), overwrite=True)
    assert plan["target_spacing"] == [7.0, 7.0, 7.0]


def test_preprocess_sharded_by_rank(tmp_path, dataset):
    done = []
    preprocess_dataset(dataset, tmp_path / "pp", rank=1, world_size=2, progress=done.append)
    assert done == ["phantom_001"]


# ------------------------------------------------------------------------------------------- sampling
def test_foreground_oversampling_one_third():
    seg = np.zeros((40, 40, 40), np.int8)
    seg[2:4, 2:4, 2:4] = 1  # a tiny corner object: random crops almost never contain it
    locs = {"1": np.argwhere(seg == 1).astype(np.int32)}
    case = {"data": np.zeros((1, 40, 40, 40), np.float32), "seg": seg, "locations": locs}
    sampler = PatchSampler([case], (8, 8, 8), seed=0)
    _, y = sampler.sample(600)
    frac = float(np.mean([(p == 1).any() for p in y]))
    assert 0.26 < frac < 0.42  # 1/3 forced + ~1% by chance


def test_sampler_pads_small_volumes():
    case = {"data": np.ones((2, 3, 5, 4), np.float32), "seg": np.ones((3, 5, 4), np.int8),
            "locations": {"1": np.argwhere(np.ones((3, 5, 4))).astype(np.int32)}}
    x, y = PatchSampler([case], (4, 8, 8), seed=1).sample(5)
    assert x.shape == (5, 2, 4, 8, 8)
    assert y.shape == (5, 4, 8, 8)
    assert y.dtype == np.int64
    assert x.sum() == 5 * 2 * 3 * 5 * 4
    assert (y == 1).sum() == 5 * 3 * 5 * 4


# ------------------------------------------------------------------------------------------- augmentation
def test_augment_moves_image_and_label_together():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 5, (6, 6, 10, 10))
    x = y[:, None].float().repeat(1, 2, 1, 1, 1)
    cfg = AugmentConfig(p_flip=0.5, p_rot90=1.0, p_scale=0, p_shift=0, p_noise=0)
    xa, ya = augment_batch(x, y, cfg, generator=g)
    assert torch.equal(xa[:, 0], ya.float())
    assert torch.equal(xa[:, 1], ya.float())
    assert not torch.equal(ya, y)  # something happened
    for b in range(6):  # every sample is a flip/rotation of its input: same histogram
        assert torch.equal(torch.bincount(ya[b].ravel(), minlength=5), torch.bincount(y[b].ravel(), minlength=5))


def test_augment_intensity_only_touches_image():
    g = torch.Generator().manual_seed(1)
    x, y = torch.ones(4, 1, 4, 6, 6), torch.ones(4, 4, 6, 6, dtype=torch.long)
    cfg = AugmentConfig(p_flip=0, p_rot90=0, p_scale=1, p_shift=1, p_noise=1)
    xa, ya = augment_batch(x, y, cfg, generator=g)
    assert torch.equal(ya, y)
    assert not torch.equal(xa, x)
    assert torch.equal(x, torch.ones_like(x))


def test_augment_skips_rotation_for_non_square_plane():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(3, 1, 4, 6, 8), torch.zeros(3, 4, 6, 8, dtype=torch.long)
    xa, _ = augment_batch(x, y, AugmentConfig(p_rot90=1.0), generator=g)
    assert xa.shape == x.shape


# ------------------------------------------------------------------------------------------- pipelines on the kernels
def _evaluate_arrays(tmp_path, pred, gt, spacing, labels):
    """Run the evaluate pipeline on two label maps written as NIfTI; its rows from metrics.csv."""
    import csv

    meta = Meta.identity(spacing)
    write_image(tmp_path / "p" / "case.nii.gz", pred.astype(np.uint8), meta)
    write_image(tmp_path / "g" / "case.nii.gz", gt.astype(np.uint8), meta)
    evaluate(tmp_path / "p", tmp_path / "g", tmp_path / "e", labels=labels, overlays=False)
    with open(tmp_path / "e" / "metrics.csv", newline="") as fh:
        return {int(r["class"]): {k: float(v) for k, v in r.items() if k in METRICS} for r in csv.DictReader(fh)}


def _monai_rows(pred, gt, k, spacing, tolerance=2.0):
    from monai.metrics import (
        compute_average_surface_distance,
        compute_dice,
        compute_hausdorff_distance,
        compute_iou,
        compute_surface_dice,
    )

    oh = lambda a: torch.nn.functional.one_hot(torch.from_numpy(a.astype(np.int64)), k).movedim(-1, 0)[None].float()  # noqa: E731
    p, g = oh(pred), oh(gt)
    values = {
        "dice": compute_dice(p, g, include_background=False, ignore_empty=False)[0],
        "iou": compute_iou(p, g, include_background=False, ignore_empty=False)[0],
        "hd95": compute_hausdorff_distance(p, g, percentile=95, spacing=spacing)[0],
        "assd": compute_average_surface_distance(p, g, symmetric=True, spacing=spacing)[0],
        "surface_dice": compute_surface_dice(p, g, class_thresholds=[tolerance] * (k - 1), spacing=spacing)[0],
    }
    return {c: {m: float(v[c - 1]) for m, v in values.items()} for c in range(1, k)}


def test_evaluate_matches_monai(tmp_path, rng):
    gt = np.zeros((12, 20, 18), np.int64)
    gt[3:9, 4:15, 5:14] = 1
    gt[2:5, 2:6, 2:6] = 2
    pred = gt.copy()
    pred[rng.random(gt.shape) < 0.05] = 1
    pred[8:10] = 0
    spacing = (2.5, 1.0, 0.8)
    rows = _evaluate_arrays(tmp_path, pred, gt, spacing, {0: "bg", 1: "a", 2: "b"})
    ref = _monai_rows(pred, gt, 3, spacing)
    for c in (1, 2):
        for m in METRICS:
            assert rows[c][m] == pytest.approx(ref[c][m], rel=1e-5), (c, m)


def test_evaluate_empty_masks_follow_monai(tmp_path):
    """A class absent from one map or from both gets MONAI's values (Dice/IoU with ignore_empty=False); the
    pipeline once rewrote them (both empty: HD95 0, surface Dice 1; one empty: ASSD NaN), a convention of
    nobody's."""
    gt = np.zeros((6, 8, 8), np.int64)
    gt[1:4, 2:6, 2:6] = 1
    gt[4:6, 0:2, 0:2] = 2  # class 2 only in the ground truth, class 3 in neither
    pred = np.where(gt == 2, 0, gt)
    pred[0, 7, 7] = 4  # class 4 only in the prediction
    rows = _evaluate_arrays(tmp_path, pred, gt, (1.0, 1.0, 1.0), {0: "bg", 1: "a", 2: "b", 3: "c", 4: "d"})
    ref = _monai_rows(pred, gt, 5, (1.0, 1.0, 1.0))
    for c in (2, 3, 4):
        for m in METRICS:
            np.testing.assert_equal(rows[c][m], ref[c][m], err_msg=f"class {c} {m}")
    assert rows[3]["dice"] == 1.0 and np.isnan(rows[3]["hd95"]) and np.isnan(rows[3]["surface_dice"])
    assert rows[2]["dice"] == 0.0 and np.isnan(rows[2]["hd95"]) and rows[2]["assd"] == np.inf
    assert rows[2]["surface_dice"] == 0.0


def _spy(monkeypatch, module, name, calls):
    real = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append((name, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)


def _tiny_checkpoint(ndim):
    from medseg_fast.models import build_model

    plan = {"channels": ["CT"], "classes": [1, 2], "num_classes": 3, "target_spacing": [2.0] * ndim,
            "normalization": [{"scheme": "zscore"}], "mirror_axes": list(range(ndim))}
    torch.manual_seed(0)
    model = build_model({"arch": "UNet", "spatial_dims": ndim, "in_channels": 1, "out_channels": 3,
                         "channels": [4, 8], "blocks": 1, "deep_supervision": False})
    return {"model": model.state_dict(), "model_config": {"arch": "UNet", **model.config}, "plan": plan,
            "patch_size": [8] * ndim}


@pytest.mark.parametrize("ndim", [2, 3])
def test_predictor_calls_the_kernels(monkeypatch, rng, ndim):
    """Prediction runs sliding_window_inference (nnU-Net positions), resample and keep_largest_per_class
    (full connectivity: 2-D maps once failed with connectivity=26)."""
    import medseg_fast.data.preprocess as pre
    import medseg_fast.pipelines.predict as pred_mod

    calls = []
    # back to the input grid: the fused resample + argmax where predict uses it (no C x original volume)
    back = "resample_argmax" if hasattr(pred_mod, "resample_argmax") else "resample"
    for name in ("sliding_window_inference", back, "keep_largest_per_class"):
        _spy(monkeypatch, pred_mod, name, calls)
    for name in ("resample",):
        _spy(monkeypatch, pre, name, calls)
    predictor = pred_mod.Predictor(_tiny_checkpoint(ndim), device="cpu", mirror=True)
    shape = (9, 13, 11)[-ndim:]
    image = rng.normal(size=shape).astype(np.float32) + 5.0
    labels = predictor.predict_array(image, Meta.identity((1.5,) * ndim))
    assert labels.shape == shape
    assert labels.dtype == np.uint8
    assert [c[0] for c in calls] == ["resample", "sliding_window_inference", back, "keep_largest_per_class"]
    assert calls[1][1]["positions"] == "nnunet"
    assert calls[1][1]["mirror_axes"] == tuple(range(ndim))


def test_preprocess_calls_resample_kernels(monkeypatch, rng):
    import medseg_fast.data.preprocess as pre

    calls = []
    _spy(monkeypatch, pre, "resample", calls)
    _spy(monkeypatch, pre, "resample_labels", calls)
    plan = _tiny_checkpoint(3)["plan"]
    image = rng.normal(size=(1, 6, 7, 8)).astype(np.float32) + 3.0
    label = (rng.random((6, 7, 8)) < 0.4).astype(np.uint8)
    data, seg, props = pre.preprocess_image(image, Meta.identity((3.0, 1.0, 1.0)), plan, label)
    assert [c[0] for c in calls] == ["resample", "resample_labels"]
    assert calls[0][1]["spacing"] == (3.0, 1.0, 1.0)
    assert data.shape == (1, 9, 4, 4)
    assert seg.shape == (9, 4, 4)
    assert seg.dtype == np.int8


def test_loss_decreases_and_deep_supervision():
    torch.manual_seed(0)
    loss = make_loss("dice_focal", deep_supervision_levels=1)
    target = torch.randint(0, 3, (2, 8, 8, 8))
    logits = torch.zeros(2, 3, 8, 8, 8, requires_grad=True)
    low = torch.zeros(2, 3, 4, 4, 4, requires_grad=True)
    before = loss([logits, low], target)
    before.backward()
    with torch.no_grad():
        good = torch.nn.functional.one_hot(target, 3).permute(0, 4, 1, 2, 3).float() * 10
    assert loss(good, target) < before
    assert low.grad is not None
    assert low.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"loss must be one of \('dice_ce', 'dice_focal'\), got 'mse'"):
        make_loss("mse")
    with pytest.raises(ValueError, match="deep_supervision_levels must be an integer >= 0, got -1"):
        make_loss("dice_ce", deep_supervision_levels=-1)


def test_dice_ce_loss_equals_plain_torch():
    """make_loss("dice_ce") is nnU-Net's soft Dice (batch, background excluded, smooth 1e-5) + cross-entropy."""
    torch.manual_seed(3)
    logits = torch.randn(2, 3, 8, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8, 8))
    logp = torch.nn.functional.log_softmax(logits, dim=1)
    onehot = torch.nn.functional.one_hot(target, 3).movedim(-1, 1).float()
    dims = (0, 2, 3, 4)
    inter = (logp.exp() * onehot).sum(dims)[1:]
    denom = (logp.exp().sum(dims) + onehot.sum(dims))[1:]
    ref = 1.0 - ((2.0 * inter + 1e-5) / (denom + 1e-5)).mean() + torch.nn.functional.nll_loss(logp, target)
    torch.testing.assert_close(make_loss("dice_ce")(logits, target), ref, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------------------- CLI errors
def _run_cli(capsys, *argv):
    rc = main(list(argv))
    err = capsys.readouterr().err
    return rc, err


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["predict", "--model", "{tmp}/nope.pt", "--input", "{tmp}", "--output", "{tmp}/o"], r"nope\.pt: checkpoint file not found"),
        (["predict", "--model", "{tmp}/junk.pt", "--input", "{tmp}", "--output", "{tmp}/o"], r"junk\.pt: not a readable checkpoint"),
        (["preprocess", "--dataset", "{tmp}/none", "--out", "{tmp}/pp"], r"none: dataset folder does not exist"),
        (["evaluate", "--pred", "{tmp}/p", "--gt", "{tmp}", "--out", "{tmp}/e"], r"p: no such file or folder"),
        (["train", "--data", "{tmp}", "--out", "{tmp}/run", "--steps", "0"], r"--steps must be > 0"),
        (["train", "--data", "{tmp}", "--out", "{tmp}/run"], r"plans\.json: missing"),
        (["demo", "--out", "{tmp}/d", "--threads", "0"], r"--threads must be >= 1"),
    ],
)
def test_cli_bad_input_one_line_exit_2(tmp_path, capsys, argv, match):
    import re

    (tmp_path / "junk.pt").write_bytes(b"garbage")
    rc, err = _run_cli(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert rc == 2
    assert err.count("\n") == 1
    assert err.startswith("medseg-fast: error: ")
    assert re.search(match, err), err
    assert "Traceback" not in err


def test_cli_help_for_every_command(capsys):
    for cmd in ("demo", "preprocess", "train", "predict", "evaluate", "bench", "config"):
        with pytest.raises(SystemExit) as info:
            main([cmd, "--help"])
        assert info.value.code == 0
        assert "usage: medseg-fast" in capsys.readouterr().out
