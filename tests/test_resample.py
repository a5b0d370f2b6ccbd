"""Parity of medseg_fast.resample / resample_labels with the reference, skimage, torch and
nnU-Net's resampling path (rebuilt from skimage + scipy in medseg_fast.reference.resample)."""

from __future__ import annotations

import medseg_fast as mf
import numpy as np
import pytest
import torch
from conftest import assert_on_device, load_volume, to_device, to_numpy
from medseg_fast.reference import resample as ref
from skimage.transform import resize

SHAPES = [(1,), (7,), (1, 5), (13, 1), (5, 7), (1, 1, 1), (3, 1, 5), (7, 11, 13), (2, 3, 17), (1, 9, 4)]


def skimage_resize(x: np.ndarray, out_shape, order: int) -> np.ndarray:
    """What nnU-Net calls, per channel (x is (C, *spatial))."""
    return np.stack([resize(c.astype(np.float64), out_shape, order, mode="edge", anti_aliasing=False) for c in x])


def assert_close(actual, expected, scale, rtol=1e-4):
    actual = np.asarray(actual, dtype=np.float64)
    err = np.max(np.abs(actual - expected)) if actual.size else 0.0
    assert err <= rtol * max(scale, 1e-12), f"max error {err} > {rtol} * {scale}"


def random_out_shape(rng, shape):
    return tuple(int(rng.integers(1, 2 * n + 6)) for n in shape)


# ----------------------------------------------------------------------------- reference vs peers
@pytest.mark.parametrize("order", [0, 1, 3])
def test_reference_equals_skimage(rng, order):
    for shape in SHAPES:
        x = rng.normal(size=shape) * 100
        out = random_out_shape(rng, shape)
        expected = resize(x, out, order, mode="edge", anti_aliasing=False)
        np.testing.assert_allclose(ref.resample(x, out, order=order, channels=False), expected, rtol=0, atol=1e-9)


def test_reference_separate_z_equals_nnunet_path(rng):
    x = rng.normal(size=(2, 5, 6, 7)) * 10
    for axis in range(3):
        for order in (1, 3):
            out = (9, 4, 11)
            expected = ref.nnunet_resample_data_or_seg(x, out, axis=axis, order=order)
            np.testing.assert_allclose(ref.resample(x, out, order=order, lowres_axis=axis), expected, atol=1e-9)


# ----------------------------------------------------------------------------- kernel vs peers
@pytest.mark.parametrize("order", [0, 1, 3])
def test_matches_skimage_random_shapes(rng, order, device):
    for shape in SHAPES + [tuple(int(v) for v in rng.integers(1, 12, rng.integers(1, 4))) for _ in range(8)]:
        x = (rng.normal(size=(2,) + shape) * 300).astype(np.float32)
        out = random_out_shape(rng, shape)
        expected = skimage_resize(x, out, order)
        got = mf.resample(to_device(x, device), out, order=order)
        assert_on_device(got, device)
        if device != "cpu":   # and the CPU kernels to float32 rounding
            cpu = mf.resample(x, out, order=order).astype(np.float64)
            assert_close(to_numpy(got), cpu, np.abs(x).max(), 1e-5)
        got = to_numpy(got)
        assert got.shape == (2,) + out
        assert got.dtype == np.float32
        assert_close(got, expected, np.abs(x).max())
        assert_close(got, ref.resample(x, out, order=order), np.abs(x).max())


@pytest.mark.parametrize("order", [0, 1, 3])
def test_up_and_down_sampling_exact_factors(rng, order):
    x = rng.normal(size=(12, 16, 10))
    for out in [(24, 32, 20), (6, 8, 5), (4, 48, 3), (12, 16, 10)]:
        expected = resize(x, out, order, mode="edge", anti_aliasing=False)
        assert_close(mf.resample(x, out, order=order), expected, np.abs(x).max(), rtol=1e-10)


