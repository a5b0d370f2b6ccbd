"""Build and runtime configuration: thread count and what was compiled."""

from __future__ import annotations

import operator
import os
import platform
import sys

import numpy as np

from . import _ext

__all__ = ["get_num_threads", "set_num_threads", "show_config", "config"]


def get_num_threads() -> int:
    """Threads used by every CPU kernel (default: ``MEDSEG_NUM_THREADS``, ``OMP_NUM_THREADS`` or the core count)."""
    return int(_ext.cpu_module().get_num_threads())


MAX_THREADS = 4096


def set_num_threads(n: int) -> None:
    """Set the thread count of all CPU kernels. Results never depend on it.

    Parameters
    ----------
    n : int
        Any integral value (Python or numpy integer, anything with ``__index__``; not bool)
        in ``1..MAX_THREADS`` (4096).

    Examples
    --------
    >>> import medseg_fast as mf
    >>> mf.set_num_threads(2); mf.get_num_threads()
    2
    """
    if isinstance(n, (bool, np.bool_)):
        raise TypeError(f"n must be an integer, got {type(n).__name__} {n!r}")
    try:
        value = operator.index(n)
    except TypeError:
        raise TypeError(f"n must be an integer, got {type(n).__name__} {n!r}") from None
    if not 1 <= value <= MAX_THREADS:
        raise ValueError(f"n must be in 1..{MAX_THREADS}, got {value}")
    _ext.cpu_module().set_num_threads(value)


def config() -> dict:
    """What was built and what this process sees, as a dict (see :func:`show_config`)."""
    from . import __version__

    cpu = _ext.cpu_module()
    info = {
        "medseg_fast": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_compiler": cpu.compiler,
        "cxx_standard": cpu.cxx_standard,
        "num_threads": get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cuda_built": _ext.cuda_built(),
        # float loss kernels: AVX2+FMA path chosen at run time, or the portable one
        "cpu_loss_simd": "avx2+fma" if cpu._losses_simd_mode(-1) else "scalar",
        # EDT envelopes: 8 float32 or 4 float64 lines in lockstep with AVX2, or one line at a time
        "cpu_edt_simd": "avx2" if cpu._edt_simd_mode(-1) else "scalar",
    }
    if _ext.cuda_built():
        cu = _ext.cuda_module()
        runtime = cu.runtime_version()
        info.update(
            cuda_compiler=cu.compiler_version,
            cuda_architectures=cu.architectures,
            cuda_runtime=f"{runtime // 1000}.{(runtime % 1000) // 10}" if runtime else "unavailable",
            cuda_devices=cu.device_count(),
        )
    else:
        info["cuda_detail"] = _ext.cuda_import_error()
    for name in ("numpy", "torch", "cupy", "monai"):
        module = sys.modules.get(name)
        if module is not None:
            info[name] = getattr(module, "__version__", "?")
    return info


def show_config() -> None:
    """Print what was built (compilers, CUDA version and architectures) and the thread count."""
    for key, value in config().items():
        print(f"{key:>20}: {value}")
