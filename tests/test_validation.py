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


def test_window_extremes_bfloat16_input():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    big = float(ml_dtypes.finfo(ml_dtypes.bfloat16).max)
    x = np.array([-big, -1.0, 0.0, 2.0, big, -np.inf, np.inf, np.nan], ml_dtypes.bfloat16)
    x64 = x.astype(np.float64)
    for center, width in [(0.0, 2 * big), (0.0, 1e39), (40.0, 80.0), (1.0, 1e-3), (-big / 2, big)]:
        lo, hi = mf.window_bounds(center, width)
        np.testing.assert_allclose(mf.hu_window(x, center, width), window_reference(x64, lo, hi), rtol=0, atol=3e-6,
                                   equal_nan=True, err_msg=f"center={center}, width={width}")


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


# ----------------------------------------------------------------------------- item 6: clear errors
TORCH_UNSIGNED = ["uint16", "uint32", "uint64"]


def _torch_unsigned(name, values):
    torch = pytest.importorskip("torch")
    return torch.from_numpy(np.ascontiguousarray(values.astype(name))).to(getattr(torch, name))


@pytest.mark.parametrize("name", TORCH_UNSIGNED)
def test_torch_unsigned_inputs_match_numpy(name, rng):
    # component_stats / resample_labels(num_classes=...) ended in torch's NotImplementedError
    # ("min_all" / "aminmax" not implemented for 'UInt16').
    big = {"uint16": 60000, "uint32": 2**31 + 7, "uint64": 2**63 + 9}[name]
    a = rng.integers(0, 3, (5, 6, 7)).astype(name)
    small = a.copy()
    a[a == 2] = big
    t = _torch_unsigned(name, a)
    ts = _torch_unsigned(name, small)
    for fn in (lambda x: mf.component_stats(x, compact=True), lambda x: mf.intensity_stats(x)):
        r1, r2 = fn(a), fn(t)
        for key in r1:
            np.testing.assert_array_equal(np.asarray(r1[key]), np.asarray(r2[key]), err_msg=key)
    for fn in (mf.label, mf.fill_holes, mf.keep_largest_per_class, lambda x: mf.largest_component(x, 1),
               lambda x: mf.hu_window(x, 0, 1e19), lambda x: mf.resample(x, (3, 4, 5)),
               lambda x: mf.resample_labels(x, (3, 4, 5)), mf.distance_transform):
        np.testing.assert_array_equal(np.asarray(fn(a)), fn(t).numpy())
    np.testing.assert_array_equal(mf.component_stats(small)["sizes"], mf.component_stats(ts)["sizes"])
    np.testing.assert_array_equal(mf.resample_labels(small, (3, 4, 5), num_classes=3),
                                  mf.resample_labels(ts, (3, 4, 5), num_classes=3).numpy())
    with pytest.raises(ValueError, match=r"labels must lie in \[0, num_classes\) = \[0, 3\), got values in \[0, "):
        mf.resample_labels(t, (3, 4, 5), num_classes=3)
    from medseg_fast import metrics as M
    assert M.evaluate(t, t, [1])[0]["dice"] == 1.0


@pytest.mark.parametrize(("value", "dtype"), [(np.iinfo(np.int32).max, np.int32), (np.iinfo(np.int64).max, np.int64),
                                              (2**63 + 5, np.uint64), (2**40, np.int64)])
def test_component_stats_sparse_label_values(value, dtype):
    # int32 max asked numpy for a 48 GiB table, int64 max gave "negative dimensions", uint64 a pybind dump.
    labels = np.zeros((3, 4, 5), dtype)
    labels[0, 0, 0] = value
    labels[2, 1:3, 2] = 7
    with pytest.raises(ValueError, match=rf"labels has a maximum value of {value}.*compact=True"):
        mf.component_stats(labels)
    s = mf.component_stats(labels, compact=True)
    assert s["labels"].dtype == labels.dtype
    assert s["labels"].tolist() == [0, 7, value]
    assert s["sizes"].tolist() == [57, 2, 1]
    assert s["bboxes"][2].tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(s["centroids"][1], [2.0, 1.5, 2.0])
    # Values up to max(size, 2**20) keep the dense table indexed by label value.
    dense = mf.component_stats(np.where(labels == 7, 2**20, 0).astype(dtype))
    assert len(dense["sizes"]) == 2**20 + 1 and dense["sizes"][2**20] == 2
    with pytest.raises(TypeError, match="compact must be a bool"):
        mf.component_stats(labels, compact="yes")


