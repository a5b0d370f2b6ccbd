"""Parity and contract tests of the intensity family (parity bodies run over the `device` fixture)."""

from __future__ import annotations

import subprocess
import sys

import medseg_fast as mf
import numpy as np
import pytest
import torch
from conftest import assert_on_device, load_volume, to_device, to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from medseg_fast.reference import intensity as ref

INPUT_DTYPES = [np.int16, np.uint16, np.int32, np.float32, np.float64, np.uint8, np.int8, np.int64, np.float16]
AWKWARD_SHAPES = [(1,), (7,), (1, 1, 1), (3, 1, 5), (13, 17, 19), (2, 31, 1), (1, 64, 3)]


def random_ct(rng, shape, dtype):
    """HU-like values that fit `dtype`."""
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    lo = max(-1100, info.min) if info else -1100
    hi = min(3100, info.max) if info else 3100
    values = rng.uniform(lo, hi, size=shape)
    if info:
        return np.round(values).astype(dtype)
    return values.astype(dtype)


# ----------------------------------------------------------------------------- window bounds
@pytest.mark.parametrize("convention", ["simple", "dicom", "legacy"])
def test_window_bounds_match_reference(convention):
    for center, width in [(40, 80), (-600, 1500), (0.5, 3.25), (1000, 2)]:
        assert mf.window_bounds(center, width, convention) == pytest.approx(ref.window_bounds(center, width, convention))


def test_window_bounds_dicom_matches_the_standard_piecewise_function():
    # DICOM PS3.3 C.11.2.1.2.1, evaluated literally on integers.
    c, w = 40, 80
    lo, hi = mf.window_bounds(c, w, "dicom")
    for x in range(-100, 200):
        if x <= c - 0.5 - (w - 1) / 2:
            expected = 0.0
        elif x > c - 0.5 + (w - 1) / 2:
            expected = 1.0
        else:
            expected = (x - (c - 0.5)) / (w - 1) + 0.5
        got = float(mf.hu_window(np.array([x], np.int16), c, w, convention="dicom")[0])
        assert got == pytest.approx(expected, abs=1e-6)
    assert (lo, hi) == (0.0, 79.0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"center": 40, "width": 0}, ValueError, "width must be > 0"),
        ({"center": 40, "width": -5}, ValueError, "width must be > 0"),
        ({"center": 40, "width": 1, "convention": "dicom"}, ValueError, "width must be > 1"),
        ({"center": 40, "width": 80, "convention": "other"}, ValueError, "convention must be"),
        ({"center": float("nan"), "width": 80}, ValueError, "center must be finite"),
        ({"center": "40", "width": 80}, TypeError, "center must be a real number"),
    ],
)
def test_window_bounds_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        mf.window_bounds(**kwargs)


# ----------------------------------------------------------------------------- hu_window
@pytest.mark.parametrize("dtype", INPUT_DTYPES)
@pytest.mark.parametrize("shape", AWKWARD_SHAPES)
def test_hu_window_matches_reference(rng, dtype, shape, device):
    x = random_ct(rng, shape, dtype)
    lo, hi = sorted(rng.uniform(-1000, 1500, 2))
    if np.issubdtype(dtype, np.integer) and np.iinfo(dtype).max < 300:
        lo, hi = -20.5, 90.25
    out_range = (-1.0, 2.0)
    y = mf.hu_window(to_device(x, device), lo=lo, hi=hi, out_range=out_range)
    assert_on_device(y, device)
    y = to_numpy(y)
    expected = ref.hu_window(x.astype(np.float64), lo, hi, out_range)
    assert y.dtype == np.float32
    assert y.shape == x.shape
    np.testing.assert_allclose(y, expected, rtol=0, atol=3e-6 * 3)


@pytest.mark.parametrize("dtype", [np.int16, np.float32])
@pytest.mark.parametrize("out_range", [(-1.0, 2.0), (2.0, -1.0)])
def test_hu_window_narrow_window_stays_in_out_range(dtype, out_range):
    # A 0.07 HU window: float32 rounding of lo, hi and the scale used to map saturated voxels to
    # 2.0007 for a range ending at 2 (found by a random seed of the test above).
    lo, hi = -292.869406114434, -292.80069545179504
    x = np.array([1975, 2681, -145, -292, -293, -1000, 0], dtype=dtype)
    y = mf.hu_window(x, lo=lo, hi=hi, out_range=out_range)
    expected = ref.hu_window(x.astype(np.float64), lo, hi, out_range)
    np.testing.assert_array_equal(y, expected.astype(np.float32))
    assert y.min() >= min(out_range)
    assert y.max() <= max(out_range)


