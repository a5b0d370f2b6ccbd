"""`medseg-fast` under bad input (issue 15): corrupt files, a full disk, leftovers of a killed run, an image
given as ground truth, bad arguments: one line `medseg-fast: error: ...`, exit 2, never a traceback, never
exit 0 with a wrong or missing result."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from medseg_fast.cli import main
from medseg_fast.io import Meta, read_image, write_image

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--tiny", "--out", str(out), "--threads", "1"]) == 0
    return out


@pytest.fixture
def rng(request):
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def _one_line_error(capsys, rc, match, code=2):
    err = capsys.readouterr().err
    assert rc == code, err
    assert err.count("\n") == 1, err
    assert err.startswith("medseg-fast: error: "), err
    assert "Traceback" not in err
    assert re.search(match, err), err
    return err


def _corrupt_files(src: Path, folder: Path) -> dict[str, Path]:
    """The broken variants of a good uncompressed / gzipped NIfTI named by what is wrong with them."""
    import gzip

    raw = gzip.decompress(src.read_bytes()) if src.name.endswith(".gz") else src.read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    out = {}

    def put(name, data):
        out[name] = folder / f"{name}.nii" if not name.startswith("gz") else folder / f"{name}.nii.gz"
        out[name].write_bytes(data)

    comp = gzip.compress(raw)
    put("gz_cut", comp[: len(comp) // 2])
    put("cut", raw[: len(raw) - 50])
    put("header_only", raw[:352])
    for name, fmt, off, val in (("vox_offset", "<f", 108, 1e12), ("sizeof_hdr", "<i", 0, 999),
                                ("pixdim_nan", "<f", 80, float("nan")), ("pixdim_zero", "<f", 84, 0.0),
                                ("pixdim_inf", "<f", 88, float("inf"))):
        b = bytearray(raw)
        struct.pack_into(fmt, b, off, val)
        put(name, bytes(b))
    return out


BROKEN = ["gz_cut", "cut", "header_only", "vox_offset", "sizeof_hdr", "pixdim_nan", "pixdim_zero", "pixdim_inf"]
PROBLEM = {"gz_cut": "truncated file", "cut": "truncated file", "header_only": "truncated file",
           "vox_offset": "truncated file", "sizeof_hdr": "sizeof_hdr is 999", "pixdim_nan": r"pixdim\[1\] .* is nan",
           "pixdim_zero": r"pixdim\[2\] .* is 0\.0", "pixdim_inf": r"pixdim\[3\] .* is inf"}


# ------------------------------------------------------------------------------------------- corrupt inputs
@pytest.mark.parametrize("kind", BROKEN)
def test_predict_corrupt_input(demo, tmp_path, capsys, kind):
    bad = _corrupt_files(demo / "dataset" / "imagesTs" / "phantom_002_0000.nii.gz", tmp_path / "in")[kind]
    rc = main(["predict", "--model", str(demo / "model" / "checkpoint_final.pt"), "--input", str(bad),
               "--output", str(tmp_path / "o.nii.gz")])
    _one_line_error(capsys, rc, rf"{re.escape(bad.name)}: .*{PROBLEM[kind]}")
    assert not (tmp_path / "o.nii.gz").exists()


@pytest.mark.parametrize("kind", BROKEN)
def test_evaluate_corrupt_input(demo, tmp_path, capsys, kind):
    gt = demo / "dataset" / "labelsTs" / "phantom_002.nii.gz"
    bad = _corrupt_files(gt, tmp_path / "in")[kind]
    for pred, truth in ((bad, gt), (gt, bad)):
        rc = main(["evaluate", "--pred", str(pred), "--gt", str(truth), "--out", str(tmp_path / "e")])
        _one_line_error(capsys, rc, rf"{re.escape(bad.name)}: .*{PROBLEM[kind]}")
    assert not (tmp_path / "e" / "summary.json").exists()


@pytest.mark.parametrize("kind", ["gz_cut", "header_only", "pixdim_nan"])
def test_preprocess_corrupt_case(demo, tmp_path, capsys, kind):
    ds = tmp_path / "ds"
    shutil.copytree(demo / "dataset", ds)
    img = ds / "imagesTr" / "phantom_001_0000.nii.gz"
    bad = _corrupt_files(img, tmp_path / "bad")[kind]
    img.write_bytes(bad.read_bytes() if bad.name.endswith(".gz") else __import__("gzip").compress(bad.read_bytes()))
    rc = main(["preprocess", "--dataset", str(ds), "--out", str(tmp_path / "pp")])
    _one_line_error(capsys, rc, rf"phantom_001_0000\.nii\.gz: .*{PROBLEM[kind]}")


def _with_nan_voxel(src: Path, dst: Path) -> Path:
    image, meta = read_image(src)
    image = image.astype(np.float32)
    image[tuple(s // 2 for s in image.shape)] = np.nan
    write_image(dst, image, meta)
    return dst


def test_predict_nan_image_one_line(demo, tmp_path, capsys):
    # A NaN voxel would turn every normalized voxel (numpy's statistics rule) and so every
    # prediction into NaN: refused, naming the file.
    bad = _with_nan_voxel(demo / "dataset" / "imagesTs" / "phantom_002_0000.nii.gz", tmp_path / "nan_0000.nii.gz")
    rc = main(["predict", "--model", str(demo / "model" / "checkpoint_final.pt"), "--input", str(bad),
               "--output", str(tmp_path / "o.nii.gz")])
    _one_line_error(capsys, rc, r"nan_0000\.nii\.gz: image holds 1 NaN or infinite voxel")
    assert not (tmp_path / "o.nii.gz").exists()


def test_preprocess_nan_image_one_line(demo, tmp_path, capsys):
    ds = tmp_path / "ds"
    shutil.copytree(demo / "dataset", ds)
    _with_nan_voxel(ds / "imagesTr" / "phantom_001_0000.nii.gz", ds / "imagesTr" / "phantom_001_0000.nii.gz")
    rc = main(["preprocess", "--dataset", str(ds), "--out", str(tmp_path / "pp")])
    _one_line_error(capsys, rc, r"phantom_001_0000\.nii\.gz: image holds 1 NaN or infinite voxel")


# ------------------------------------------------------------------------------------------- full disk
_PREDICT_FULL_DISK = r"""
import resource, signal, sys
from medseg_fast.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
sys.exit(main(sys.argv[2:]))
"""


def test_predict_full_disk_exits_nonzero_and_rerun_redoes(demo, tmp_path):
    """Writes fail for real past a file-size limit: the command names the file and exits 2, no output is
    left that a rerun would skip; without the limit the rerun writes every case."""
    images = tmp_path / "images"
    images.mkdir()
    for f in sorted((demo / "dataset" / "imagesTr").glob("*.nii.gz")):
        a, m = read_image(f)
        write_image(images / f.name, a, m, compress=False)  # .nii.gz name, little compression needed
    out = tmp_path / "pred"
    argv = ["predict", "--model", str(demo / "model" / "checkpoint_final.pt"), "--input", str(images),
            "--output", str(out), "--threads", "1"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    res = subprocess.run([sys.executable, "-c", _PREDICT_FULL_DISK, "300", *argv], capture_output=True, text=True,
                         timeout=300, env=env)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert re.match(r"medseg-fast: error: .*pred/phantom_000\.nii\.gz: write failed", lines[0]), lines[0]
    assert sorted(os.listdir(out)) == []
    # a broken output already there (an earlier full disk without verification) is redone, not skipped
    (out / "phantom_000.nii.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    assert main(argv) == 0
    for f in ("phantom_000.nii.gz", "phantom_001.nii.gz"):
        assert read_image(out / f)[0].shape == read_image(images / f.replace(".nii", "_0000.nii"))[0].shape


def test_predict_disk_fills_midway(demo, tmp_path, monkeypatch, capsys):
    """The first case fits, the second does not: exit 2 naming the second file; the rerun keeps the first
    (it reads back) and writes the second."""
    import errno

    images = demo / "dataset" / "imagesTr"
    out = tmp_path / "pred"
    argv = ["predict", "--model", str(demo / "model" / "checkpoint_final.pt"), "--input", str(images),
            "--output", str(out), "--threads", "1"]
    real_fsync, calls = os.fsync, []

    def fsync_then_full(fd):
        calls.append(fd)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_then_full)
    rc = main(argv)
    _one_line_error(capsys, rc, r"pred/phantom_001\.nii\.gz: write failed \(No space left on device\)")
    assert sorted(os.listdir(out)) == ["phantom_000.nii.gz"]
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert main(argv) == 0
    assert "wrote 1 file(s), skipped 1 existing" in capsys.readouterr().out
    assert read_image(out / "phantom_001.nii.gz")[0].dtype == np.uint8


def test_preprocess_full_disk_leaves_no_case(demo, tmp_path, monkeypatch, capsys):
    import errno

    def enospc(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", enospc)
    rc = main(["preprocess", "--dataset", str(demo / "dataset"), "--out", str(tmp_path / "pp")])
    _one_line_error(capsys, rc, r"plans\.json: write failed \(No space left on device\)")
    assert not (tmp_path / "pp" / "plans.json").exists()
    assert [p.name for p in (tmp_path / "pp").iterdir() if p.name.startswith(".")] == []


def test_checkpoint_write_failure_names_file(demo, tmp_path, monkeypatch, capsys):
    import errno

    pp = demo / "preprocessed"

    def enospc(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", enospc)
    rc = main(["train", "--data", str(pp), "--out", str(tmp_path / "run"), "--steps", "1", "--channels", "4", "8",
               "--patch-size", "16", "16", "16", "--device", "cpu", "--no-progress", "--threads", "1"])
    _one_line_error(capsys, rc, r"checkpoint_last\.pt: write failed \(No space left on device\); nothing was written")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == []


# ------------------------------------------------------------------------------------------- killed runs
def _train_argv(data, out):
    return ["train", "--data", str(data), "--out", str(out), "--steps", "1", "--channels", "4", "8",
            "--patch-size", "16", "16", "16", "--device", "cpu", "--no-progress", "--threads", "1"]


def test_train_ignores_temp_file_of_killed_preprocess(demo, tmp_path, capsys, caplog):
    pp = tmp_path / "pp"
    shutil.copytree(demo / "preprocessed", pp)
    cases = sorted((pp / "cases").glob("[!.]*.npz"))
    # a complete temp file (killed between write and rename) and a truncated one (killed mid-write)
    shutil.copy(cases[0], pp / "cases" / ".phantom_000.tmp-999999999-0123abcd.npz")
    (pp / "cases" / ".phantom_001.tmp-999999999-89abcdef.npz").write_bytes(cases[1].read_bytes()[:100])
    from medseg_fast.data.preprocess import case_files

    assert case_files(pp) == cases
    with caplog.at_level("WARNING"):
        assert main(_train_argv(pp, tmp_path / "run")) == 0
    assert "ignoring 2 temporary file(s) of an interrupted preprocess run" in caplog.text
    # preprocess (the owner of the cache) removes them: their writer is gone
    assert main(["preprocess", "--dataset", str(demo / "dataset"), "--out", str(pp)]) == 0
    assert sorted(p.name for p in (pp / "cases").iterdir()) == [c.name for c in cases]


def test_train_truncated_case_one_line(demo, tmp_path, capsys):
    pp = tmp_path / "pp"
    shutil.copytree(demo / "preprocessed", pp)
    case = sorted((pp / "cases").glob("*.npz"))[0]
    case.write_bytes(case.read_bytes()[:200])
    rc = main(_train_argv(pp, tmp_path / "run"))
    _one_line_error(capsys, rc, rf"{case.name}: not a readable preprocessed case \(BadZipFile")
    # preprocess redoes a broken case instead of skipping it as done
    capsys.readouterr()
    assert main(["preprocess", "--dataset", str(demo / "dataset"), "--out", str(pp)]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("preprocess ")]
    assert [x for x in lines if f" {case.stem} " in x and "(cached)" not in x], lines  # redone
    assert all("(cached)" in x for x in lines if f" {case.stem} " not in x), lines
    assert main(_train_argv(pp, tmp_path / "run")) == 0


# ------------------------------------------------------------------------------------------- evaluate: label maps
def test_evaluate_rejects_ct_as_ground_truth(demo, tmp_path, capsys):
    ct = demo / "dataset" / "imagesTs" / "phantom_002_0000.nii.gz"
    pred = demo / "predictions" / "phantom_002.nii.gz"
    rc = main(["evaluate", "--pred", str(pred), "--gt", str(ct), "--out", str(tmp_path / "e")])
    _one_line_error(capsys, rc, r"phantom_002_0000\.nii\.gz: not a label map: holds negative values")
    assert not (tmp_path / "e" / "summary.json").exists()


def test_evaluate_rejects_image_like_maps(tmp_path, capsys, rng):
    meta = Meta.identity((1.0, 1.0, 1.0))
    gt = rng.integers(0, 3, (8, 8, 8)).astype(np.uint8)
    write_image(tmp_path / "gt.nii.gz", gt, meta)
    write_image(tmp_path / "many.nii.gz", rng.permutation(512).reshape(8, 8, 8).astype(np.int16), meta)
    write_image(tmp_path / "prob.nii.gz", rng.random((8, 8, 8)).astype(np.float32), meta)
    for bad, match in (("many", r"many\.nii\.gz: not a label map: 511 distinct non-zero values"),
                       ("prob", r"prob\.nii\.gz: not a label map: holds non-integer values")):
        rc = main(["evaluate", "--pred", str(tmp_path / f"{bad}.nii.gz"), "--gt", str(tmp_path / "gt.nii.gz"),
                   "--out", str(tmp_path / "e")])
        _one_line_error(capsys, rc, match)
    # integral float label maps are fine
    write_image(tmp_path / "f.nii.gz", gt.astype(np.float32), meta)
    assert main(["evaluate", "--pred", str(tmp_path / "f.nii.gz"), "--gt", str(tmp_path / "gt.nii.gz"),
                 "--out", str(tmp_path / "e"), "--no-overlays"]) == 0


def test_evaluate_undeclared_values(demo, tmp_path, capsys):
    gt = demo / "dataset" / "labelsTs" / "phantom_002.nii.gz"
    g, m = read_image(gt)
    bad = g.copy()
    bad[0, 0, 0] = 9
    write_image(tmp_path / "p.nii.gz", bad, m)
    rc = main(["evaluate", "--pred", str(tmp_path / "p.nii.gz"), "--gt", str(gt), "--out", str(tmp_path / "e"),
               "--labels", str(demo / "dataset" / "dataset.json")])
    _one_line_error(capsys, rc, r"p\.nii\.gz: label values \[9\] are not in the labels of .*dataset\.json \[1, 2, 3, 4\]")
    rc = main(["evaluate", "--pred", str(gt), "--gt", str(tmp_path / "p.nii.gz"), "--out", str(tmp_path / "e"),
               "--classes", "1", "2", "3"])
    _one_line_error(capsys, rc, r"p\.nii\.gz: label values \[4, 9\] are not in --classes \[1, 2, 3\]")
    # without declared classes a class only in the prediction still counts (Dice 0 there), not silently dropped
    assert main(["evaluate", "--pred", str(tmp_path / "p.nii.gz"), "--gt", str(gt), "--out", str(tmp_path / "e"),
                 "--no-overlays"]) == 0
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert summary["per_class"]["9"]["dice"]["mean"] == 0.0


def test_evaluate_shape_mismatch_names_both(tmp_path, capsys):
    write_image(tmp_path / "a.nii.gz", np.zeros((4, 5, 6), np.uint8))
    write_image(tmp_path / "b.nii.gz", np.zeros((4, 6, 5), np.uint8))
    rc = main(["evaluate", "--pred", str(tmp_path / "a.nii.gz"), "--gt", str(tmp_path / "b.nii.gz"),
               "--out", str(tmp_path / "e")])
    _one_line_error(capsys, rc, r"a\.nii\.gz: shape \(4, 5, 6\) differs from the ground truth .*b\.nii\.gz \(4, 6, 5\)")


# ------------------------------------------------------------------------------------------- every subcommand
@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["nosuch"], r"invalid choice: 'nosuch'"),
        (["predict", "--model", "m.pt"], r"predict: the following arguments are required: --input, --output"),
        (["train", "--data", "x", "--out", "y", "--steps", "many"], r"train: argument --steps: invalid int value"),
        (["train", "--data", "{tmp}", "--out", "{tmp}/r", "--lr", "nan"], r"--lr must be > 0 \(and finite\), got nan"),
        (["preprocess", "--dataset", "{tmp}", "--out", "{tmp}/p", "--spacing", "1", "nan", "1"],
         r"--spacing needs 2 or 3 positive values"),
        (["predict", "--model", "{tmp}/m.pt", "--input", "{tmp}", "--output", "{tmp}/o", "--overlap", "1.5"],
         r"--overlap must be in \[0, 1\)"),
        (["predict", "--model", "{tmp}/nope.pt", "--input", "{tmp}", "--output", "{tmp}/o"], r"nope\.pt"),
        (["predict", "--model", "{tmp}/nope.pt", "--input", "{tmp}/none", "--output", "{tmp}/o"], r"none: no such"),
        (["evaluate", "--pred", "{tmp}", "--gt", "{tmp}", "--out", "{tmp}/e", "--tolerance", "nan"],
         r"--tolerance must be finite and > 0 mm, got nan"),
        (["evaluate", "--pred", "{tmp}", "--gt", "{tmp}", "--out", "{tmp}/e", "--classes", "0", "1"],
         r"--classes must be distinct foreground values >= 1"),
        (["evaluate", "--pred", "{tmp}", "--gt", "{tmp}", "--out", "{tmp}/e", "--labels", "{tmp}"],
         r"dataset\.json: missing"),
        (["bench", "--suite", "nosuch"], r"unknown suite\(s\) \['nosuch'\]"),
        (["bench", "--threads", "0", "--suite", "intensity"], r"--threads must be >= 1, got 0"),
        (["demo", "--out", "{tmp}/d", "--steps", "0"], r"--steps must be > 0"),
        (["demo", "--out", "{tmp}/file/d", "--tiny"], r"file"),
        (["train", "--data", "{tmp}/file", "--out", "{tmp}/r"], r"plans\.json"),
    ],
)
def test_every_subcommand_one_line(tmp_path, capsys, argv, match):
    (tmp_path / "file").write_text("not a folder")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse
        rc = exc.code
    _one_line_error(capsys, rc, match)


def test_internal_error_is_one_line_exit_1(monkeypatch, capsys, tmp_path):
    import medseg_fast.data.preprocess as pre

    def boom(*args, **kwargs):
        raise RuntimeError("unexpected\nmulti-line")

    monkeypatch.setattr(pre, "preprocess_dataset", boom)
    rc = main(["preprocess", "--dataset", str(tmp_path), "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert rc == 1
    assert err == ("medseg-fast: internal error: RuntimeError: unexpected multi-line "
                   "(set MEDSEG_FAST_TRACEBACK=1 for the traceback)\n")
    monkeypatch.setenv("MEDSEG_FAST_TRACEBACK", "1")
    with pytest.raises(RuntimeError, match="unexpected"):
        main(["preprocess", "--dataset", str(tmp_path), "--out", str(tmp_path / "p")])


def test_cli_subprocess_no_traceback(tmp_path):
    """The installed entry point, end to end, on a truncated file."""
    p = tmp_path / "x.nii.gz"
    write_image(p, np.ones((4, 4, 4), np.uint8))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    res = subprocess.run([sys.executable, "-m", "medseg_fast.cli", "evaluate", "--pred", str(p), "--gt", str(p),
                          "--out", str(tmp_path / "e")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]
    assert "x.nii.gz: cannot read image (truncated file" in res.stderr
