"""Array adapter: numpy arrays, torch tensors (CPU/CUDA) and cupy arrays in, the same kind out.

Kernels receive raw addresses, element strides and dtype names, so the extension is never
compiled against torch or cupy (no ABI lock-in) and every input is used zero-copy where its
memory layout allows. This module also owns the two rules every kernel call follows:
validation in Python with messages that name the argument, and never writing to an input.

Alignment: kernels dereference typed pointers, so every element address must be a multiple of
the item size (C++ alignment; reading through a misaligned ``const float*`` is undefined
behaviour). An input whose strides or data address are not (``np.frombuffer(buf, dtype,
offset=1)``, ``torch.frombuffer(..., offset=1)``, a packed record field) is read through one
aligned copy, made here (as is non-native byte order data). An array a kernel writes into
(``out=``, a sliding-window ``accumulator``) is never copied, because the caller would not see the
result: a misaligned one is rejected with a ValueError, a byte-swapped one with a TypeError, each
naming the argument.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _ext, _host_cache

__all__ = ["ArrayView", "view", "allocate", "advise_huge_pages", "plan_layout", "describe", "stream_of",
           "device_guard"]

# numpy / torch / cupy dtype -> the canonical names the C++ side parses.
_NUMPY_NAMES = {
    np.dtype(np.bool_): "bool",
    np.dtype(np.uint8): "uint8",
    np.dtype(np.int8): "int8",
    np.dtype(np.uint16): "uint16",
    np.dtype(np.int16): "int16",
    np.dtype(np.uint32): "uint32",
    np.dtype(np.int32): "int32",
    np.dtype(np.uint64): "uint64",
    np.dtype(np.int64): "int64",
    np.dtype(np.float16): "float16",
    np.dtype(np.float32): "float32",
    np.dtype(np.float64): "float64",
}
_ITEMSIZE = {
    "bool": 1, "uint8": 1, "int8": 1, "uint16": 2, "int16": 2, "uint32": 4, "int32": 4,
    "uint64": 8, "int64": 8, "float16": 2, "bfloat16": 2, "float32": 4, "float64": 8,
}
FLOAT_NAMES = ("float16", "bfloat16", "float32", "float64")


def _torch():
    return sys.modules.get("torch")


def _cupy():
    return sys.modules.get("cupy")


def _bfloat16_numpy_dtype():
    try:
        import ml_dtypes
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


def dtype_name(dtype: Any) -> str | None:
    """Canonical name of a numpy/torch dtype or dtype-like, or None if unsupported."""
    torch = _torch()
    if torch is not None and isinstance(dtype, torch.dtype):
        name = str(dtype).replace("torch.", "")
        return name if name in _ITEMSIZE else None
    if isinstance(dtype, str) and dtype in _ITEMSIZE:
        return dtype
    try:
        npd = np.dtype(dtype)
    except TypeError:
        return None
    if npd.name == "bfloat16":
        return "bfloat16"
    return _NUMPY_NAMES.get(npd.newbyteorder("="))


@dataclass
class ArrayView:
    """A kernel's view of one array: where its elements are and how to step through them."""

    obj: Any                  # the array as the kernel reads it (possibly a documented copy)
    kind: str                 # "numpy" | "torch" | "cupy"
    device: str               # "cpu" | "cuda"
    device_index: int | None
    ptr: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]  # in elements
    dtype: str

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def describe(self) -> str:
        where = self.device if self.device_index is None else f"{self.device}:{self.device_index}"
        return f"shape={self.shape}, dtype={self.dtype}, device={where}"