@pytest.mark.parametrize("spatial", [1, 2, 3])
def test_order1_matches_torch_interpolate(rng, spatial, device):
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[spatial]
    for _ in range(4):
        shape = (2, 3) + tuple(int(v) for v in rng.integers(1, 15, spatial))
        out = tuple(int(v) for v in rng.integers(1, 20, spatial))
        x = torch.from_numpy(rng.normal(size=shape).astype(np.float32)).to(device)
        expected = torch.nn.functional.interpolate(x, size=out, mode=mode, align_corners=False)
        got = mf.resample(x, out, order=1)
        assert isinstance(got, torch.Tensor)
        assert got.device == x.device
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_order0_matches_torch_nearest_exact_on_integer_factors(rng):
    x = torch.from_numpy(rng.integers(0, 1000, (1, 2, 8, 12, 6)).astype(np.int32))
    for out in [(16, 24, 12), (4, 6, 3), (8, 3, 18)]:
        expected = torch.nn.functional.interpolate(x.float(), size=out, mode="nearest-exact").to(torch.int32)
        got = mf.resample(x, out, order=0)
        assert got.dtype == torch.int32
        assert torch.equal(got, expected)


# ----------------------------------------------------------------------------- separate z (nnU-Net)
@pytest.mark.parametrize("order", [1, 3])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_separate_z_matches_nnunet(rng, axis, order, device):
    shape = [9, 10, 11]
    shape[axis] = 4
    x = (rng.normal(size=(2, *shape)) * 100).astype(np.float32)
    spacing = [0.8, 0.8, 0.8]
    spacing[axis] = 3.0
    new_spacing = (1.0, 1.0, 1.0)
    out_shape = ref.new_shape_for_spacing(shape, spacing, new_spacing)
    expected = ref.nnunet_resample_data_or_seg(x, out_shape, axis=axis, order=order)
    xd = to_device(x, device)
    got = mf.resample(xd, spacing=spacing, new_spacing=new_spacing, order=order)
    assert_on_device(got, device)
    got = to_numpy(got)
    assert got.shape == (2, *out_shape)
    assert_close(got, expected, np.abs(x).max())
    # forcing it by axis index gives the same
    np.testing.assert_array_equal(to_numpy(mf.resample(xd, out_shape, order=order, separate_z=axis)), got)


def test_separate_z_decision():
    assert ref.decide_separate_z((2.5, 0.7, 0.7), (1, 1, 1)) == 0
    assert ref.decide_separate_z((0.24, 1.25, 1.25), (1, 1, 1)) is None   # two axes share the max
    assert ref.decide_separate_z((1, 1, 1), (1, 1, 4)) == 2                 # decided by the target spacing
    assert ref.decide_separate_z((2.9, 1, 1), (1, 1, 1)) is None            # below the threshold
    x = np.random.default_rng(0).normal(size=(6, 8, 8)).astype(np.float32)
    sp = (4.0, 1.0, 1.0)
    auto = mf.resample(x, (10, 5, 5), spacing=sp, order=3)
    np.testing.assert_array_equal(auto, mf.resample(x, (10, 5, 5), order=3, separate_z=0))
    np.testing.assert_array_equal(mf.resample(x, (10, 5, 5), spacing=sp, order=3, separate_z=True), auto)
    joint = mf.resample(x, (10, 5, 5), spacing=sp, order=3, separate_z=False)
    np.testing.assert_array_equal(joint, mf.resample(x, (10, 5, 5), order=3))
    assert not np.array_equal(joint, auto)
    # a higher threshold turns the automatic split off
    np.testing.assert_array_equal(mf.resample(x, (10, 5, 5), spacing=sp, order=3, anisotropy_threshold=5), joint)


def test_spacing_gives_nnunet_shape(rng):
    x = rng.normal(size=(33, 41, 17)).astype(np.float32)
    for sp, new in [((2.5, 0.7, 0.7), (1, 1, 1)), ((1, 1, 1), (1.5, 1.5, 1.5)), ((0.5, 3, 0.9), (0.8, 0.8, 0.8))]:
        assert mf.resample(x, spacing=sp, new_spacing=new).shape == ref.new_shape_for_spacing(x.shape, sp, new)


