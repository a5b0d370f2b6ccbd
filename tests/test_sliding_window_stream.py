"""Sliding window, CPU fast paths: labels written by each voxel's last window (streaming argmax
without a finalize pass), dynamic row scheduling, and huge-page backed buffers."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import medseg_fast
import numpy as np
import pytest
import torch
from medseg_fast import SlidingWindow, sliding_window_inference
from medseg_fast import _backend as B
from medseg_fast import sliding_window as sw_module

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def quantized_predictions(rng, plan, channels, nan_fraction=0.0):
    """Predictions with few distinct values (so channels tie) and optionally some NaNs."""
    preds = (rng.integers(0, 3, (len(plan), channels) + plan.patch_size) / 2).astype(np.float32)
    if nan_fraction:
        preds[rng.random(preds.shape) < nan_fraction] = np.nan
    return preds


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "int64"])
@pytest.mark.parametrize(("image", "patch", "mode", "positions"), [
    ((17, 23, 12), (8, 8, 8), "constant", "monai"),
    ((13, 7, 29), (6, 7, 11), "gaussian", "monai"),      # separable importance rows
    ((11, 19, 5), (8, 8, 8), "gaussian", "nnunet"),      # full importance map, padded x axis
])
def test_fused_labels_equal_argmax_of_probabilities(dtype, image, patch, mode, positions, rng):
    plan = SlidingWindow(image, patch, overlap=0.5, mode=mode, positions=positions)
    preds = quantized_predictions(rng, plan, 4, nan_fraction=0.002)
    acc = np.empty((1, 4) + image, np.float32)   # never zeroed: first windows assign
    holder = np.full((1,) + image[:-1] + (2 * image[-1],), 99, dtype)
    labels = holder[..., ::2]                      # a strided destination
    for start in range(0, len(plan), 3):           # several calls, windows in order
        plan.scatter_add(acc, preds[start:start + 3], start, _in_order=(True, True), _labels=labels)
    expected = np.zeros((1, 4) + image, np.float32)
    plan.scatter_add(expected, preds, 0)
    expected = plan.finalize(expected)
    np.testing.assert_array_equal(acc, expected)
    np.testing.assert_array_equal(labels, np.argmax(expected, axis=1).astype(dtype))
    assert (holder[..., 1::2] == 99).all()


def test_fused_labels_reject_non_label_dtypes(rng):
    plan = SlidingWindow((9, 9), (4, 4), mode="constant")
    preds = quantized_predictions(rng, plan, 2)
    acc = np.empty((1, 2, 9, 9), np.float32)
    with pytest.raises(ValueError, match="label dtype float32"):
        plan.scatter_add(acc, preds, 0, _in_order=(True, True), _labels=np.zeros((1, 9, 9), np.float32))


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_streaming_labels_and_probabilities_independent_of_threads(threads, rng, monkeypatch):
    monkeypatch.setattr(sw_module, "_BLOCK", 8)   # several column blocks per plane
    x = torch.from_numpy(rng.random((2, 1, 41, 30, 23), dtype=np.float32))
    weight = torch.from_numpy(rng.standard_normal((4, 1, 3, 3, 3)).astype(np.float32))

    def predict(p):
        return torch.nn.functional.conv3d(p, weight, padding=1).softmax(1)

    previous = medseg_fast.get_num_threads()
    results = []
    try:
        for n in (1, threads):
            medseg_fast.set_num_threads(n)
            results.append([sliding_window_inference(x, predict, (16, 12, 8), batch_size=bs, argmax=argmax)
                            for bs in (1, 3) for argmax in (False, True)])
    finally:
        medseg_fast.set_num_threads(previous)
    for a, b in zip(*results):
        assert torch.equal(a, b)
    probs, labels = results[0][0], results[0][1]
    torch.testing.assert_close(labels.long(), probs.argmax(1), rtol=0, atol=0)


@pytest.mark.parametrize(("shape", "patch", "bs"), [((1, 1, 37, 21, 30), (16, 8, 16), 2), ((2, 1, 9, 50), (4, 16), 5)])
def test_fused_streaming_equals_finalize_streaming(shape, patch, bs, rng, monkeypatch):
    x = torch.from_numpy(rng.random(shape, dtype=np.float32))

    def predict(p):
        q = torch.cat([p, 1 - p, (p - 0.5).abs()], dim=1)
        return torch.round(q * 4) / 4   # ties between channels

    fused = sliding_window_inference(x, predict, patch, batch_size=bs, argmax=True)
    monkeypatch.setattr(sw_module, "_FUSED_LABELS", False)
    slabs = sliding_window_inference(x, predict, patch, batch_size=bs, argmax=True)
    assert fused.dtype == slabs.dtype == torch.uint8
    assert torch.equal(fused, slabs)


def _spy_blocks(monkeypatch) -> list:
    """The `_block` argument of every scatter_add call, recorded in the returned list."""
    used = []
    scatter_add = SlidingWindow.scatter_add

    def spy(self, *args, _block=0, **kwargs):
        used.append(_block)
        return scatter_add(self, *args, _block=_block, **kwargs)

    monkeypatch.setattr(SlidingWindow, "scatter_add", spy)
    return used


# ----------------------------------------------------------------------------- blocked accumulator planes
@pytest.mark.parametrize("block", [3, 8, 64])
@pytest.mark.parametrize(("shape", "patch", "bs", "mirror"), [
    ((2, 1, 19, 23, 37), (8, 16, 16), 3, None),    # 37 columns: ragged last block
    ((1, 2, 41, 30), (16, 12), 1, (1,)),           # 2-D: the ring axis is the kernel's y axis
    ((1, 1, 9, 5, 70), (4, 4, 32), 2, None),       # image narrower than the patch on y
])
def test_blocked_planes_equal_row_major(block, shape, patch, bs, mirror, rng, monkeypatch):
    x = torch.from_numpy(rng.random(shape, dtype=np.float32))
    weight = torch.from_numpy(rng.standard_normal((4, shape[1]) + (3,) * (len(shape) - 2)).astype(np.float32))
    conv = torch.nn.functional.conv3d if len(shape) == 5 else torch.nn.functional.conv2d

    def predict(p):
        return conv(p, weight, padding=1).softmax(1)

    used = _spy_blocks(monkeypatch)
    results = []
    for b in (0, block):
        monkeypatch.setattr(sw_module, "_BLOCK", b)
        results.append([sliding_window_inference(x, predict, patch, batch_size=bs, mirror_axes=mirror, argmax=am,
                                                 positions=pos) for am in (False, True) for pos in ("nnunet", "monai")])
    assert block in used   # the blocked path ran
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_blocked_planes_only_while_calls_hold_less_than_a_row_of_windows(monkeypatch):
    used = _spy_blocks(monkeypatch)
    x = torch.rand(1, 1, 20, 24, 200)   # 3 windows along x with a 100-wide patch
    for bs, expected in ((2, sw_module._BLOCK), (3, 0)):
        used.clear()
        sliding_window_inference(x, lambda p: p, (8, 8, 100), batch_size=bs)
        assert set(used) == {expected}


@pytest.mark.parametrize("block", [4, 16])
def test_blocked_scatter_then_unblock_equals_row_major(block, rng):
    plan = SlidingWindow((13, 11, 45), (8, 8, 20), overlap=0.4, positions="monai")
    preds = rng.random((2 * len(plan), 3) + plan.patch_size, dtype=np.float32)
    expected = np.zeros((2, 3) + plan.image_size, np.float32)
    plan.scatter_add(expected, preds, 0)
    expected = plan.finalize(expected)
    acc = np.empty_like(expected)
    for start in range(0, 2 * len(plan), 5):
        plan.scatter_add(acc, preds[start:start + 5], start, _in_order=(True, True), _block=block)
    plan._unblock(acc, block)
    np.testing.assert_array_equal(acc, expected)


def test_blocked_accumulator_needs_contiguous_planes_and_no_weights(rng):
    plan = SlidingWindow((9, 20), (4, 8), mode="constant")
    preds = quantized_predictions(rng, plan, 2)
    acc = np.zeros((1, 2, 9, 20), np.float32)
    with pytest.raises(ValueError, match="blocked accumulator"):
        plan.scatter_add(acc, preds, 0, weights=np.zeros((1, 9, 20), np.float32), _block=4)
    strided = np.zeros((1, 2, 9, 40), np.float32)[..., ::2]
    with pytest.raises(ValueError, match="blocked accumulator"):
        plan.scatter_add(strided, preds, 0, _block=4)


# ----------------------------------------------------------------------------- huge pages
def test_advise_huge_pages_sizes():
    assert B.advise_huge_pages(np.empty(1 << 20, np.uint8)) == 0           # below the threshold
    assert B.advise_huge_pages(torch.empty(1000)) == 0
    advised = B.advise_huge_pages(np.empty(9 << 20, np.uint8))
    assert advised % (2 << 20) == 0
    assert advised <= 9 << 20
    if sys.platform.startswith("linux") and THP.exists() and "[never]" not in THP.read_text():
        assert advised >= 6 << 20   # the 2 MiB-aligned interior of 9 MiB holds at least 3 huge pages
    # The C++ helper on its own: misaligned and tiny ranges are trimmed or ignored, never an error.
    module = medseg_fast._ext.cpu_module()
    assert module.advise_huge_pages(0, 0) == 0
    assert module.advise_huge_pages(1, 3 << 20) in (0, 2 << 20)


def test_allocate_keeps_kind_dtype_and_shape():
    like = B.view(torch.empty(1))
    out = B.allocate(like, (3, 64, 64, 64), "float32")
    assert isinstance(out, torch.Tensor)
    assert out.dtype == torch.float32
    assert out.shape == (3, 64, 64, 64)
    out = B.allocate(like, (2, 80, 70, 60), "float32", axis_order=(1, 2, 3, 0))
    assert out.shape == (2, 80, 70, 60)
    assert out.stride() == (1, 70 * 60 * 2, 60 * 2, 2)


@pytest.mark.skipif(not sys.platform.startswith("linux") or not THP.exists()
                    or not any(m in THP.read_text() for m in ("[madvise]", "[always]")),
                    reason="needs Linux transparent huge pages in madvise or always mode")
def test_allocate_large_torch_buffer_takes_few_page_faults():
    like = B.view(torch.empty(1))
    nbytes = 64 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    out = B.allocate(like, (nbytes // 4,), "float32")
    out.fill_(1.0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < (nbytes >> 12) // 4, f"{faults} page faults for a fresh {nbytes >> 20} MiB buffer"