def test_hu_window_matches_monai_scale_intensity_range(rng):
    from monai.transforms import ScaleIntensityRange

    x = random_ct(rng, (9, 40, 33), np.int16).astype(np.float32)
    for center, width in mf.WINDOWS.values():
        lo, hi = mf.window_bounds(center, width)
        monai = ScaleIntensityRange(a_min=lo, a_max=hi, b_min=0.0, b_max=1.0, clip=True)(x)
        ours = mf.hu_window(x, center, width)
        np.testing.assert_allclose(ours, np.asarray(monai), rtol=0, atol=2e-6)


@pytest.mark.parametrize("make_view", [
    lambda a: a[::2, :, ::-1],
    lambda a: a.transpose(2, 0, 1),
    lambda a: np.asfortranarray(a),
    lambda a: a[1:, 3:-2, ::3],
    lambda a: a[:, 5],
])
def test_hu_window_strided_views(rng, make_view, device):
    base = random_ct(rng, (12, 23, 17), np.int16)
    x = make_view(base)
    y = mf.hu_window(to_device(x, device), -600, 1500)
    assert_on_device(y, device)
    if device != "cpu":   # bit for bit the CPU result
        np.testing.assert_array_equal(to_numpy(y), mf.hu_window(x, -600, 1500))
    y = to_numpy(y)
    lo, hi = mf.window_bounds(-600, 1500)
    np.testing.assert_allclose(y, ref.hu_window(x, lo, hi), atol=2e-6)
    # Output keeps the input's memory order (numpy empty_like(order="K") semantics).
    if x.flags.f_contiguous and not x.flags.c_contiguous:
        assert y.flags.f_contiguous


def test_hu_window_out_argument(rng):
    x = random_ct(rng, (5, 6, 7), np.int16)
    out = np.full(x.shape, -7.0, np.float32)
    result = mf.hu_window(x, 40, 80, out=out)
    assert result is out
    np.testing.assert_allclose(out, ref.hu_window(x, 0, 80), atol=2e-6)
    # out may be a strided view too
    big = np.zeros((5, 6, 14), np.float32)
    mf.hu_window(x, 40, 80, out=big[:, :, ::2])
    np.testing.assert_allclose(big[:, :, ::2], out)
    assert np.all(big[:, :, 1::2] == 0)


def test_output_float16_is_correctly_rounded(rng, device):
    # The identity window (lo=0, hi=1 -> [0, 1]) returns x exactly in float32 arithmetic, so the
    # float16 store must equal numpy's correctly rounded conversion bit for bit, subnormals included.
    x = np.concatenate([rng.uniform(0, 1, 100_000), rng.uniform(0, 1e-4, 50_000), [0.0, 1.0, 2**-24, 2**-25,
                        3 * 2**-26, 6.1e-5]]).astype(np.float32)
    y = mf.hu_window(to_device(x, device), lo=0.0, hi=1.0, dtype="float16")
    assert_on_device(y, device)
    y = to_numpy(y)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y.view(np.uint16), x.astype(np.float16).view(np.uint16))


def test_output_bfloat16_matches_torch_rounding(rng, device):
    x = to_device(torch.from_numpy(rng.uniform(0, 1, 200_000).astype(np.float32)), device)
    y = mf.hu_window(x, lo=0.0, hi=1.0, dtype=torch.bfloat16)
    assert isinstance(y, torch.Tensor)
    assert y.device == x.device
    assert y.dtype == torch.bfloat16
    assert torch.equal(y.view(torch.int16), x.to(torch.bfloat16).view(torch.int16))


def test_output_bfloat16_for_numpy_uses_ml_dtypes(rng):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = random_ct(rng, (4, 5), np.int16)
    y = mf.hu_window(x, 40, 400, dtype="bfloat16")
    assert y.dtype == np.dtype(ml_dtypes.bfloat16)
    np.testing.assert_allclose(y.astype(np.float32), ref.hu_window(x, -160, 240), atol=4e-3)


