"""Exact Euclidean distance transforms (CPU and CUDA).

The separable algorithm of Felzenszwalb & Huttenlocher (Theory of Computing 8, 2012): squared
distances along the first axis by two sweeps, then the lower envelope of parabolas along every
further axis, lines in parallel (tiles of neighbouring lines on strided axes). Exact for any
anisotropic spacing.

What :func:`distance_transform` equals, exactly:

* ``scipy.ndimage.distance_transform_edt(mask != 0, sampling=spacing)`` for every input, including
  masks without any zero element: float64 results bit for bit (same per-axis terms summed in the
  same order), float32 results to float32 rounding.
* ``edt.edt(mask != 0, anisotropy=spacing)`` (seung-lab edt, ``black_border=False``) only when the
  mask has at least one zero element (to float32 rounding; edt computes in float32). Without
  one, edt returns inf everywhere where scipy and this function measure to a virtual zero before
  the first element. On a multi-label mask ``edt.edt(labels)`` measures every voxel to the
  nearest voxel of a *different* label; this function only separates zero from nonzero, as scipy
  does (so it equals ``edt.edt(labels != 0)``, not ``edt.edt(labels)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _backend as B
from . import _ext
from . import _validate as V
from ._meta import keeps_meta
from ._typing import Array

__all__ = ["distance_transform", "signed_distance"]

OUTPUT_DTYPES = ("float32", "float64")


def _spacing(spacing: Any, ndim: int, name: str = "spacing", what: str = "mask") -> tuple[float, ...]:
    """Validated per-axis spacing (array axis order); a scalar means isotropic (the _validate rule)."""
    return V.spacing(spacing, ndim, name, what)


SPACING_RANGE = V.SPACING_RANGE
_flag = V.flag


def _out_dtype(dtype: Any) -> str:
    resolved = B.dtype_name(dtype)
    if resolved not in OUTPUT_DTYPES:
        raise ValueError(f"dtype must be one of {OUTPUT_DTYPES}, got {dtype!r}")
    return resolved


def _edt(mv: B.ArrayView, spacing: tuple[float, ...], squared: bool, dtype: str) -> Any:
    # The passes run over the axes in logical order whatever the memory layout: each pass adds
    # its axis's squared term, so the order of the passes is the order of the float sum. Passes
    # in memory order made results depend on the layout (Fortran order, transposes, size-1 axes
    # moved last) by an ulp, and differ from scipy's sum d0^2 + d1^2 + ... . The output is
    # C-contiguous (the kernel writes it that way); the mask is read through its strides.
    result = B.allocate(mv, mv.shape, dtype)
    if mv.size == 0:
        return result
    ov = B.view(result, "out")
    args = (list(mv.shape), B.describe(mv, list(mv.strides)), B.describe(ov, list(ov.strides)), list(spacing),
            bool(squared), 0)
    module = _ext.module_for(mv.device)
    if mv.device == "cuda":
        with B.device_guard(mv):
            module.distance_transform(*args, B.stream_of(mv))
    else:
        module.distance_transform(*args)
    return result


def _mask_input(mask: Any, name: str = "mask") -> B.ArrayView:
    mv = B.view(mask, name)
    if mv.ndim == 0:
        raise ValueError(f"{name} must have at least 1 dimension, got a 0-d array")
    if mv.ndim > 8:
        raise ValueError(f"{name} must have at most 8 dimensions, got shape={mv.shape}")
    return mv


@keeps_meta
def distance_transform(
    mask: Array,
    spacing: float | Sequence[float] | None = None,
    *,
    squared: bool = False,
    dtype: str = "float32",
) -> Array:
    """Exact Euclidean distance of every nonzero element to the nearest zero element.

    Equals ``scipy.ndimage.distance_transform_edt(mask != 0, sampling=spacing)`` (float64: bit for
    bit): zero elements get 0, nonzero elements their distance (in the units of ``spacing``) to
    the closest zero element; every nonzero value counts the same (multi-label input is not
    separated by label). It equals ``edt.edt(mask != 0, anisotropy=spacing)`` only when some
    element is zero (edt gives inf otherwise), and differs from ``edt.edt`` of a multi-label mask,
    which measures to the nearest different label (see the module docstring).

    Parameters
    ----------
    mask : array (numpy, torch CPU/CUDA, cupy), any real dtype, 1-D to 8-D
        Nonzero = foreground. Strided and transposed views are read in place, never modified.
    spacing : float or sequence of float, optional
        Element spacing per axis in the array's axis order (z, y, x for a (D, H, W) volume); a
        scalar means isotropic. Default 1.
    squared : bool
        Return squared distances (no square root).
    dtype : {"float32", "float64"}
        Output dtype. float64 results equal scipy's exactly.

    Returns
    -------
    array
        Same kind, device and shape as ``mask``.

    Notes
    -----
    A mask without any zero element has no defined distance; like scipy, every element then gets
    its distance to a virtual zero element just before the first element of axis 0 (index
    ``(-1, 0, ..., 0)``), e.g. ``[1, 2, 3]`` for ``np.ones(3)``.

    Examples
    --------
    >>> import numpy as np
    >>> from medseg_fast import distance_transform
    >>> distance_transform(np.array([0, 1, 1, 1, 0]), dtype="float64")
    array([0., 1., 2., 1., 0.])
    """
    mv = _mask_input(mask)
    out_dtype = _out_dtype(dtype)
    sp = _spacing(spacing, mv.ndim)
    return _edt(mv, sp, _flag(squared, "squared"), out_dtype)


@keeps_meta
def signed_distance(
    mask: Array,
    spacing: float | Sequence[float] | None = None,
    *,
    dtype: str = "float32",
) -> Array:
    """Signed Euclidean distance to the mask boundary: negative inside, positive outside.

    ``signed_distance(m) = edt(~m) - edt(m)``, each term an exact distance transform: outside the
    mask the distance to the nearest foreground element, inside minus the distance to the
    nearest background element. This is the sign convention of the boundary loss of Kervadec et
    al. (MIDL 2019) and of MONAI's boundary-loss utilities (negative inside). Elements next to
    the boundary get +s outside and -s inside (s = the spacing across the boundary).

    A mask with no foreground or no background has no boundary: the result is all zeros (the
    boundary-loss reference leaves such maps at 0 too).

    Parameters
    ----------
    mask : array, any real dtype
        Nonzero = inside.
    spacing : float or sequence of float, optional
        Element spacing per axis (array axis order).
    dtype : {"float32", "float64"}

    Returns
    -------
    array
        Same kind, device and shape as ``mask``.

    Examples
    --------
    >>> import numpy as np
    >>> from medseg_fast import signed_distance
    >>> signed_distance(np.array([0, 0, 1, 1, 1, 0]), dtype="float64")
    array([ 2.,  1., -1., -2., -1.,  1.])
    """
    mv = _mask_input(mask)
    out_dtype = _out_dtype(dtype)
    sp = _spacing(spacing, mv.ndim)
    inside = _edt(mv, sp, False, out_dtype)
    if mv.size == 0:
        return inside
    complement = mv.obj == 0
    outside = _edt(B.view(complement, "mask"), sp, False, out_dtype)
    result = outside - inside
    if not bool(complement.any()) or bool(complement.all()):
        result[...] = 0
    return result
