"""Kernel facade of sliding-window inference: gather, weighted scatter-add and finalize.

:class:`SlidingWindow` is a :class:`~medseg_fast._sliding_plan.WindowPlan` (origins, importance
map) plus the three kernels of ``_C`` / ``_C_cuda``: it validates arrays, keeps the plan's grid and
importance map resident on each device it is used on and describes arrays to the kernels. Numpy,
torch and cupy arrays are accepted; torch and cupy are only touched when such an array is passed.

- ``gather``: a batched strided copy of windows into a ``(n, C, *patch)`` array (zeros outside the
  image, which is how images smaller than the patch are padded: no padded copy of the input exists);
- ``scatter_add``: ``acc += patch * importance`` into a float32 accumulator, windows in order;
- ``finalize``: ``acc / W`` where ``W`` (the per-voxel sum of the importance maps) is recomputed
  from the window grid, so it is never stored; or the argmax straight to uint8/int16 labels.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np

from . import _backend as B
from ._sliding_plan import WindowPlan, _int_tuple

__all__ = ["SlidingWindow", "LABEL_DTYPES", "PROB_DTYPES"]

LABEL_DTYPES = ("uint8", "int16", "int32", "int64")
PROB_DTYPES = ("float32", "float16", "bfloat16", "float64")


class SlidingWindow(WindowPlan):
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
        super().__init__(image_size, patch_size, overlap=overlap, mode=mode, sigma_scale=sigma_scale,
                         positions=positions)
        self._device_data: dict[Any, tuple] = {}

    # ------------------------------------------------------------------ descriptors
    def _pad3(self, values: Sequence[int], fill: int) -> list[int]:
        return [fill] * (3 - self.ndim) + [int(v) for v in values]

    def _data_on(self, v: B.ArrayView) -> tuple[Any, Any]:
        """(grid, importance): the kernel module's ``SwGrid`` and ``SwImportance`` for v's device, with
        the origin lists and the importance map resident there (cached with the plan, which keeps the
        arrays they point to alive). On the CPU the importance carries the separable factors
        ``(scale, row, floor)`` when the map has them."""
        key = (v.device, v.device_index, v.kind if v.device == "cuda" else "cpu")
        cached = self._device_data.get(key)
        if cached is None:
            axes = [np.zeros(1, dtype=np.int64)] * (3 - self.ndim) + [np.ascontiguousarray(a) for a in self.axis_origins]
            imp = self.importance_map
            factors = {}
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
                if self._factors is not None:
                    scale, row, floor = self._factors
                    factors = {"scale": int(scale.__array_interface__["data"][0]),
                               "row": int(row.__array_interface__["data"][0]), "floor": floor}
            module = B.kernels(v)
            grid = module.SwGrid(image=self._pad3(self.image_size, 1), patch=self._pad3(self.patch_size, 1),
                                 count=[len(a) for a in axes], origins=ptrs)
            importance = module.SwImportance(map=imp_ptr, **factors)
            cached = (grid, importance, axes, imp)   # keep the arrays alive with the plan
            self._device_data[key] = cached
        return cached[0], cached[1]

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

    def _region_desc(self, v: B.ArrayView, batch: int, channels: int, off: Sequence[int], shape: Sequence[int],
                     ring: int = 0, rows: int = 0, in_order: tuple = (False, False)) -> Any:
        """The kernel module's ``SwRegion`` for an accumulator on v's device. ``ring``: the
        accumulator is a ring of that depth along the first axis (internal streaming); ``rows``: the
        region then spans only that many planes. ``in_order`` = (assign_first, divide_last): every
        window of each image is added exactly once and in order, so a voxel's first window may
        assign (the accumulator need not be zeroed) and its last window may divide by the weight sum
        (no finalize pass)."""
        shape = list(shape)
        wrap = [0] * self.ndim
        if ring:
            wrap[0] = ring
            if rows:
                shape[0] = rows
        return B.kernels(v).SwRegion(batch=int(batch), channels=int(channels), origin=self._pad3(off, 0),
                                     shape=self._pad3(shape, 1), wrap=self._pad3(wrap, 0),
                                     assign_first=bool(in_order[0]), divide_last=bool(in_order[1]))

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
        region = self._region_desc(av, batch, channels, off, av.shape[-self.ndim:], _ring, 0, _in_order)
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
              **extra)

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
        region = self._region_desc(av, batch, channels, off, spatial, _ring, _rows, (False, _normalized))
        if argmax:
            s = list(ov.strides)
            out_strides = ([0] if not lead else s[:1]) + [0] + [0] * (3 - self.ndim) + s[-self.ndim:]
        else:
            out_strides = self._strides5(ov, av.ndim - self.ndim)
        _call(av, "sw_finalize", grid, imp, B.describe(av, self._strides5(av, av.ndim - self.ndim)), region,
              self._weights_strides(wv, av), B.describe(ov, out_strides), bool(argmax))
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

