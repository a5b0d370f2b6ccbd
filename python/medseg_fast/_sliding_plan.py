"""Plan math of sliding-window inference: window origins, importance maps, per-voxel weight sums.

Pure numpy (no kernels, no torch), so the reference loop (:mod:`medseg_fast.reference.sliding_window`)
and the kernel facade (:mod:`medseg_fast._sliding_kernels`) share one definition of where windows
start and how they are weighted. Window positions follow nnU-Net v2 (``"nnunet"``) or MONAI
(``"monai"``); the tests check both against those libraries' own code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

__all__ = ["MODES", "POSITIONS", "WindowPlan", "window_starts", "importance_map"]

MODES = ("gaussian", "constant")
POSITIONS = ("nnunet", "monai")

# ----------------------------------------------------------------------------- plan math
def _nnunet_steps(size: int, patch: int, step_fraction: float) -> list[int]:
    """nnU-Net v2 ``compute_steps_for_sliding_window`` along one axis (size >= patch)."""
    target = patch * step_fraction
    num = int(np.ceil((size - patch) / target)) + 1
    if num == 1:
        return [0]
    actual = (size - patch) / (num - 1)
    return [int(np.round(actual * i)) for i in range(num)]


def _monai_starts(size: int, patch: int, overlap: float) -> list[int]:
    """MONAI ``_get_scan_interval`` + ``dense_patch_slices`` along one axis (size >= patch)."""
    interval = patch if patch == size else max(int(patch * (1 - overlap)), 1)
    num = int(math.ceil(float(size) / interval))
    count = next((d for d in range(num) if d * interval + patch >= size), None)
    count = 1 if count is None else count + 1
    return [i * interval - max(i * interval + patch - size, 0) for i in range(count)]


def _gaussian_nnunet(patch: tuple[int, ...], sigma_scale: tuple[float, ...]) -> np.ndarray:
    """nnU-Net's ``compute_gaussian`` divided by its maximum.

    nnU-Net filters a unit impulse at ``patch // 2`` with ``scipy.ndimage.gaussian_filter``
    (sigma = sigma_scale * patch, truncate 4, zero border): each axis is a sampled Gaussian that is
    zero beyond ``int(4 sigma + 0.5)``. Zeros are replaced by the smallest nonzero value.
    """
    result = np.ones((), dtype=np.float64)
    for p, s in zip(patch, sigma_scale):
        sigma = p * s
        offsets = np.arange(p) - p // 2
        g = np.exp(-0.5 * offsets.astype(np.float64) ** 2 / sigma**2)
        g[np.abs(offsets) > int(4.0 * sigma + 0.5)] = 0.0
        result = np.multiply.outer(result, g)
    result = (result / result.max()).astype(np.float32)
    nonzero = result[result > 0]
    result[result == 0] = nonzero.min()
    return result


def _gaussian_monai_factors(patch: tuple[int, ...], sigma_scale: tuple[float, ...]) -> tuple:
    """MONAI ``compute_importance_map(mode="gaussian")`` in float32 (same operations, same order) as
    ``(scale, row, floor)``: the product of all but the last axis's 1-D Gaussians, the last one,
    and the lower clamp; the map is ``max(scale[..., None] * row, floor)``."""
    result = None
    for p, s in zip(patch, sigma_scale):
        sigma = p * s
        x = np.arange(-(p - 1) / 2.0, (p - 1) / 2.0 + 1, dtype=np.float64)[:p].astype(np.float32)
        g = np.exp((x * x) / np.float32(-2 * sigma**2)).astype(np.float32)
        scale = result if result is not None else np.ones((), dtype=np.float32)
        result = g if result is None else (result[..., None] * g).astype(np.float32)
    return scale, g, np.float32(max(float(result.min()), 1e-3))


def _gaussian_monai(patch: tuple[int, ...], sigma_scale: tuple[float, ...]) -> np.ndarray:
    """MONAI ``compute_importance_map(mode="gaussian")`` in float32."""
    scale, row, floor = _gaussian_monai_factors(patch, sigma_scale)
    return np.maximum((scale[..., None] * row).astype(np.float32), floor).astype(np.float32)


def _separable_factors(imp: np.ndarray, candidate: tuple | None) -> tuple | None:
    """``(scale (pz, py), row (px), floor)`` float32 with ``imp == max(scale[..., None] * row, floor)``
    bit for bit (imp seen as 3-D), or None. The CPU kernels then read one row and a scalar per
    (z, y) instead of the full map; the check makes that exact by construction."""
    if candidate is None:
        return None
    scale, row, floor = candidate
    imp3 = imp.reshape((1,) * (3 - imp.ndim) + imp.shape)
    scale = np.ascontiguousarray(np.asarray(scale, dtype=np.float32).reshape(imp3.shape[:2]))
    row = np.ascontiguousarray(np.asarray(row, dtype=np.float32).reshape(imp3.shape[2]))
    floor = np.float32(floor)
    rebuilt = np.maximum((scale[..., None] * row).astype(np.float32), floor)
    if not np.array_equal(rebuilt.view(np.int32), np.ascontiguousarray(imp3).view(np.int32)):
        return None
    scale.setflags(write=False)
    row.setflags(write=False)
    return scale, row, float(floor)


# ----------------------------------------------------------------------------- validation
def _int_tuple(value: Any, name: str, ndim: int | None = None) -> tuple[int, ...]:
    if isinstance(value, Integral) and not isinstance(value, bool):
        if ndim is None:
            raise ValueError(f"{name} must be a sequence of positive integers, got {value!r}")
        value = (value,) * ndim
    try:
        items = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of positive integers, got {value!r}") from None
    if not items or any(isinstance(v, bool) or not isinstance(v, (Integral, np.integer)) for v in items):
        raise ValueError(f"{name} must be a sequence of positive integers, got {value!r}")
    if ndim is not None and len(items) != ndim:
        raise ValueError(f"{name} must have {ndim} values (one per spatial axis), got {len(items)}: {value!r}")
    if any(v <= 0 for v in items):
        raise ValueError(f"{name} must be positive, got {value!r}")
    return tuple(int(v) for v in items)


def _float_tuple(value: Any, name: str, ndim: int) -> tuple[float, ...]:
    if isinstance(value, (Real, np.floating, np.integer)) and not isinstance(value, bool):
        value = (value,) * ndim
    try:
        items = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or one number per spatial axis, got {value!r}") from None
    if len(items) != ndim:
        raise ValueError(f"{name} must have {ndim} values (one per spatial axis), got {len(items)}: {value!r}")
    return items


def _choice(value: Any, name: str, options: Sequence[str]) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {tuple(options)}, got {value!r}")
    return value


# ----------------------------------------------------------------------------- public helpers
def window_starts(size: int, patch: int, overlap: float, positions: str) -> list[int]:
    """Window starts along one axis of a (padded) image of ``size >= patch`` voxels.

    Examples
    --------
    >>> window_starts(7, 4, 0.5, "nnunet"), window_starts(7, 4, 0.5, "monai")
    ([0, 2, 3], [0, 2, 3])
    """
    _choice(positions, "positions", POSITIONS)
    if positions == "nnunet":
        return _nnunet_steps(size, patch, 1.0 - overlap)
    return _monai_starts(size, patch, overlap)


def importance_map(patch: Sequence[int], mode: str, sigma_scale: float | Sequence[float], positions: str) -> np.ndarray:
    """The per-window weights: float32 array of shape ``patch``.

    ``"nnunet"``: nnU-Net v2 ``compute_gaussian`` divided by its maximum; ``"monai"``: MONAI
    ``compute_importance_map``; ``mode="constant"``: ones.

    Examples
    --------
    >>> importance_map((3,), "constant", 0.125, "nnunet").tolist()
    [1.0, 1.0, 1.0]
    """
    return _importance(tuple(patch), mode, _float_tuple(sigma_scale, "sigma_scale", len(tuple(patch))), positions)[0]


def _importance(patch: tuple[int, ...], mode: str, sigmas: tuple[float, ...], positions: str) -> tuple:
    """(importance map float32, separable-factor candidate or None)."""
    _choice(mode, "mode", MODES)
    _choice(positions, "positions", POSITIONS)
    if mode == "constant":
        return (np.ones(patch, dtype=np.float32),
                (np.ones(patch[:-1], np.float32), np.ones(patch[-1], np.float32), 0.0))
    if positions == "nnunet":
        return _gaussian_nnunet(patch, sigmas), None
    return _gaussian_monai(patch, sigmas), _gaussian_monai_factors(patch, sigmas)


# ----------------------------------------------------------------------------- the plan
class WindowPlan:
    """Window origins and importance map of sliding-window inference over one image shape (no kernels).

    Parameters
    ----------
    image_size, patch_size, overlap, mode, sigma_scale, positions
        As in :class:`medseg_fast.SlidingWindow`, which adds the gather / scatter-add / finalize
        kernels to this plan.

    Examples
    --------
    >>> plan = WindowPlan((6, 7), (4, 4), overlap=0.5)
    >>> len(plan), plan.axis_origins[1].tolist()
    (6, [0, 2, 3])
    """

    def __init__(
        self,
        image_size: Sequence[int],
        patch_size: Sequence[int],
        *,
        overlap: float | Sequence[float] = 0.5,
        mode: str = "gaussian",
        sigma_scale: float | Sequence[float] = 0.125,
        positions: str = "nnunet",
    ) -> None:
        image = _int_tuple(image_size, "image_size")
        if len(image) > 3:
            raise ValueError(f"image_size must have 1 to 3 spatial axes, got {len(image)}: {image_size!r}")
        ndim = len(image)
        patch = _int_tuple(patch_size, "patch_size", ndim)
        overlaps = _float_tuple(overlap, "overlap", ndim)
        if any(not (0.0 <= o < 1.0) for o in overlaps):
            raise ValueError(f"overlap must lie in [0, 1), got {overlap!r}")
        self.mode = _choice(mode, "mode", MODES)
        self.positions = _choice(positions, "positions", POSITIONS)
        sigmas = _float_tuple(sigma_scale, "sigma_scale", ndim)
        if self.mode == "gaussian" and any(not (s > 0 and math.isfinite(s)) for s in sigmas):
            raise ValueError(f"sigma_scale must be positive and finite, got {sigma_scale!r}")
        self.image_size, self.patch_size, self.overlap, self.sigma_scale = image, patch, overlaps, sigmas
        self.ndim = ndim
        self.padding = tuple(((p - s) // 2 if p > s else 0, (p - s) - (p - s) // 2 if p > s else 0)
                             for s, p in zip(image, patch))
        axis = []
        for s, p, o, (before, after) in zip(image, patch, overlaps, self.padding):
            axis.append(np.asarray(window_starts(s + before + after, p, o, self.positions), dtype=np.int64) - before)
        self.axis_origins = tuple(axis)
        imp, candidate = _importance(patch, self.mode, sigmas, self.positions)
        self.importance_map = np.ascontiguousarray(imp, dtype=np.float32)
        self.importance_map.setflags(write=False)
        self._factors = _separable_factors(self.importance_map, candidate)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return int(np.prod([len(a) for a in self.axis_origins]))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(image_size={self.image_size}, patch_size={self.patch_size}, overlap={self.overlap}, "
                f"mode={self.mode!r}, positions={self.positions!r}, windows={len(self)})")

    @property
    def origins(self) -> np.ndarray:
        grids = np.meshgrid(*self.axis_origins, indexing="ij")
        return np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)

    def slices(self, window: int) -> tuple[slice, ...]:
        """Image slices of window ``window`` (clipped to the image)."""
        o = self.origins[window % len(self)]
        return tuple(slice(max(int(a), 0), min(int(a) + p, s)) for a, p, s in zip(o, self.patch_size, self.image_size))

    def weight_map(self) -> np.ndarray:
        """The per-voxel sum of the importance maps of all windows (float32, ``image_size``).

        ``finalize`` never needs it (it recomputes the same sums row by row); this is for inspection.
        """
        total = np.zeros(self.image_size, dtype=np.float32)
        for w in range(len(self)):
            o = self.origins[w]
            dst = self.slices(w)
            src = tuple(slice(d.start - int(a), d.stop - int(a)) for d, a in zip(dst, o))
            total[dst] += self.importance_map[src]
        return total
