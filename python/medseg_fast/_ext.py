"""Loading of the compiled extensions: _C (CPU, always built) and _C_cuda (optional)."""

from __future__ import annotations

import functools
import importlib

__all__ = ["cpu_module", "cuda_module", "module_for", "cuda_built", "cuda_import_error"]


@functools.cache
def cpu_module():
    return importlib.import_module("medseg_fast._C")


@functools.cache
def _load_cuda():
    try:
        return importlib.import_module("medseg_fast._C_cuda"), None
    except ImportError as exc:  # built without CUDA, or the runtime cannot load
        return None, exc


def cuda_built() -> bool:
    return _load_cuda()[0] is not None


def cuda_import_error() -> str | None:
    err = _load_cuda()[1]
    return None if err is None else str(err)


def cuda_module():
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
    bound argument types (enums, configuration structs) are built from the same module.
    """
    return cuda_module() if device == "cuda" else cpu_module()
