"""The AVX2 envelope path of the EDT (8 float32 / 4 float64 lines in lockstep) against the scalar path and scipy.

Both paths must give bit-identical results: same operations, same order, per lane. Shapes are
chosen so that groups of 8 lines and scalar remainders meet on every axis.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from conftest import load_volume
from medseg_fast import _C, distance_transform


def _simd_available() -> bool:
    before = _C._edt_simd_mode(-1)
    available = bool(_C._edt_simd_mode(1))
    _C._edt_simd_mode(before)
    return available


pytestmark = pytest.mark.skipif(not _simd_available(), reason="CPU without AVX2: only the scalar path exists")

SHAPES = [(9, 17, 23), (3, 8, 8), (2, 40, 16), (64, 3, 9), (31, 33), (8, 1000), (3, 5, 9, 17), (1, 8, 300)]


def _both_paths(mask, spacing, **kwargs):
    before = _C._edt_simd_mode(-1)
    try:
        _C._edt_simd_mode(0)
        scalar = distance_transform(mask, spacing, **kwargs)
        _C._edt_simd_mode(1)
        simd = distance_transform(mask, spacing, **kwargs)
    finally:
        _C._edt_simd_mode(before)
    return scalar, simd


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("density", [0.02, 0.5, 0.97, 0.9995])
@pytest.mark.parametrize(("dtype", "rtol"), [("float32", 2e-6), ("float64", 1e-13)])
def test_simd_is_bit_identical_to_scalar_and_matches_scipy(rng, shape, density, dtype, rtol):
    mask = rng.random(shape) < density
    if mask.all():
        mask.flat[rng.integers(mask.size)] = False
    spacing = tuple(float(s) for s in rng.uniform(0.3, 3.0, len(shape)))
    scalar, simd = _both_paths(mask, spacing, dtype=dtype)
    assert simd.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(simd, scalar)
    np.testing.assert_allclose(simd, ndi.distance_transform_edt(mask, sampling=spacing), rtol=rtol, atol=rtol)


def test_lanes_with_and_without_sites(rng):
    # Columns without any site along axis 0 stay +inf until a later axis: mix such lanes with
    # ordinary ones inside one group of 8, and whole planes of sites (skipped groups).
    mask = np.ones((6, 24, 40), bool)
    mask[:, 3, 5] = False
    mask[2, :, 17] = False
    mask[4] = False
    mask[0, rng.integers(24, size=5), rng.integers(40, size=5)] = False
    for squared in (False, True):
        scalar64, simd64 = _both_paths(mask, (2.0, 0.7, 1.3), squared=squared, dtype="float64")
        np.testing.assert_array_equal(simd64, scalar64)
        scalar, simd = _both_paths(mask, (2.0, 0.7, 1.3), squared=squared)
        np.testing.assert_array_equal(simd, scalar)
        expected = ndi.distance_transform_edt(mask, sampling=(2.0, 0.7, 1.3))
        np.testing.assert_allclose(simd, expected ** 2 if squared else expected, rtol=4e-6)


def test_integer_spacing_is_exact(rng):
    mask = rng.random((11, 37, 29)) < 0.9
    scalar, simd = _both_paths(mask, (3.0, 1.0, 2.0), squared=True)
    np.testing.assert_array_equal(simd, scalar)
    np.testing.assert_array_equal(simd, np.rint(ndi.distance_transform_edt(mask, sampling=(3.0, 1.0, 2.0)) ** 2))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_real_volume_both_paths(dtype):
    label, spacing = load_volume("ct_chest_lung2_crop_tumor_label.nii.gz")
    for mask in (label == 0, label != 0):
        scalar, simd = _both_paths(mask, spacing, dtype=dtype)
        np.testing.assert_array_equal(simd, scalar)
