"""The array adapter: zero-copy views, traversal plans and allocation by array kind."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from medseg_fast import _backend as B


def test_numpy_view_is_zero_copy_with_element_strides():
    a = np.zeros((4, 6, 8), np.float32)[:, ::2, ::-1]
    v = B.view(a)
    assert v.kind == "numpy"
    assert v.device == "cpu"
    assert v.dtype == "float32"
    assert v.ptr == a.__array_interface__["data"][0]
    assert v.strides == (48, 16, -1)
    assert v.shape == (4, 3, 8)


def test_torch_view_is_zero_copy():
    t = torch.zeros(3, 5, 7, dtype=torch.int16).transpose(0, 2)
    v = B.view(t)
    assert v.kind == "torch"
    assert v.ptr == t.data_ptr()
    assert v.strides == tuple(t.stride())
    assert v.dtype == "int16"


@pytest.mark.parametrize(("shape", "strides", "expected"), [
    ((4, 5, 6), [(30, 6, 1)], ([120], [[1]])),                        # C-contiguous: one row
    ((4, 5, 6), [(1, 4, 20)], ([120], [[1]])),                        # F-contiguous: read in memory order
    ((4, 1, 6), [(6, 99, 1)], ([24], [[1]])),                         # size-1 axes never block merging
    ((4, 5, 6), [(60, 12, 2)], ([120], [[2]])),                       # uniformly strided
    ((4, 5, 6), [(30, 6, 1), (1, 4, 20)], ([4, 5, 6], [[30, 6, 1], [1, 4, 20]])),
    ((), [()], ([1], [[1]])),
])
def test_plan_layout(shape, strides, expected):
    assert B.plan_layout(shape, *strides) == expected


def test_allocate_keeps_memory_order():
    f = np.asfortranarray(np.zeros((3, 4, 5), np.int16))
    v = B.view(f)
    out = B.allocate(v, v.shape, "float32", axis_order=B.memory_order(v))
    assert out.shape == (3, 4, 5)
    assert out.flags.f_contiguous
    t = torch.zeros(3, 4, 5).permute(2, 0, 1)
    tv = B.view(t)
    tout = B.allocate(tv, tv.shape, "bfloat16", axis_order=B.memory_order(tv))
    assert tout.shape == t.shape
    assert tout.stride() == t.stride()
    assert tout.dtype == torch.bfloat16


def test_unsupported_inputs():
    with pytest.raises(TypeError, match="real numeric dtype"):
        B.view(np.zeros(3, np.complex128))
    with pytest.raises(TypeError, match="real numeric dtype"):
        B.view(torch.zeros(3, dtype=torch.complex64))
    with pytest.raises(TypeError, match="numpy array, torch tensor or cupy array"):
        B.view({"a": 1})
    with pytest.raises(TypeError, match="dense"):
        B.view(torch.zeros(3, 3).to_sparse())


def test_mask_view_converts_other_dtypes_once():
    x = B.view(np.zeros((2, 3), np.float32))
    m = B.mask_view(np.array([[0, 2, 0], [1, 0, 5]], np.int64), x)
    assert m.dtype == "bool"
    np.testing.assert_array_equal(m.obj, [[False, True, False], [True, False, True]])
    with pytest.raises(ValueError, match=r"mask must have the shape of x: x.shape=\(2, 3\), mask.shape=\(3, 2\)"):
        B.mask_view(np.zeros((3, 2), bool), x)


def test_dtype_names():
    assert B.dtype_name(np.int16) == "int16"
    assert B.dtype_name(np.dtype(">f4")) == "float32"
    assert B.dtype_name(torch.bfloat16) == "bfloat16"
    assert B.dtype_name("float16") == "float16"
    assert B.dtype_name(np.complex64) is None


# ----------------------------------------------------------------------------- alignment (issue 15 item 8)
def _misaligned(a: np.ndarray) -> np.ndarray:
    """A read-only copy of `a` whose data address is one byte past an aligned one."""
    a = np.ascontiguousarray(a)
    buf = bytearray(a.nbytes + 1)
    m = np.frombuffer(buf, a.dtype, count=a.size, offset=1).reshape(a.shape)
    m.flags.writeable = True
    m[...] = a
    m.flags.writeable = False
    return m


def _misaligned_torch(t: torch.Tensor) -> torch.Tensor:
    raw = t.contiguous().view(torch.uint8).reshape(-1).numpy().tobytes()
    m = torch.frombuffer(bytearray(b"\0" + raw), dtype=t.dtype, offset=1, count=t.numel())
    return m.reshape(t.shape)


def _assert_same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.float64, np.int64, np.uint16])
def test_misaligned_numpy_input_is_read_through_one_aligned_copy(dtype):
    a = _misaligned(np.arange(2 * 3 * 5, dtype=dtype).reshape(2, 3, 5))
    assert a.__array_interface__["data"][0] % a.itemsize == 1 % a.itemsize != 0
    v = B.view(a)
    assert v.ptr % a.itemsize == 0
    assert v.obj is not a
    np.testing.assert_array_equal(v.obj, a)
    # Transposed misaligned view: values and logical shape kept.
    vt = B.view(a.T)
    assert vt.ptr % a.itemsize == 0
    assert vt.shape == a.T.shape
    np.testing.assert_array_equal(vt.obj, a.T)


def test_misaligned_torch_input_is_read_through_one_aligned_copy():
    t = _misaligned_torch(torch.arange(30, dtype=torch.float32).reshape(2, 3, 5))
    assert t.data_ptr() % 4 != 0
    v = B.view(t.transpose(0, 2))
    assert v.ptr % 4 == 0
    torch.testing.assert_close(v.obj, t.transpose(0, 2), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["out", "accumulator"])
def test_misaligned_written_arrays_are_rejected(name):
    a = np.frombuffer(bytearray(25), np.float32, count=6, offset=1).reshape(2, 3)
    with pytest.raises(ValueError, match=rf"{name} must be aligned to its item size \(4 bytes\)"):
        B.view(a, name)
    t = _misaligned_torch(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=rf"{name} must be aligned"):
        B.view(t, name)
    with pytest.raises(ValueError, match="y must be aligned"):
        B.view(a, "y", writable=True)


def test_misaligned_out_is_rejected_by_the_public_functions():
    import medseg_fast as mf

    x = np.linspace(-100, 100, 30, dtype=np.float32).reshape(2, 3, 5)
    out = np.frombuffer(bytearray(x.nbytes + 1), np.float32, count=x.size, offset=1).reshape(x.shape)
    with pytest.raises(ValueError, match="out must be aligned"):
        mf.hu_window(x, 0, 100, out=out)
    assert not out.any()   # nothing was written through the misaligned pointer


def _volume(seed, shape=(7, 9, 11), classes=3):
    rng = np.random.default_rng(seed)
    return rng.integers(0, classes, shape).astype(np.int16)


_ALIGN_CASES = {
    "label": lambda x: __import__("medseg_fast").label(x > 0, return_num=True),
    "label_multi": lambda x: __import__("medseg_fast").label(x),
    "fill_holes": lambda x: __import__("medseg_fast").fill_holes(x > 0),
    "keep_largest_per_class": lambda x: __import__("medseg_fast").keep_largest_per_class(x),
    "multi_window": lambda x: __import__("medseg_fast").multi_window(x.astype(np.float32) * 50, ["brain", (40, 400)]),
    "intensity_stats": lambda x: __import__("medseg_fast").intensity_stats(x, percentiles=(1, 50, 99)),
    "mr_normalize": lambda x: __import__("medseg_fast").mr_normalize(x),
    "resample": lambda x: __import__("medseg_fast").resample(x.astype(np.float32), (5, 12, 8), order=3),
    "resample_labels": lambda x: __import__("medseg_fast").resample_labels(x, (5, 12, 8)),
    "signed_distance": lambda x: __import__("medseg_fast").signed_distance(x > 0, (1.0, 2.0, 0.5)),
}


_LABEL_CASES = ("label_multi", "keep_largest_per_class", "resample_labels")   # integer input only


@pytest.mark.parametrize(("case", "dtype"), [
    (c, d) for c in sorted(_ALIGN_CASES) for d in (np.int16, np.int32, np.float32, np.float64)
    if c not in _LABEL_CASES or np.issubdtype(d, np.integer)
])
def test_functions_on_misaligned_input_match_aligned(case, dtype, request):
    import zlib

    x = _volume(zlib.crc32(request.node.nodeid.encode())).astype(dtype)
    fn = _ALIGN_CASES[case]
    m = _misaligned(x)
    before = m.tobytes()
    _assert_same(fn(m), fn(x))
    assert m.tobytes() == before


@pytest.mark.parametrize("name", ["iou", "mean_iou", "evaluate", "dice"])
def test_metrics_on_misaligned_input_match_aligned(name, request):
    import zlib

    from medseg_fast import metrics

    seed = zlib.crc32(request.node.nodeid.encode())
    pred, gt = _volume(seed).astype(np.int32), _volume(seed + 1).astype(np.int32)
    calls = {
        "iou": lambda p, g: metrics.iou(p, g),
        "dice": lambda p, g: metrics.dice(p > 0, g > 0),
        "mean_iou": lambda p, g: metrics.mean_iou(p, g, 3),
        "evaluate": lambda p, g: metrics.evaluate(p, g, [1, 2], spacing=(1.0, 1.5, 2.0)),
    }
    fn = calls[name]
    _assert_same(fn(_misaligned(pred), _misaligned(gt)), fn(pred, gt))


def test_torch_misaligned_input_matches_aligned():
    import medseg_fast as mf

    x = torch.from_numpy(_volume(7).astype(np.float32))
    m = _misaligned_torch(x)
    _assert_same(mf.intensity_stats(m), mf.intensity_stats(x))
    _assert_same(mf.label(m > 0), mf.label(x > 0))
    _assert_same(mf.resample(m, (4, 5, 6), order=3), mf.resample(x, (4, 5, 6), order=3))


def test_label_statistics_kernel_rejects_max_label_that_overflows():
    # max_label + 1 was a signed overflow (UBSan) for INT64_MAX and a negative table size after it;
    # a label above max_label indexed past the tables.
    from medseg_fast import _ext

    kernel = _ext.cpu_module().label_statistics
    a = np.array([[[0, 5]]], np.int64)
    desc = (a.ctypes.data, "int64", [2, 2, 1])
    for bad in (np.iinfo(np.int64).max, -1):
        with pytest.raises(ValueError, match=rf"max_label must be in 0\.\.\d+, got {bad}"):
            kernel([1, 1, 2], desc, int(bad))
    with pytest.raises(ValueError, match=r"value outside 0\.\.max_label \(max_label=2\)"):
        kernel([1, 1, 2], desc, 2)
    assert kernel([1, 1, 2], desc, 5)[0].tolist() == [1, 0, 0, 0, 0, 1]


def test_misaligned_accumulator_is_rejected_by_scatter_add():
    import medseg_fast as mf

    plan = mf.SlidingWindow((4, 5), (2, 3), mode="constant")
    x = np.arange(20, dtype=np.float32).reshape(1, 1, 4, 5)
    acc = np.frombuffer(bytearray(4 * 20 + 1), np.float32, count=20, offset=1).reshape(1, 4, 5)
    with pytest.raises(ValueError, match="accumulator must be aligned"):
        plan.scatter_add(acc, plan.gather(x), 0)
    assert not acc.any()


def test_byte_swapped_out_is_rejected_not_silently_dropped():
    # The native copy made for big-endian input took the results: out stayed zeros, no error.
    import medseg_fast as mf

    x = np.linspace(-100, 100, 6, dtype=np.float32)
    out = np.zeros(6, ">f4")
    with pytest.raises(TypeError, match=r"out must have a native byte order dtype .* got dtype=>f4"):
        mf.hu_window(x, 0, 100, out=out)
    with pytest.raises(TypeError, match="accumulator must have a native byte order"):
        B.view(np.zeros(3, ">f8"), "accumulator")
    assert B.view(np.zeros(3, ">f8"), "x").dtype == "float64"   # inputs: one native copy