def _numpy_view(arr: np.ndarray, name: str, writable: bool | None = None) -> ArrayView:
    if arr.dtype.kind in "cOSUVMm" and dtype_name(arr.dtype) != "bfloat16":
        raise TypeError(f"{name} must have a real numeric dtype, got dtype={arr.dtype}")
    if not arr.dtype.isnative:
        if (name in WRITTEN_ARGUMENTS) if writable is None else writable:
            # A native copy would take the results and the caller's array would never see them.
            raise TypeError(f"{name} must have a native byte order dtype because results are written into it, "
                            f"got dtype={arr.dtype.str}")
        # Big-endian data (e.g. straight from some NIfTI files): one documented copy.
        arr = arr.astype(arr.dtype.newbyteorder("="))
    name_ = dtype_name(arr.dtype)
    if name_ is None:
        raise TypeError(f"{name} has unsupported dtype={arr.dtype}")
    itemsize = arr.dtype.itemsize
    ptr = arr.__array_interface__["data"][0]
    if _misaligned(ptr, arr.strides, itemsize):
        _check_may_copy(name, ptr, arr.strides, itemsize, writable)
        arr = np.array(arr, order="C", copy=True)   # fresh numpy memory: aligned
        ptr = arr.__array_interface__["data"][0]
    return ArrayView(arr, "numpy", "cpu", None, ptr, tuple(arr.shape),
                     tuple(s // itemsize for s in arr.strides), name_)


# Arguments that kernels write into: never copied (the caller would not see the result).
WRITTEN_ARGUMENTS = frozenset({"out", "accumulator"})


def _misaligned(ptr: int, byte_strides: Sequence[int], itemsize: int) -> bool:
    return ptr % itemsize != 0 or any(s % itemsize for s in byte_strides)


def _check_may_copy(name: str, ptr: int, byte_strides: Sequence[int], itemsize: int,
                    writable: bool | None) -> None:
    if writable is None:
        writable = name in WRITTEN_ARGUMENTS
    if writable:
        raise ValueError(
            f"{name} must be aligned to its item size ({itemsize} bytes) because results are written into it, "
            f"got data address {ptr:#x} and byte strides {tuple(byte_strides)}; pass a freshly allocated array "
            f"(e.g. numpy.empty) or omit {name}"
        )


def view(x: Any, name: str = "x", *, writable: bool | None = None) -> ArrayView:
    """Describe `x` for a kernel call (zero-copy where the layout allows).

    Parameters
    ----------
    x : numpy array, torch tensor, cupy array, or a Python scalar/sequence (read as numpy)
    name : str
        The argument's name, used in error messages.
    writable : bool, optional
        Whether a kernel writes into `x`. Such an array is never copied: a misaligned one raises
        ValueError. Default: true for the names in ``WRITTEN_ARGUMENTS`` (``out``,
        ``accumulator``), false otherwise (a misaligned input is read through one aligned copy).

    Raises
    ------
    TypeError
        Unsupported kind, dtype, layout or device.
    ValueError
        A misaligned array that a kernel would write into.
    """
    if isinstance(x, ArrayView):
        return x
    if isinstance(x, np.ndarray):
        return _numpy_view(x, name, writable)
    torch = _torch()
    if torch is not None and isinstance(x, torch.Tensor):
        if x.is_complex() or x.dtype not in _TORCH_DTYPES():
            raise TypeError(f"{name} must have a real numeric dtype, got dtype={x.dtype}")
        t = x.detach()
        if t.is_conj() or t.is_neg():
            t = t.resolve_conj().resolve_neg()
        if t.layout != torch.strided:
            raise TypeError(f"{name} must be a dense (strided) tensor, got layout={t.layout}")
        if t.device.type not in ("cpu", "cuda"):
            raise TypeError(f"{name} must be on a CPU or CUDA device, got device={t.device}")
        index = t.device.index if t.device.type == "cuda" else None
        if index is None and t.device.type == "cuda":
            index = torch.cuda.current_device()
        itemsize = t.element_size()
        if t.data_ptr() % itemsize:   # e.g. torch.frombuffer(..., offset=1); strides are in elements
            _check_may_copy(name, t.data_ptr(), [st * itemsize for st in t.stride()], itemsize, writable)
            t = t.clone(memory_format=torch.contiguous_format)
        return ArrayView(t, "torch", t.device.type, index, t.data_ptr(), tuple(t.shape), tuple(t.stride()),
                         dtype_name(t.dtype))
    cupy = _cupy()
    if cupy is not None and isinstance(x, cupy.ndarray):
        if x.dtype.kind in "cOSUV":
            raise TypeError(f"{name} must have a real numeric dtype, got dtype={x.dtype}")
        name_ = dtype_name(x.dtype)
        if name_ is None:
            raise TypeError(f"{name} has unsupported dtype={x.dtype}")
        itemsize = x.dtype.itemsize
        if _misaligned(x.data.ptr, x.strides, itemsize):
            _check_may_copy(name, x.data.ptr, x.strides, itemsize, writable)
            x = x.copy(order="C")   # fresh cupy memory: aligned
        return ArrayView(x, "cupy", "cuda", x.device.id, x.data.ptr, tuple(x.shape),
                         tuple(s // itemsize for s in x.strides), name_)
    if isinstance(x, (list, tuple, int, float, bool, np.generic)):
        return _numpy_view(np.asarray(x), name, writable)
    raise TypeError(
        f"{name} must be a numpy array, torch tensor or cupy array, got {type(x).__module__}.{type(x).__name__}"
    )


def _TORCH_DTYPES():
    torch = _torch()
    return {
        torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16,
        torch.bfloat16, torch.float32, torch.float64,
    } | {d for d in (getattr(torch, "uint16", None), getattr(torch, "uint32", None),
                     getattr(torch, "uint64", None)) if d is not None}


def _numpy_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        bf16 = _bfloat16_numpy_dtype()
        if bf16 is None:
            raise TypeError(
                "dtype='bfloat16' with numpy input needs the ml_dtypes package (pip install ml_dtypes); "
                "torch tensors support it natively"
            )
        return bf16
    return np.dtype(name)


def allocate(like: ArrayView, shape: Sequence[int], dtype: str, *, axis_order: Sequence[int] | None = None) -> Any:
    """A new array of the same kind and device as `like`.

    With `axis_order` (slowest-varying axis first), memory is laid out in that order and the
    result is returned as a view in logical order, as numpy's ``empty_like(order="K")`` does.
    """
    shape = tuple(int(s) for s in shape)
    if axis_order is None:
        axis_order = range(len(shape))
    axis_order = list(axis_order)
    physical = tuple(shape[a] for a in axis_order)
    inverse = list(np.argsort(axis_order))
    if like.kind == "numpy":
        return _host_cache.empty(physical, _numpy_dtype(dtype)).transpose(inverse)
    if like.kind == "torch":
        torch = _torch()
        if like.obj.device.type == "cpu" and dtype != "bfloat16":
            # large outputs from the block cache (already faulted in): a tensor over a numpy block
            nbytes = int(np.prod(physical, dtype=np.int64)) * np.dtype(dtype).itemsize
            if nbytes >= _host_cache.MIN_BYTES:
                out = torch.from_numpy(_host_cache.empty(physical, np.dtype(dtype)))
                return out.permute(*inverse) if inverse else out
        out = torch.empty(physical, dtype=getattr(torch, dtype), device=like.obj.device)
        if out.device.type == "cpu":
            advise_huge_pages(out)
        return out.permute(*inverse) if inverse else out
    cupy = _cupy()
    if dtype == "bfloat16":
        raise TypeError("dtype='bfloat16' is not available for cupy arrays; use float16 or float32")
    with cupy.cuda.Device(like.device_index):
        return cupy.empty(physical, dtype=np.dtype(dtype)).transpose(inverse)


# Fresh CPU buffers at least this large are backed by transparent huge pages where the kernel
# allows it (numpy already does this for its own arrays; torch does not unless the whole process
# sets THP_MEM_ALLOC_ENABLE=1).
HUGE_PAGE_MIN_BYTES = 4 << 20


def advise_huge_pages(arr: Any) -> int:
    """Ask for transparent huge pages on a fresh, not yet written CPU buffer (numpy array or torch
    tensor); returns the number of bytes advised (0 when small, unsupported or refused).

    On Linux with ``/sys/kernel/mm/transparent_hugepage/enabled`` set to ``madvise`` a 192 MiB
    buffer then takes about 100 page faults on its first write instead of about 49,000, which
    dominates the cost of that write on virtual machines. Pages that were already touched keep
    their size, so call it right after allocation.
    """
    if isinstance(arr, np.ndarray):
        ptr, nbytes = int(arr.__array_interface__["data"][0]), int(arr.nbytes)
    else:
        ptr, nbytes = int(arr.data_ptr()), int(arr.numel()) * int(arr.element_size())
    if nbytes < HUGE_PAGE_MIN_BYTES:
        return 0
    return int(_ext.cpu_module().advise_huge_pages(ptr, nbytes))


def to_kind(like: ArrayView, arr: np.ndarray) -> Any:
    """A small host numpy array (e.g. per-class results) as the kind/device of `like`."""
    if like.kind == "numpy":
        return arr
    if like.kind == "torch":
        return _torch().from_numpy(np.ascontiguousarray(arr)).to(like.obj.device)
    with _cupy().cuda.Device(like.device_index):
        return _cupy().asarray(arr)


def plan_layout(
    shape: Sequence[int], *strides: Sequence[int], order_by: int | None = 0
) -> tuple[list[int], list[list[int]]]:
    """Traversal plan shared by every array of an elementwise call.

    Axes are sorted by the |stride| of array `order_by` (so an F-ordered or transposed input is
    read in memory order), size-1 axes are dropped and axes that are contiguous in every array
    are merged. ``order_by=None`` keeps the logical axis order (only merging). Returns
    (shape, [strides per array]), with at least one axis.
    """
    axes = [a for a in range(len(shape)) if shape[a] != 1]
    if order_by is not None:
        axes.sort(key=lambda a: -abs(strides[order_by][a]))
    out_shape: list[int] = []
    out_strides: list[list[int]] = [[] for _ in strides]
    for a in axes:
        if out_shape and all(s[-1] == st[a] * shape[a] for s, st in zip(out_strides, strides)):
            out_shape[-1] *= shape[a]
            for s, st in zip(out_strides, strides):
                s[-1] = st[a]
            continue
        out_shape.append(int(shape[a]))
        for s, st in zip(out_strides, strides):
            s.append(int(st[a]))
    if not out_shape:
        out_shape = [1]
        out_strides = [[1] for _ in strides]
    return out_shape, out_strides


def memory_order(v: ArrayView) -> list[int]:
    """Axes of `v` from slowest to fastest varying in memory (stable for ties)."""
    return sorted(range(v.ndim), key=lambda a: (-abs(v.strides[a]) if v.shape[a] != 1 else 0))


def describe(v: ArrayView | None, strides: Sequence[int] | None = None) -> tuple[int, str, list[int]]:
    """The (ptr, dtype, strides) tuple the bindings take; None describes an absent array."""
    if v is None:
        return (0, "uint8", list(strides or []))
    return (v.ptr, v.dtype, list(strides if strides is not None else v.strides))


def stream_of(v: ArrayView) -> int:
    """The caller's current CUDA stream on v's device (torch or cupy), as an integer handle."""
    if v.kind == "torch":
        return int(_torch().cuda.current_stream(v.obj.device).cuda_stream)
    if v.kind == "cupy":
        return int(_cupy().cuda.get_current_stream().ptr)
    return 0


@contextlib.contextmanager
def device_guard(v: ArrayView) -> Iterator[None]:
    """Make v's GPU the current device for the duration of a kernel call."""
    if v.device != "cuda":
        yield
        return
    if v.kind == "torch":
        with _torch().cuda.device(v.device_index):
            yield
    else:
        with _cupy().cuda.Device(v.device_index):
            yield


def kernels(v: ArrayView):
    """The extension module that runs kernels for v's device (through the one picker, _ext.module_for)."""
    return _ext.module_for(v.device)


def check_same_device(ref: ArrayView, other: ArrayView, ref_name: str, other_name: str) -> None:
    if (ref.kind, ref.device, ref.device_index) != (other.kind, other.device, other.device_index):
        raise ValueError(
            f"{other_name} must be the same kind of array on the same device as {ref_name}: "
            f"{ref_name} is a {ref.kind} array on {ref.describe().split('device=')[1]}, "
            f"{other_name} is a {other.kind} array on {other.describe().split('device=')[1]}"
        )


def check_same_shape(ref: ArrayView, other: ArrayView, ref_name: str, other_name: str) -> None:
    if ref.shape != other.shape:
        raise ValueError(f"{other_name} must have the shape of {ref_name}: {ref_name}.shape={ref.shape}, "
                         f"{other_name}.shape={other.shape}")


def mask_view(mask: Any, ref: ArrayView, ref_name: str = "x", name: str = "mask") -> ArrayView:
    """A mask as a bool/uint8 view on ref's device and shape (nonzero = selected)."""
    m = view(mask, name)
    check_same_device(ref, m, ref_name, name)
    check_same_shape(ref, m, ref_name, name)
    if m.dtype in ("bool", "uint8"):
        return m
    # Any other dtype: one documented conversion (x != 0) to a byte mask.
    return view(m.obj != 0, name)
