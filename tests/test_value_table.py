"""The per-value label-map kernels behind MONAI's RemoveSmallObjects rule (_C.value_counts,
_C.apply_value_table) against numpy (bincount of astype(int32), table[lab]): dtypes, strided
inputs, thread counts, out-of-range values."""

from __future__ import annotations

import numpy as np
import pytest

import medseg_fast as mf
from medseg_fast import _backend as B
from medseg_fast import _ext

C = _ext.cpu_module()


def _counts(x: np.ndarray, max_value: int) -> np.ndarray:
    return C.value_counts(list(x.shape), B.describe(B.view(x, "x")), max_value)


def _apply(x: np.ndarray, table: np.ndarray, dtype) -> np.ndarray:
    out = np.empty(x.shape, dtype)
    C.apply_value_table(list(x.shape), B.describe(B.view(x, "x")), table, B.describe(B.view(out, "out", writable=True)))
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.int64, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 17, 9, 23), (2, 5, 8200), (3, 31, 1, 7)])
def test_counts_and_table_match_numpy(dtype, shape, rng):
    lab = rng.integers(0, 40, shape)
    x = lab.astype(dtype)
    if np.dtype(dtype).kind == "f":
        x = x + rng.random(shape).astype(dtype) * 0.9       # truncated toward zero, as astype(int32)
    hi = int(x.max())
    ref = np.bincount(x.astype(np.int32).ravel(), minlength=hi + 1)
    np.testing.assert_array_equal(_counts(x, hi), ref)
    table = np.arange(hi + 1, dtype=np.float64)
    table[ref < 5] = 0
    np.testing.assert_array_equal(_apply(x, table, x.dtype), table.astype(x.dtype)[x.astype(np.int32)])
    np.testing.assert_array_equal(_apply(x, table, np.int32), table.astype(np.int32)[x.astype(np.int32)])


def test_strided_input(rng):
    base = rng.integers(0, 9, (4, 20, 30)).astype(np.float32)
    x = base[::2, :, ::3]
    np.testing.assert_array_equal(_counts(x, 8), np.bincount(x.astype(np.int32).ravel(), minlength=9))


def test_threads_do_not_change_results(rng):
    x = rng.integers(0, 100, (3, 60, 70, 50)).astype(np.int16)
    old = mf.get_num_threads()
    try:
        runs = []
        for n in (1, 2, 3):
            mf.set_num_threads(n)
            runs.append(_counts(x, 99))
    finally:
        mf.set_num_threads(old)
    assert all(np.array_equal(runs[0], r) for r in runs[1:])


def test_values_outside_the_range_raise(rng):
    x = np.array([[0, 3, 7]], np.int16)
    with pytest.raises(ValueError, match="outside"):
        _counts(x, 5)
    with pytest.raises(ValueError, match="outside"):
        _apply(x, np.arange(4, dtype=np.float64), np.int16)
    with pytest.raises(ValueError, match="max_value"):
        _counts(x, -1)
    with pytest.raises(ValueError, match="max_value"):
        _counts(x, 2 ** 27)
