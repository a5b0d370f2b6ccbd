"""Parity of the exact EDT with scipy and the brute-force reference; layouts, dtypes, errors."""

from __future__ import annotations

import medseg_fast
import numpy as np
import pytest
import scipy.ndimage as ndi
from conftest import assert_on_device, load_volume, to_device, to_numpy
from medseg_fast import distance_transform, signed_distance
from medseg_fast.reference import distance as ref

SHAPES = [(1,), (9,), (1, 1), (1, 7), (13, 1), (13, 17), (1, 1, 1), (5, 1, 7), (1, 6, 1), (7, 11, 13), (3, 4, 5, 2),
          (33, 40, 47)]


def random_mask(rng, shape, density=None):
    density = rng.uniform(0.2, 0.95) if density is None else density
    return rng.random(shape) < density


@pytest.mark.parametrize("shape", SHAPES)
def test_matches_scipy_and_reference(rng, shape, device):
    for _ in range(3):
        mask = random_mask(rng, shape)
        spacing = tuple(rng.uniform(0.3, 3.0, len(shape)))
        expected = ndi.distance_transform_edt(mask, sampling=spacing)
        got64 = distance_transform(to_device(mask, device), spacing, dtype="float64")
        got32 = distance_transform(to_device(mask, device), spacing)
        assert_on_device(got64, device)
        assert_on_device(got32, device)
        got64, got32 = to_numpy(got64), to_numpy(got32)
        if device != "cpu":   # and the device equals the CPU kernels
            np.testing.assert_allclose(got64, distance_transform(mask, spacing, dtype="float64"), rtol=1e-13)
            np.testing.assert_allclose(got32, distance_transform(mask, spacing), rtol=1e-6)
        assert got64.dtype == np.float64
        assert got32.dtype == np.float32
        np.testing.assert_allclose(got64, expected, rtol=1e-13, atol=0)
        np.testing.assert_allclose(got32, expected, rtol=2e-6, atol=0)
        if mask.size <= 600:
            np.testing.assert_allclose(got64, ref.distance_transform(mask, spacing), rtol=1e-12)


def test_isotropic_is_bit_identical_to_scipy(rng):
    mask = random_mask(rng, (17, 19, 23), 0.9)
    np.testing.assert_array_equal(distance_transform(mask, dtype="float64"), ndi.distance_transform_edt(mask))
    np.testing.assert_array_equal(distance_transform(mask, 2.0, dtype="float64"),
                                  ndi.distance_transform_edt(mask, sampling=2.0))


@pytest.mark.parametrize("shape", [(5,), (4, 6), (3, 4, 5), (1, 3, 1)])
def test_no_zero_element_follows_scipy(shape, device):
    mask = np.ones(shape, np.uint8)
    spacing = tuple(np.linspace(0.7, 1.9, len(shape)))
    expected = ndi.distance_transform_edt(mask, sampling=spacing)

    def edt(**kw):
        out = distance_transform(to_device(mask, device), spacing, dtype="float64", **kw)
        assert_on_device(out, device)
        return to_numpy(out)

    np.testing.assert_allclose(edt(), expected, rtol=1e-13)
    np.testing.assert_allclose(edt(squared=True), expected**2, rtol=1e-13)
    np.testing.assert_allclose(edt(), ref.distance_transform(mask, spacing), rtol=1e-12)


def test_single_zero_and_all_zero(rng):
    mask = np.ones((9, 8, 7), bool)
    mask[4, 1, 6] = False
    spacing = (2.5, 0.8, 0.8)
    np.testing.assert_allclose(distance_transform(mask, spacing, dtype="float64"),
                               ndi.distance_transform_edt(mask, sampling=spacing), rtol=1e-13)
    zeros = np.zeros((4, 5, 6), np.int16)
    out = distance_transform(zeros)
    assert out.shape == zeros.shape
    assert not out.any()


def test_squared(rng):
    mask = random_mask(rng, (12, 15, 9))
    spacing = (1.5, 0.7, 1.1)
    d = ndi.distance_transform_edt(mask, sampling=spacing)
    np.testing.assert_allclose(distance_transform(mask, spacing, squared=True, dtype="float64"), d * d, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.int8, np.int16, np.uint16, np.int32, np.int64,
                                   np.float16, np.float32, np.float64])
def test_input_dtypes(rng, dtype):
    values = rng.integers(0, 3, (8, 9, 10)) * (rng.random((8, 9, 10)) < 0.8)
    if dtype in (np.float16, np.float32, np.float64):
        values = values * 0.5 - 0.25 * (values == 1)
    mask = values.astype(dtype)
    expected = ndi.distance_transform_edt(mask != 0)
    np.testing.assert_allclose(distance_transform(mask, dtype="float64"), expected, rtol=1e-13)


def test_nan_is_foreground():
    mask = np.array([0.0, np.nan, 1.0, 0.0])
    np.testing.assert_array_equal(distance_transform(mask, dtype="float64"), [0.0, 1.0, 1.0, 0.0])