def test_torch_in_torch_out(rng, device):
    x = to_device(torch.from_numpy(random_ct(rng, (6, 7, 8), np.int16)), device)
    y = mf.hu_window(x, 40, 80)
    assert isinstance(y, torch.Tensor)
    assert y.dtype == torch.float32
    assert y.device == x.device
    np.testing.assert_allclose(to_numpy(y), ref.hu_window(to_numpy(x), 0, 80), atol=2e-6)
    # requires_grad / non-contiguous tensors are read without copies
    xf = torch.randn(5, 9, 4, requires_grad=True, device=device)
    y2 = mf.hu_window(xf.transpose(0, 2), lo=-1, hi=1)
    np.testing.assert_allclose(to_numpy(y2), ref.hu_window(to_numpy(xf.transpose(0, 2)), -1, 1), atol=2e-6)


def test_nan_stays_nan_and_inf_clips():
    x = np.array([np.nan, -np.inf, np.inf, 0.0, 40.0], np.float32)
    y = mf.hu_window(x, 40, 80)
    assert np.isnan(y[0])
    np.testing.assert_array_equal(y[1:], [0.0, 1.0, 0.0, 0.5])


def test_empty_and_scalar_inputs():
    assert mf.hu_window(np.zeros((0, 4), np.int16), 40, 80).shape == (0, 4)
    assert mf.multi_window(np.zeros((3, 0), np.int16), ["brain", "bone"]).shape == (2, 3, 0)
    y = mf.hu_window(np.array(40, np.int16), 40, 80)
    assert y.shape == ()
    assert float(y) == 0.5


def test_input_is_never_modified(rng):
    x = random_ct(rng, (8, 9, 10), np.float32)
    before = x.copy()
    mf.hu_window(x, 40, 80)
    mf.multi_window(x, ["brain", "lung"])
    mf.intensity_stats(x, mask=x > 0)
    mf.ct_normalize(x)
    mf.mr_normalize(x, mask=x > 0, masked_only=True, percentiles=(1, 99))
    np.testing.assert_array_equal(x, before)


def test_results_do_not_depend_on_thread_count(rng):
    x = random_ct(rng, (33, 64, 65), np.float32)
    mask = x > 100
    results = []
    for n in (1, 2, 3):
        mf.set_num_threads(n)
        results.append((mf.hu_window(x, 40, 80), mf.intensity_stats(x, mask), mf.ct_normalize(x, mask=mask),
                        mf.mr_normalize(x, percentiles=(2, 98))))
    mf.set_num_threads(2)
    for other in results[1:]:
        np.testing.assert_array_equal(results[0][0], other[0])
        assert results[0][1]["mean"] == other[1]["mean"]
        assert results[0][1]["std"] == other[1]["std"]
        np.testing.assert_array_equal(results[0][1]["percentiles"], other[1]["percentiles"])
        np.testing.assert_array_equal(results[0][2], other[2])
        np.testing.assert_array_equal(results[0][3], other[3])


# ----------------------------------------------------------------------------- multi_window
def test_multi_window_equals_stacked_single_windows(rng, device):
    x = random_ct(rng, (6, 11, 13), np.int16)[:, ::-1]
    names = ["brain", "subdural", "stroke", "lung", "mediastinum", "abdomen", "liver", "bone"]
    stack = mf.multi_window(to_device(x, device), names + [(100, 700)], out_range=(-1, 1), dtype="float16")
    assert_on_device(stack, device)
    if device != "cpu":   # bit for bit the CPU result
        cpu = mf.multi_window(x, names + [(100, 700)], out_range=(-1, 1), dtype="float16")
        np.testing.assert_array_equal(to_numpy(stack), cpu)
    stack = to_numpy(stack)
    assert stack.shape == (9,) + x.shape
    assert stack.dtype == np.float16
    for i, spec in enumerate(names + [(100, 700)]):
        c, w = mf.WINDOWS[spec] if isinstance(spec, str) else spec
        np.testing.assert_array_equal(stack[i], mf.hu_window(x, c, w, out_range=(-1, 1), dtype="float16"))


def test_multi_window_many_windows_and_out(rng):
    x = random_ct(rng, (3, 4, 5), np.int32)
    windows = [(c, 200) for c in range(-1000, 1000, 100)]  # 20 windows
    out = np.empty((20, 3, 4, 5), np.float32)
    assert mf.multi_window(x, windows, out=out) is out
    bounds = [mf.window_bounds(c, w) for c, w in windows]
    np.testing.assert_allclose(out, ref.multi_window(x, bounds), atol=3e-6)


