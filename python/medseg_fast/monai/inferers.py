"""MONAI ``SlidingWindowInferer`` and patch mergers on medseg_fast's fused sliding-window kernels.

:class:`SlidingWindowInferer` takes MONAI's constructor arguments and defaults and returns
MONAI's result (window positions from ``_get_scan_interval`` / ``dense_patch_slices``, MONAI's
``compute_importance_map``, zero padding of images smaller than the ROI split as MONAI splits it),
but gathers windows, blends them and divides by the weight sum in compiled kernels
(:func:`medseg_fast.sliding_window_inference` with ``positions="monai"``): no padded copy of the
input, no count map, no per-window Python slicing. Options the kernels cannot reproduce go to
MONAI's own ``sliding_window_inference`` (see the class docstring).

:class:`AvgMerger` and :class:`GaussianMerger` are :class:`monai.inferers.Merger` subclasses for
:class:`monai.inferers.PatchInferer`: each ``aggregate`` is one fused weighted scatter-add
(``values += patch * weight`` and ``weights += weight`` in one pass), ``finalize`` one division.
:class:`GaussianMerger` blends with MONAI's Gaussian importance map and can return labels
(``argmax=True``).
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

from .._sliding_kernels import SlidingWindow
from .._sliding_plan import importance_map as _importance_map
from ..sliding_window import sliding_window_inference as _swi
from ._common import plain

__all__ = ["SlidingWindowInferer"]


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