def test_component_stats_compact_matches_dense_and_empty():
    labels = np.array([[0, 3, 3], [5, 0, 0]], np.uint8)
    dense, compact = mf.component_stats(labels), mf.component_stats(labels, compact=True)
    rows = compact["labels"].astype(int)
    for key in ("sizes", "volumes_mm3", "bboxes"):
        np.testing.assert_array_equal(compact[key], dense[key][rows])
    np.testing.assert_array_equal(compact["centroids"], dense["centroids"][rows])
    empty = mf.component_stats(np.zeros((0, 4), np.int32), compact=True)
    assert empty["labels"].shape == (0,) and empty["sizes"].shape == (0,) and empty["bboxes"].shape == (0, 4)


@pytest.mark.parametrize("percentiles", [(99, 1), (50, 49.9)])
def test_ct_normalize_rejects_reversed_percentiles(percentiles):
    # ct_normalize accepted (99, 1) and returned something that is not a clip; mr_normalize refused it.
    x = np.arange(100, dtype=np.float32)
    for fn in (mf.ct_normalize, mf.mr_normalize):
        with pytest.raises(ValueError, match=r"percentiles must be a pair \(low, high\) with 0 <= low <= high <= 100"):
            fn(x, percentiles=percentiles)


@pytest.mark.parametrize("bad", [["a", "b"], [True, False], "5", [[1, 2], [3]]])
def test_percentiles_must_be_numbers(bad):
    with pytest.raises(TypeError, match="percentiles must be a number or a sequence of numbers"):
        mf.intensity_stats(np.zeros(4), percentiles=bad)


def test_evaluate_names_the_bad_metric():
    from medseg_fast import metrics as M

    m = np.ones((3, 3, 3), np.uint8)
    with pytest.raises(ValueError, match=r"metrics: 'hd101' asks for the 101th percentile.*\[0, 100\]"):
        M.evaluate(m, m, [1], metrics=["hd101"])
    with pytest.raises(ValueError, match=r"metrics must name metrics from .* got 'hausdorff'"):
        M.evaluate(m, m, [1], metrics=["dice", "hausdorff"])
    with pytest.raises(ValueError, match="metrics must name at least one metric"):
        M.evaluate(m, m, [1], metrics=[])


@pytest.mark.parametrize("n", [np.int64(2), np.int32(3), np.uint8(1), 4])
def test_set_num_threads_accepts_any_integral(n):
    before = mf.get_num_threads()
    try:
        mf.set_num_threads(n)
        assert mf.get_num_threads() == int(n)
    finally:
        mf.set_num_threads(before)


@pytest.mark.parametrize(("n", "error", "message"), [
    (2**31, ValueError, r"n must be in 1\.\.4096, got 2147483648"),
    (5000, ValueError, r"n must be in 1\.\.4096, got 5000"),
    (0, ValueError, r"n must be in 1\.\.4096, got 0"),
    (-3, ValueError, r"n must be in 1\.\.4096, got -3"),
    (True, TypeError, r"n must be an integer, got bool"),
    (np.bool_(True), TypeError, r"n must be an integer, got bool"),
    (2.0, TypeError, r"n must be an integer, got float 2\.0"),
    ("2", TypeError, r"n must be an integer, got str"),
])
def test_set_num_threads_rejects(n, error, message):
    before = mf.get_num_threads()
    with pytest.raises(error, match=message):
        mf.set_num_threads(n)
    assert mf.get_num_threads() == before