def test_windows_presets_present():
    for name in ["brain", "subdural", "stroke", "lung", "mediastinum", "abdomen", "liver", "bone"]:
        center, width = mf.WINDOWS[name]
        assert width > 0


# ----------------------------------------------------------------------------- statistics
@pytest.mark.parametrize("dtype", INPUT_DTYPES)
def test_intensity_stats_exact_against_numpy(rng, dtype):
    x = random_ct(rng, (17, 23, 29), dtype)
    q = (0, 0.5, 1, 25, 50, 75, 99, 99.5, 100)
    stats = mf.intensity_stats(x, percentiles=q)
    expected = np.percentile(x, list(q))
    np.testing.assert_array_equal(stats["percentiles"], expected.astype(np.float64))
    np.testing.assert_allclose(stats["mean"], x.astype(np.float64).mean(), rtol=1e-12)
    np.testing.assert_allclose(stats["std"], x.astype(np.float64).std(), rtol=1e-10)
    assert stats["count"] == x.size
    assert stats["min"] == float(x.min())
    assert stats["max"] == float(x.max())


@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.float64, np.uint8])
def test_intensity_stats_with_mask_and_views(rng, dtype, device):
    x = random_ct(rng, (20, 31, 18), dtype).transpose(1, 2, 0)[::2]
    mask = rng.random(x.shape) < 0.3
    stats = mf.intensity_stats(to_device(x, device), mask=to_device(mask, device), percentiles=(0.5, 99.5))
    expected = ref.intensity_stats(x, mask, (0.5, 99.5))
    np.testing.assert_array_equal(stats["percentiles"], expected["percentiles"].astype(np.float64))
    np.testing.assert_allclose(stats["mean"], expected["mean"], rtol=1e-12)
    np.testing.assert_allclose(stats["std"], expected["std"], rtol=1e-10)
    assert stats["count"] == expected["count"]
    # a mask of another integer dtype selects the same voxels
    int_mask = to_device(mask.astype(np.int32) * 7, device)
    np.testing.assert_array_equal(mf.intensity_stats(to_device(x, device), mask=int_mask)["percentiles"],
                                  stats["percentiles"])


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.int16, np.float32, np.float64, np.int32]),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=9),
        elements={"allow_nan": False, "allow_infinity": False, "min_value": -3000, "max_value": 3000},
    ),
    st.lists(st.floats(0, 100), min_size=1, max_size=5),
)
def test_percentiles_property_equal_numpy(x, q):
    stats = mf.intensity_stats(x, percentiles=q)
    np.testing.assert_array_equal(stats["percentiles"], np.percentile(x, q).astype(np.float64))


def test_intensity_stats_nan_and_empty():
    x = np.array([1.0, np.nan, 3.0], np.float32)
    stats = mf.intensity_stats(x)
    assert np.isnan(stats["mean"])
    assert np.isnan(stats["std"])
    assert np.all(np.isnan(stats["percentiles"]))
    empty = mf.intensity_stats(np.zeros((0,), np.float32))
    assert empty["count"] == 0
    assert np.isnan(empty["mean"])
    none_selected = mf.intensity_stats(np.ones((3, 3), np.int16), mask=np.zeros((3, 3), bool))
    assert none_selected["count"] == 0
    assert np.all(np.isnan(none_selected["percentiles"]))


# ----------------------------------------------------------------------------- CT normalization
def nnunet_ct_normalization(image, props):
    """nnU-Net v2 CTNormalization.run, restated from its documented behaviour."""
    image = image.astype(np.float32, copy=True)
    np.clip(image, props["percentile_00_5"], props["percentile_99_5"], out=image)
    image -= props["mean"]
    image /= max(props["std"], 1e-8)
    return image


