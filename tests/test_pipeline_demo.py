"""The whole demo at a tiny size through the CLI (every stage, files and metrics.json well formed), then
predict (folder, resume, Ctrl-C safety) and evaluate on its outputs."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from medseg_fast.cli import main
from medseg_fast.io import read_image

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    rc = main(["demo", "--tiny", "--out", str(out), "--threads", "1"])
    assert rc == 0
    return out


def test_demo_outputs(demo, capsys):
    metrics = json.loads((demo / "metrics.json").read_text())
    assert set(metrics) >= {"mean_dice", "dice_per_class", "mean", "timings_s", "total_s", "checkpoint",
                            "predictions", "overlays", "config"}
    assert 0.0 <= metrics["mean_dice"] <= 1.0
    assert set(metrics["dice_per_class"]) == {"liver", "spleen", "kidney_left", "kidney_right"}
    assert list(metrics["timings_s"]) == ["generate", "preprocess", "train", "predict", "postprocess", "evaluate"]
    assert metrics["total_s"] == pytest.approx(sum(metrics["timings_s"].values()), abs=0.01)
    ckpt = torch.load(demo / metrics["checkpoint"], weights_only=False)
    assert ckpt["final"]
    assert ckpt["step"] == 3
    assert ckpt["model_config"]["spatial_dims"] == 3
    assert metrics["predictions"] == ["predictions/phantom_002.nii.gz"]
    pred, pmeta = read_image(demo / metrics["predictions"][0])
    img, imeta = read_image(demo / "dataset" / "imagesTs" / "phantom_002_0000.nii.gz")
    assert pred.shape == img.shape
    assert pred.dtype == np.uint8
    assert pmeta.same_geometry(imeta)
    from PIL import Image

    with Image.open(demo / metrics["overlays"][0]) as im:
        assert im.format == "PNG"
        assert im.mode == "RGB"
        assert im.size[0] >= 256
    summary = json.loads((demo / "evaluation" / "summary.json").read_text())
    assert summary["mean_dice"] == pytest.approx(metrics["mean_dice"])
    with open(demo / "evaluation" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    assert set(rows[0]) == {"case", "class", "name", "dice", "iou", "hd95", "assd", "surface_dice"}
    assert (demo / "model" / "log.csv").exists()
    assert json.loads((demo / "model" / "log.json").read_text())


def test_predict_folder_resumes_and_geometry(demo, tmp_path, capsys):
    ckpt = demo / "model" / "checkpoint_final.pt"
    images = demo / "dataset" / "imagesTr"
    out = tmp_path / "pred"
    assert main(["predict", "--model", str(ckpt), "--input", str(images), "--output", str(out), "--threads", "1"]) == 0
    assert "wrote 2 file(s), skipped 0" in capsys.readouterr().out
    for cid in ("phantom_000", "phantom_001"):
        p, pm = read_image(out / f"{cid}.nii.gz")
        i, im = read_image(images / f"{cid}_0000.nii.gz")
        assert p.shape == i.shape
        assert pm.same_geometry(im)
    (out / "phantom_001.nii.gz").unlink()
    assert main(["predict", "--model", str(ckpt), "--input", str(images), "--output", str(out)]) == 0
    assert "wrote 1 file(s), skipped 1" in capsys.readouterr().out


def test_predict_single_file_mirror(demo, tmp_path):
    ckpt = demo / "model" / "checkpoint_final.pt"
    img = demo / "dataset" / "imagesTs" / "phantom_002_0000.nii.gz"
    assert main(["predict", "--model", str(ckpt), "--input", str(img), "--output", str(tmp_path / "x.mha"),
                 "--mirror", "--no-postprocess"]) == 0
    assert read_image(tmp_path / "x.mha")[0].shape == read_image(img)[0].shape


def test_predict_ctrl_c_leaves_no_partial_output(demo, tmp_path, monkeypatch, capsys):
    import medseg_fast.pipelines.predict as pred_mod

    calls = []
    real = pred_mod.write_image

    def interrupt_during_write(path, array, meta):
        calls.append(path)
        if len(calls) == 2:
            import SimpleITK as sitk

            real_sitk_write = sitk.WriteImage

            def boom(*args, **kwargs):
                real_sitk_write(*args, **kwargs)  # temp file fully written, then Ctrl-C
                raise KeyboardInterrupt

            monkeypatch.setattr(sitk, "WriteImage", boom)
        return real(path, array, meta)

    monkeypatch.setattr(pred_mod, "write_image", interrupt_during_write)
    out = tmp_path / "pred"
    rc = main(["predict", "--model", str(demo / "model" / "checkpoint_final.pt"),
               "--input", str(demo / "dataset" / "imagesTr"), "--output", str(out)])
    assert rc == 130
    assert "interrupted" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["phantom_000.nii.gz"]  # the finished case only


def test_evaluate_cli(demo, tmp_path, capsys):
    assert main(["evaluate", "--pred", str(demo / "predictions"), "--gt", str(demo / "dataset" / "labelsTs"),
                 "--out", str(tmp_path / "ev"), "--labels", str(demo / "dataset" / "dataset.json"),
                 "--images", str(demo / "dataset" / "imagesTs")]) == 0
    assert "mean Dice" in capsys.readouterr().out
    s = json.loads((tmp_path / "ev" / "summary.json").read_text())
    for name in ("liver", "spleen", "kidney_left", "kidney_right"):
        d = s["per_class"][name]["dice"]
        assert 0 <= d["mean"] <= 1
        assert d["std"] == 0.0
        assert d["n"] == 1
    assert (tmp_path / "ev" / "overlays" / "phantom_002.png").exists()


def test_evaluate_perfect_and_2d_voc(tmp_path):
    from medseg_fast.io import Meta, write_image
    from medseg_fast.pipelines.evaluate import evaluate, voc_colormap

    lab = np.zeros((20, 30), np.uint8)
    lab[3:10, 4:20] = 1
    lab[12:18, 5:9] = 15
    for d in ("p", "g"):
        write_image(tmp_path / d / "case.nrrd", lab, Meta.identity((1.0, 1.0)))
    s = evaluate(tmp_path / "p", tmp_path / "g", tmp_path / "ev")
    assert s["mean_dice"] == 1.0
    assert s["mean"]["hd95"] == 0.0
    assert s["mean"]["surface_dice"] == 1.0
    from PIL import Image

    png = np.asarray(Image.open(tmp_path / "ev" / "overlays" / "case.png"))
    cmap = voc_colormap()
    assert tuple(cmap[1]) == (128, 0, 0)
    assert tuple(cmap[15]) == (192, 128, 128)
    np.testing.assert_array_equal(png[5, 10], cmap[1])
    np.testing.assert_array_equal(png[14, 6], cmap[15])


def test_evaluate_errors(demo, tmp_path, capsys):
    pred = tmp_path / "p"
    pred.mkdir()
    from medseg_fast.io import Meta, write_image

    write_image(pred / "phantom_002.nii.gz", np.zeros((3, 3, 3), np.uint8), Meta.identity((1.0, 1.0, 1.0)))
    rc = main(["evaluate", "--pred", str(pred), "--gt", str(demo / "dataset" / "labelsTs"), "--out", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "phantom_002.nii.gz: shape (3, 3, 3) differs from the ground truth" in err
    rc = main(["evaluate", "--pred", str(pred), "--gt", str(demo / "dataset" / "labelsTr"), "--out", str(tmp_path / "e")])
    assert rc == 2
    assert "no prediction for case(s) ['phantom_000', 'phantom_001']" in capsys.readouterr().err


def test_train_validation_and_resume(demo, tmp_path):
    from medseg_fast.pipelines.train import TrainConfig, train

    cfg = TrainConfig(preprocessed=str(demo / "preprocessed"), out=str(tmp_path / "run"), channels=(4, 8),
                      patch_size=(8, 16, 16), batch_size=1, steps=2, val_fraction=0.5, val_every=1, log_every=1,
                      checkpoint_every=1, device="cpu", loss="dice_focal", arch="AttentionUNet")
    first = train(cfg)
    assert first["steps"] == 2
    assert all(0.0 <= e["val_dice"] <= 1.0 for e in first["history"])
    cfg.steps = 4
    second = train(cfg)  # resumes from checkpoint_last.pt at step 2
    assert [e["step"] for e in second["history"]] == [1, 2, 3, 4]
    ckpt = torch.load(tmp_path / "run" / "checkpoint_final.pt", weights_only=False)
    assert ckpt["step"] == 4
    assert ckpt["model_config"]["arch"] == "AttentionUNet"
    assert ckpt["model_config"]["attention"] is True


def test_predict_unwritable_output(demo, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    img = demo / "dataset" / "imagesTs" / "phantom_002_0000.nii.gz"
    rc = main(["predict", "--model", str(demo / "model" / "checkpoint_final.pt"), "--input", str(img),
               "--output", str(blocker / "sub" / "mask.nii.gz")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "mask.nii.gz: cannot create the output folder" in err
    assert err.count("\n") == 1
    rc = main(["predict", "--model", str(demo / "model" / "checkpoint_final.pt"), "--input", str(img),
               "--output", str(tmp_path / "mask.txt")])
    assert rc == 2
    assert "mask.txt: output must be an image file" in capsys.readouterr().err


def test_train_config_mismatch_errors(demo, tmp_path, capsys):
    base = ["train", "--data", str(demo / "preprocessed"), "--out", str(tmp_path / "run"), "--steps", "1",
            "--batch-size", "1", "--device", "cpu", "--no-progress"]
    assert main([*base, "--channels", "4", "8", "--patch-size", "8", "16", "16"]) == 0
    capsys.readouterr()
    assert main([*base, "--channels", "4", "8", "16", "--patch-size", "8", "16", "16"]) == 2
    err = capsys.readouterr().err
    assert "checkpoint_last.pt: trained with another model or patch size" in err
    assert err.count("\n") == 1
    assert main([*base, "--channels", "4", "8", "--patch-size", "8", "16"]) == 2
    assert "patch_size (8, 16) must have 3 positive sizes" in capsys.readouterr().err
