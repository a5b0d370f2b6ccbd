"""MONAI ``SlidingWindowInferer`` and patch mergers on medseg_fast's fused sliding-window kernels.

:class:`SlidingWindowInferer` takes MONAI's constructor arguments and defaults and returns
MONAI's result (window positions from ``_get_scan_interval`` / ``dense_patch_slices``, MONAI's
``compute_importance_map``, zero padding of images smaller than the ROI split as MONAI splits it),
but gathers windows, blends them and divides by the weight sum in compiled kernels
(:func:`medseg_fast.sliding_window_inference` with ``positions="monai"``): no padded copy of the
input, no count map, no per-window Python slicing. Options the kernels cannot reproduce go to
MONAI's own ``sliding_window_inference`` (see the class docstring).

:class:`AvgMerger` and :class:`GaussianMerger` are :class:`monai.inferers.Merger` subclasses for
:class:`monai.inferers.PatchInferer`. :class:`GaussianMerger` blends patches with MONAI's
Gaussian importance map (``mode="gaussian"``) or averages them; both can return labels
(``argmax=True``) from an accumulator that only covers a slab one patch deep, streaming along the
first spatial axis, instead of the full probability volume. The mergers work with torch's in-place
operations on the merger's device (a patch may land anywhere, so the kernels' window grid does not
apply); without ``argmax``, :class:`AvgMerger` is MONAI's own implementation.

One module of ~560 lines: the inferer and the two mergers share the MONAI-compatibility checks
(what runs on our kernels and what goes to MONAI) and the Gaussian importance rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import Any

import monai.inferers as _mi
import numpy as np
import torch
from monai.data import MetaTensor
from monai.utils import BlendMode, PytorchPadMode, convert_to_dst_type, ensure_tuple_rep, fall_back_tuple

from .._sliding_kernels import _label_dtype
from .._sliding_plan import importance_map as _importance_map
from ..sliding_window import sliding_window_inference as _swi
from ._common import plain

__all__ = ["SlidingWindowInferer", "AvgMerger", "GaussianMerger"]


class _Delegate(Exception):
    """Raised by the predictor wrapper when the network's output is something the kernels do not
    blend as MONAI does (a dict or tuple, another dtype or spatial shape, an output that records
    gradients): the call is repeated by MONAI."""


# ----------------------------------------------------------------------------- validation helpers
def _is_int(v: Any) -> bool:
    return isinstance(v, (Integral, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_real(v: Any) -> bool:
    return isinstance(v, (Real, np.floating, np.integer)) and not isinstance(v, (bool, np.bool_))


def _reals(value: Any, name: str) -> tuple[float, ...]:
    items = (value,) if _is_real(value) else value
    try:
        items = tuple(items)
    except TypeError:
        raise TypeError(f"{name} must be a number or a sequence of numbers, got {type(value).__name__}") from None
    if not items or not all(_is_real(v) for v in items):
        raise TypeError(f"{name} must be a number or a sequence of numbers, got {value!r}")
    return tuple(float(v) for v in items)


def _check_roi(roi_size: Any) -> None:
    if roi_size is None or _is_int(roi_size):
        return
    if isinstance(roi_size, (str, bytes)) or not isinstance(roi_size, Sequence) or not roi_size:
        raise TypeError(f"roi_size must be an int or a sequence of int (non-positive or None: the image size), "
                        f"got {roi_size!r}")
    if not all(v is None or _is_int(v) for v in roi_size):
        raise TypeError(f"roi_size must be an int or a sequence of int (non-positive or None: the image size), "
                        f"got {roi_size!r}")


def _enum_value(value: Any, enum: type, name: str) -> str:
    try:
        return enum(value).value
    except ValueError:
        raise ValueError(f"{name} must be one of {[m.value for m in enum]}, got {value!r}") from None


# ----------------------------------------------------------------------------- the inferer
class SlidingWindowInferer(_mi.SlidingWindowInferer):
    """``monai.inferers.SlidingWindowInferer`` on fused gather / weighted scatter-add kernels.

    Same constructor arguments, defaults and result as MONAI's class (see
    :class:`monai.inferers.SlidingWindowInferer`): windows at MONAI's positions, MONAI's constant
    or Gaussian importance map, images smaller than ``roi_size`` padded with zeros and cropped
    back, ``sw_device`` where the network runs, ``device`` (or ``cpu_thresh``) where the result
    is stitched. A MetaTensor in gives a MetaTensor out with the input's meta data (as MONAI);
    the result is on ``device``, by default the input's device. The values equal MONAI's to
    float32 rounding (the same products, summed in the same window order; the weight sum is
    recomputed per voxel instead of being read from a count map).

    **Fast path** (our kernels): ``inputs`` a float32 torch tensor or MetaTensor with 1 to 3
    spatial axes, ``with_coord=False``, no ``buffer_steps`` (None or <= 0), no ``condition``
    keyword, ``padding_mode="constant"`` with ``cval=0`` wherever the image is smaller than the
    ROI (other modes only matter then), a cached ``roi_weight_map`` (if any) equal to MONAI's map,
    and a network that returns one float32 tensor ``(n, K, *roi_size)`` for each batch of
    windows. Extra ``*args`` / ``**kwargs`` are passed to the network as MONAI passes them.

    **MONAI's implementation** (``super().__call__``) runs every other case: other padding, cval,
    ``with_coord``, ``buffer_steps``, ``condition``, non-float32 inputs, numpy inputs, networks
    returning a dict, tuple or list, another dtype or another spatial size than the window
    (MONAI's zoomed outputs), and **autograd**: when grad mode is on and either ``inputs``
    requires grad or the network's output requires grad (a module with trainable parameters
    outside ``torch.no_grad()``), MONAI's loop runs so that gradients flow back through the
    blend. The network's output is only known after its first call; in that case the first batch
    of windows is computed once more by MONAI. Wrap inference in ``torch.no_grad()`` (or
    ``torch.inference_mode()``) to stay on the fast path with a trainable model.

    Windows of different images of a batch are never mixed in one network call (MONAI mixes
    them), which only matters for networks whose output for a window depends on the other
    windows of the call (batch norm in training mode).

    Examples
    --------
    >>> import torch
    >>> from medseg_fast.monai import SlidingWindowInferer
    >>> inferer = SlidingWindowInferer(roi_size=(16, 16), sw_batch_size=4, overlap=0.5, mode="gaussian")
    >>> x = torch.rand(1, 1, 40, 37)
    >>> y = inferer(x, lambda p: torch.cat([p, 1 - p], dim=1))
    >>> y.shape, bool(torch.allclose(y[:, :1], x, atol=1e-6))
    (torch.Size([1, 2, 40, 37]), True)
    """

    def __init__(
        self,
        roi_size: Sequence[int] | int,
        sw_batch_size: int = 1,
        overlap: Sequence[float] | float = 0.25,
        mode: BlendMode | str = BlendMode.CONSTANT,
        sigma_scale: Sequence[float] | float = 0.125,
        padding_mode: PytorchPadMode | str = PytorchPadMode.CONSTANT,
        cval: float = 0.0,
        sw_device: torch.device | str | None = None,
        device: torch.device | str | None = None,
        progress: bool = False,
        cache_roi_weight_map: bool = False,
        cpu_thresh: int | None = None,
        buffer_steps: int | None = None,
        buffer_dim: int = -1,
        with_coord: bool = False,
    ) -> None:
        _check_roi(roi_size)
        if not _is_int(sw_batch_size) or sw_batch_size < 1:
            raise ValueError(f"sw_batch_size must be a positive integer, got {sw_batch_size!r}")
        overlaps = _reals(overlap, "overlap")
        if any(not 0.0 <= o < 1.0 for o in overlaps):
            raise ValueError(f"overlap must lie in [0, 1), got {overlap!r}")
        mode_value = _enum_value(mode, BlendMode, "mode")
        sigmas = _reals(sigma_scale, "sigma_scale")
        if mode_value == "gaussian" and any(not (s > 0 and math.isfinite(s)) for s in sigmas):
            raise ValueError(f"sigma_scale must be positive and finite with mode='gaussian', got {sigma_scale!r}")
        _enum_value(padding_mode, PytorchPadMode, "padding_mode")
        if not _is_real(cval):
            raise TypeError(f"cval must be a number, got {type(cval).__name__}")
        if cpu_thresh is not None and not _is_int(cpu_thresh):
            raise TypeError(f"cpu_thresh must be None or an int, got {cpu_thresh!r}")
        if buffer_steps is not None and not _is_int(buffer_steps):
            raise TypeError(f"buffer_steps must be None or an int, got {buffer_steps!r}")
        if not _is_int(buffer_dim):
            raise TypeError(f"buffer_dim must be an int, got {buffer_dim!r}")
        super().__init__(roi_size, sw_batch_size, overlap, mode, sigma_scale, padding_mode, cval, sw_device, device,
                         progress, cache_roi_weight_map, cpu_thresh, buffer_steps, buffer_dim, with_coord)

    def __call__(
        self,
        inputs: torch.Tensor,
        network: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Blended predictions of ``network`` over ``inputs`` (``(B, C, *spatial)``), as MONAI.

        ``device``, ``buffer_steps`` and ``buffer_dim`` keywords override the constructor's for
        this call (as in MONAI); other keywords and ``*args`` go to the network.
        """
        if not callable(network):
            raise TypeError(f"network must be callable, got {type(network).__name__}")
        setup = self._fast_setup(inputs, kwargs)
        if setup is not None:
            try:
                return self._fast(inputs, network, args, setup)
            except _Delegate:
                pass
        return super().__call__(inputs, network, *args, **kwargs)

    # ------------------------------------------------------------------ fast path
    def _fast_setup(self, inputs: Any, kwargs: dict) -> dict | None:
        """The fast path's options for this call, or None where MONAI's code must run."""
        if not isinstance(inputs, torch.Tensor) or inputs.dtype != torch.float32 or not 3 <= inputs.ndim <= 5:
            return None
        if self.with_coord or "condition" in kwargs:
            return None
        buffer_steps = kwargs.get("buffer_steps", self.buffer_steps)
        if buffer_steps is not None and buffer_steps > 0:
            return None
        if inputs.requires_grad and torch.is_grad_enabled():
            return None
        if any(s == 0 for s in inputs.shape):
            return None
        ndim = inputs.ndim - 2
        if isinstance(self.roi_size, Sequence) and len(self.roi_size) != ndim:
            return None   # MONAI raises its error
        spatial = tuple(int(s) for s in inputs.shape[2:])
        roi = tuple(int(r) for r in fall_back_tuple(self.roi_size, spatial))
        try:
            overlap = tuple(float(o) for o in ensure_tuple_rep(self.overlap, ndim))
            sigma = tuple(float(s) for s in ensure_tuple_rep(self.sigma_scale, ndim))
        except ValueError:
            return None   # wrong number of values: MONAI's error
        if any(r > s for r, s in zip(roi, spatial)):
            if PytorchPadMode(self.padding_mode) != PytorchPadMode.CONSTANT or float(self.cval) != 0.0:
                return None
        mode = BlendMode(self.mode).value
        if self.roi_weight_map is not None:
            ours = torch.from_numpy(_importance_map(roi, mode, sigma, "monai"))
            cached = torch.as_tensor(self.roi_weight_map).detach().to("cpu", torch.float32)
            if cached.numel() != ours.numel() or not torch.allclose(cached.reshape(roi), ours, rtol=1e-6, atol=0):
                return None
        device = kwargs.get("device", self.device)
        if device is None and self.cpu_thresh is not None and math.prod(spatial) > self.cpu_thresh:
            device = "cpu"
        out_device = torch.device(device) if device is not None else inputs.device
        sw_device = torch.device(self.sw_device) if self.sw_device is not None else None
        net_kwargs = {k: v for k, v in kwargs.items() if k not in ("device", "buffer_steps", "buffer_dim")}
        return {"roi": roi, "overlap": overlap, "sigma": sigma, "mode": mode, "device": device,
                "out_device": out_device, "sw_device": sw_device, "kwargs": net_kwargs}

    def _fast(self, inputs: torch.Tensor, network: Callable, args: tuple, setup: dict) -> Any:
        roi = setup["roi"]
        net_kwargs = setup["kwargs"]
        probe = [torch.is_grad_enabled()]   # the first call checks whether MONAI would record gradients

        def predictor(patches: torch.Tensor) -> torch.Tensor:
            if probe[0]:
                probe[0] = False
                with torch.enable_grad():
                    out = network(patches, *args, **net_kwargs)
                if isinstance(out, torch.Tensor) and out.requires_grad:
                    raise _Delegate
            else:
                out = network(patches, *args, **net_kwargs)
            if not isinstance(out, torch.Tensor) or out.dtype != torch.float32 or out.ndim != patches.ndim \
                    or out.shape[0] != patches.shape[0] or tuple(out.shape[2:]) != roi:
                raise _Delegate
            return plain(out)

        x = plain(inputs)
        # Results where MONAI stitches them: on `device`, else the input's device.
        out_device = setup["out_device"]
        result = _swi(x, predictor, roi, overlap=setup["overlap"], batch_size=int(self.sw_batch_size),
                      mode=setup["mode"], sigma_scale=setup["sigma"], positions="monai", device=setup["sw_device"],
                      output_device=out_device if out_device != x.device else None, progress=bool(self.progress))
        result = torch.as_tensor(result)
        if isinstance(inputs, MetaTensor):
            meta = MetaTensor([]).copy_meta_from(inputs, copy_attr=False)
            return convert_to_dst_type(result, meta, device=out_device)[0]
        return convert_to_dst_type(result, inputs, device=out_device)[0]