def test_ct_normalize_matches_nnunet_on_real_ct():
    ct, _ = load_volume("ct_chest_lung2_crop_hu.nii.gz")
    label, _ = load_volume("ct_chest_lung2_crop_tumor_label.nii.gz")
    body = ct > -500
    fg = ct[body].astype(np.float64)
    props = {"mean": fg.mean(), "std": fg.std(), "percentile_00_5": np.percentile(fg, 0.5),
             "percentile_99_5": np.percentile(fg, 99.5)}
    expected = nnunet_ct_normalization(ct, props)
    ours = mf.ct_normalize(ct, mask=body)
    np.testing.assert_allclose(ours, expected, rtol=2e-6, atol=2e-6)
    # dataset-level statistics (an nnU-Net fingerprint entry) are applied as given
    np.testing.assert_allclose(mf.ct_normalize(ct, stats=props), expected, rtol=2e-6, atol=2e-6)
    stats = mf.intensity_stats(ct, mask=label > 0)
    ours_stats = mf.ct_normalize(ct, stats={"mean": stats["mean"], "std": stats["std"],
                                            "percentiles": stats["percentiles"]})
    np.testing.assert_allclose(ours_stats, mf.ct_normalize(ct, mask=label > 0), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float32, np.float64, np.uint16])
def test_ct_normalize_matches_reference(rng, dtype, device):
    x = random_ct(rng, (11, 13, 7), dtype)
    mask = rng.random(x.shape) < 0.5
    s = ref.intensity_stats(x, mask, (0.5, 99.5))
    expected = ref.ct_normalize(x, s["mean"], s["std"], *s["percentiles"])
    ours = mf.ct_normalize(to_device(x, device), mask=to_device(mask, device))
    assert_on_device(ours, device)
    np.testing.assert_allclose(to_numpy(ours), expected, rtol=2e-6, atol=2e-6)


def test_ct_normalize_bfloat16_out_and_constant_image():
    x = torch.full((4, 4), 7, dtype=torch.int16)
    y = mf.ct_normalize(x, dtype="bfloat16")
    assert y.dtype == torch.bfloat16
    assert torch.all(y == 0)


# ----------------------------------------------------------------------------- MR normalization
def test_mr_normalize_matches_monai_normalize_intensity(rng):
    from monai.transforms import NormalizeIntensity

    x = rng.normal(300, 80, (9, 21, 22)).astype(np.float32)
    x[x < 250] = 0
    np.testing.assert_allclose(mf.mr_normalize(x), np.asarray(NormalizeIntensity()(x)), rtol=1e-5, atol=1e-5)
    monai_nonzero = np.asarray(NormalizeIntensity(nonzero=True)(x))
    ours = mf.mr_normalize(x, mask=x != 0, masked_only=True)
    np.testing.assert_allclose(ours, monai_nonzero, rtol=1e-5, atol=1e-5)


def test_mr_normalize_minmax_matches_monai(rng):
    from monai.transforms import ScaleIntensity, ScaleIntensityRangePercentiles

    x = rng.gamma(2.0, 100.0, (12, 15, 16)).astype(np.float32)
    np.testing.assert_allclose(mf.mr_normalize(x, method="minmax"), np.asarray(ScaleIntensity()(x)), atol=2e-6)
    monai = ScaleIntensityRangePercentiles(lower=1, upper=99, b_min=0.0, b_max=1.0, clip=True)(x)
    ours = mf.mr_normalize(x, method="minmax", percentiles=(1, 99))
    np.testing.assert_allclose(ours, np.asarray(monai), atol=3e-6)