@pytest.mark.parametrize("shape", [(0, 5, 5), (3, 0, 4), (2, 3, 0), (0, 0, 0)])
def test_resample_empty_broadcast_view_is_a_clear_error(shape):
    # An empty zero-stride view raised AssertionError.
    x = np.broadcast_to(np.float32(1), shape)
    for call in (lambda: mf.resample(x, (2, 2, 2)), lambda: mf.resample(x, (2, 2, 2), order=3),
                 lambda: mf.resample_labels(np.broadcast_to(np.uint8(1), shape), (2, 2, 2))):
        with pytest.raises(ValueError, match=r"at least one voxel along every spatial axis, got shape="):
            call()


@pytest.mark.parametrize(("classes", "error", "message"), [
    ([1.5], TypeError, r"classes must hold integer labels, got float 1\.5"),
    ([2.0], TypeError, r"classes must hold integer labels, got float 2\.0"),
    ([True], TypeError, r"classes must hold integer labels, got bool"),
    ("12", TypeError, r"classes must be a sequence of integer labels, got '12'"),
    ([1, -1], ValueError, r"classes must be non-negative label values, got -1"),
    ([1, 1], ValueError, r"classes must not repeat a label, got \[1, 1\]"),
])
def test_metric_classes_are_validated(classes, error, message):
    from medseg_fast import metrics as M

    m = np.array([[0, 1, 2], [1, 1, 0]], np.uint8)
    for call in (lambda: M.dice(m, m, classes=classes), lambda: M.iou(m, m, classes=classes),
                 lambda: M.evaluate(m, m, classes)):
        with pytest.raises(error, match=message):
            call()


def test_keep_largest_per_class_rejects_float_classes():
    m = np.array([[1, 0, 1, 1, 2]], np.uint8)
    with pytest.raises(TypeError, match=r"classes must hold integer labels, got float 1\.5"):
        mf.keep_largest_per_class(m, classes=[1.5])
    np.testing.assert_array_equal(mf.keep_largest_per_class(m, classes=[np.int64(1)], connectivity=4),
                                  [[0, 0, 1, 1, 2]])


def test_metric_shapes_and_scalars_are_validated():
    from medseg_fast import metrics as M

    a = np.ones((3, 3, 3), np.uint8)
    b = np.ones((3, 3, 4), np.uint8)
    for call in (lambda: M.evaluate(a, b, [1]), lambda: M.dice(a, b), lambda: M.hausdorff(a, b)):
        with pytest.raises(ValueError, match=r"gt must have the shape of pred: pred\.shape=\(3, 3, 3\), gt\.shape=\(3, 3, 4\)"):
            call()
    with pytest.raises(TypeError, match="percentile must be None or a number"):
        M.hausdorff(a, a, percentile=True)
    with pytest.raises(TypeError, match="tolerance must be a finite number"):
        M.surface_dice(a, a, True)
    with pytest.raises(TypeError, match="empty must be a number"):
        M.dice(a, a, empty="nan")


@pytest.mark.parametrize(("call", "name"), [
    (lambda v: mf.distance_transform(np.ones(3), squared=v), "squared"),
    (lambda v: mf.label(np.ones(3, bool), return_num=v), "return_num"),
    (lambda v: mf.mr_normalize(np.ones(3), mask=np.ones(3, bool), masked_only=v), "masked_only"),
    (lambda v: __import__("medseg_fast.metrics").metrics.hausdorff(np.ones(3), np.ones(3), directed=v), "directed"),
    (lambda v: __import__("medseg_fast.metrics").metrics.average_surface_distance(np.ones(3), np.ones(3), symmetric=v),
     "symmetric"),
    (lambda v: __import__("medseg_fast.metrics").metrics.mean_iou(np.ones(3, int), np.ones(3, int), 2, ignore_absent=v),
     "ignore_absent"),
])
@pytest.mark.parametrize("value", ["no", 1, None])
def test_bool_flags_refuse_other_types(call, name, value):
    # A stray "no" used to be read as truthy.
    with pytest.raises(TypeError, match=rf"{name} must be a bool, got"):
        call(value)


# ----------------------------------------------------------------------------- item 7: layouts
def test_dice_refuses_batch_layout_without_layout_keyword(rng):
    # (B, C, ...) input was pooled into one number (0.98 where MONAI gives [1.0, 0.857]).
    from medseg_fast import metrics as M

    p = rng.random((2, 2, 6, 7, 8)) > 0.5
    for fn in (M.dice, M.iou):
        with pytest.raises(ValueError, match=r"scores one case: pred must have 1 to 3 axes.*layout='bc'"):
            fn(p, p)
    with pytest.raises(ValueError, match=r"evaluate scores one case"):
        M.evaluate(p.astype(np.uint8), p.astype(np.uint8), [1], metrics=["dice"])