# ----------------------------------------------------------------------------- dtypes and layouts
@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "int64", "bool", "float16", "float64"])
def test_dtypes(rng, dtype):
    if dtype == "bool":
        x = rng.random((5, 9, 7)) > 0.5
    elif dtype.startswith("float"):
        x = rng.normal(size=(5, 9, 7)).astype(dtype) * 10
    else:
        x = rng.integers(0, 120, (5, 9, 7)).astype(dtype)
    out = (8, 4, 11)
    for order in (1, 3):
        got = mf.resample(x, out, order=order)
        expected_dtype = x.dtype if dtype.startswith("float") else np.float32
        assert got.dtype == expected_dtype
        rtol = 2e-3 if dtype == "float16" else 1e-4
        assert_close(got, ref.resample(x.astype(np.float64), out, order=order, channels=False),
                     float(np.abs(x.astype(np.float64)).max()), rtol)
    near = mf.resample(x, out, order=0)
    assert near.dtype == x.dtype
    np.testing.assert_array_equal(near, ref.resample(x.astype(np.float64), out, order=0, channels=False).astype(x.dtype))
    assert mf.resample(x, out, order=1, dtype="float64").dtype == np.float64


def test_bfloat16_torch_and_dtype_argument(rng):
    x = torch.from_numpy(rng.normal(size=(6, 7, 8)).astype(np.float32))
    got = mf.resample(x.to(torch.bfloat16), (5, 9, 4), order=1)
    assert got.dtype == torch.bfloat16
    expected = mf.resample(x, (5, 9, 4), order=1)
    torch.testing.assert_close(got.float(), expected, rtol=2e-2, atol=2e-2)
    half = mf.resample(x, (5, 9, 4), order=3, dtype="float16")
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), mf.resample(x, (5, 9, 4), order=3), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("order", [0, 1, 3])
def test_strided_and_transposed_views(rng, order, device):
    # A view gives bit for bit the result of its contiguous copy on the same device.
    def on(a, out):
        got = mf.resample(to_device(a, device), out, order=order)
        assert_on_device(got, device)
        return to_numpy(got)

    base = (rng.normal(size=(3, 14, 12, 10)) * 50).astype(np.float32)
    views = [base[:, ::2, 1:, ::-1], base.transpose(0, 3, 2, 1), np.asfortranarray(base), base[::2]]
    for v in views:
        out = (7, 5, 9)
        expected = on(np.ascontiguousarray(v), out)
        np.testing.assert_array_equal(on(v, out), expected)
    # leading axes that cannot be merged (documented copy)
    v = base.transpose(1, 0, 2, 3)[:, :, :5, :5]   # (14, 3, 5, 5) with crossed leading strides
    np.testing.assert_array_equal(on(v, (4, 6)), on(np.ascontiguousarray(v), (4, 6)))


def test_input_not_modified(rng):
    x = (rng.normal(size=(2, 6, 7, 8)) * 100).astype(np.float32)
    keep = x.copy()
    for order in (0, 1, 3):
        mf.resample(x, (5, 9, 3), order=order)
        mf.resample(x, (5, 9, 3), order=order, separate_z=0)
    labels = rng.integers(0, 4, (6, 7, 8)).astype(np.uint8)
    keep_l = labels.copy()
    mf.resample_labels(labels, (9, 3, 5))
    np.testing.assert_array_equal(x, keep)
    np.testing.assert_array_equal(labels, keep_l)


def test_leading_axes_and_empty(rng):
    x = rng.normal(size=(2, 3, 5, 6)).astype(np.float32)
    got = mf.resample(x, (4, 9))   # (N, C, H, W): 2-D spatial, two leading axes
    assert got.shape == (2, 3, 4, 9)
    np.testing.assert_array_equal(got[1, 2], mf.resample(x[1, 2], (4, 9)))
    empty = mf.resample(np.zeros((0, 4, 4, 4), np.float32), (2, 2, 2), order=3)
    assert empty.shape == (0, 2, 2, 2)
    assert mf.resample_labels(np.zeros((0, 4, 4), np.uint8), (3, 3)).shape == (0, 3, 3)


