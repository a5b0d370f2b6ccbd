"""Resampling an image together with its geometry (:func:`resample`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..resampling import resample as resample_array
from ._meta import Meta

__all__ = ["resample"]

def resample(x: Any, meta: Meta, spacing: Sequence[float], order: int = 1) -> tuple[np.ndarray, Meta]:
    """Resample an image (``(*spatial)`` or ``(C, *spatial)``) to ``spacing`` (array axis order, mm), keeping
    its physical extent; returns the array and its new geometry.

    The new shape is ``round(shape * meta.spacing / spacing)``; the spacing actually used is
    ``meta.spacing * shape / new_shape`` (equal to ``spacing`` up to rounding) and the origin moves so that
    the field of view stays the same (voxel centres as ``align_corners=False`` interpolation). ``order`` 0
    is nearest (label maps: integer arrays give integer results), 1 is linear.

    Examples
    --------
    >>> import numpy as np
    >>> y, m = resample(np.zeros((4, 10, 10), np.float32), Meta.identity((3.0, 1.0, 1.0)), (1.5, 2.0, 2.0))
    >>> y.shape, m.spacing
    ((8, 5, 5), (1.5, 2.0, 2.0))
    """
    a = np.asarray(x)
    nd = meta.ndim
    if a.ndim not in (nd, nd + 1):
        raise ValueError(f"x must have {nd} or {nd + 1} dimensions for a {nd}-D geometry, got shape {a.shape}")
    target = tuple(float(s) for s in spacing)
    if len(target) != nd or min(target) <= 0:
        raise ValueError(f"spacing must have {nd} positive values, got {tuple(spacing)}")
    if order not in (0, 1):
        raise ValueError(f"order must be 0 or 1, got {order}")
    shape = a.shape[-nd:]
    new_shape = tuple(max(int(round(n * s / t)), 1) for n, s, t in zip(shape, meta.spacing, target))
    # integer maps at order 0 keep their dtype (the kernel copies the nearest value); everything else is float32
    src = a if order == 0 and np.issubdtype(a.dtype, np.integer) else a.astype(np.float32)
    if new_shape == shape:
        out = src.copy() if src is a else src  # the same grid: the values as they are
    else:
        # plain (bi/tri)linear on the new grid: no nnU-Net "separate z" here, whatever the anisotropy
        out = resample_array(src.reshape(-1, *shape), new_shape, order=order).reshape(*a.shape[:-nd], *new_shape)
    new_spacing = tuple(s * n / m for s, n, m in zip(meta.spacing, shape, new_shape))
    offset = np.array([0.5 * (ns / s) - 0.5 for s, ns in zip(meta.spacing, new_spacing)]) * np.asarray(meta.spacing)
    origin = tuple(np.asarray(meta.origin) + meta.direction @ offset)
    return out, Meta(new_spacing, origin, meta.direction.copy(), dict(meta.extra))