@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("spatial", [(9,), (8, 9), (6, 7, 8)])
def test_dice_iou_bc_layout_match_monai(include_background, spatial, rng):
    torch = pytest.importorskip("torch")
    monai_metrics = pytest.importorskip("monai.metrics")
    from medseg_fast import metrics as M

    labels_gt = rng.integers(0, 3, (3, *spatial))
    labels_pred = np.where(rng.random(labels_gt.shape) < 0.8, labels_gt, rng.integers(0, 3, labels_gt.shape))
    labels_pred[2] = 0  # an empty foreground class in case 2 (both empty for channel 1 and 2)
    labels_gt[2] = 0
    onehot = lambda lab: np.moveaxis(np.eye(3, dtype=np.float32)[lab], -1, 1)  # noqa: E731
    p, g = onehot(labels_pred), onehot(labels_gt)
    kw = {"include_background": include_background, "ignore_empty": False}
    want = monai_metrics.compute_dice(torch.from_numpy(p), torch.from_numpy(g), **kw).numpy()
    got = M.dice(p, g, layout="bc", include_background=include_background, empty=1.0)
    assert got.shape == (3, 3 if include_background else 2)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    want = monai_metrics.compute_iou(torch.from_numpy(p), torch.from_numpy(g), **kw).numpy()
    np.testing.assert_allclose(M.iou(p, g, layout="bc", include_background=include_background, empty=1.0),
                               want, rtol=1e-6)
    # Torch inputs give the same numbers.
    np.testing.assert_allclose(M.dice(torch.from_numpy(p), torch.from_numpy(g), layout="bc", empty=1.0)[:, 1:]
                               if not include_background else
                               M.dice(torch.from_numpy(p), torch.from_numpy(g), layout="bc", empty=1.0), got, rtol=0)


def test_bc_layout_arguments_are_validated():
    from medseg_fast import metrics as M

    x = np.ones((2, 3, 4, 4))
    with pytest.raises(ValueError, match="layout must be None"):
        M.dice(x, x, layout="cb")
    with pytest.raises(ValueError, match="classes cannot be combined with layout='bc'"):
        M.dice(x, x, layout="bc", classes=[1])
    with pytest.raises(ValueError, match=r"layout='bc' needs \(B, C, \*spatial\).*got shape=\(4, 4\)"):
        M.iou(np.ones((4, 4)), np.ones((4, 4)), layout="bc")
    with pytest.raises(TypeError, match="include_background must be a bool"):
        M.dice(x, x, layout="bc", include_background=0)


# ----------------------------------------------------------------------------- item 9: what the EDT equals
def _edt_cases(rng):
    binary = rng.random((9, 10, 11)) > 0.3
    labels = rng.integers(0, 4, (7, 8, 9)).astype(np.uint8)
    no_background = np.ones((4, 5, 6), np.uint8) * 3
    return {"binary": binary, "multi_label": labels, "no_background": no_background}


@pytest.mark.parametrize("spacing", [None, (2.5, 0.8, 0.7)])
def test_distance_transform_equals_scipy_of_nonzero(spacing, rng):
    ndi = pytest.importorskip("scipy.ndimage")
    for name, mask in _edt_cases(rng).items():
        want = ndi.distance_transform_edt(mask != 0, sampling=spacing)
        np.testing.assert_array_equal(mf.distance_transform(mask, spacing, dtype="float64"), want, err_msg=name)
        np.testing.assert_allclose(mf.distance_transform(mask, spacing), want, rtol=2e-7, err_msg=name)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.5, 0.8, 0.7)])
