"""Edge-of-range numerics and argument validation (issue 15, items 4-7 and 9).

Each test pins a reproducer that gave a wrong number or an unclear error before the fix.
"""

from __future__ import annotations

import warnings
import zlib

import medseg_fast as mf
import numpy as np
import pytest

FLT_MAX = float(np.finfo(np.float32).max)
ALL_INPUT_DTYPES = [np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64,
                    np.float16, np.float32, np.float64]


@pytest.fixture
def rng(request):
    """A generator seeded from a stable hash of the test id (reproducible across processes)."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def window_reference(x, lo, hi, a=0.0, b=1.0):
    """clip(x, lo, hi) mapped linearly to [a, b], in float64 (numpy.clip semantics for NaN)."""
    x = np.asarray(x, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        t = (np.clip(x, lo, hi) - lo) / (hi - lo) if np.isfinite(hi - lo) else (np.clip(x, lo, hi) / 2 - lo / 2) / (hi / 2 - lo / 2)
    return a + (b - a) * t


# ----------------------------------------------------------------------------- item 4: window edges
@pytest.mark.parametrize("dtype", ALL_INPUT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_window_wider_than_float_range(dtype):
    # A 1e39-wide window used to give NaN for every dtype computed in float (center -5e38 -> -inf).
    x = np.array([0, 1, 1, 0], dtype)
    np.testing.assert_allclose(mf.hu_window(x, 0, 1e39), 0.5, rtol=0, atol=1e-6)
    np.testing.assert_allclose(mf.multi_window(x, [(0, 1e39), (0.5, 1)])[0], 0.5, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_window_at_float32_max(dtype):
    # Inputs and window ends at +-FLT_MAX: x - lo overflowed float, the scale was subnormal.
    x = np.array([-FLT_MAX, 0.0, FLT_MAX, -np.inf, np.inf, np.nan], dtype)
    y = mf.hu_window(x, lo=-FLT_MAX, hi=FLT_MAX)
    np.testing.assert_array_equal(y, np.array([0.0, 0.5, 1.0, 0.0, 1.0, np.nan], np.float32))
    z = mf.mr_normalize(x[:3], method="minmax")
    np.testing.assert_array_equal(z, np.array([0.0, 0.5, 1.0], np.float32))


@pytest.mark.parametrize("dtype", ALL_INPUT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_window_extremes_match_float64_reference(dtype, rng):
    # Windows from a 1e-3 HU sliver to wider than float's range, centers up to +-1e38, against
    # the float64 formula; inputs include the dtype's extremes (and +-inf, NaN for floats).
    dt = np.dtype(dtype)
    if dt.kind == "f":
        info = np.finfo(dt)
        special = [info.min, info.max, -np.inf, np.inf, np.nan, 0.0, -0.0, info.tiny]
        body = rng.uniform(-3000, 3000, 200)
    elif dt.kind == "b":
        special, body = [0, 1], rng.integers(0, 2, 200)
    else:
        info = np.iinfo(dt)
        special = [info.min, info.max, 0]
        body = rng.integers(max(info.min, -3000), min(info.max, 3000), 200, endpoint=True)
    x = np.concatenate([np.array(special, dt), body.astype(dt)])
    x64 = x.astype(np.float64)
    finite = x64[np.isfinite(x64)]
    def width_at(center, width):  # at least 1e-9 of the center: narrower windows collapse (tested below)
        return max(width, abs(center) * 1e-9)

    ends = [float(finite.max()), float(finite.min())]
    windows = [(40.0, 80.0), (0.0, 1e39), (-1e38, 1e38), (1e38, 3e38), (0.0, 2 * FLT_MAX), (1000.0, 1e-3),
               (ends[0] - width_at(ends[0], 1.0), width_at(ends[0], 1.0)),
               (ends[1] + width_at(ends[1], 7.0), width_at(ends[1], 7.0)), (0.0, float(np.float32(1e-30)))]
    for _ in range(6):
        center = float(rng.uniform(-1, 1) * 10.0 ** rng.uniform(0, 38))
        windows.append((center, width_at(center, float(10.0 ** rng.uniform(-3, 39)))))
    for center, width in windows:
        lo, hi = mf.window_bounds(center, width)
        expected = window_reference(x64, lo, hi, -1.0, 2.0)
        got = mf.hu_window(x, center, width, out_range=(-1.0, 2.0))
        np.testing.assert_allclose(got, expected, rtol=0, atol=3e-6, equal_nan=True,
                                   err_msg=f"center={center}, width={width}")


def test_window_mixed_extreme_and_narrow_windows_stay_exact(rng):
    # One extreme window switches the whole call to the double path; the narrow one stays exact.
    x = rng.uniform(990, 1010, 5000).astype(np.float32)
    stack = mf.multi_window(x, [(1000.0, 0.07), (0.0, 1e39)])
    lo, hi = mf.window_bounds(1000.0, 0.07)
    np.testing.assert_allclose(stack[0], window_reference(x, lo, hi), rtol=0, atol=6e-7)
    np.testing.assert_allclose(stack[1], 0.5, rtol=0, atol=1e-6)


@pytest.mark.parametrize("call", [
    lambda x: mf.hu_window(x, -600, 1e-30),
    lambda x: mf.multi_window(x, [(-600, 1e-30)]),
    lambda x: mf.window_bounds(-600, 1e-30),
    lambda x: mf.hu_window(x, 1.7e308, 1e308),
])
def test_collapsed_or_overflowing_window_is_rejected(call):
    # lo == hi in float64 used to be accepted and hu_window then raised ZeroDivisionError.
    with pytest.raises(ValueError, match=r"center=.*width=.*expected finite bounds with lo < hi"):
        call(np.zeros(3, np.int16))


def test_window_span_overflowing_float64_is_rejected():
    with pytest.raises(ValueError, match=r"lo=-1e\+308, hi=1e\+308.*hi - lo"):
        mf.hu_window(np.zeros(3), lo=-1e308, hi=1e308)
    with pytest.raises(ValueError, match=r"slope"):
        mf.hu_window(np.zeros(3), lo=0.0, hi=1e-310)


def test_window_nan_and_inf_inputs_follow_numpy_clip():
    x = np.array([np.nan, -np.inf, np.inf, -1.0, 0.5, 2.0], np.float32)
    for dtype in (np.float16, np.float32, np.float64):
        y = mf.hu_window(x.astype(dtype), lo=0.0, hi=1.0)
        np.testing.assert_array_equal(y, window_reference(x, 0.0, 1.0).astype(np.float32))


# ----------------------------------------------------------------------------- item 5: statistics
def numpy_stats(values, q, policy):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if policy == "omit":
            values = values[~np.isnan(values)]
        if values.size == 0:
            return {"mean": np.nan, "std": np.nan, "min": np.nan, "max": np.nan, "count": 0,
                    "percentiles": np.full(len(q), np.nan)}
        return {"mean": np.mean(values), "std": np.std(values), "min": np.min(values), "max": np.max(values),
                "count": values.size, "percentiles": np.percentile(values, q)}


STAT_CASES = {
    "nan": [1.0, np.nan, 3.0, 2.0],
    "pos_inf": [1.0, np.inf, 2.0],
    "neg_inf": [1.0, -np.inf, 2.0, 5.0],
    "both_inf": [1.0, -np.inf, np.inf],
    "mixed": [np.nan, 1.0, -np.inf, np.inf, 4.0],
    "inf_nan": [np.inf, np.nan, np.inf],
    "all_nan": [np.nan, np.nan],
    "all_inf": [np.inf, np.inf, np.inf],
    "finite": [1.0, 2.0, 4.0, 8.0],
}


@pytest.mark.parametrize("policy", ["propagate", "omit"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(STAT_CASES))
def test_intensity_stats_nonfinite_match_numpy(case, dtype, policy):
    # std was 0.0 with +-inf (numpy: nan); count/min/max skipped NaN while the mean was NaN.
    x = np.array(STAT_CASES[case], dtype)
    q = (0.0, 25.0, 50.0, 99.5, 100.0)
    got = mf.intensity_stats(x, percentiles=q, nan_policy=policy)
    want = numpy_stats(x.astype(np.float64) if dtype == np.float16 else x, q, policy)
    for key in ("mean", "std", "min", "max"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-6, equal_nan=True, err_msg=key)
    assert got["count"] == want["count"]
    np.testing.assert_allclose(got["percentiles"], want["percentiles"], rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("policy", ["propagate", "omit"])
def test_intensity_stats_nonfinite_with_mask_and_empty_mask(policy):
    x = np.array([np.nan, 1.0, np.inf, 3.0, 5.0], np.float32)
    mask = np.array([0, 1, 0, 1, 1], bool)
    s = mf.intensity_stats(x, mask, percentiles=(50,), nan_policy=policy)
    assert (s["mean"], s["min"], s["max"], s["count"]) == (3.0, 1.0, 5.0, 3)
    assert s["std"] == pytest.approx(np.std([1.0, 3.0, 5.0]))
    nan_selected = mf.intensity_stats(x, np.array([1, 1, 0, 0, 0], bool), nan_policy=policy)
    if policy == "propagate":
        assert nan_selected["count"] == 2 and np.isnan(nan_selected["min"]) and np.isnan(nan_selected["mean"])
    else:
        assert nan_selected["count"] == 1 and nan_selected["min"] == nan_selected["max"] == nan_selected["mean"] == 1.0
    empty = mf.intensity_stats(x, np.zeros(5, bool), nan_policy=policy)
    assert empty["count"] == 0
    assert all(np.isnan(empty[k]) for k in ("mean", "std", "min", "max"))
    assert np.all(np.isnan(empty["percentiles"]))


def test_nan_policy_is_validated():
    with pytest.raises(ValueError, match=r"nan_policy must be one of \('propagate', 'omit'\), got 'raise'"):
        mf.intensity_stats(np.zeros(3), nan_policy="raise")
    with pytest.raises(ValueError, match="nan_policy"):
        mf.ct_normalize(np.zeros(3), nan_policy=None)
    with pytest.raises(ValueError, match="nan_policy"):
        mf.mr_normalize(np.zeros(3), nan_policy="skip")


def test_normalizers_follow_nan_policy():
    x = np.array([np.nan, 1.0, 2.0, 3.0], np.float32)
    # propagate: numpy's statistics are NaN, so is every output voxel (MONAI / nnU-Net numpy code).
    assert np.all(np.isnan(mf.ct_normalize(x)))
    assert np.all(np.isnan(mf.mr_normalize(x)))
    finite = x[1:].astype(np.float64)
    ref = (finite - finite.mean()) / finite.std()
    y = mf.mr_normalize(x, nan_policy="omit")
    assert np.isnan(y[0])
    np.testing.assert_allclose(y[1:], ref, rtol=1e-6)
    lo, hi = np.percentile(finite, [0.5, 99.5])
    y = mf.ct_normalize(x, nan_policy="omit")
    np.testing.assert_allclose(y[1:], (np.clip(finite, lo, hi) - finite.mean()) / finite.std(), rtol=1e-6)
    assert np.isnan(y[0])