# ----------------------------------------------------------------------------- mergers
def _dtype_arg(value: Any, name: str) -> torch.dtype:
    if not isinstance(value, torch.dtype):
        raise TypeError(f"{name} must be a torch.dtype, got {value!r}")
    return value


class _Blend:
    """Weighted blending of patches at arbitrary locations into ``merged_shape``, cropped to
    ``cropped_shape`` on finalize: a full accumulator, or with ``argmax`` a slab along the first
    spatial axis whose finished planes are turned into labels as soon as a patch starts beyond them
    (patches must then come in nondecreasing order along that axis, as MONAI's splitters yield them)."""

    def __init__(self, owner: str, merged_shape: tuple, cropped_shape: tuple, device: Any, value_dtype: torch.dtype,
                 mode: str, sigma_scale: Any, argmax: bool) -> None:
        if len(merged_shape) < 3 or not all(_is_int(v) and v > 0 for v in merged_shape):
            raise ValueError(f"merged_shape must be (B, C, *spatial) with positive sizes and 1 or more spatial "
                             f"axes, got {merged_shape!r}")
        if len(cropped_shape) != len(merged_shape) or not all(_is_int(c) and 0 < c <= m
                                                             for c, m in zip(cropped_shape, merged_shape)):
            raise ValueError(f"cropped_shape must have {len(merged_shape)} positive sizes no larger than "
                             f"merged_shape={merged_shape}, got {cropped_shape!r}")
        if not value_dtype.is_floating_point:
            raise ValueError(f"value_dtype must be a floating point dtype, got {value_dtype}")
        self.owner = owner
        self.merged_shape, self.cropped_shape = tuple(int(v) for v in merged_shape), tuple(int(v) for v in cropped_shape)
        self.device = torch.device(device)
        self.value_dtype, self.mode, self.sigma_scale, self.argmax = value_dtype, mode, sigma_scale, bool(argmax)
        self.ndim = len(merged_shape) - 2
        self._maps: dict[tuple, torch.Tensor] = {}
        spatial = self.merged_shape[2:]
        if not self.argmax:
            self.values = torch.zeros(self.merged_shape, dtype=value_dtype, device=self.device)
            self.weights = torch.zeros((1, 1) + spatial, dtype=value_dtype, device=self.device)
            self.lo, self.depth = 0, spatial[0]
        else:
            self.values = self.weights = None   # allocated with the first patch (its depth)
            self.lo = self.depth = 0
            b, c = self.merged_shape[:2]
            self.labels = torch.zeros((b, 1) + self.cropped_shape[2:],
                                      dtype=getattr(torch, _label_dtype(c)), device=self.device)
        self.finalized = False
        self.result: torch.Tensor | None = None

    def _weight(self, patch: tuple[int, ...]) -> torch.Tensor | None:
        if self.mode == "constant":
            return None
        w = self._maps.get(patch)
        if w is None:
            sigma = ensure_tuple_rep(self.sigma_scale, self.ndim)
            w = torch.from_numpy(_importance_map(patch, "gaussian", sigma, "monai")).to(self.device, self.value_dtype)
            self._maps[patch] = w
        return w

    def _location(self, values: Any, location: Any) -> tuple[torch.Tensor, tuple[int, ...]]:
        if self.finalized:
            raise ValueError(f"`{self.owner}` is already finalized. Please instantiate a new object to aggregate.")
        if not isinstance(values, torch.Tensor):
            raise TypeError(f"values must be a torch.Tensor, got {type(values).__name__}")
        if values.ndim != self.ndim + 2 or not values.is_floating_point():
            raise ValueError(f"values must be a floating point (B, C, *patch) tensor with {self.ndim} spatial axes, "
                             f"got shape={tuple(values.shape)}, dtype={values.dtype}")
        try:
            loc = tuple(location)
        except TypeError:
            raise TypeError(f"location must be a sequence of {self.ndim} ints, got {location!r}") from None
        if len(loc) != self.ndim or not all(_is_int(v) for v in loc):
            raise ValueError(f"location must have {self.ndim} ints (the patch's first voxel), got {location!r}")
        if any(v < 0 or v + p > m for v, p, m in zip(loc, values.shape[2:], self.merged_shape[2:])):
            raise ValueError(f"location={tuple(loc)} puts a patch of spatial shape {tuple(values.shape[2:])} outside "
                             f"merged_shape={self.merged_shape}")
        return values.to(self.device), tuple(int(v) for v in loc)

    def aggregate(self, values: Any, location: Any) -> None:
        values, loc = self._location(values, location)
        patch = tuple(values.shape[2:])
        if self.argmax:
            z0, pz = loc[0], patch[0]
            if z0 < self.lo:
                raise ValueError(f"argmax=True needs patches in nondecreasing order along the first spatial axis: "
                                 f"location {loc} after planes below {self.lo} were finalized")
            if self.values is None or z0 + pz > self.lo + self.depth:
                self._advance(z0, pz, values.shape[1])
        w = self._weight(patch)
        sl = (slice(None), slice(None), slice(loc[0] - self.lo, loc[0] - self.lo + patch[0])) + \
            tuple(slice(a, a + p) for a, p in zip(loc[1:], patch[1:]))
        dst = self.values[sl]
        if w is None:
            dst += values
            self.weights[sl] += 1
        else:
            dst.addcmul_(values.to(self.value_dtype), w)
            self.weights[sl] += w

    def _advance(self, new_lo: int, pz: int, channels: int) -> None:
        """Labels of the finished planes [lo, new_lo); the slab then starts at new_lo (argmax)."""
        if self.values is not None:
            self._labels_of(min(new_lo - self.lo, self.depth))
        depth = max(self.depth, pz)
        rest = self.merged_shape[3:]
        keep = max(self.lo + self.depth - new_lo, 0) if self.values is not None else 0
        values = torch.zeros((self.merged_shape[0], self.merged_shape[1], depth) + rest, dtype=self.value_dtype,
                             device=self.device)
        weights = torch.zeros((1, 1, depth) + rest, dtype=self.value_dtype, device=self.device)
        if keep:
            values[:, :, :keep] = self.values[:, :, self.depth - keep:]
            weights[:, :, :keep] = self.weights[:, :, self.depth - keep:]
        self.values, self.weights, self.lo, self.depth = values, weights, new_lo, depth

    def _labels_of(self, planes: int) -> None:
        """Labels of slab planes [0, planes) (those inside the cropped extent)."""
        planes = min(planes, self.cropped_shape[2] - self.lo)
        if planes <= 0:
            return
        crop = tuple(slice(0, c) for c in self.cropped_shape[3:])
        v = self.values[(slice(None), slice(None), slice(0, planes)) + crop]
        w = self.weights[(slice(None), slice(None), slice(0, planes)) + crop]
        self.labels[:, 0, self.lo:self.lo + planes] = torch.argmax(v / w, dim=1)

    def finalize(self) -> torch.Tensor:
        if not self.finalized:
            if self.argmax:
                if self.values is not None:
                    self._labels_of(self.depth)
                self.values = self.weights = None
                self.result = self.labels
            else:
                self.values.div_(self.weights)
                self.values = self.values[tuple(slice(0, c) for c in self.cropped_shape)]
                self.result = self.values
            self.finalized = True
        return self.result