def test_distance_transform_versus_edt_package(spacing, rng):
    edt = pytest.importorskip("edt")
    cases = _edt_cases(rng)
    # Binary masks with some background: equal to float32 rounding.
    np.testing.assert_allclose(mf.distance_transform(cases["binary"], spacing),
                               edt.edt(cases["binary"], anisotropy=spacing), rtol=2e-7)
    labels = cases["multi_label"]
    np.testing.assert_allclose(mf.distance_transform(labels, spacing), edt.edt(labels != 0, anisotropy=spacing),
                               rtol=2e-7)
    # The documented differences: edt measures multi-label input to the nearest different label
    # (never farther than ours), and gives inf without background where ours is finite.
    theirs = edt.edt(labels, anisotropy=spacing)
    ours = mf.distance_transform(labels, spacing)
    assert np.all(theirs <= ours + 1e-5) and np.any(theirs < ours - 1e-3)
    nb = cases["no_background"]
    assert np.all(np.isinf(edt.edt(nb, anisotropy=spacing)))
    assert np.all(np.isfinite(mf.distance_transform(nb, spacing)))


@pytest.mark.parametrize("k", [2**16 + 1, 2**33, 2**70])
def test_confusion_matrix_huge_num_classes_is_rejected(k):
    # num_classes=2**33 overflowed k * k in the kernel (an empty table, then a segfault).
    from medseg_fast import metrics as M

    m = np.zeros((3, 3, 3), np.uint8)
    for call in (lambda: M.confusion_matrix(m, m, k), lambda: M.mean_iou(m, m, k)):
        with pytest.raises(ValueError, match=rf"num_classes must be in 1\.\.65536 \(a K x K table\), got {k}"):
            call()
    with pytest.raises(TypeError, match="num_classes must be a positive integer, got float"):
        M.confusion_matrix(m, m, 2.0)


def test_confusion_matrix_kernel_guards_its_table_size():
    from medseg_fast import _ext

    a = np.zeros((1, 1, 2), np.uint8)
    desc = (a.ctypes.data, "uint8", [2, 2, 1])
    for k in (2**33, 0, -1):
        with pytest.raises(ValueError, match=rf"num_classes must be in 1\.\.2\*\*20, got {k}"):
            _ext.cpu_module().confusion_matrix([1, 1, 2], desc, desc, k)


def test_confusion_matrix_large_table_single_thread_path_matches(rng):
    # Tables above 256 MiB over all threads are filled by one thread: same integer counts.
    from medseg_fast import metrics as M

    pred = rng.integers(0, 6000, (4, 5, 6))
    gt = np.where(rng.random(pred.shape) < 0.5, pred, rng.integers(0, 6000, pred.shape))
    cm = M.confusion_matrix(pred, gt, 6000)
    want = np.zeros((6000, 6000), np.int64)
    np.add.at(want, (gt.ravel(), pred.ravel()), 1)
    np.testing.assert_array_equal(cm, want)


def test_normalizers_near_float32_max_stay_finite():
    # numpy's float32 interpolation of the percentiles overflowed (inf, -inf): ct_normalize gave [inf, inf].
    x = np.array([-3e38, 3e38], np.float32)
    x64 = x.astype(np.float64)
    lo, hi = np.percentile(x64, [0.5, 99.5])
    np.testing.assert_allclose(mf.ct_normalize(x), (np.clip(x64, lo, hi) - x64.mean()) / x64.std(), rtol=1e-6)
    np.testing.assert_allclose(mf.mr_normalize(x, percentiles=(1, 99)), [-1.0, 1.0], rtol=1e-6)
    # intensity_stats itself keeps numpy's float32 result, bit for bit.
    with np.errstate(over="ignore", invalid="ignore"):
        np.testing.assert_array_equal(mf.intensity_stats(x)["percentiles"], np.percentile(x, [0.5, 99.5]))


def test_intensity_stats_float64_near_max_match_numpy():
    # The kernel's sums of squares overflowed: mean inf and std 0.0 where numpy gives 3.3e307 and inf.
    # numpy's own std overflows here (inf); ours is the finite std of the values (numpy on them scaled).
    for x in (np.array([-1e308, 1e308, 1e308, 5e307]), np.array([-1e200, 3e200, 2e200])):
        scaled = x / 1e200
        for policy in ("propagate", "omit"):
            s = mf.intensity_stats(x, nan_policy=policy)
            assert s["mean"] == pytest.approx(np.mean(scaled) * 1e200, rel=1e-12)
            assert s["std"] == pytest.approx(np.std(scaled) * 1e200, rel=1e-12)
        np.testing.assert_allclose(mf.mr_normalize(x), (scaled - scaled.mean()) / scaled.std(), rtol=1e-6)


