"""Loading of the compiled extensions: _C (CPU, always built), _C_cuda (optional) and
_C_cuda_emu (optional, tests only: the CUDA drivers run on the CPU, see `emulate_cuda`)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["cpu_module", "cuda_module", "module_for", "cuda_built", "cuda_import_error",
           "cuda_emulation_built", "cuda_emulation_module", "emulate_cuda", "emulating_cuda"]


@functools.cache
def cpu_module():
    return importlib.import_module("medseg_fast._C")


@functools.cache
def _load(name: str):
    try:
        return importlib.import_module(f"medseg_fast.{name}"), None
    except ImportError as exc:  # not built, or the runtime cannot load
        return None, exc


def _load_cuda():
    return _load("_C_cuda")


def cuda_built() -> bool:
    return _load_cuda()[0] is not None


def cuda_import_error() -> str | None:
    err = _load_cuda()[1]
    return None if err is None else str(err)


def cuda_module():
    if _emulation_depth:
        return _synchronizing_emulation()
    module, err = _load_cuda()
    if module is None:
        raise RuntimeError(
            "medseg_fast was built without CUDA support (no CUDA compiler was found at build time, or "
            f"MEDSEG_CUDA=OFF); rebuild with nvcc available to run kernels on GPU arrays. Detail: {err}"
        )
    return module


def module_for(device: str):
    """The extension module whose kernels run on ``device`` ("cpu" or "cuda").

    The one place that picks _C or _C_cuda: kernel facades pass an ArrayView's ``device``; the
    bound argument types (enums, configuration structs) are built from the same module. Inside
    `emulate_cuda`, "cuda" means the emulated module.
    """
    return cuda_module() if device == "cuda" else cpu_module()


# ----------------------------------------------------------------------------- CUDA emulation
def cuda_emulation_built() -> bool:
    """Whether medseg_fast._C_cuda_emu was built (CMake option MEDSEG_CUDA_EMULATION=ON)."""
    return _load("_C_cuda_emu")[0] is not None


def cuda_emulation_module():
    module, err = _load("_C_cuda_emu")
    if module is None:
        raise RuntimeError(
            "medseg_fast was built without the CUDA emulation module (build with MEDSEG_CUDA_EMULATION=ON, "
            f"libtbb-dev and HIP-CPU at MEDSEG_HIP_CPU_DIR). Detail: {err}"
        )
    return module


class _Synchronizing:
    """The emulated module as the facades see it: each kernel call returns once its work is done.

    Within a call the drivers' kernels run asynchronously in stream order, as on a GPU; at the
    return the caller reads the results with host code (torch CPU ops), which on a GPU would be
    ordered after them on the same stream.
    """

    def __init__(self, module):
        self._module = module
        self._calls: dict[str, Any] = {}

    def __getattr__(self, name: str):
        attr = getattr(self._module, name)
        if name.startswith("_") or isinstance(attr, type) or not callable(attr):
            return attr
        call = self._calls.get(name)
        if call is None:
            sync = self._module._synchronize

            @functools.wraps(attr)
            def call(*args, **kwargs):
                try:
                    return attr(*args, **kwargs)
                finally:
                    sync()

            self._calls[name] = call
        return call


@functools.cache
def _synchronizing_emulation() -> _Synchronizing:
    return _Synchronizing(cuda_emulation_module())


_emulation_lock = threading.Lock()
_emulation_depth = 0
_saved: dict[str, Any] = {}


def emulating_cuda() -> bool:
    """Whether an `emulate_cuda` block is active."""
    return _emulation_depth > 0


def _is_host_tensor(obj: Any) -> bool:
    return getattr(obj, "device", None) is not None and getattr(obj.device, "type", None) == "cpu" \
        and hasattr(obj, "data_ptr")


@contextlib.contextmanager
def emulate_cuda() -> Iterator[Any]:
    """Run the CUDA code paths on the CPU, for tests (yields the emulated module).

    While active, CPU torch tensors stand for CUDA tensors of one emulated device: the public
    functions take their CUDA paths (the Python side as written for GPU tensors, then the CUDA
    drivers of medseg_fast._C_cuda_emu, compiled from the same csrc/cuda sources and run by
    HIP-CPU over host memory), and return CPU torch tensors. numpy arrays keep the CPU kernels, so
    a test body compares the two in one process. Process-wide (kernels may run on worker
    threads); not for production use: the emulated kernels are orders of magnitude slower.

    Raises
    ------
    RuntimeError
        The emulated module was not built.
    """
    global _emulation_depth
    module = _synchronizing_emulation()
    from . import _backend as B

    with _emulation_lock:
        if _emulation_depth == 0:
            _saved.update(view=B.view, stream_of=B.stream_of, device_guard=B.device_guard)
            B.view, B.stream_of, B.device_guard = _emulated_view, _emulated_stream_of, _emulated_device_guard
        _emulation_depth += 1
    try:
        yield module
    finally:
        with _emulation_lock:
            _emulation_depth -= 1
            if _emulation_depth == 0:
                B.view, B.stream_of, B.device_guard = _saved["view"], _saved["stream_of"], _saved["device_guard"]
                _saved.clear()


def _emulated_view(x: Any, name: str = "x", *, writable: bool | None = None):
    v = _saved["view"](x, name, writable=writable)
    if v.kind == "torch" and v.device == "cpu":
        return dataclasses.replace(v, device="cuda", device_index=0)
    return v


def _emulated_stream_of(v) -> int:
    if v.kind == "torch" and _is_host_tensor(v.obj):
        return 0   # the emulated default stream
    return _saved["stream_of"](v)


def _emulated_device_guard(v):
    if v.kind == "torch" and _is_host_tensor(v.obj):
        return contextlib.nullcontext()
    return _saved["device_guard"](v)