class GaussianMerger(_mi.Merger):
    """A :class:`monai.inferers.Merger` that blends patches with MONAI's Gaussian importance map.

    Each patch's values are weighted by ``compute_importance_map(patch, "gaussian", sigma_scale)``
    (the map :class:`monai.inferers.SlidingWindowInferer` uses with ``mode="gaussian"``) and the
    result is the weighted average. Use it with :class:`monai.inferers.PatchInferer`::

        PatchInferer(SlidingWindowSplitter(96, overlap=0.5), merger_cls=GaussianMerger, argmax=True)

    Parameters
    ----------
    merged_shape : sequence of int
        ``(B, C, *spatial)`` of the merged (padded) result.
    cropped_shape : sequence of int, optional
        Shape of the returned result (a crop from the origin); default ``merged_shape``.
    device : torch.device or str
        Where the accumulators and the result live (patches are moved there).
    value_dtype : torch.dtype
        Accumulator and result dtype (floating point).
    mode : {"gaussian", "constant"}
        ``"constant"``: a plain average (:class:`AvgMerger`'s result).
    sigma_scale : float or sequence of float
        Gaussian sigma as a fraction of the patch size, per spatial axis.
    argmax : bool
        Return ``(B, 1, *cropped spatial)`` labels (uint8 up to 256 channels, else int16/int32):
        ``argmax`` over channels of the blended result (the first channel on ties; 0 where no patch
        landed), from an accumulator one patch deep along the first spatial axis that is turned into
        labels as the patches move on. Patches must then arrive in nondecreasing order along that
        axis (as MONAI's splitters yield them); ``get_values`` is the slab before ``finalize``.

    Notes
    -----
    Voxels that no patch covers are NaN (0 / 0) in the probabilities, as with MONAI's AvgMerger.
    A location must keep the patch inside ``merged_shape`` (ValueError otherwise).

    Examples
    --------
    >>> import torch
    >>> merger = GaussianMerger((1, 1, 6, 6))
    >>> for loc in [(0, 0), (0, 2), (2, 0), (2, 2)]:
    ...     merger.aggregate(torch.full((1, 1, 4, 4), float(sum(loc))), loc)
    >>> out = merger.finalize()
    >>> out.shape, float(out[0, 0, 0, 0]), float(out[0, 0, 5, 5])
    (torch.Size([1, 1, 6, 6]), 0.0, 4.0)
    """

    def __init__(
        self,
        merged_shape: Sequence[int],
        cropped_shape: Sequence[int] | None = None,
        device: torch.device | str = "cpu",
        value_dtype: torch.dtype = torch.float32,
        mode: BlendMode | str = BlendMode.GAUSSIAN,
        sigma_scale: Sequence[float] | float = 0.125,
        argmax: bool = False,
    ) -> None:
        if merged_shape is None:
            raise ValueError("merged_shape must be provided, got None")
        super().__init__(merged_shape=merged_shape, cropped_shape=cropped_shape, device=device)
        mode_value = _enum_value(mode, BlendMode, "mode")
        sigmas = _reals(sigma_scale, "sigma_scale")
        if mode_value == "gaussian" and any(not (s > 0 and math.isfinite(s)) for s in sigmas):
            raise ValueError(f"sigma_scale must be positive and finite with mode='gaussian', got {sigma_scale!r}")
        if len(sigmas) not in (1, len(self.merged_shape) - 2):
            raise ValueError(f"sigma_scale must have 1 or {len(self.merged_shape) - 2} values, got {sigma_scale!r}")
        self.value_dtype = _dtype_arg(value_dtype, "value_dtype")
        self.mode, self.sigma_scale, self.argmax = mode_value, sigma_scale, bool(argmax)
        self._blend = _Blend(type(self).__name__, self.merged_shape, self.cropped_shape, device, self.value_dtype,
                             mode_value, sigma_scale, self.argmax)

    def aggregate(self, values: torch.Tensor, location: Sequence[int]) -> None:
        """Add ``values`` (``(B, C, *patch)``) with its weights at ``location`` (the patch's first voxel)."""
        self._blend.aggregate(values, location)

    def finalize(self) -> torch.Tensor:
        """The blended result (or labels), cropped to ``cropped_shape``; later calls return the same tensor."""
        out = self._blend.finalize()
        self.is_finalized = True
        return out

    def get_output(self) -> torch.Tensor:
        """Same as :meth:`finalize`."""
        return self.finalize()

    def get_values(self) -> torch.Tensor | None:
        """The weighted sums before :meth:`finalize`, the result after it."""
        return self._blend.result if self._blend.finalized else self._blend.values

    def get_counts(self) -> torch.Tensor | None:
        """The per-voxel weight sums ``(1, 1, *spatial)`` (the slab with ``argmax=True``; None once finalized)."""
        return None if self._blend.finalized else self._blend.weights


