"""Reference fused export: resample every class (float64, :func:`.resample.resample`), then argmax.

Rule the compiled :func:`medseg_fast.resample_argmax` follows: the lowest class among those with
the largest value wins; NaN values never win (they count as -inf), so a voxel whose classes are
all NaN gets class 0. This holds the whole ``(C, *out_shape)`` array, which is what the kernel avoids.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .resample import resample

__all__ = ["resample_argmax", "top_two_gap"]


def resample_argmax(scores: np.ndarray, out_shape: Sequence[int], *, order: int = 1, lowres_axis: int | None = None,
                    order_z: int = 0) -> np.ndarray:
    """Labels (int64) of ``scores`` ((C, *spatial)) resampled to ``out_shape`` (see :func:`.resample.resample`)."""
    values = resample(np.asarray(scores), out_shape, order=order, lowres_axis=lowres_axis, order_z=order_z)
    values = np.where(np.isnan(values), -np.inf, values)
    return np.argmax(values, axis=0)


def top_two_gap(scores: np.ndarray, out_shape: Sequence[int], *, order: int = 1, lowres_axis: int | None = None,
                order_z: int = 0) -> np.ndarray:
    """Per voxel, the largest minus the second largest resampled value (float64): where this is tiny,
    float32 and float64 arithmetic may pick different classes."""
    values = resample(np.asarray(scores), out_shape, order=order, lowres_axis=lowres_axis, order_z=order_z)
    values = np.where(np.isnan(values), -np.inf, values)
    top = np.sort(values, axis=0)[-2:]
    return top[1] - top[0]
