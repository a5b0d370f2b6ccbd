"""The AVX2 window loop against the portable loop: bit-identical outputs (same IEEE operations in the
same order, no FMA), for every input dtype whose loop has a wide version, both output float types,
float and double compute (an extreme window forces double), run lengths that leave remainders, the
streaming-store path (outputs over 32 MiB) and the reference."""

from __future__ import annotations

import numpy as np
import pytest
from medseg_fast import _C, ct_normalize, hu_window, multi_window
from medseg_fast.reference import intensity as ref


def _simd_available() -> bool:
    before = _C._window_simd_mode(-1)
    available = bool(_C._window_simd_mode(1))
    _C._window_simd_mode(before)
    return available


pytestmark = pytest.mark.skipif(not _simd_available(), reason="CPU without AVX2: only the portable loop exists")


def _both_paths(fn):
    before = _C._window_simd_mode(-1)
    try:
        _C._window_simd_mode(0)
        portable = fn()
        _C._window_simd_mode(1)
        wide = fn()
    finally:
        _C._window_simd_mode(before)
    return portable, wide


def _random(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -5000), min(info.max, 5000), size=shape, endpoint=True).astype(dtype)
    x = (rng.normal(0, 800, size=shape)).astype(dtype)
    x.flat[:: 97] = np.nan
    x.flat[5:: 101] = np.inf
    x.flat[7:: 103] = -np.inf
    return x


DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_dtype", ["float32", "float16"])
@pytest.mark.parametrize("shape", [(3, 7, 13), (2, 5, 8195), (1, 1, 1), (4, 1000)])
@pytest.mark.parametrize("window", [(-160.0, 240.0), (-0.035, 0.035), (-1e300, 1e300)])
def test_wide_window_loop_is_bit_identical(rng, dtype, out_dtype, shape, window):
    x = _random(rng, shape, dtype)
    lo, hi = window
    portable, wide = _both_paths(lambda: hu_window(x, lo=lo, hi=hi, dtype=out_dtype))
    np.testing.assert_array_equal(wide.view(np.uint8), portable.view(np.uint8))
    expected = ref.hu_window(x, lo, hi)
    tol = 1e-3 if out_dtype == "float16" else 1e-6
    np.testing.assert_allclose(wide.astype(np.float64), expected, rtol=tol, atol=tol)


def test_wide_loop_streaming_outputs_and_multi_window(rng):
    x = _random(rng, (9, 256, 1031), "int16")     # 9.5 MB in, 2 windows x 38 MB out: streaming stores
    windows = [(0.0, 2000.0), (40.0, 400.0)]
    portable, wide = _both_paths(lambda: multi_window(x, windows))
    np.testing.assert_array_equal(wide.view(np.uint8), portable.view(np.uint8))


def test_wide_loop_ct_normalize(rng):
    x = _random(rng, (5, 61, 67), "int16")
    portable, wide = _both_paths(lambda: ct_normalize(x))
    np.testing.assert_array_equal(wide.view(np.uint8), portable.view(np.uint8))


def test_mode_switch_is_reported():
    before = _C._window_simd_mode(-1)
    try:
        assert _C._window_simd_mode(0) == 0
        assert _C._window_simd_mode(1) == 1
        assert _C._window_simd_mode(7) == 1     # other values only query
    finally:
        _C._window_simd_mode(before)