@pytest.mark.parametrize("spacing", [1e200, 1e-200, (1.0, 1.0, 1e101)])
def test_extreme_spacing_is_rejected(spacing):
    # spacing 1e200 gave NaN at zero distance (0 * inf) and inf elsewhere; 1e-200 gave all zeros.
    from medseg_fast import metrics as M

    m = np.zeros((3, 3, 3), np.uint8)
    m[1, 1, 1] = 1
    sp = spacing if isinstance(spacing, tuple) else (spacing,) * 3
    for call in (lambda: mf.distance_transform(m, sp), lambda: mf.signed_distance(m, sp),
                 lambda: M.hausdorff(m, m, sp), lambda: mf.component_stats(m, sp),
                 lambda: mf.remove_small_components(m, 1, spacing=sp)):
        with pytest.raises(ValueError, match=r"spacing values must lie in \[1e-100, 1e\+100\]"):
            call()


def test_huge_integer_arguments_get_clear_errors():
    from medseg_fast import metrics as M

    m = np.zeros((3, 3, 3), np.uint8)
    u = np.array([0, 2**64 - 1], np.uint64)
    for call in (lambda: M.dice(u, u, classes=[2**64 - 1]), lambda: M.evaluate(m, m, [2**63]),
                 lambda: mf.keep_largest_per_class(m, classes=[2**70])):
        with pytest.raises(ValueError, match="classes must be label values that fit int64, got"):
            call()
    # min_size beyond float's integers: a threshold no component reaches, not a numpy TypeError.
    np.testing.assert_array_equal(mf.remove_small_components(m + 1, 2**70), np.zeros_like(m))


def test_out_partially_overlapping_x_is_rejected():
    # out=b[1:] for x=b[:-1] overwrote x before reading it: all zeros instead of the window.
    b = np.arange(1000, dtype=np.float32)
    before = b.copy()
    for x, out in ((b[:-1], b[1:]), (b[1:], b[:-1]), (b[::2], b[1::2][:500]), (b[:500], b[::-1][400:900])):
        with pytest.raises(ValueError, match="out must not overlap x's memory unless it is x itself"):
            mf.hu_window(x, lo=0, hi=1e3, out=out)
    with pytest.raises(ValueError, match="out must not overlap x's memory"):
        mf.multi_window(b[:500], [(0, 10)], out=b[250:750].reshape(1, 500))
    np.testing.assert_array_equal(b, before)
    # In place with the same layout stays allowed and exact.
    expected = mf.hu_window(b, lo=0, hi=1e3)
    assert mf.hu_window(b, lo=0, hi=1e3, out=b) is b
    np.testing.assert_array_equal(b, expected)


@pytest.mark.parametrize("shape", [(2, 2, 2, 0), (0, 3, 4, 5), (2, 0, 1, 1, 3)])
def test_pooled_metrics_of_empty_many_axis_inputs(shape):
    # confusion_matrix / mean_iou reshaped (-1, ...) an empty >3-D input: "cannot reshape array of size 0".
    from medseg_fast import metrics as M

    p = np.zeros(shape, bool)
    np.testing.assert_array_equal(M.confusion_matrix(p, p, 2), np.zeros((2, 2), np.int64))
    assert np.isnan(M.mean_iou(p, p, 2)) and np.isnan(M.pixel_accuracy(p, p))


