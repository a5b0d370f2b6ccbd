"""Dataset, phantom, fingerprint, preprocessing (resume, atomic cache), sampling, augmentation, the _ops
fallbacks against peers, prediction (geometry kept, Ctrl-C safe, resumable), evaluation, CLI errors."""

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
from medseg_fast.pipelines import _ops

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


# ------------------------------------------------------------------------------------------- _ops fallbacks vs peers
def test_metrics_match_monai(rng):
    from monai.metrics import compute_average_surface_distance, compute_dice, compute_hausdorff_distance

    gt = np.zeros((12, 20, 18), np.int64)
    gt[3:9, 4:15, 5:14] = 1
    gt[2:5, 2:6, 2:6] = 2
    pred = gt.copy()
    pred[rng.random(gt.shape) < 0.05] = 1
    pred[8:10] = 0
    spacing = (2.5, 1.0, 0.8)
    rows = _ops.compute_metrics(pred, gt, [1, 2], spacing)
    oh = lambda a: torch.nn.functional.one_hot(torch.from_numpy(a), 3).permute(3, 0, 1, 2)[None].float()  # noqa: E731
    dice = compute_dice(oh(pred), oh(gt), include_background=False)[0]
    hd = compute_hausdorff_distance(oh(pred), oh(gt), percentile=95, spacing=spacing)[0]
    asd = compute_average_surface_distance(oh(pred), oh(gt), symmetric=True, spacing=spacing)[0]
    for i, r in enumerate(rows):
        assert r["dice"] == pytest.approx(float(dice[i]), rel=1e-6)
        assert r["hd95"] == pytest.approx(float(hd[i]), rel=1e-5)
        assert r["assd"] == pytest.approx(float(asd[i]), rel=1e-5)
        assert r["iou"] == pytest.approx(r["dice"] / (2 - r["dice"]), rel=1e-9)
        assert 0 <= r["surface_dice"] <= 1


def test_metrics_empty_conventions():
    z = np.zeros((4, 4, 4), np.uint8)
    one = z.copy()
    one[1, 1, 1] = 1
    both_empty, pred_empty = _ops.compute_metrics(z, z, [1])[0], _ops.compute_metrics(z, one, [1])[0]
    assert both_empty["dice"] == 1.0
    assert both_empty["hd95"] == 0.0
    assert pred_empty["dice"] == 0.0
    assert np.isnan(pred_empty["hd95"])


def test_postprocess_largest_matches_cc3d(rng):
    import cc3d

    lab = (rng.random((10, 12, 14)) < 0.3).astype(np.uint8) * rng.integers(1, 3, (10, 12, 14)).astype(np.uint8)
    out = _ops.postprocess_largest(lab, [1, 2])
    for c in (1, 2):
        ref = cc3d.largest_k(lab == c, k=1, connectivity=26) > 0
        np.testing.assert_array_equal(out == c, ref)
    assert set(np.unique(out)) <= {0, 1, 2}
    assert ((out == 0) | (out == lab)).all()


def test_resample_image_matches_torch_and_seg_is_argmax(rng):
    x = rng.random((2, 5, 6, 7)).astype(np.float32)
    y = _ops.resample_image(x, (9, 4, 10))
    ref = torch.nn.functional.interpolate(torch.from_numpy(x)[None], size=(9, 4, 10), mode="trilinear",
                                          align_corners=False)[0].numpy()
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)
    lab = rng.integers(0, 3, (5, 6, 7)).astype(np.int16)
    seg = _ops.resample_seg(lab, (9, 4, 10), num_classes=3)
    probs = np.stack([_ops.resample_image((lab == c)[None].astype(np.float32), (9, 4, 10))[0] for c in range(3)])
    assert (seg != probs.argmax(0)).mean() < 0.02  # exact ties may break either way
    assert _ops.resample_seg(lab, (5, 6, 7)) is lab


def test_infer_volume_identity_predictor():
    x = torch.randn(1, 2, 11, 13, 9)
    y = _ops.infer_volume(x, lambda p: p * 2, (5, 6, 4), overlap=0.5, mirror_axes=(2,))
    torch.testing.assert_close(y, x * 2, atol=1e-5, rtol=1e-5)


def test_loss_decreases_and_deep_supervision():
    torch.manual_seed(0)
    loss = _ops.make_loss("dice_focal", deep_supervision_levels=1)
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
    with pytest.raises(ValueError, match="loss must be"):
        _ops.make_loss("mse")


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


# ------------------------------------------------------------------------------------------- kernel vs fallback
def _both(monkeypatch, fn):
    kernel = fn()
    monkeypatch.setenv("MEDSEG_FAST_PIPELINE_FALLBACK", "1")
    fallback = fn()
    monkeypatch.delenv("MEDSEG_FAST_PIPELINE_FALLBACK")
    return kernel, fallback


def test_backends_report():
    b = _ops.backends()
    assert set(b) == {"resample_image", "resample_seg", "postprocess_largest", "compute_metrics", "infer_volume",
                      "make_loss"}
    assert set(b.values()) <= {"kernel", "fallback"}


def test_kernels_agree_with_fallbacks(monkeypatch, rng):
    x = rng.random((2, 7, 9, 8)).astype(np.float32)
    k, f = _both(monkeypatch, lambda: _ops.resample_image(x, (10, 5, 12)))
    np.testing.assert_allclose(np.asarray(k), f, atol=1e-5)
    lab = np.zeros((7, 9, 8), np.int16)
    lab[1:5, 2:8, 1:6] = 1
    lab[4:7, 0:3, 3:8] = 2
    k, f = _both(monkeypatch, lambda: _ops.resample_seg(lab, (10, 5, 12), num_classes=3))
    assert (np.asarray(k) != f).mean() < 0.02  # ties between classes may break differently
    noisy = (rng.random((9, 10, 11)) < 0.35).astype(np.uint8) * rng.integers(1, 3, (9, 10, 11)).astype(np.uint8)
    k, f = _both(monkeypatch, lambda: _ops.postprocess_largest(noisy, [1, 2]))
    np.testing.assert_array_equal(np.asarray(k), f)
    vol = torch.randn(1, 1, 12, 14, 10)
    k, f = _both(monkeypatch, lambda: _ops.infer_volume(vol, lambda p: torch.cat([p, -p], 1), (6, 8, 6)))
    torch.testing.assert_close(torch.as_tensor(k), f, atol=1e-5, rtol=1e-5)


def test_loss_kernel_agrees_with_fallback(monkeypatch):
    torch.manual_seed(3)
    logits = torch.randn(2, 3, 8, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8, 8))
    # full resolution only: the down-sampled deep-supervision targets may pick other voxels (nearest vs
    # nearest-exact), which is a convention, not an error
    k, f = _both(monkeypatch, lambda: _ops.make_loss("dice_ce")(logits, target))
    torch.testing.assert_close(k, f, atol=1e-4, rtol=1e-4)
