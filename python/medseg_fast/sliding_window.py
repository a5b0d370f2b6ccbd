"""Sliding-window inference: a plan of windows, fused gather / weighted scatter-add / finalize kernels.

Whole-volume inference runs a network over overlapping patches and blends the overlapping
predictions with an importance map (Gaussian or constant). Here the blending is three kernels
(CPU: C++ threads; GPU: CUDA) driven by a :class:`SlidingWindow` plan computed once per shape:

- ``gather``: a batched strided copy of windows into a ``(n, C, *patch)`` array (zeros outside the
  image, which is how images smaller than the patch are padded: no padded copy of the input exists);
- ``scatter_add``: ``acc += patch * importance`` into a float32 accumulator, windows in order;
- ``finalize``: ``acc / W`` where ``W`` (the per-voxel sum of the importance maps) is recomputed
  from the window grid, so it is never stored; or the argmax straight to uint8/int16 labels.

On the CPU, :func:`sliding_window_inference` adds windows in order, so each voxel's first window
assigns (the accumulator is never zeroed) and its last window divides by the weight sum (no
separate normalisation pass); with ``argmax=True`` that last window also writes the label, into a
ring one patch deep. While each predictor call holds fewer windows than a row of windows, the
accumulator planes are stored in 64-column blocks (sequential streams per window instead of
half-rows; unblocked in place at the end), and large buffers are backed by transparent huge pages.

Window positions follow nnU-Net v2 (``"nnunet"``: evenly spread, the last window ending at the
border) or MONAI (``"monai"``: ``dense_patch_slices`` with ``_get_scan_interval``). With
``positions="monai"`` and matching options :func:`sliding_window_inference` equals
``monai.inferers.sliding_window_inference``.
"""

from __future__ import annotations

import functools
import itertools
import math
import sys
import warnings
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, Callable

import numpy as np

from . import _backend as B

__all__ = ["SlidingWindow", "sliding_window_inference"]

MODES = ("gaussian", "constant")
POSITIONS = ("nnunet", "monai")
LABEL_DTYPES = ("uint8", "int16", "int32", "int64")
PROB_DTYPES = ("float32", "float16", "bfloat16", "float64")
# CPU streaming argmax: each voxel's last window writes its label (False: a finalize pass per slab,
# the CUDA path; kept switchable for profiling and for the tests that compare both).
_FUSED_LABELS = True
# CPU accumulators of sliding_window_inference store each (y, x) plane in column blocks of this many
# floats while windows are added (see sw_scatter_add in csrc/cpu/sliding_window_cpu.h; 0 = row-major).
_BLOCK = 64


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