def test_strided_transposed_and_fortran_views(rng):
    base = random_mask(rng, (14, 16, 18), 0.85)
    spacing_full = (0.9, 1.3, 2.1)
    views = {
        "sliced": (base[::2, 1:, ::-3], spacing_full),
        "transposed": (base.transpose(2, 0, 1), (2.1, 0.9, 1.3)),
        "fortran": (np.asfortranarray(base), spacing_full),
        "uint8_strided": (base.astype(np.uint8)[:, ::2], spacing_full),
    }
    for name, (view, spacing) in views.items():
        out = distance_transform(view, spacing, dtype="float64")
        assert out.shape == view.shape, name
        # Bit for bit: the passes run in logical axis order whatever the layout (memory order
        # summed the per-axis terms in another order, an ulp off scipy).
        np.testing.assert_array_equal(out, ndi.distance_transform_edt(view, sampling=spacing), err_msg=name)
        np.testing.assert_array_equal(distance_transform(view, spacing),
                                      distance_transform(np.ascontiguousarray(view), spacing), err_msg=name)


def test_input_not_modified(rng):
    mask = random_mask(rng, (10, 11, 12)).astype(np.float32)
    before = mask.copy()
    distance_transform(mask, (1.0, 2.0, 3.0))
    signed_distance(mask)
    np.testing.assert_array_equal(mask, before)


def test_torch_in_torch_out(rng, device):
    torch = pytest.importorskip("torch")
    mask = random_mask(rng, (6, 7, 8))
    t = to_device(torch.from_numpy(mask), device).permute(2, 0, 1)
    out = distance_transform(t, (1.0, 2.0, 0.5), dtype="float64")
    assert isinstance(out, torch.Tensor)
    assert out.device == t.device
    assert out.dtype == torch.float64
    assert tuple(out.shape) == (8, 6, 7)
    expected = ndi.distance_transform_edt(mask.transpose(2, 0, 1), sampling=(1.0, 2.0, 0.5))
    np.testing.assert_allclose(to_numpy(out), expected, rtol=1e-13)


def test_empty_array():
    out = distance_transform(np.zeros((0, 4), bool))
    assert out.shape == (0, 4)
    assert out.dtype == np.float32


# (12, 41, 43): whole planes per thread at 1 thread, every axis split across threads at 2 and 3.
@pytest.mark.parametrize("shape", [(37, 41, 43), (12, 41, 43)])
def test_thread_count_independent(rng, shape):
    mask = random_mask(rng, shape, 0.97)
    spacing = (2.5, 0.8, 0.8)
    previous = medseg_fast.get_num_threads()
    try:
        medseg_fast.set_num_threads(1)
        one = distance_transform(mask, spacing)
        medseg_fast.set_num_threads(2)
        two = distance_transform(mask, spacing)
        medseg_fast.set_num_threads(3)
        three = distance_transform(mask, spacing)
    finally:
        medseg_fast.set_num_threads(previous)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, three)


def test_real_tumour_label():
    label, spacing = load_volume("ct_chest_lung2_crop_tumor_label.nii.gz")
    for mask in (label == 0, label != 0):
        np.testing.assert_allclose(distance_transform(mask, spacing, dtype="float64"),
                                   ndi.distance_transform_edt(mask, sampling=spacing), rtol=1e-13)
        np.testing.assert_allclose(distance_transform(mask, spacing),
                                   ndi.distance_transform_edt(mask, sampling=spacing), rtol=2e-6)


def test_signed_distance(rng):
    mask = np.zeros((12, 13, 14), bool)
    mask[3:9, 2:10, 4:11] = True
    spacing = (1.5, 0.7, 1.0)
    sdf = signed_distance(mask, spacing, dtype="float64")
    expected = ndi.distance_transform_edt(~mask, sampling=spacing) - ndi.distance_transform_edt(mask, sampling=spacing)
    np.testing.assert_allclose(sdf, expected, rtol=1e-13)
    assert np.all(sdf[mask] < 0)
    assert np.all(sdf[~mask] > 0)
    small = random_mask(rng, (5, 6, 4), 0.5)
    np.testing.assert_allclose(signed_distance(small, (1.0, 2.0, 3.0), dtype="float64"),
                               ref.signed_distance(small, (1.0, 2.0, 3.0)), rtol=1e-12)
    assert not signed_distance(np.zeros((4, 4), bool)).any()
    assert not signed_distance(np.ones((4, 4), bool)).any()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"spacing": (1.0, 0.0, 1.0)}, ValueError, r"spacing must have 3 positive values for a 3-D mask, got \(1.0, 0.0, 1.0\)"),
        ({"spacing": (1.0, 1.0)}, ValueError, "spacing must have 3 positive values"),
        ({"spacing": -1.0}, ValueError, "spacing must have 3 positive values"),
        ({"spacing": "abc"}, ValueError, "spacing must be"),
        ({"dtype": "float16"}, ValueError, r"dtype must be one of \('float32', 'float64'\), got 'float16'"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        distance_transform(np.ones((3, 4, 5), bool), **kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="mask must have at least 1 dimension"):
        distance_transform(np.array(True))
    with pytest.raises(TypeError, match="mask must be a numpy array, torch tensor or cupy array"):
        distance_transform(object())


@pytest.mark.parametrize("spacing", [(2.08, 2.23), (0.5, 3.0), (1.0, 1.0)])
def test_long_lines_keep_float32_envelope(spacing):
    # Intersections in the textbook form cancel terms of size s^2 n^2; in float32 on 1000-voxel
    # lines that dropped parabolas from the envelope (errors of 7% at a fixed seed).
    mask = np.random.default_rng(0).random((8, 1000)) < 0.5
    np.testing.assert_allclose(distance_transform(mask, spacing), ndi.distance_transform_edt(mask, sampling=spacing),
                               rtol=2e-6)
    np.testing.assert_allclose(distance_transform(mask.T.copy(), spacing[::-1]),
                               ndi.distance_transform_edt(mask.T, sampling=spacing[::-1]), rtol=2e-6)
