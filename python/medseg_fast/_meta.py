"""Metadata of MONAI MetaTensors through the shape-preserving kernels.

The obvious glue, ``Lambda(lambda t: medseg_fast.hu_window(t, 40, 400))``, used to lose the image's
affine: the kernels allocate a plain tensor and MONAI gives a plain tensor an identity affine. A
function decorated with `keeps_meta` returns a MetaTensor with a copy of its input's meta (affine,
filename, applied operations) whenever the input is a MetaTensor and the result has the input's
shape (an elementwise or voxelwise result on the same grid). Results of another shape, results
written into ``out=`` and inputs of any other kind are returned untouched. MONAI is never imported
here: a MetaTensor in means MONAI is already loaded.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["keeps_meta", "with_meta_of"]


def _is_meta_tensor(x: Any) -> bool:
    cls = type(x)
    return cls.__name__ == "MetaTensor" and cls.__module__.startswith("monai.")


def with_meta_of(source: Any, result: Any) -> Any:
    """`result` as a MetaTensor carrying a copy of `source`'s meta, when that is meaningful."""
    if not _is_meta_tensor(source) or _is_meta_tensor(result):
        return result
    shape = getattr(result, "shape", None)
    if shape is None or tuple(shape) != tuple(source.shape) or not hasattr(result, "data_ptr"):
        return result
    meta_cls = type(source)
    # MetaTensor(tensor) wraps the same storage (no copy); the meta dict and the list of applied
    # operations are copied so the result's history can grow without touching the input's.
    out = meta_cls(result, meta=copy.deepcopy(source.meta),
                   applied_operations=copy.deepcopy(list(source.applied_operations)))
    out.is_batch = source.is_batch
    return out


def keeps_meta(fn: F) -> F:
    """Decorate a kernel whose first argument is the image (see the module docstring)."""

    @functools.wraps(fn)
    def wrapper(x, *args, **kwargs):
        result = fn(x, *args, **kwargs)
        if kwargs.get("out") is not None or not _is_meta_tensor(x):
            return result
        if isinstance(result, tuple):   # e.g. label(..., return_num=True): (labels, count)
            return (with_meta_of(x, result[0]),) + result[1:]
        return with_meta_of(x, result)

    return wrapper  # type: ignore[return-value]
