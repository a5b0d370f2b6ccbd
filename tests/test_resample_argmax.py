"""medseg_fast.resample_argmax: equal to resample(...).argmax(0) (bit-identical class values), to the
float64 reference except near-ties, NaN never wins, thread-count invariant, and bad input is refused."""

from __future__ import annotations

import medseg_fast as mf
import numpy as np
import pytest
import torch
from conftest import assert_on_device, load_volume, to_device, to_numpy
from medseg_fast.reference import resample_argmax as ref


def argmax_no_nan(values) -> np.ndarray:
    """numpy argmax with the documented NaN rule (NaN counts as -inf)."""
    if isinstance(values, torch.Tensor):
        values = values.double()   # numpy has no bfloat16; float64 holds every value exactly
    v = np.asarray(to_numpy(values), dtype=np.float64)
    return np.argmax(np.where(np.isnan(v), -np.inf, v), axis=0)


def check_against_resample(scores, out_shape=None, **kw) -> np.ndarray:
    labels = mf.resample_argmax(scores, out_shape, **kw)
    expected = argmax_no_nan(mf.resample(scores, out_shape, **kw))
    np.testing.assert_array_equal(to_numpy(labels).astype(np.int64), expected)
    return to_numpy(labels)


def random_case(rng, ndim: int, classes: int):
    shape = tuple(int(rng.integers(1, 14)) for _ in range(ndim))
    out = tuple(int(rng.integers(1, 2 * n + 6)) for n in shape)
    # Smooth-ish scores with well separated values: near-ties are rare against float64.
    scores = rng.random((classes, *shape), dtype=np.float32)
    return scores, out


@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_equals_resample_then_argmax(rng, order, ndim):
    for classes in (2, 3, 7, 40):
        scores, out = random_case(rng, ndim, classes)
        labels = check_against_resample(scores, out, order=order)
        lowres = None
        want = ref.resample_argmax(scores, out, order=order, lowres_axis=lowres)
        gap = ref.top_two_gap(scores, out, order=order, lowres_axis=lowres)
        ok = (labels == want) | (gap < 1e-5)
        assert ok.all(), f"{(~ok).sum()} voxels differ from the float64 reference beyond near-ties"


@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize("separate", [None, True, False])
def test_anisotropic_separate_z(rng, order, separate):
    classes = int(rng.integers(2, 12))
    shape = (int(rng.integers(2, 6)), int(rng.integers(5, 17)), int(rng.integers(5, 19)))
    scores = rng.random((classes, *shape), dtype=np.float32)
    spacing, new_spacing = (5.0, 0.9, 1.1), (1.5, 0.6, 1.4)
    labels = check_against_resample(scores, spacing=spacing, new_spacing=new_spacing, order=order, separate_z=separate)
    lowres = 0 if separate in (None, True) else None
    out = labels.shape
    want = ref.resample_argmax(scores, out, order=order, lowres_axis=lowres)
    gap = ref.top_two_gap(scores, out, order=order, lowres_axis=lowres)
    assert ((labels == want) | (gap < 1e-5)).all()
    # separate z along another axis, and with order_z 1
    check_against_resample(scores, out, order=order, separate_z=2, order_z=1)


def test_many_classes_int16_and_out_dtype(rng):
    scores = rng.random((200, 5, 6, 7), dtype=np.float32)
    labels = check_against_resample(scores, (9, 4, 11), order=1)
    assert labels.dtype == np.uint8
    scores = rng.random((300, 3, 4, 5), dtype=np.float32)
    labels = check_against_resample(scores, (5, 7, 3), order=1)
    assert labels.dtype == np.int16 and labels.max() > 255
    out = mf.resample_argmax(scores[:20], (5, 7, 3), out_dtype="int32")
    assert out.dtype == np.int32
    with pytest.raises(ValueError, match="out_dtype=uint8 cannot hold 300 classes"):
        mf.resample_argmax(scores, (5, 7, 3), out_dtype=np.uint8)


@pytest.mark.parametrize("dtype", ["float64", "float16"])
def test_other_dtypes(rng, dtype):
    scores = rng.random((5, 6, 7, 8)).astype(dtype)
    check_against_resample(scores, (4, 13, 9), order=1)
    check_against_resample(scores, (4, 13, 9), order=3)
    t = torch.from_numpy(rng.random((4, 5, 6, 7), dtype=np.float32)).to(torch.bfloat16)
    check_against_resample(t, (8, 3, 11), order=1)


