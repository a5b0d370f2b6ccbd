"""DistributedDataParallel training: 2 processes on the CPU with gloo, launched by torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import medseg_fast
import pytest
import torch
from medseg_fast.data import PhantomConfig, make_dataset, preprocess_dataset

# The folder holding the medseg_fast that this test imported (the installed package in CI, the
# source tree in a developer build), so the torchrun workers import the same build.
PACKAGE_PARENT = Path(medseg_fast.__file__).resolve().parents[1]


def test_torchrun_two_processes_gloo(tmp_path):
    ds = make_dataset(tmp_path / "ds", 2, 0, seed=1,
                      config=PhantomConfig(fov_mm=(48.0, 160.0, 200.0), spacing=(8.0, 8.0, 8.0)))
    preprocess_dataset(ds, tmp_path / "pp")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(PACKAGE_PARENT), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "medseg_fast.cli", "train", "--data", str(tmp_path / "pp"), "--out", str(tmp_path / "run"),
           "--steps", "3", "--batch-size", "1", "--patch-size", "4", "8", "8", "--channels", "4", "8",
           "--device", "cpu", "--no-progress", "--threads", "1"]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("torchrun training did not finish in 120 s")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("trained 3 steps") == 1  # only rank 0 reports and writes
    ckpt = torch.load(tmp_path / "run" / "checkpoint_final.pt", weights_only=False)
    assert ckpt["step"] == 3
    assert ckpt["final"]
    ddp = ckpt["ddp"]
    assert ddp["world_size"] == 2
    assert ddp["backend"] == "gloo"
    a, b = ddp["param_checksums"]
    assert a == b  # gradients were averaged: both ranks hold identical weights
    assert (tmp_path / "run" / "log.csv").read_text().startswith("step,loss")