# ----------------------------------------------------------------------------- the plan
class SlidingWindow:
    """Windows, importance map and kernels of sliding-window inference over one image shape.

    Parameters
    ----------
    image_size : sequence of int
        Spatial shape of the images (1 to 3 axes).
    patch_size : sequence of int
        Window shape, same length. Axes where the image is smaller than the patch are padded with
        zeros, split as nnU-Net and MONAI do (``(patch - size) // 2`` before): those windows start
        at a negative origin and ``gather`` fills the outside with zeros.
    overlap : float or sequence of float
        Fraction of the patch shared by neighbouring windows, in [0, 1). nnU-Net's
        ``tile_step_size`` is ``1 - overlap``.
    mode : {"gaussian", "constant"}
        Blending weights.
    sigma_scale : float or sequence of float
        Gaussian sigma as a fraction of the patch size.
    positions : {"nnunet", "monai"}
        ``"nnunet"``: nnU-Net v2 ``compute_steps_for_sliding_window`` (windows evenly spread, the
        last one ending at the border) and ``compute_gaussian`` (impulse at ``patch // 2``,
        truncated at 4 sigma, maximum 1, zeros replaced by the smallest nonzero value).
        ``"monai"``: MONAI's ``_get_scan_interval`` / ``dense_patch_slices`` and
        ``compute_importance_map`` (centred, clamped below at 1e-3).

    Attributes
    ----------
    origins : numpy.ndarray
        ``(len(self), ndim)`` int64 window starts, raster order (first axis slowest).
    axis_origins : tuple of numpy.ndarray
        The per-axis starts whose Cartesian product is ``origins``.
    importance_map : numpy.ndarray
        float32 array of ``patch_size``.
    padding : tuple of (int, int)
        Zero padding (before, after) per axis.

    Notes
    -----
    Windows are numbered ``b * len(self) + w`` over a batch of images (``w`` in raster order), as
    MONAI does. The blended result at a voxel is ``sum(p_w * g) / sum(g)`` over the windows that
    cover it, added in window order; the weight sum is recomputed by ``finalize`` from the grid, so
    the accumulator needs no weight channel unless windows are skipped (pass ``weights=``).

    Examples
    --------
    >>> import numpy as np
    >>> plan = SlidingWindow((6, 7), (4, 4), overlap=0.5)
    >>> len(plan), plan.axis_origins[1].tolist()
    (6, [0, 2, 3])
    >>> x = np.arange(42, dtype=np.float32).reshape(1, 1, 6, 7)
    >>> acc = plan.new_accumulator(1, like=x)
    >>> plan.scatter_add(acc, plan.gather(x), 0)
    >>> bool(np.allclose(plan.finalize(acc), x))
    True
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
            size = s + before + after
            starts = _nnunet_steps(size, p, 1.0 - o) if self.positions == "nnunet" else _monai_starts(size, p, o)
            axis.append(np.asarray(starts, dtype=np.int64) - before)
        self.axis_origins = tuple(axis)
        candidate = None
        if self.mode == "constant":
            imp = np.ones(patch, dtype=np.float32)
            candidate = (np.ones(patch[:-1], np.float32), np.ones(patch[-1], np.float32), 0.0)
        elif self.positions == "nnunet":
            imp = _gaussian_nnunet(patch, sigmas)
        else:
            imp = _gaussian_monai(patch, sigmas)
            candidate = _gaussian_monai_factors(patch, sigmas)
        self.importance_map = np.ascontiguousarray(imp, dtype=np.float32)
        self.importance_map.setflags(write=False)
        self._factors = _separable_factors(self.importance_map, candidate)
        self._device_data: dict[Any, tuple] = {}

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return int(np.prod([len(a) for a in self.axis_origins]))

    def __repr__(self) -> str:
        return (f"SlidingWindow(image_size={self.image_size}, patch_size={self.patch_size}, overlap={self.overlap}, "
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

    # ------------------------------------------------------------------ descriptors
    def _pad3(self, values: Sequence[int], fill: int) -> list[int]:
        return [fill] * (3 - self.ndim) + [int(v) for v in values]

    def _data_on(self, v: B.ArrayView) -> tuple[list, Any]:
        """(grid descriptor, importance map pointer) with the arrays resident on v's device."""
        key = (v.device, v.device_index, v.kind if v.device == "cuda" else "cpu")
        cached = self._device_data.get(key)
        if cached is None:
            axes = [np.zeros(1, dtype=np.int64)] * (3 - self.ndim) + [np.ascontiguousarray(a) for a in self.axis_origins]
            imp = self.importance_map
            if v.device == "cuda":
                if v.kind == "torch":
                    torch = sys.modules["torch"]
                    axes = [torch.as_tensor(a, device=v.obj.device) for a in axes]
                    imp = torch.as_tensor(np.array(imp), device=v.obj.device)
                    ptrs = [int(a.data_ptr()) for a in axes]
                    imp_ptr = int(imp.data_ptr())
                else:
                    cupy = sys.modules["cupy"]
                    with cupy.cuda.Device(v.device_index):
                        axes = [cupy.asarray(a) for a in axes]
                        imp = cupy.asarray(imp)
                    ptrs = [int(a.data.ptr) for a in axes]
                    imp_ptr = int(imp.data.ptr)
            else:
                ptrs = [int(a.__array_interface__["data"][0]) for a in axes]
                imp_ptr = int(imp.__array_interface__["data"][0])
            grid = [self._pad3(self.image_size, 1), self._pad3(self.patch_size, 1),
                    [len(a) for a in axes], ptrs]
            cached = (grid, imp_ptr, axes, imp)   # keep the arrays alive with the plan
            self._device_data[key] = cached
        return cached[0], cached[1]

    def _importance_args(self, v: B.ArrayView) -> tuple:
        """Extra kernel arguments describing the importance map: on the CPU the separable factors
        ``(scale pointer, row pointer, floor)`` (null pointers when the map is not separable)."""
        if v.device == "cuda":
            return ()
        if self._factors is None:
            return ((0, 0, 0.0),)
        scale, row, floor = self._factors
        return ((int(scale.__array_interface__["data"][0]), int(row.__array_interface__["data"][0]), floor),)

    def _strides5(self, v: B.ArrayView, lead: int) -> list[int]:
        """Element strides of v as (batch, channel, z, y, x); `lead` = number of leading axes present."""
        s = list(v.strides)
        lead_strides = s[:lead]
        if lead == 1:
            lead_strides = [0] + lead_strides
        return lead_strides + [0] * (3 - self.ndim) + s[lead:]

    def _batched(self, v: B.ArrayView, name: str, spatial: tuple[int, ...]) -> tuple[int, int]:
        """(batch, channels) of a (B, C, *spatial) or (C, *spatial) array; ValueError otherwise."""
        if v.ndim not in (self.ndim + 1, self.ndim + 2) or tuple(v.shape[-self.ndim:]) != tuple(spatial):
            raise ValueError(f"{name} must have shape (B, C, *{tuple(spatial)}) or (C, *{tuple(spatial)}), "
                             f"got shape={v.shape}")
        if v.ndim == self.ndim + 1:
            return 1, v.shape[0]
        return v.shape[0], v.shape[1]

    def _window_range(self, start: Any, count: Any, total: int) -> tuple[int, int]:
        if isinstance(start, bool) or not isinstance(start, (Integral, np.integer)) or not 0 <= start <= total:
            raise ValueError(f"start must be an integer in [0, {total}], got {start!r}")
        if count is None:
            count = total - int(start)
        if isinstance(count, bool) or not isinstance(count, (Integral, np.integer)) or count < 0 \
                or start + count > total:
            raise ValueError(f"count must be an integer in [0, {total - int(start)}] (windows from start={start} "
                             f"of {total}), got {count!r}")
        return int(start), int(count)

    def _region(self, offset: Any, shape: tuple[int, ...], name: str) -> list[int]:
        if offset is None:
            if tuple(shape) != self.image_size:
                raise ValueError(f"{name} must cover the image {self.image_size} unless offset= says where its "
                                 f"region starts, got spatial shape {tuple(shape)}")
            return [0] * self.ndim
        if isinstance(offset, (Integral, np.integer)):
            offset = (offset,) * self.ndim
        try:
            off = [int(o) for o in offset]
        except (TypeError, ValueError):
            raise ValueError(f"offset must have {self.ndim} integers, got {offset!r}") from None
        if len(off) != self.ndim:
            raise ValueError(f"offset must have {self.ndim} integers, got {offset!r}")
        return off

    # ------------------------------------------------------------------ kernels
    def new_accumulator(self, channels: int, *, batch: int | None = None, like: Any = None,
                        shape: Sequence[int] | None = None) -> Any:
        """A zeroed float32 accumulator ``(batch, channels, *image_size)`` (``(channels, ...)`` when batch is None).

        The array kind and device follow ``like`` (numpy on the CPU when None). ``shape`` (with the
        region's ``offset`` then passed to ``scatter_add``/``finalize``) makes a slab instead.
        """
        spatial = tuple(self.image_size if shape is None else _int_tuple(shape, "shape", self.ndim))
        full = ((batch,) if batch is not None else ()) + (int(channels),) + spatial
        return _zeros(B.view(like, "like") if like is not None else None, full)

    def gather(self, x: Any, start: int = 0, count: int | None = None, *, out: Any = None,
               dtype: str | None = None) -> Any:
        """Windows ``start .. start + count`` of ``x`` as one ``(count, C, *patch_size)`` array.

        Parameters
        ----------
        x : array
            ``(B, C, *image_size)`` or ``(C, *image_size)``, any dtype, any strides.
        start, count : int
            Flattened window indices ``b * len(self) + w``; ``count`` defaults to the rest.
        out : array, optional
            Destination ``(count, C, *patch_size)`` on x's device (reused between batches).
        dtype : {None, "float32"}
            Output dtype: x's (default) or float32.

        Examples
        --------
        >>> import numpy as np
        >>> plan = SlidingWindow((3, 3), (4, 4), mode="constant")
        >>> plan.padding  # (before, after) zeros per axis
        ((0, 1), (0, 1))
        >>> plan.gather(np.ones((1, 3, 3), np.uint8))[0, 0]
        array([[1, 1, 1, 0],
               [1, 1, 1, 0],
               [1, 1, 1, 0],
               [0, 0, 0, 0]], dtype=uint8)
        """
        xv = B.view(x, "x")
        batch, channels = self._batched(xv, "x", self.image_size)
        start, count = self._window_range(start, count, batch * len(self))
        out_dtype = xv.dtype if dtype is None else B.dtype_name(dtype)
        if out_dtype not in (xv.dtype, "float32"):
            raise ValueError(f"dtype must be None (x's dtype {xv.dtype}) or 'float32', got {dtype!r}")
        shape = (count, channels) + self.patch_size
        if out is None:
            result = B.allocate(xv, shape, out_dtype)
        else:
            result = out
        ov = B.view(result, "out")
        if out is not None:
            B.check_same_device(xv, ov, "x", "out")
            if ov.shape != shape or ov.dtype != out_dtype:
                raise ValueError(f"out must have shape={shape} and dtype={out_dtype}, got {ov.describe()}")
        if count == 0 or channels == 0 or xv.size == 0:
            return result
        grid, _ = self._data_on(xv)
        _call(xv, "sw_gather", grid, B.describe(xv, self._strides5(xv, xv.ndim - self.ndim)), batch, channels,
              B.describe(ov, self._strides5(ov, 2)), start, count)
        return result

    def _region_desc(self, batch: int, channels: int, off: Sequence[int], shape: Sequence[int], ring: int = 0,
                     rows: int = 0, in_order: tuple = (False, False)) -> tuple:
        """Region tuple for the kernels. ``ring``: the accumulator is a ring of that depth along the
        first axis (internal streaming); ``rows``: the region then spans only that many planes.
        ``in_order`` = (assign_first, divide_last): every window of each image is added exactly
        once and in order, so a voxel's first window may assign (the accumulator need not be
        zeroed) and its last window may divide by the weight sum (no finalize pass)."""
        shape = list(shape)
        wrap = [0] * self.ndim
        if ring:
            wrap[0] = ring
            if rows:
                shape[0] = rows
        return (batch, channels, self._pad3(off, 0), self._pad3(shape, 1), self._pad3(wrap, 0),
                bool(in_order[0]), bool(in_order[1]))

    def _acc_view(self, accumulator: Any, offset: Any) -> tuple[B.ArrayView, int, int, list[int]]:
        av = B.view(accumulator, "accumulator")
        if av.dtype != "float32":
            raise ValueError(f"accumulator must be float32, got dtype={av.dtype}")
        if av.ndim not in (self.ndim + 1, self.ndim + 2):
            raise ValueError(f"accumulator must have shape (B, K, *spatial) or (K, *spatial) with {self.ndim} "
                             f"spatial axes, got shape={av.shape}")
        spatial = tuple(av.shape[-self.ndim:])
        off = self._region(offset, spatial, "accumulator")
        batch, channels = (1, av.shape[0]) if av.ndim == self.ndim + 1 else av.shape[:2]
        return av, batch, channels, off

    def _weights_view(self, weights: Any, av: B.ArrayView) -> B.ArrayView | None:
        if weights is None:
            return None
        wv = B.view(weights, "weights")
        B.check_same_device(av, wv, "accumulator", "weights")
        expected = av.shape[:-self.ndim - 1] + av.shape[-self.ndim:]
        if wv.shape != expected or wv.dtype != "float32":
            raise ValueError(f"weights must be float32 with shape={expected} (the accumulator without its channel "
                             f"axis), got {wv.describe()}")
        return wv

    def _weights_strides(self, wv: B.ArrayView | None, av: B.ArrayView) -> tuple:
        if wv is None:
            return B.describe(None, [0] * 4)
        s = list(wv.strides)
        lead = [0] if av.ndim == self.ndim + 1 else s[:1]
        return B.describe(wv, lead + [0] * (3 - self.ndim) + s[-self.ndim:])

    def scatter_add(self, accumulator: Any, patches: Any, start: int = 0, *, weights: Any = None,
                    offset: Sequence[int] | None = None, _ring: int = 0, _in_order: tuple = (False, False),
                    _labels: Any = None, _block: int = 0) -> None:
        """``accumulator += patches * importance_map`` at windows ``start .. start + len(patches)``.

        Parameters
        ----------
        accumulator : array
            float32 ``(B, K, *image_size)`` or ``(K, *image_size)``, updated in place; with
            ``offset`` it may cover only the region ``[offset, offset + spatial shape)``.
        patches : array
            ``(n, K, *patch_size)`` predictions (float32, float16, bfloat16 or float64) on the
            accumulator's device.
        start : int
            Flattened index of the first window (``b * len(self) + w``).
        weights : array, optional
            float32 weight map (the accumulator without its channel axis) that also receives the
            importance map; needed by ``finalize`` only when not every window is added exactly once.
        offset : sequence of int, optional
            Image coordinates of the accumulator's first voxel (streaming through slabs).

        Examples
        --------
        >>> import numpy as np
        >>> plan = SlidingWindow((4, 4), (2, 2), overlap=0.0, mode="constant")
        >>> acc = plan.new_accumulator(1)
        >>> plan.scatter_add(acc, np.ones((4, 1, 2, 2), np.float32), 0)
        >>> float(acc.sum())
        16.0
        """
        av, batch, channels, off = self._acc_view(accumulator, offset)
        pv = B.view(patches, "patches")
        if pv.device != av.device or pv.device_index != av.device_index:
            raise ValueError(f"patches must be on the accumulator's device: accumulator {av.describe()}, "
                             f"patches {pv.describe()}")
        expected_tail = (channels,) + self.patch_size
        if pv.ndim != self.ndim + 2 or tuple(pv.shape[1:]) != expected_tail:
            raise ValueError(f"patches must have shape (n, {channels}, *{self.patch_size}) to match the accumulator, "
                             f"got shape={pv.shape}")
        if pv.dtype not in PROB_DTYPES:
            raise ValueError(f"patches must be floating point ({', '.join(PROB_DTYPES)}), got dtype={pv.dtype}")
        n = pv.shape[0]
        start, n = self._window_range(start, n, batch * len(self))
        wv = self._weights_view(weights, av)
        if n == 0 or av.size == 0:
            return
        grid, imp = self._data_on(av)
        region = self._region_desc(batch, channels, off, av.shape[-self.ndim:], _ring, 0, _in_order)
        extra = {}
        if _labels is not None:
            # Internal (CPU, in-order streaming): (B, *image_size) labels written by each voxel's last window.
            lv = B.view(_labels, "labels")
            s = list(lv.strides)
            extra["labels"] = B.describe(lv, s[:1] + [0] + [0] * (3 - self.ndim) + s[1:])
        if _block:
            extra["block"] = int(_block)   # internal (CPU): blocked accumulator planes
        _call(av, "sw_scatter_add", grid, imp, B.describe(pv, self._strides5(pv, 2)),
              B.describe(av, self._strides5(av, av.ndim - self.ndim)), region, self._weights_strides(wv, av), start, n,
              *self._importance_args(av), **extra)

    def _unblock(self, accumulator: Any, block: int) -> None:
        """Blocked planes of a contiguous CPU accumulator (written with ``_block=block``) back to row-major."""
        av = B.view(accumulator, "accumulator")
        ny = self._pad3(self.image_size, 1)[1]
        nx = self.image_size[-1]
        planes = av.size // (ny * nx) if av.size else 0
        _call(av, "sw_unblock", B.describe(av, [1]), planes, ny, nx, int(block))

    def finalize(self, accumulator: Any, *, argmax: bool = False, out_dtype: Any = None, weights: Any = None,
                 offset: Sequence[int] | None = None, out: Any = None, _ring: int = 0, _rows: int = 0,
                 _normalized: bool = False) -> Any:
        """Blended probabilities ``accumulator / W``, or their argmax as integer labels.

        Parameters
        ----------
        accumulator : array
            float32 ``(B, K, *spatial)`` or ``(K, *spatial)`` after every window was added once.
        argmax : bool
            Return ``(B, *spatial)`` (or ``(*spatial)``) labels: the first channel with the largest
            probability, computed row by row so no probability volume is written.
        out_dtype : dtype, optional
            Probabilities: float32 (default; the accumulator is divided in place and returned),
            float16, bfloat16 or float64 (a new array). Labels: uint8 (default up to 256 channels),
            int16, int32 or int64.
        weights : array, optional
            The weight map filled by ``scatter_add(..., weights=)``; by default the exact sum over
            all windows is recomputed from the grid. Voxels of weight 0 give probability 0.
        offset : sequence of int, optional
            Image coordinates of the accumulator's first voxel (a slab).
        out : array, optional
            Destination of the result (shape and dtype as described above).

        Examples
        --------
        >>> import numpy as np
        >>> plan = SlidingWindow((5,), (3,), overlap=0.0, mode="constant")
        >>> plan.axis_origins[0].tolist()
        [0, 2]
        >>> acc = plan.new_accumulator(2)
        >>> one_hot = np.array([[[1, 1, 1], [0, 0, 0]], [[0, 0, 0], [1, 1, 1]]], np.float32)  # class 0, class 1
        >>> plan.scatter_add(acc, one_hot, 0)
        >>> plan.finalize(acc, argmax=True)  # voxel 2 is a tie: the first class wins
        array([0, 0, 0, 1, 1], dtype=uint8)
        """
        av, batch, channels, off = self._acc_view(accumulator, offset)
        wv = self._weights_view(weights, av)
        spatial = tuple(av.shape[-self.ndim:])
        if _rows:
            spatial = (_rows,) + spatial[1:]
        lead = av.shape[:-self.ndim - 1]
        if argmax:
            if channels < 1:
                raise ValueError("accumulator must have at least one channel for argmax")
            dtype = B.dtype_name(out_dtype) if out_dtype is not None else _label_dtype(channels)
            if dtype not in LABEL_DTYPES:
                raise ValueError(f"out_dtype must be one of {LABEL_DTYPES} with argmax=True, got {out_dtype!r}")
            if channels - 1 > np.iinfo(dtype).max:
                raise ValueError(f"out_dtype={dtype} cannot hold {channels} class indices")
            shape = lead + spatial
        else:
            dtype = "float32" if out_dtype is None else B.dtype_name(out_dtype)
            if dtype not in PROB_DTYPES:
                raise ValueError(f"out_dtype must be one of {PROB_DTYPES}, got {out_dtype!r}")
            shape = av.shape
        if out is not None:
            ov = B.view(out, "out")
            B.check_same_device(av, ov, "accumulator", "out")
            if ov.shape != shape or ov.dtype != dtype:
                raise ValueError(f"out must have shape={shape} and dtype={dtype}, got {ov.describe()}")
            result = out
        elif not argmax and dtype == "float32":
            result = accumulator
            ov = av
        else:
            result = B.allocate(av, shape, dtype)
            ov = B.view(result, "out")
        if av.size == 0:
            return result
        grid, imp = self._data_on(av)
        region = self._region_desc(batch, channels, off, spatial, _ring, _rows, (False, _normalized))
        if argmax:
            s = list(ov.strides)
            out_strides = ([0] if not lead else s[:1]) + [0] + [0] * (3 - self.ndim) + s[-self.ndim:]
        else:
            out_strides = self._strides5(ov, av.ndim - self.ndim)
        _call(av, "sw_finalize", grid, imp, B.describe(av, self._strides5(av, av.ndim - self.ndim)), region,
              self._weights_strides(wv, av), B.describe(ov, out_strides), bool(argmax), *self._importance_args(av))
        return result