def test_identity_and_constant(rng):
    x = (rng.normal(size=(4, 5, 6)) * 10).astype(np.float32)
    for order in (0, 1, 3):
        same = mf.resample(x, x.shape, order=order)
        np.testing.assert_array_equal(same, x)
        assert same is not x
    c = np.full((5, 7, 3), 42.5, np.float32)
    for order in (1, 3):
        np.testing.assert_allclose(mf.resample(c, (11, 2, 8), order=order), 42.5, rtol=1e-6)


def test_clip_option(rng):
    x = np.zeros((1, 12), np.float32)
    x[0, 6] = 1.0
    clipped = mf.resample(x, (37,), order=3)
    raw = mf.resample(x, (37,), order=3, clip=False)
    assert clipped.min() >= 0.0
    assert raw.min() < 0.0
    np.testing.assert_allclose(clipped, np.clip(raw, 0, 1))


def test_thread_count_independence(rng):
    x = (rng.normal(size=(2, 23, 61, 47)) * 100).astype(np.float32)
    labels = rng.integers(0, 5, (23, 61, 47)).astype(np.int16)
    results = {}
    try:
        for threads in (1, 2, 3):
            mf.set_num_threads(threads)
            results[threads] = [
                mf.resample(x, (40, 31, 70), order=1),
                mf.resample(x, (40, 31, 70), order=3),
                mf.resample(x, (40, 31, 70), order=3, separate_z=0),
                mf.resample_labels(labels, (40, 31, 70)),
            ]
    finally:
        mf.set_num_threads(2)
    for threads in (2, 3):
        for a, b in zip(results[1], results[threads]):
            np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- labels
def _near_tie(labels, out_shape, num_classes, lowres_axis=None):
    """Voxels where the two best per-class scores of the reference differ by < 1e-5."""
    scores = np.stack([ref.resample((labels == c).astype(np.float64), out_shape, order=1, channels=False,
                                    lowres_axis=lowres_axis) for c in range(num_classes)])
    top2 = np.sort(scores, axis=0)[-2:]
    return (top2[1] - top2[0]) < 1e-5


def test_labels_match_per_class_argmax(rng, device):
    for shape, out in [((9, 8, 7), (14, 5, 11)), ((1, 13, 6), (3, 7, 12)), ((6, 6), (13, 4)), ((17,), (40,)),
                       ((17, 23, 29), (25, 11, 40))]:
        labels = rng.integers(0, 5, shape).astype(np.uint8)
        expected = ref.resample_labels(labels, out, num_classes=5)
        got = mf.resample_labels(to_device(labels, device), out, num_classes=5)
        assert_on_device(got, device)
        got = to_numpy(got)
        if device != "cpu":   # labels equal the CPU labels exactly, also with order=0
            np.testing.assert_array_equal(got, mf.resample_labels(labels, out, num_classes=5))
            nearest = mf.resample_labels(to_device(labels, device), out, order=0)
            np.testing.assert_array_equal(to_numpy(nearest), mf.resample_labels(labels, out, order=0))
        assert got.dtype == np.uint8
        assert got.shape == out
        mismatch = got != expected
        assert not np.any(mismatch & ~_near_tie(labels, out, 5))


@pytest.mark.parametrize("axis", [0, 2])
def test_labels_separate_z(rng, axis):
    shape = [9, 8, 10]
    shape[axis] = 4
    labels = rng.integers(0, 4, shape).astype(np.uint8)
    spacing = [1.0, 1.0, 1.0]
    spacing[axis] = 4.0
    out = (11, 6, 13)
    got = mf.resample_labels(labels, out, spacing=spacing, num_classes=4)
    np.testing.assert_array_equal(got, mf.resample_labels(labels, out, separate_z=axis))
    expected = ref.resample_labels(labels, out, num_classes=4, lowres_axis=axis)
    assert not np.any((got != expected) & ~_near_tie(labels, out, 4, lowres_axis=axis))
    assert not np.array_equal(got, mf.resample_labels(labels, out, separate_z=False))
    by_spacing = mf.resample_labels(labels, spacing=spacing, new_spacing=(1.0, 1.0, 1.0))
    assert by_spacing.shape == ref.new_shape_for_spacing(labels.shape, spacing, (1.0, 1.0, 1.0))