class AvgMerger(_mi.AvgMerger):
    """``monai.inferers.AvgMerger``, with an optional streaming ``argmax``.

    Without ``argmax`` (the default) this is MONAI's class and MONAI's result. With
    ``argmax=True`` the result is ``argmax(MONAI's average, dim=1, keepdim=True)`` as uint8 labels
    (int16/int32 beyond 256 channels), computed from an accumulator one patch deep along the first
    spatial axis (see :class:`GaussianMerger`, whose ``mode="constant"`` this then is): patches must
    arrive in nondecreasing order along that axis, as MONAI's splitters yield them.

    Examples
    --------
    >>> import torch
    >>> merger = AvgMerger((1, 2, 4, 4), argmax=True)
    >>> merger.aggregate(torch.tensor([0.2, 0.8]).reshape(1, 2, 1, 1).expand(1, 2, 4, 2), (0, 0))
    >>> merger.aggregate(torch.tensor([0.9, 0.1]).reshape(1, 2, 1, 1).expand(1, 2, 4, 2), (0, 2))
    >>> merger.finalize()[0, 0].tolist()
    [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]]
    """

    def __init__(
        self,
        merged_shape: Sequence[int],
        cropped_shape: Sequence[int] | None = None,
        value_dtype: torch.dtype = torch.float32,
        count_dtype: torch.dtype = torch.uint8,
        device: torch.device | str = "cpu",
        argmax: bool = False,
    ) -> None:
        self.argmax = bool(argmax)
        if not self.argmax:
            super().__init__(merged_shape, cropped_shape, value_dtype, count_dtype, device)
            self._blend = None
            return
        if merged_shape is None:
            raise ValueError("merged_shape must be provided, got None")
        _mi.Merger.__init__(self, merged_shape=merged_shape, cropped_shape=cropped_shape, device=device)
        self.value_dtype = _dtype_arg(value_dtype, "value_dtype")
        self.count_dtype = _dtype_arg(count_dtype, "count_dtype")
        self._blend = _Blend(type(self).__name__, self.merged_shape, self.cropped_shape, device, self.value_dtype,
                             "constant", 0.125, True)

    def aggregate(self, values: torch.Tensor, location: Sequence[int]) -> None:
        """Add ``values`` (``(B, C, *patch)``) at ``location``, as MONAI's AvgMerger."""
        if self._blend is None:
            super().aggregate(values, location)
        else:
            self._blend.aggregate(values, location)

    def finalize(self) -> torch.Tensor:
        """MONAI's average, or its labels with ``argmax=True``."""
        if self._blend is None:
            return super().finalize()
        out = self._blend.finalize()
        self.is_finalized = True
        return out

    def get_values(self) -> torch.Tensor | None:
        if self._blend is None:
            return super().get_values()
        return self._blend.result if self._blend.finalized else self._blend.values

    def get_counts(self) -> torch.Tensor | None:
        if self._blend is None:
            return super().get_counts()
        return None if self._blend.finalized else self._blend.weights