def test_distance_transform_is_layout_invariant_and_exact(rng):
    # Passes in memory order made Fortran / transposed / size-1-axis layouts an ulp off scipy
    # (float64) and off the C-order result (float32); found by the fuzz suite's layout check.
    ndi = pytest.importorskip("scipy.ndimage")
    for _ in range(40):
        shape = tuple(int(s) for s in rng.integers(1, 7, rng.integers(2, 5)))
        mask = rng.random(shape) > (0.2 if rng.random() < 0.5 else -1.0)  # half without background
        spacing = tuple(float(s) for s in rng.choice([1.0, 0.7, 2.5, 0.3], len(shape)))
        want = ndi.distance_transform_edt(mask, sampling=spacing)
        c32 = mf.distance_transform(mask, spacing)
        for view in (np.asfortranarray(mask), mask.T.copy().T, mask[::-1].copy()[::-1]):
            np.testing.assert_array_equal(mf.distance_transform(view, spacing, dtype="float64"), want)
            np.testing.assert_array_equal(mf.distance_transform(view, spacing), c32)
            np.testing.assert_array_equal(mf.signed_distance(view, spacing), mf.signed_distance(mask, spacing))


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int16])
def test_unbounded_zscore_with_extreme_inputs(dtype):
    # mr_normalize without percentiles has no input clamp: inputs near the dtype's max must map
    # exactly (or overflow to inf only where the exact value is beyond float32) on the float path.
    big = float(np.finfo(dtype).max) if np.dtype(dtype).kind == "f" else float(np.iinfo(dtype).max)
    x = np.array([-big, big, 0, 4, np.nan if np.dtype(dtype).kind == "f" else 1], dtype)
    for mask, expected_mean, expected_std in (([0, 0, 1, 1, 0], 2.0, 2.0), ([0, 0, 1, 0, 0], 0.0, 0.0)):
        m = np.array(mask, bool)
        y = mf.mr_normalize(x, mask=m)
        scale = 1.0 / expected_std if expected_std > 0 else 1.0
        with np.errstate(over="ignore", invalid="ignore"):
            want = ((x.astype(np.float64) - expected_mean) * scale).astype(np.float32)
        np.testing.assert_array_equal(y, want)


# ----------------------------------------------------------------------------- issue 16 item 4: one validator
def test_scalar_spacing_is_isotropic_everywhere(rng):
    """A single number means isotropic spacing for every function (scipy's `sampling` rule);
    components and resample refused it before ("spacing must have 3 positive values ... got 2.0")."""
    labels = (rng.random((5, 6, 7)) > 0.5).astype(np.uint8)
    stats_s, stats_t = mf.component_stats(labels, 2.0), mf.component_stats(labels, (2.0, 2.0, 2.0))
    np.testing.assert_array_equal(stats_s["volumes_mm3"], stats_t["volumes_mm3"])
    np.testing.assert_array_equal(mf.remove_small_components(labels, 9.0, spacing=2.0),
                                  mf.remove_small_components(labels, 9.0, spacing=(2.0, 2.0, 2.0)))
    np.testing.assert_array_equal(mf.distance_transform(labels, 2.0), mf.distance_transform(labels, (2.0,) * 3))
    x = rng.random((4, 5, 6)).astype(np.float32)
    np.testing.assert_array_equal(mf.resample(x, (8, 5, 3), spacing=1.5),
                                  mf.resample(x, (8, 5, 3), spacing=(1.5,) * 3))
    np.testing.assert_array_equal(mf.resample(x, spacing=(1.0, 1.0, 1.0), new_spacing=0.5),
                                  mf.resample(x, spacing=(1.0, 1.0, 1.0), new_spacing=(0.5,) * 3))


def test_resample_scalars_alone_do_not_give_the_axis_count():
    with pytest.raises(ValueError, match=r"spacing=1\.0 and new_spacing=0\.5 are single numbers"):
        mf.resample(np.zeros((4, 5, 6), np.float32), spacing=1.0, new_spacing=0.5)


@pytest.mark.parametrize("call", [
    lambda m, sp: mf.component_stats(m, sp),
    lambda m, sp: mf.distance_transform(m, sp),
    lambda m, sp: mf.metrics.hausdorff(m, m, sp),
    lambda m, sp: mf.resample(m.astype(np.float32), (2, 2, 2), spacing=sp),
])
@pytest.mark.parametrize("spacing, message", [
    ((1.0, True, 1.0), r"spacing must be a positive number or 3 positive values, got \(1\.0, True, 1\.0\)"),
    ((1.0, 1.0), r"spacing must have 3 positive values for a 3-D .*, got \(1\.0, 1\.0\)"),
    (-1.0, r"spacing must have 3 positive values for a 3-D .*, got -1\.0"),
    ((1.0, float("nan"), 1.0), r"spacing must have 3 positive values for a 3-D .*, got \(1\.0, nan, 1\.0\)"),
    ("abc", r"spacing must be a positive number or 3 positive values, got 'abc'"),
])
def test_one_spacing_message_everywhere(call, spacing, message):
    mask = np.ones((3, 3, 3), np.uint8)
    with pytest.raises(ValueError, match=message):
        call(mask, spacing)


