"""Fused resample + argmax: per-class scores to the label map of a new grid without the C x volume.

A segmentation network's export step (probabilities at the network spacing -> labels on the
original grid) usually resamples all ``C`` channels and then takes the argmax, which holds
``C x out_voxels`` floats. :func:`resample_argmax` computes the same labels in small output tiles
(a few hundred kB per thread): per tile it runs the separable resampling passes of
:func:`medseg_fast.resample` class by class and keeps a running maximum, so the only full-size
array is the label map itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

from . import _backend as B
from . import _ext
from .resampling import _call, _frame, _geometry, _order, _spatial_dims

__all__ = ["resample_argmax", "label_dtype_for"]

_SCORE_DTYPES = ("float32", "float64", "float16", "bfloat16")
_LABEL_DTYPES = {"uint8": 256, "int16": 32768, "int32": 2**31 - 1, "int64": 2**31 - 1}


def label_dtype_for(num_classes: int) -> str:
    """The smallest label dtype that holds classes ``0 .. num_classes - 1``: uint8, int16 or int32."""
    for name, limit in _LABEL_DTYPES.items():
        if num_classes <= limit:
            return name
    raise ValueError(f"num_classes must be at most {2**31 - 1}, got {num_classes}")


def resample_argmax(
    scores: Any,
    out_shape: Sequence[int] | None = None,
    *,
    spacing: float | Sequence[float] | None = None,
    new_spacing: float | Sequence[float] | None = None,
    order: int = 1,
    separate_z: bool | int | None = None,
    anisotropy_threshold: float = 3,
    out_dtype: Any = None,
    order_z: int = 0,
    clip: bool = True,
):
    """Resample per-class scores to a new grid and return the label map (argmax over classes).

    Equals ``resample(scores, out_shape, spacing=..., new_spacing=..., order=..., separate_z=...,
    anisotropy_threshold=..., order_z=..., clip=...).argmax(0)`` (the same grid, separate-z decision
    and axis, and bit for bit the same per-class values), except at exact ties, where the lowest
    class wins as in numpy, and at NaN: **a NaN score never wins** (numpy's argmax would pick the
    first NaN); a voxel whose classes are all NaN gets class 0. No ``(C, *out_shape)`` array is
    allocated: extra memory is the label map plus per-thread tiles (order 3 keeps whole lines
    along its axes in a tile, since the B-spline prefilter needs them).

    Parameters
    ----------
    scores : array
        ``(C, *spatial)`` probabilities or logits, ``C >= 2``, 1 to 3 spatial axes; float32,
        float64, float16 or bfloat16; numpy array, torch tensor (CPU/CUDA) or cupy array, any
        memory layout.
    out_shape : sequence of int, optional
        Output spatial shape; or give ``spacing`` and ``new_spacing`` (as in :func:`resample`).
    spacing, new_spacing : float or sequence of float, optional
        Voxel sizes (mm) of ``scores`` and of the result; they also decide ``separate_z``.
    order : {0, 1, 3}
        Interpolation order of the scores (nnU-Net exports probabilities with order 1).
    separate_z : None, bool or int
        As in :func:`resample` (None: nnU-Net's rule with ``anisotropy_threshold``).
    anisotropy_threshold : float
        Spacing ratio above which the low-resolution axis is resampled separately.
    out_dtype : optional
        Label dtype: uint8, int16, int32 or int64. Default: uint8 up to 256 classes, else int16 (up to
        32768), else int32. A dtype too small for ``C`` classes is a ValueError.
    order_z : {0, 1, 3}
        Order along the separate axis (nnU-Net: 0).
    clip : bool
        Clip order-3 values to each class's input range first (as :func:`resample`, skimage).

    Returns
    -------
    array
        Labels of shape ``out_shape``, same kind and device as ``scores``.

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.random.default_rng(0).random((3, 20, 32, 32), dtype=np.float32)
    >>> labels = resample_argmax(probs, spacing=(3.0, 1.0, 1.0), new_spacing=(1.5, 0.8, 0.8))
    >>> labels.shape, labels.dtype
    ((40, 40, 40), dtype('uint8'))
    """
    ndim = _spatial_dims(out_shape, spacing, new_spacing)
    order = _order(order, "order")
    order_z = _order(order_z, "order_z")
    sv, shape_t, lowres = _geometry(scores, "scores", ndim, out_shape, spacing, new_spacing, separate_z,
                                    anisotropy_threshold)
    if sv.ndim != ndim + 1:
        raise ValueError(f"scores must be (C, *spatial) with {ndim} spatial axes (as out_shape / spacing give), "
                         f"got {sv.describe()}")
    num_classes = int(sv.shape[0])
    if num_classes < 2:
        raise ValueError(f"scores must hold at least 2 classes along axis 0, got {sv.describe()}")
    if sv.dtype not in _SCORE_DTYPES:
        raise TypeError(f"scores must have a floating dtype ({', '.join(_SCORE_DTYPES)}), got dtype={sv.dtype}")
    if out_dtype is None:
        label_dtype = label_dtype_for(num_classes)
    else:
        label_dtype = B.dtype_name(out_dtype)
        if label_dtype not in _LABEL_DTYPES:
            raise ValueError(f"out_dtype must be one of {tuple(_LABEL_DTYPES)}, got {out_dtype!r}")
        if num_classes > _LABEL_DTYPES[label_dtype]:
            raise ValueError(f"out_dtype={label_dtype} cannot hold {num_classes} classes "
                             f"(at most {_LABEL_DTYPES[label_dtype]})")
    if not isinstance(clip, (bool, Integral)):
        raise ValueError(f"clip must be a bool, got {clip!r}")

    result = B.allocate(sv, shape_t, label_dtype)
    ov = B.view(result, "out")
    in_frame, in_strides = _frame(sv, ndim)
    out_frame, out_strides = _frame(ov, ndim)
    out_frame[0] = num_classes
    orders = [0] + [order] * 3
    late = -1
    if lowres is not None:
        late = lowres + 4 - ndim
        orders[late] = order_z
    clip_axis = -1
    if clip and order == 3:
        clip_axis = late if late > 0 else 0
    spec = _ext.module_for(sv.device).ResampleSpec(in_shape=in_frame, out_shape=out_frame, orders=orders,
                                                   late_axis=late, clip_axis=clip_axis)
    _call(sv, "resample_argmax", spec, B.describe(sv, in_strides), B.describe(ov, out_strides))
    return result
