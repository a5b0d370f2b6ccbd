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