def test_strided_views_and_input_unchanged(rng):
    base = rng.random((9, 12, 10, 4), dtype=np.float32)
    view = base.transpose(3, 0, 2, 1)[:, ::2, :, ::-1]   # (4, 5, 10, 12), negative stride
    before = base.copy()
    check_against_resample(view, (7, 13, 5), order=1)
    check_against_resample(view, (7, 13, 5), order=3)
    np.testing.assert_array_equal(base, before)


def test_torch_in_torch_out(rng, device):
    scores = to_device(torch.from_numpy(rng.random((6, 7, 9, 8), dtype=np.float32)), device)
    labels = mf.resample_argmax(scores, (11, 5, 12), order=1)
    assert_on_device(labels, device, like=scores)
    assert labels.dtype == torch.uint8
    np.testing.assert_array_equal(to_numpy(labels), argmax_no_nan(mf.resample(scores, (11, 5, 12), order=1)))


def test_nan_never_wins_and_ties_go_low():
    scores = np.zeros((3, 4, 4, 4), np.float32)
    scores[1] = np.nan
    scores[2, :2] = 1.0
    labels = mf.resample_argmax(scores, (6, 5, 7), order=1)
    # class 1 is NaN everywhere: never chosen; class 0 and 2 tie (0.0) where 2 is not 1.0
    assert not (labels == 1).any()
    assert set(np.unique(labels)) == {0, 2}
    np.testing.assert_array_equal(labels, argmax_no_nan(mf.resample(scores, (6, 5, 7), order=1)))
    all_nan = np.full((4, 3, 3, 3), np.nan, np.float32)
    assert (mf.resample_argmax(all_nan, (5, 5, 5)) == 0).all()
    ties = np.ones((5, 3, 4, 5), np.float32)
    assert (mf.resample_argmax(ties, (7, 2, 9), order=3) == 0).all()


def test_thread_count_invariance(rng):
    scores = rng.random((9, 17, 23, 21), dtype=np.float32)
    previous = mf.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            mf.set_num_threads(n)
            results.append([mf.resample_argmax(scores, (31, 12, 40), order=o) for o in (1, 3)])
    finally:
        mf.set_num_threads(previous)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_real_volume_probabilities():
    ct, spacing = load_volume("ct_chest_lung2_crop_hu.nii.gz")
    ct = ct.astype(np.float32)
    # soft class maps from HU bands (air, lung, soft tissue, bone), at a coarse "network" spacing
    centers = np.array([-1000.0, -700.0, 40.0, 700.0], np.float32)
    coarse = mf.resample(ct, spacing=spacing, new_spacing=tuple(s * 1.7 for s in spacing), order=1)
    logits = -np.abs(coarse[None] - centers[:, None, None, None]) / 150.0
    probs = torch.softmax(torch.from_numpy(logits), 0).numpy()
    labels = check_against_resample(probs, ct.shape, order=1)
    assert len(np.unique(labels)) >= 3
    check_against_resample(probs[:, ::2], (ct.shape[0] // 2 + 3, *ct.shape[1:]), order=3)


def test_bad_input(rng):
    scores = rng.random((3, 4, 5, 6), dtype=np.float32)
    with pytest.raises(ValueError, match="at least 2 classes"):
        mf.resample_argmax(scores[:1], (4, 5, 6))
    with pytest.raises(ValueError, match="spacing"):
        mf.resample_argmax(scores, spacing=(1.0, np.nan, 1.0), new_spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="new_spacing"):
        mf.resample_argmax(scores, spacing=(1.0, 1.0, 1.0), new_spacing=(1.0, np.inf, 1.0))
    with pytest.raises(ValueError, match="spacing"):
        mf.resample_argmax(scores, spacing=(1.0, 1.0), new_spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="out_shape"):
        mf.resample_argmax(scores, (4, 5))
    with pytest.raises(ValueError, match="order"):
        mf.resample_argmax(scores, (4, 5, 6), order=2)
    with pytest.raises(ValueError, match="order"):
        mf.resample_argmax(scores, (4, 5, 6), order=True)
    with pytest.raises(ValueError, match="out_dtype"):
        mf.resample_argmax(scores, (4, 5, 6), out_dtype="float32")
    with pytest.raises(TypeError, match="floating dtype"):
        mf.resample_argmax(scores.astype(np.int16), (4, 5, 6))
    with pytest.raises(ValueError, match="anisotropy_threshold"):
        mf.resample_argmax(scores, (4, 5, 6), anisotropy_threshold=float("nan"))
