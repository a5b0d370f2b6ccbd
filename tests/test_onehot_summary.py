"""The compiled one-hot reading behind the MONAI metric classes (_C.onehot_summary) against numpy:
per (item, channel) counts of nonzero / == 1 / zero values, the label map of the == 1 channels and
the count of the 1s beyond the first in each voxel; any dtype, channel slices, thread counts."""

from __future__ import annotations

import numpy as np
import pytest

import medseg_fast as mf
from medseg_fast import _backend as B
from medseg_fast import _ext

C = _ext.cpu_module()


def _summary(x: np.ndarray, float32_ones: bool = False, labels: bool = True):
    b, k, n = x.shape
    return C.onehot_summary([b, k, n], B.describe(B.view(x, "x")), float32_ones, labels)


def _reference(x: np.ndarray, float32_ones: bool = False):
    v = x.astype(np.float32) if (float32_ones and x.dtype == np.float64) else x
    one = v == 1
    counts = np.stack([np.count_nonzero(x != 0, axis=2), np.count_nonzero(one, axis=2),
                       np.count_nonzero(x == 0, axis=2)], axis=-1)
    b, k, n = x.shape
    code = (np.arange(b)[:, None] * k + np.arange(k)[None, :] + 1)[..., None]
    lab = np.where(one, code, 0).max(axis=1).astype(np.int32)
    conflicts = np.maximum(one.sum(axis=1) - 1, 0).sum(axis=1)   # the extra 1s beyond the first
    return counts, lab, conflicts


def _one_hot(rng, b, k, n, dtype, overlap: float = 0.0):
    lab = rng.integers(0, k + 1, (b, n))           # k + 1: some voxels in no channel
    x = (lab[:, None, :] == np.arange(k)[None, :, None])
    if overlap:
        x |= rng.random(x.shape) < overlap
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.int8, np.int16, np.uint16, np.int32, np.int64,
                                   np.float32, np.float64])
@pytest.mark.parametrize(("b", "k", "n"), [(1, 1, 1), (2, 5, 8191), (3, 4, 8193), (1, 83, 20000), (2, 3, 0)])
def test_counts_and_labels(dtype, b, k, n, rng):
    x = _one_hot(rng, b, k, n, dtype)
    counts, lab, conflicts = _summary(x)
    ref_counts, ref_lab, ref_conf = _reference(x)
    np.testing.assert_array_equal(counts, ref_counts)
    if n:
        np.testing.assert_array_equal(lab, ref_lab)
    np.testing.assert_array_equal(conflicts, ref_conf)
    assert not conflicts.any()


def test_overlapping_and_non_binary_values(rng):
    x = _one_hot(rng, 2, 6, 30000, np.float32, overlap=0.05)
    x[0, 1, :50] = 0.5
    x[1, 2, 7] = np.nan
    x[1, 3, 9] = -1.0
    counts, _, conflicts = _summary(x)
    ref_counts, _, ref_conf = _reference(x)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_array_equal(conflicts, ref_conf)
    assert conflicts.all()


def test_float32_ones_for_float64(rng):
    x = _one_hot(rng, 1, 3, 1000, np.float64) * (1 + 1e-9)
    assert _summary(x, float32_ones=False)[0][..., 1].sum() == 0
    counts, lab, _ = _summary(x, float32_ones=True)
    ref_counts, ref_lab, _ = _reference(x, float32_ones=True)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_array_equal(lab, ref_lab)


def test_channel_slice_and_no_labels(rng):
    full = _one_hot(rng, 2, 7, 9000, np.float32)
    sub = full[:, 2:6]                               # strided view: the kernel reads it in place
    counts, lab, conflicts = _summary(sub, labels=False)
    np.testing.assert_array_equal(counts, _reference(np.ascontiguousarray(sub))[0])
    assert lab.size == 0


def test_threads_do_not_change_results(rng):
    x = _one_hot(rng, 3, 9, 50001, np.float32, overlap=0.01)
    runs, old = [], mf.get_num_threads()
    try:
        for t in (1, 2, 3):
            mf.set_num_threads(t)
            runs.append(_summary(x))
    finally:
        mf.set_num_threads(old)
    for r in runs[1:]:
        for a, b in zip(runs[0], r):
            np.testing.assert_array_equal(a, b)


def test_bad_arguments(rng):
    x = _one_hot(rng, 1, 2, 10, np.float32)
    with pytest.raises(ValueError, match="contiguous"):
        C.onehot_summary([1, 2, 5], B.describe(B.view(x[:, :, ::2], "x")), False, True)
    with pytest.raises(ValueError, match="B, K, N"):
        C.onehot_summary([1, 2], B.describe(B.view(x, "x")), False, True)