def _label_dtype(channels: int) -> str:
    if channels <= 256:
        return "uint8"
    if channels <= 32768:
        return "int16"
    return "int32"


def _call(v: B.ArrayView, name: str, *args, **kwargs):
    module = B.kernels(v)
    fn = getattr(module, name)
    if v.device == "cuda":
        with B.device_guard(v):
            return fn(*args, B.stream_of(v), **kwargs)
    return fn(*args, **kwargs)


def _zeros(like: B.ArrayView | None, shape: tuple[int, ...], dtype: str = "float32") -> Any:
    """Zeros of `like`'s kind and device. CPU memory comes from calloc (numpy), so pages that are
    never written are never touched; torch results wrap that memory."""
    if like is None or like.kind == "numpy":
        return np.zeros(shape, dtype=dtype)
    if like.kind == "torch":
        torch = sys.modules["torch"]
        if like.device == "cpu" and dtype != "bfloat16":
            return torch.from_numpy(np.zeros(shape, dtype=dtype))
        return torch.zeros(shape, dtype=getattr(torch, dtype), device=like.obj.device)
    cupy = sys.modules["cupy"]
    with cupy.cuda.Device(like.device_index):
        return cupy.zeros(shape, dtype=dtype)


@functools.lru_cache(maxsize=8)
def _cached_plan(image, patch, overlap, mode, sigma_scale, positions) -> SlidingWindow:
    return SlidingWindow(image, patch, overlap=overlap, mode=mode, sigma_scale=sigma_scale, positions=positions)