def test_bound_metric_types_are_typed():
    """Conventions, statistics and the distance path cross into C++ as bound enums, one call's
    configuration as a keyword struct; an int outside an enum is refused by name."""
    from medseg_fast import _C
    assert _C.Convention.__members__["deepmind"] == _C.Convention.deepmind
    assert [_C.SurfaceStat(i).name for i in range(3)] == ["hausdorff", "average_distance", "surface_dice"]
    with pytest.raises(TypeError):
        _C.SurfaceMetricsConfig(3, True)   # keyword arguments only
    q = _C.SurfaceQuery(stat=_C.SurfaceStat.hausdorff, percentile=95.0)
    cfg = _C.SurfaceMetricsConfig(active=3, binary=True, queries=[q], convention=_C.Convention(7))
    m = np.ones((2, 2, 2), np.uint8)
    desc = (m.ctypes.data, "uint8", [4, 2, 1])
    with pytest.raises(ValueError, match="config.convention must be a Convention, got the value 7"):
        _C.surface_metrics([2, 2, 2], desc, desc, cfg)
    w = _C.Window(lo=-1.0, hi=1.0, center=0.0, scale=0.5, offset=0.5)
    assert (w.lo, w.hi, w.scale) == (-1.0, 1.0, 0.5)
    spec = _C.ResampleSpec(in_shape=(1, 2, 3, 4), out_shape=(1, 4, 6, 8), orders=(0, 1, 1, 1))
    assert (spec.in_shape, spec.late_axis, spec.clip_axis) == ([1, 2, 3, 4], -1, -1)


def test_public_names_do_not_shadow_submodules():
    """`from .resample import resample` hid the submodule medseg_fast.resample; the implementation
    now lives in medseg_fast.resampling and no package attribute hides a submodule."""
    import importlib
    import pkgutil

    assert callable(mf.resample) and mf.resample is importlib.import_module("medseg_fast.resampling").resample
    for pkg in (mf, importlib.import_module("medseg_fast.losses"), importlib.import_module("medseg_fast.io")):
        for info in pkgutil.iter_modules(pkg.__path__):
            attr = getattr(pkg, info.name, None)
            module = importlib.import_module(f"{pkg.__name__}.{info.name}")
            assert attr is None or attr is module, f"{pkg.__name__}.{info.name} is shadowed by {attr!r}"


def test_one_module_picker():
    from medseg_fast import _C, _ext
    assert _ext.module_for("cpu") is _C
    if not _ext.cuda_built():
        with pytest.raises(RuntimeError, match="built without CUDA support"):
            _ext.module_for("cuda")


# --- fuzz-suite findings (issue 15): validated even when there is nothing to compute
@pytest.mark.parametrize("pred, gt, error, match", [
    ("a", {"b": 1}, TypeError, "pred must be a numpy array"),
    (np.zeros((2, 2), np.complex64), np.zeros((2, 2), bool), TypeError, "pred must have a real numeric dtype"),
    (np.zeros((2, 2)), np.zeros((3, 3)), ValueError, r"gt must have the shape of pred"),
])
def test_evaluate_without_classes_still_validates(pred, gt, error, match):
    with pytest.raises(error, match=match):
        mf.metrics.evaluate(pred, gt, classes=[])
    assert mf.metrics.evaluate(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8), classes=[]) == []


def test_multi_window_names_the_bad_window():
    with pytest.raises(ValueError, match=r"windows\[1\] width must be > 0, got 0.0"):
        mf.multi_window(np.zeros((3, 3), np.int16), ["brain", (0, 0)])
