"""nnU-Net v2's resampling functions (``nnunetv2.preprocessing.resampling.default_resampling``) with
the same signatures and results, on :func:`medseg_fast.resample`.

Images (``is_seg=False``): skimage ``resize(mode="edge", anti_aliasing=False)`` per channel, or with a
separate low-resolution axis per slice at ``order`` then that axis at ``order_z`` (nnU-Net's
``map_coordinates``); computed in float32 (float64 for float64 input), nnU-Net computes in float64, so
values agree to float32 rounding. Segmentations (``is_seg=True``): batchgenerators
``resize_segmentation``: each label's indicator is interpolated (float64) and the per-voxel argmax taken,
exact ties settled by the nearest-neighbour label as batchgenerators does (our
:func:`medseg_fast.resample_labels` is the float32 vote with ties to the smallest label).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..resampling import resample

__all__ = ["resample_data_or_seg_to_shape", "resample_data_or_seg_to_spacing", "resample_data_or_seg"]


def _aniso_threshold() -> float:
    from nnunetv2.configuration import ANISO_THRESHOLD

    return ANISO_THRESHOLD


def _as_numpy(data) -> np.ndarray:
    if hasattr(data, "detach"):   # torch.Tensor, as nnU-Net: .numpy()
        return data.detach().cpu().numpy()
    return np.asarray(data)


def _seg_resize(seg: np.ndarray, new_shape: Sequence[int], order: int) -> np.ndarray:
    """batchgenerators ``resize_segmentation`` of one (spatial) label map: each label's indicator resized
    (float64), the per-voxel argmax taken; exact ties go to the nearest-neighbour label when it is one of
    the tied labels, else to the smallest (its ``seg_tiebreak="nearest"``)."""
    new_shape = tuple(int(n) for n in new_shape)
    if seg.size == 0:
        return np.zeros(new_shape, dtype=seg.dtype)
    nearest = resample(seg, new_shape, order=0)
    if order == 0:
        return nearest
    labels = np.unique(seg)
    if len(labels) == 1:
        return np.full(new_shape, labels[0], dtype=seg.dtype)
    nn_idx = np.searchsorted(labels, nearest)
    best = win = nn_top = None
    for i, c in enumerate(labels):
        score = resample((seg == c).astype(np.float64), new_shape, order=order, dtype="float64")
        is_nn = nn_idx == i
        if best is None:
            best, win, nn_top = score, np.zeros(new_shape, np.int64), is_nn & (score > 0)
            continue
        nn_top |= (score == best) & (score > 0) & is_nn
        better = score > best
        nn_top[better] = is_nn[better]
        win[better] = i
        np.maximum(best, score, out=best)
    win[nn_top] = nn_idx[nn_top]
    return labels.astype(seg.dtype, copy=False)[win]


def resample_data_or_seg(data: np.ndarray, new_shape, is_seg: bool = False, axis: int | None = None, order: int = 3,
                         do_separate_z: bool = False, order_z: int = 0, dtype_out=None) -> np.ndarray:
    """nnU-Net's ``resample_data_or_seg``: ``data`` is (c, x, y, z); returns ``dtype_out`` (default data's)."""
    data = _as_numpy(data)
    if data.ndim != 4:
        raise ValueError(f"data must be (c, x, y, z), got shape {data.shape}")
    new_shape = tuple(int(n) for n in new_shape)
    if len(new_shape) != 3:
        raise ValueError(f"new_shape must have 3 values, got {new_shape}")
    if tuple(data.shape[1:]) == new_shape:
        return data
    if do_separate_z and axis is None:
        raise ValueError("do_separate_z needs the anisotropic axis")
    dtype_out = data.dtype if dtype_out is None else np.dtype(dtype_out)
    if not is_seg:
        x = data if data.dtype in (np.float32, np.float64) else data.astype(np.float32)
        out = resample(x, new_shape, order=order, separate_z=int(axis) if do_separate_z else False, order_z=order_z)
        return out.astype(dtype_out, copy=False)
    result = np.zeros((data.shape[0], *new_shape), dtype=dtype_out)
    for c in range(data.shape[0]):
        if not do_separate_z:
            result[c] = _seg_resize(data[c], new_shape, order)
            continue
        inplane = list(new_shape)
        inplane[axis] = data.shape[axis + 1]
        slices = [_seg_resize(np.take(data[c], s, axis=axis), [n for i, n in enumerate(new_shape) if i != axis], order)
                  for s in range(data.shape[axis + 1])]
        here = np.stack(slices, axis=axis)
        if here.shape[axis] == new_shape[axis]:
            result[c] = here
        elif order_z == 0:
            result[c] = resample(here, new_shape, order=0)
        else:   # nnU-Net: per label, map_coordinates(order_z) rounded > 0.5 along the separate axis only
            for cl in np.unique(here):
                mask = (here == cl).astype(np.float64)
                v = resample(mask, new_shape, order=order_z, separate_z=int(axis), order_z=order_z, dtype="float64")
                result[c][np.round(v) > 0.5] = cl
    return result


def resample_data_or_seg_to_shape(data, new_shape, current_spacing, new_spacing, is_seg: bool = False,
                                  order: int = 3, order_z: int = 0, force_separate_z: bool | None = False,
                                  separate_z_anisotropy_threshold: float | None = None) -> np.ndarray:
    """nnU-Net's ``resample_data_or_seg_to_shape`` (plans name ``medseg_resample_data_or_seg_to_shape``)."""
    from nnunetv2.preprocessing.resampling.default_resampling import determine_do_sep_z_and_axis

    threshold = _aniso_threshold() if separate_z_anisotropy_threshold is None else separate_z_anisotropy_threshold
    do_separate_z, axis = determine_do_sep_z_and_axis(force_separate_z, current_spacing, new_spacing, threshold)
    return resample_data_or_seg(data, new_shape, is_seg, axis, order, do_separate_z, order_z=order_z)


def resample_data_or_seg_to_spacing(data: np.ndarray, current_spacing, new_spacing, is_seg: bool = False,
                                    order: int = 3, order_z: int = 0, force_separate_z: bool | None = False,
                                    separate_z_anisotropy_threshold: float | None = None) -> np.ndarray:
    """nnU-Net's ``resample_data_or_seg_to_spacing``: the shape from ``compute_new_shape``."""
    from nnunetv2.preprocessing.resampling.default_resampling import compute_new_shape

    data = _as_numpy(data)
    new_shape = compute_new_shape(data.shape[1:], current_spacing, new_spacing)
    return resample_data_or_seg_to_shape(data, new_shape, current_spacing, new_spacing, is_seg, order, order_z,
                                         force_separate_z, separate_z_anisotropy_threshold)
