"""Argument preparation shared by the connected-component facades (:mod:`medseg_fast.components`):
the checked input view and connectivity, run-length labelling calls, output allocation and the
label-count limit."""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np

from . import _backend as B
from . import _ext
from . import _validate as V
# Largest label an int32 output can hold; tests lower it to exercise the overflow error.
_MAX_LABEL = 2**31 - 1

_INT_RANGES = {
    "bool": (0, 1), "uint8": (0, 2**8 - 1), "int8": (-(2**7), 2**7 - 1), "uint16": (0, 2**16 - 1),
    "int16": (-(2**15), 2**15 - 1), "uint32": (0, 2**32 - 1), "int32": (-(2**31), 2**31 - 1),
    "uint64": (0, 2**64 - 1), "int64": (-(2**63), 2**63 - 1),
}


# ----------------------------------------------------------------------------- validation
class _Prepared:
    """An input checked for labeling and described as a 3-D (D, H, W) volume (2-D: D = 1)."""

    def __init__(self, x: Any, connectivity: Any, name: str, background: Any = 0, *, full_default: bool = True):
        xv = B.view(x, name)
        if xv.dtype in B.FLOAT_NAMES:
            raise TypeError(
                f"{name} must be a bool or integer array; threshold it first (e.g. {name} > 0.5), got dtype={xv.dtype}"
            )
        if xv.ndim not in (2, 3):
            raise ValueError(f"{name} must be a 2-D or 3-D array, got ndim={xv.ndim} (shape={xv.shape})")
        valid = (4, 8) if xv.ndim == 2 else (6, 18, 26)
        if connectivity is None:   # full connectivity by default (face connectivity for fill_holes)
            connectivity = valid[-1] if full_default else valid[0]
        if isinstance(connectivity, bool) or not isinstance(connectivity, Integral) or connectivity not in valid:
            raise ValueError(
                f"connectivity must be one of {valid} for a {xv.ndim}-D array, got {connectivity!r}"
            )
        lo, hi = _INT_RANGES[xv.dtype]
        if isinstance(background, (bool, np.bool_)):
            background = int(background)
        if not isinstance(background, (Integral, np.integer)) or not lo <= int(background) <= hi:
            raise ValueError(
                f"background must be an integer representable in {name}'s dtype={xv.dtype} ([{lo}, {hi}]), "
                f"got {background!r}"
            )
        self.view = xv
        self.ndim = xv.ndim
        self.connectivity = int(connectivity)
        self.conn3 = {4: 6, 8: 26}.get(self.connectivity, self.connectivity) if xv.ndim == 2 else self.connectivity
        self.background = int(background)
        # uint64 values above 2^63 - 1 are passed with the same bits.
        self.bg_arg = self.background - 2**64 if self.background >= 2**63 else self.background
        self.shape3, self.strides3 = V.pad3(xv.shape, 1), V.pad3(xv.strides, 0)
        self.empty = xv.size == 0

    def desc(self):
        return (self.view.ptr, self.view.dtype, self.strides3)


def _out_desc(arr: Any, ndim: int) -> tuple[int, str, list[int]]:
    ov = B.view(arr, "out")
    return (ov.ptr, ov.dtype, V.pad3(ov.strides, 0))


def _runs(p: _Prepared, *, invert: bool = False):
    cpu = _ext.module_for(p.view.device)
    return cpu.label_runs(p.shape3, p.desc(), p.conn3, 0 if invert else p.bg_arg, invert, _MAX_LABEL)


def _cuda_label(p: _Prepared) -> tuple[Any, int]:
    out = B.allocate(p.view, p.view.shape, "int32")
    if p.empty:
        return out, 0
    module = _ext.module_for(p.view.device)
    with B.device_guard(p.view):
        n = module.label(p.shape3, p.desc(), _out_desc(out, p.ndim), p.conn3, p.bg_arg, _MAX_LABEL,
                         B.stream_of(p.view))
    return out, int(n)


def _zeros_or_empty(p: _Prepared, dtype: str) -> tuple[Any, bool]:
    """A CPU output and whether it already holds zeros.

    numpy's zeros come from calloc, whose large blocks are fresh pages the kernel zeroes on first
    touch, so the kernels then write only the runs, not the background between them.
    """
    if p.view.kind == "numpy":
        return np.zeros(tuple(p.view.shape), dtype=np.dtype(dtype)), True
    return B.allocate(p.view, p.view.shape, dtype), False


def _check_count(n: int) -> None:
    if n > _MAX_LABEL:
        raise OverflowError(f"{n} components do not fit the int32 label type (at most {_MAX_LABEL})")