@pytest.mark.parametrize("method", ["zscore", "minmax"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
def test_mr_normalize_matches_reference_on_real_mr(method, dtype):
    mr, _ = load_volume("itk_kmeans_t1_mri.nii.gz")
    brain = mr > np.percentile(mr, 60)
    x = mr.astype(dtype)
    for percentiles in (None, (0.5, 99.5)):
        for masked_only in (False, True):
            expected = ref.mr_normalize(x, brain, method, percentiles, (0, 1), masked_only)
            ours = mf.mr_normalize(x, mask=brain, method=method, percentiles=percentiles, masked_only=masked_only)
            np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda x: mf.hu_window(x.astype(np.complex64), 40, 80), TypeError, "real numeric dtype"),
        (lambda x: mf.hu_window("abc", 40, 80), TypeError, "numpy array, torch tensor or cupy array"),
        (lambda x: mf.hu_window(object(), 40, 80), TypeError, "numpy array, torch tensor or cupy array"),
        (lambda x: mf.hu_window(x, 40, 0), ValueError, "width must be > 0"),
        (lambda x: mf.hu_window(x, lo=5, hi=5), ValueError, "lo must be < hi"),
        (lambda x: mf.hu_window(x, 40, 80, lo=0, hi=1), ValueError, "not both and not neither"),
        (lambda x: mf.hu_window(x), ValueError, "not both and not neither"),
        (lambda x: mf.hu_window(x, 40), ValueError, "center and width must both be given"),
        (lambda x: mf.hu_window(x, 40, 80, dtype="int16"), ValueError, "dtype must be one of"),
        (lambda x: mf.hu_window(x, 40, 80, out=np.empty((3, 3), np.float32)), ValueError, r"out must have shape=\(4, 5\)"),
        (lambda x: mf.hu_window(x, 40, 80, out=np.empty((4, 5), np.float64)), ValueError, "dtype=float32"),
        (lambda x: mf.hu_window(x, 40, 80, out=torch.empty(4, 5)), ValueError, "same kind of array"),
        (lambda x: mf.hu_window(x, 40, 80, out_range=(0,)), ValueError, "out_range must be a pair"),
        (lambda x: mf.multi_window(x, []), ValueError, "non-empty sequence"),
        (lambda x: mf.multi_window(x, ["nope"]), ValueError, "unknown preset 'nope'"),
        (lambda x: mf.multi_window(x, [(1, 2, 3)]), ValueError, r"windows\[0\] must be"),
        (lambda x: mf.intensity_stats(x, mask=np.ones((5, 4), bool)), ValueError, r"mask must have the shape of x"),
        (lambda x: mf.intensity_stats(x, mask=torch.ones(4, 5, dtype=torch.bool)), ValueError, "same kind of array"),
        (lambda x: mf.intensity_stats(x, percentiles=(101,)), ValueError, r"must lie in \[0, 100\]"),
        (lambda x: mf.ct_normalize(x, percentiles=(1, 2, 3)), ValueError, "pair"),
        (lambda x: mf.ct_normalize(x, mask=np.zeros((4, 5), bool)), ValueError, "mask selects no voxels"),
        (lambda x: mf.ct_normalize(x, stats={"mean": 0}), ValueError, "stats must hold"),
        (lambda x: mf.mr_normalize(x, method="robust"), ValueError, "method must be"),
        (lambda x: mf.mr_normalize(x, masked_only=True), ValueError, "needs a mask"),
    ],
)
def test_bad_input_errors(call, error, match):
    x = np.arange(20, dtype=np.int16).reshape(4, 5)
    with pytest.raises(error, match=match):
        call(x)


def test_big_endian_input_is_read_correctly():
    x = np.arange(-500, 500, 7, dtype=">i2")
    np.testing.assert_allclose(mf.hu_window(x, 0, 1000), ref.hu_window(x.astype(np.int16), -500, 500), atol=2e-6)


# ----------------------------------------------------------------------------- threads and import order
@pytest.mark.parametrize("first", ["torch", "medseg_fast"])
def test_import_order_with_torch_and_threads(first):
    second = "medseg_fast" if first == "torch" else "torch"
    code = (
        f"import {first}, {second}\n"
        "import numpy as np, medseg_fast as mf\n"
        "mf.set_num_threads(2); torch.set_num_threads(2)\n"
        "x = np.random.default_rng(0).integers(-1000, 2000, (64, 64, 64)).astype(np.int16)\n"
        "y = mf.hu_window(x, 40, 80); t = torch.from_numpy(x).float().clamp(0, 80) / 80\n"
        "assert np.allclose(y, t.numpy(), atol=1e-6)\n"
        "print(mf.intensity_stats(x)['percentiles'].tolist())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_set_num_threads_validation():
    with pytest.raises(ValueError, match=r"n must be in 1\.\.4096, got 0"):
        mf.set_num_threads(0)
    with pytest.raises(TypeError, match="n must be an integer"):
        mf.set_num_threads(1.5)
    mf.set_num_threads(3)
    assert mf.get_num_threads() == 3
    mf.set_num_threads(2)


def test_show_config_runs(capsys):
    mf.show_config()
    out = capsys.readouterr().out
    assert "cuda_built" in out
    assert "num_threads" in out


def test_mask_of_another_kind_or_device_is_rejected(device):
    if device == "cuda-emulated":
        pytest.skip("the emulated CUDA drivers take host arrays: there is no second device to mismatch")
    x = torch.zeros(4, 4, device=device)
    # cpu: a numpy mask for a tensor; cuda: a CPU tensor for a CUDA tensor
    mask = np.ones((4, 4), bool) if device == "cpu" else torch.ones(4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="same kind of array on the same device"):
        mf.intensity_stats(x, mask=mask)