def test_labels_exact_ties_go_to_smallest_label():
    labels = np.array([3, 1, 1, 3], np.int32)
    # downsampling by 2: each output sits halfway between two inputs (weights exactly 0.5)
    np.testing.assert_array_equal(mf.resample_labels(labels, (2,)), [1, 1])


def test_labels_order0_and_dtypes(rng):
    labels = rng.integers(0, 7, (5, 9, 6)).astype(np.int64)
    np.testing.assert_array_equal(mf.resample_labels(labels, (8, 4, 13), order=0),
                                  mf.resample(labels, (8, 4, 13), order=0))
    for dtype in (np.uint8, np.int16, np.uint16, np.int32, np.int64):
        l2 = labels.astype(dtype)
        np.testing.assert_array_equal(mf.resample_labels(l2, (8, 4, 13)),
                                      mf.resample_labels(labels, (8, 4, 13)).astype(dtype))
    mask = rng.random((7, 8)) > 0.5
    out = mf.resample_labels(mask, (15, 3))
    assert out.dtype == np.bool_
    expected = ref.resample_labels(mask.astype(np.uint8), (15, 3)).astype(bool)
    assert not np.any((out != expected) & ~_near_tie(mask.astype(np.uint8), (15, 3), 2))
    t = torch.from_numpy(labels)
    assert torch.equal(mf.resample_labels(t, (8, 4, 13)), torch.from_numpy(mf.resample_labels(labels, (8, 4, 13))))


def test_labels_agree_with_nnunet_loop_on_smooth_maps(rng):
    from scipy import ndimage as ndi

    fields = ndi.gaussian_filter(rng.normal(size=(6, 12, 16, 16)), (0, 1, 2, 2))
    labels = np.argmax(fields, 0).astype(np.uint8).repeat(2, 0).repeat(2, 1).repeat(2, 2)
    out = (30, 21, 45)
    nnunet = ref.nnunet_resize_segmentation(labels, out, order=1)
    got = mf.resample_labels(labels, out, num_classes=6)
    # nnU-Net thresholds each class at 0.5 (later classes win) instead of taking the argmax: both
    # agree wherever one class holds a strict majority.
    scores = np.stack([ref.resample((labels == c).astype(np.float64), out, order=1, channels=False) for c in range(6)])
    majority = scores.max(0) > 0.5 + 1e-6
    assert majority.mean() > 0.8
    np.testing.assert_array_equal(got[majority], nnunet[majority])


# ----------------------------------------------------------------------------- real data
def test_real_anisotropic_ct():
    ct, spacing = load_volume("ct_chest_lung2_crop_hu.nii.gz")   # (32, 128, 128) at (5.0, 0.627, 0.627)
    new_spacing = (1.5, 1.5, 1.5)
    assert ref.decide_separate_z(spacing, new_spacing) == 0
    got = mf.resample(ct, spacing=spacing, new_spacing=new_spacing, order=3)
    out_shape = ref.new_shape_for_spacing(ct.shape, spacing, new_spacing)
    assert got.shape == out_shape
    assert got.dtype == np.float32
    expected = ref.nnunet_resample_data_or_seg(ct[None].astype(np.float32), out_shape, axis=0, order=3)[0]
    assert_close(got, expected, float(np.abs(ct).max()))
    labels, _ = load_volume("ct_chest_lung2_crop_tumor_label.nii.gz")
    lab = mf.resample_labels(labels, out_shape, num_classes=2)
    expected_l = ref.resample_labels(labels, out_shape, num_classes=2)
    assert not np.any((lab != expected_l) & ~_near_tie(labels, out_shape, 2))