# ----------------------------------------------------------------------------- inference
def sliding_window_inference(
    x: Any,
    predictor: Callable[[Any], Any],
    patch_size: Sequence[int] | int,
    *,
    overlap: float | Sequence[float] = 0.5,
    batch_size: int = 4,
    mode: str = "gaussian",
    sigma_scale: float | Sequence[float] = 0.125,
    positions: str = "nnunet",
    mirror_axes: Sequence[int] | None = None,
    device: Any = None,
    output_device: Any = None,
    argmax: bool = False,
    progress: bool = False,
) -> Any:
    """Run ``predictor`` over overlapping windows of ``x`` and blend the predictions.

    Parameters
    ----------
    x : array
        ``(B, C, *spatial)`` image batch with 1 to 3 spatial axes (numpy, torch or cupy).
    predictor : callable
        Maps ``(n, C, *patch_size)`` to ``(n, K, *patch_size)``: a tensor/array, or a tuple/list
        whose first element is used (deep supervision). It receives x's kind of array (torch
        tensors when ``device`` is given).
    patch_size : int or sequence of int
        Window size per spatial axis.
    overlap, mode, sigma_scale, positions
        As in :class:`SlidingWindow`.
    batch_size : int
        Windows per predictor call (windows of different images are never mixed).
    mirror_axes : sequence of int, optional
        Spatial axes (0-based) for mirroring test-time augmentation as in nnU-Net: every non-empty
        combination of these axes is flipped, all flips of a batch go through the predictor in one
        call, and the unflipped predictions are averaged.
    device : torch.device or str, optional
        Where the predictor runs (patches are moved there as torch tensors). Default: x's device.
    output_device : torch.device or str, optional
        Where the accumulator and the result live. Default: x's device. When it is a GPU and
        ``torch.cuda.OutOfMemoryError`` is raised, the run is repeated with the results on the CPU
        (with a ``ResourceWarning``) and the result is returned there.
    argmax : bool
        Return ``(B, *spatial)`` uint8 labels (int16 beyond 256 classes) instead of probabilities;
        the accumulator then only covers a slab one patch deep that streams through the volume.
    progress : bool
        Show a tqdm progress bar over predictor calls.

    Returns
    -------
    array
        float32 ``(B, K, *spatial)`` blended predictions, or labels with ``argmax=True``, of x's
        kind (torch when ``output_device`` moves a numpy input to a GPU).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).random((1, 1, 40, 36), dtype=np.float32)
    >>> y = sliding_window_inference(x, lambda p: np.concatenate([p, 1 - p], axis=1), (16, 16))
    >>> y.shape, bool(np.allclose(y[:, :1], x, atol=1e-6))
    ((1, 2, 40, 36), True)
    """
    xv = B.view(x, "x")
    if xv.ndim < 3 or xv.ndim > 5:
        raise ValueError(f"x must have shape (B, C, *spatial) with 1 to 3 spatial axes, got shape={xv.shape}")
    ndim = xv.ndim - 2
    spatial = tuple(xv.shape[2:])
    patch = _int_tuple(patch_size, "patch_size", ndim)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (Integral, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not callable(predictor):
        raise TypeError(f"predictor must be callable, got {type(predictor).__name__}")
    combos = _mirror_combinations(mirror_axes, ndim)
    if any(s == 0 for s in spatial) or xv.shape[0] == 0 or xv.shape[1] == 0:
        raise ValueError(f"x must not be empty, got shape={xv.shape}")
    overlap_t = _float_tuple(overlap, "overlap", ndim)
    sigma_t = _float_tuple(sigma_scale, "sigma_scale", ndim)
    plan = _cached_plan(spatial, patch, overlap_t, mode, sigma_t, positions)

    run = functools.partial(_run, plan, xv, predictor, batch_size=int(batch_size), combos=combos, device=device,
                            argmax=bool(argmax), progress=progress)
    out_dev = _results_device(xv, output_device)
    if out_dev is None or out_dev.type != "cuda":
        return run(results_device=out_dev)
    torch = sys.modules["torch"]
    try:
        return run(results_device=out_dev)
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        warnings.warn(f"out of GPU memory for the results on {out_dev}; sliding_window_inference repeats the run "
                      "with the results in CPU memory", ResourceWarning, stacklevel=2)
        return run(results_device=torch.device("cpu"))


def _mirror_combinations(mirror_axes: Any, ndim: int) -> list[tuple[int, ...]]:
    if mirror_axes is None:
        return []
    try:
        axes = tuple(mirror_axes)
    except TypeError:
        axes = (mirror_axes,)
    if any(isinstance(a, bool) or not isinstance(a, (Integral, np.integer)) for a in axes) \
            or any(not 0 <= a < ndim for a in axes) or len(set(axes)) != len(axes):
        raise ValueError(f"mirror_axes must be distinct spatial axes in [0, {ndim - 1}], got {mirror_axes!r}")
    return [c for r in range(1, len(axes) + 1) for c in itertools.combinations(axes, r)]


def _results_device(xv: B.ArrayView, output_device: Any):
    """None for 'where x lives' on the CPU; a torch.device otherwise."""
    if output_device is None:
        if xv.device == "cpu":
            return None
        torch = sys.modules.get("torch")
        return torch.device("cuda", xv.device_index) if torch is not None else None
    import torch

    dev = torch.device(output_device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def _to_torch(a: Any):
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(a, torch.Tensor):
        return a
    import torch

    if isinstance(a, np.ndarray):
        return torch.from_numpy(a)
    return torch.as_tensor(a)


def _first_output(result: Any) -> Any:
    if isinstance(result, (tuple, list)):
        if not result:
            raise ValueError("predictor returned an empty tuple/list")
        return result[0]
    return result


def _flip(a: Any, axes: tuple[int, ...]) -> Any:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(a, torch.Tensor):
        return torch.flip(a, [d + 2 for d in axes])
    mod = sys.modules.get("cupy") if type(a).__module__.startswith("cupy") else np
    return mod.flip(a, [d + 2 for d in axes])


def _concat(parts: list) -> Any:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(parts[0], torch.Tensor):
        return torch.cat(parts)
    mod = sys.modules.get("cupy") if type(parts[0]).__module__.startswith("cupy") else np
    return mod.concatenate(parts)


def _predict(predictor, patches, n: int, combos, patch: tuple[int, ...]):
    """Predictions (n, K, *patch) of a batch, averaged over the mirror combinations."""
    inputs = patches if not combos else _concat([patches] + [_flip(patches, c) for c in combos])
    pred = _first_output(predictor(inputs))
    pv = B.view(pred, "predictor output")
    total = n * (len(combos) + 1)
    if pv.ndim != len(patch) + 2 or pv.shape[0] != total or tuple(pv.shape[2:]) != patch:
        raise ValueError(f"predictor output must have shape ({total}, K, *{patch}) for input of shape "
                         f"{tuple(B.view(inputs).shape)}, got shape={pv.shape}")
    if pv.dtype not in PROB_DTYPES:
        pred = pred.astype(np.float32) if hasattr(pred, "astype") else pred.float()
    if not combos:
        return pred
    total_pred = pred[:n] * 1   # a new array of pred's dtype
    for j, c in enumerate(combos, start=1):
        total_pred += _flip(pred[j * n:(j + 1) * n], c)
    total_pred /= len(combos) + 1
    return total_pred


def _move(a: Any, target: B.ArrayView):
    """`a` on the device of `target` (a no-op when already there)."""
    av = B.view(a, "predictor output")
    if av.device == target.device and av.device_index == target.device_index:
        return a
    if target.device == "cpu":
        if av.kind == "torch":
            return a.detach().to("cpu")
        return a.get()
    return _to_torch(a).to(target.obj.device)


def _run(plan: SlidingWindow, xv: B.ArrayView, predictor, *, batch_size, combos, device, argmax, progress,
         results_device):
    batch, channels = xv.shape[:2]
    windows = len(plan)
    # Results: x's kind on x's device unless output_device moves them (then torch).
    if results_device is None or (xv.device == results_device.type and
                                  (xv.device == "cpu" or xv.device_index == results_device.index)):
        res_like = xv
    else:
        res_like = B.view(sys.modules["torch"].empty(0, device=results_device), "output")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=batch * math.ceil(windows / batch_size), desc="sliding window", unit="batch")
    stream = argmax and plan.ndim >= 2   # labels from a ring one patch deep instead of a full accumulator
    # On the CPU each voxel's last window writes its label right away (no finalize pass).
    fused_labels = stream and res_like.device == "cpu" and _FUSED_LABELS
    # Blocked accumulator planes on the CPU: probabilities are unblocked once at the end; fused labels
    # never read the ring back. Only while a call holds fewer windows than a row of windows along the
    # last axis: when a call's windows cover whole rows, row-major rows are already read sequentially
    # and the blocks would only multiply the streams (measured slower at batch 4 of a 3x3x3 grid).
    # Not for 1-D images, whose planes are single rows anyway.
    block = _BLOCK if (res_like.device == "cpu" and plan.ndim >= 2 and (fused_labels or not argmax)
                       and batch_size < len(plan.axis_origins[-1])) else 0
    depth = min(plan.patch_size[0], plan.image_size[0])
    first_axis = plan.origins[:, 0].tolist()
    rest = (0,) * (plan.ndim - 1)
    buffer = acc = labels = ring = None
    try:
        for b in range(batch):
            ring_origin = 0
            for w0 in range(0, windows, batch_size):
                n = min(batch_size, windows - w0)
                if buffer is None:
                    buffer = _empty(xv, (n, channels) + plan.patch_size, xv.dtype)
                    patches = plan.gather(xv, b * windows + w0, n, out=buffer)
                else:
                    patches = plan.gather(xv, b * windows + w0, n, out=buffer[:n])
                if device is not None:
                    patches = _to_torch(patches).to(device)
                pred = _predict(predictor, patches, n, combos, plan.patch_size)
                del patches
                pred = _move(pred, res_like)
                k = B.view(pred).shape[1]
                if not stream:
                    if acc is None:   # never zeroed: each voxel's first window assigns it
                        acc = _empty(res_like, (batch, k) + plan.image_size, "float32")
                    _check_channels(acc, k)
                    plan.scatter_add(acc, pred, b * windows + w0, _in_order=(True, not argmax), _block=block)
                else:
                    if ring is None:
                        ring = _empty(res_like, (1, k, depth) + plan.image_size[1:], "float32")
                        labels = _empty(res_like, (batch,) + plan.image_size, _label_dtype(k))
                    _check_channels(ring, k)
                    # Windows are in raster order (first axis slowest): once windows start at z,
                    # every plane below z is final.
                    i = 0
                    while i < n:
                        z = first_axis[w0 + i]
                        j = i
                        while j < n and first_axis[w0 + j] == z:
                            j += 1
                        if fused_labels:
                            ring_origin = max(ring_origin, z)
                            plan.scatter_add(ring, pred[i:j], w0 + i, offset=(ring_origin,) + rest, _ring=depth,
                                             _in_order=(True, True), _labels=labels[b:b + 1], _block=block)
                        else:
                            ring_origin = _advance(plan, ring, labels, b, ring_origin, max(z, 0), depth)
                            plan.scatter_add(ring, pred[i:j], w0 + i, offset=(ring_origin,) + rest, _ring=depth,
                                             _in_order=(True, True))
                        i = j
                del pred
                if bar is not None:
                    bar.update(1)
            if stream and not fused_labels:
                _advance(plan, ring, labels, b, ring_origin, plan.image_size[0], depth)
    finally:
        if bar is not None:
            bar.close()
    if stream:
        return labels
    if block:
        plan._unblock(acc, block)
    return plan.finalize(acc, argmax=True) if argmax else acc


def _check_channels(acc: Any, k: int) -> None:
    if B.view(acc).shape[1] != k:
        raise ValueError(f"predictor returned {k} channels after returning {B.view(acc).shape[1]} for earlier windows")


def _empty(like: B.ArrayView, shape: tuple[int, ...], dtype: str) -> Any:
    """An uninitialized array of like's kind and device. Large CPU buffers are backed by
    transparent huge pages where the kernel allows (B.allocate asks for them, numpy does so
    itself): far fewer page faults on their first write."""
    return B.allocate(like, shape, dtype)


def _advance(plan: SlidingWindow, ring: Any, labels: Any, b: int, ring_origin: int, new_origin: int,
             depth: int) -> int:
    """Labels of ring planes [ring_origin, new_origin) into labels[b] (the ring holds image plane z
    at index z % depth; planes are reused without zeroing since each voxel's first window assigns
    it). Returns the new ring origin."""
    if new_origin <= ring_origin:
        return ring_origin
    rows = new_origin - ring_origin
    rest = (0,) * (plan.ndim - 1)
    plan.finalize(ring, argmax=True, offset=(ring_origin,) + rest, out=labels[b:b + 1, ring_origin:new_origin],
                  _ring=depth, _rows=rows, _normalized=True)
    return new_origin