def test_real_mri_order1_matches_torch():
    mri, _ = load_volume("itk_kmeans_t1_mri.nii.gz")
    assert mri.ndim == 3
    x = torch.from_numpy(mri.astype(np.float32))
    out = tuple(max(1, int(n * 0.7)) for n in mri.shape)
    expected = torch.nn.functional.interpolate(x[None, None], size=out, mode="trilinear", align_corners=False)[0, 0]
    torch.testing.assert_close(mf.resample(mri, out, order=1), expected.numpy(), rtol=1e-5, atol=1e-3)


# ----------------------------------------------------------------------------- bad input
def test_bad_input():
    x = np.zeros((4, 5, 6), np.float32)
    with pytest.raises(ValueError, match="out_shape must hold positive integers"):
        mf.resample(x, (4, 0, 6))
    with pytest.raises(ValueError, match="out_shape must hold positive integers"):
        mf.resample(x, (4, -2, 6))
    with pytest.raises(ValueError, match=r"spacing must have 3 positive values for a 3-D resample"):
        mf.resample(x, spacing=(1, 0, 1), new_spacing=(1, 1, 1))
    with pytest.raises(ValueError, match=r"new_spacing must have 3 positive values for a 3-D resample .*, got \(1, -1, 1\)"):
        mf.resample(x, spacing=(1, 1, 1), new_spacing=(1, -1, 1))
    with pytest.raises(ValueError, match="spacing must have 3 positive values"):
        mf.resample(x, (2, 2, 2), spacing=(1, 1))
    with pytest.raises(ValueError, match="order must be one of"):
        mf.resample(x, (2, 2, 2), order=2)
    with pytest.raises(ValueError, match="order_z must be one of"):
        mf.resample(x, (2, 2, 2), order_z=5)
    with pytest.raises(ValueError, match="1, 2 or 3 spatial axes"):
        mf.resample(np.zeros((2, 2, 2, 2)), (2, 2, 2, 2))
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        mf.resample(np.zeros((4, 4)), (2, 2, 2))
    with pytest.raises(ValueError, match="at least one voxel along every spatial axis"):
        mf.resample(np.zeros((4, 0, 4)), (2, 2, 2))
    with pytest.raises(ValueError, match="give out_shape, or both spacing and new_spacing"):
        mf.resample(x, spacing=(1, 1, 1))
    with pytest.raises(ValueError, match="separate_z=True needs spacing"):
        mf.resample(x, (2, 2, 2), separate_z=True)
    with pytest.raises(ValueError, match="separate_z must be None, a bool or a spatial axis"):
        mf.resample(x, (2, 2, 2), separate_z=3)
    with pytest.raises(ValueError, match="anisotropy_threshold must be a positive number"):
        mf.resample(x, (2, 2, 2), anisotropy_threshold=0)
    with pytest.raises(ValueError, match="dtype must be one of"):
        mf.resample(x, (2, 2, 2), order=1, dtype="int16")
    with pytest.raises(TypeError, match="must be a numpy array, torch tensor or cupy array"):
        mf.resample("abc", (2,))
    labels = np.array([[0, 1], [2, 5]], np.uint8)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, num_classes\) = \[0, 5\), got values in \[0, 5\]"):
        mf.resample_labels(labels, (3, 3), num_classes=5)
    with pytest.raises(ValueError, match="labels must lie in"):
        mf.resample_labels(np.array([-1, 2], np.int32), (3,), num_classes=4)
    with pytest.raises(TypeError, match="labels must have an integer or bool dtype"):
        mf.resample_labels(np.zeros((3, 3), np.float32), (2, 2))
    with pytest.raises(ValueError, match="order must be one of"):
        mf.resample_labels(labels, (3, 3), order=3)
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        mf.resample_labels(labels, (3, 3), num_classes=0)
    with pytest.raises(ValueError, match="out_shape must have 2 values|out_shape must hold positive"):
        mf.resample_labels(labels, (3, 0))
