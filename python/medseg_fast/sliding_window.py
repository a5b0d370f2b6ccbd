"""Sliding-window inference: run a predictor over overlapping windows and blend the predictions.

Whole-volume inference runs a network over overlapping patches and blends the overlapping
predictions with an importance map (Gaussian or constant). The work is split in three layers,
each importing only the ones below it:

- :mod:`medseg_fast._sliding_plan`: the plan math (window origins, importance maps, weight sums;
  pure numpy, shared with :mod:`medseg_fast.reference.sliding_window`);
- :mod:`medseg_fast._sliding_kernels`: :class:`SlidingWindow`, the plan plus the fused gather /
  weighted scatter-add / finalize kernels (CPU: C++ threads; GPU: CUDA);
- this module: :func:`sliding_window_inference`, the runner (batches of windows, mirroring,
  compute and results devices, the out-of-memory fallback, progress).

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

import contextlib
import functools
import itertools
import math
import sys
import warnings
from collections.abc import Sequence
from numbers import Integral
from typing import Any, Callable

import numpy as np

from . import _backend as B
from ._sliding_kernels import PROB_DTYPES, SlidingWindow, _label_dtype
from ._sliding_plan import _float_tuple, _int_tuple

__all__ = ["SlidingWindow", "sliding_window_inference"]

# CPU streaming argmax: each voxel's last window writes its label (False: a finalize pass per slab,
# the CUDA path; kept switchable for profiling and for the tests that compare both).
_FUSED_LABELS = True
# CPU accumulators of sliding_window_inference store each (y, x) plane in column blocks of this many
# floats while windows are added (see sw_scatter_add in csrc/cpu/sliding_window_cpu.h; 0 = row-major).
_BLOCK = 64

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
    mirror_calls: str = "auto",
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
        combination of these axes is flipped, the flipped predictions are flipped back and averaged
        (see ``mirror_calls``).
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
    mirror_calls : {"auto", "joint", "separate"}
        With ``mirror_axes``: ``"joint"`` sends all flips of a batch through the predictor in one
        call, ``"separate"`` makes one call of the batch per flip (as nnU-Net does). ``"auto"``:
        joint when the predictor runs on a GPU, separate on the CPU, where a 3-D U-Net costs more per
        window in larger batches and all flips at once would need (flips + 1) times the activation
        memory. The averages are the same sums in the same order either way.

    Notes
    -----
    The predictor runs under ``torch.no_grad()`` (its outputs only feed the blending kernels, so no
    gradient could flow back through them) and while it runs no thread of this package is alive:
    the blending kernels' threads are joined before every predictor call. The result carries no
    autograd graph, so an ``x`` that requires grad while grad mode is on is refused with a
    ValueError rather than silently detached (MONAI keeps the graph; its loop is what
    `medseg_fast.monai.SlidingWindowInferer` runs for such inputs).

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
    if getattr(x, "requires_grad", False) and sys.modules["torch"].is_grad_enabled():
        raise ValueError(
            "x requires grad, but sliding_window_inference builds no autograd graph (the blending runs in "
            "compiled kernels): call it under torch.no_grad() or pass x.detach(), or use "
            "medseg_fast.monai.SlidingWindowInferer, which runs MONAI's differentiable loop for such inputs"
        )
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
    if mirror_calls not in ("auto", "joint", "separate"):
        raise ValueError(f"mirror_calls must be 'auto', 'joint' or 'separate', got {mirror_calls!r}")
    if any(s == 0 for s in spatial) or xv.shape[0] == 0 or xv.shape[1] == 0:
        raise ValueError(f"x must not be empty, got shape={xv.shape}")
    overlap_t = _float_tuple(overlap, "overlap", ndim)
    sigma_t = _float_tuple(sigma_scale, "sigma_scale", ndim)
    plan = _cached_plan(spatial, patch, overlap_t, mode, sigma_t, positions)

    run = functools.partial(_run, plan, xv, predictor, batch_size=int(batch_size), combos=combos, device=device,
                            mirror_calls=mirror_calls,
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


def _predict(predictor, patches, n: int, combos, patch: tuple[int, ...], joint: bool):
    """Predictions (n, K, *patch) of a batch, averaged over the mirror combinations.

    ``joint``: all flips in one predictor call (GPU); otherwise one call per flip, as nnU-Net does
    (CPU: a 3-D U-Net costs more per window in larger batches, and the activations of all flips at
    once would need (flips + 1) times the memory). The average is the same sum in the same order.
    """
    with _no_grad():
        if not combos or joint:
            inputs = patches if not combos else _concat([patches] + [_flip(patches, c) for c in combos])
            pred = _checked_output(predictor(inputs), inputs, n * (len(combos) + 1), patch)
            if not combos:
                return pred
            parts = [pred[j * n:(j + 1) * n] for j in range(len(combos) + 1)]
        else:
            pred = _checked_output(predictor(patches), patches, n, patch)
            parts = None
        total_pred = pred[:n] * 1   # a new array of pred's dtype (the predictor may return its input)
        for j, c in enumerate(combos, start=1):
            if parts is not None:
                part = parts[j]
            else:
                flipped = _contiguous(_flip(patches, c))
                part = _checked_output(predictor(flipped), flipped, n, patch)
            total_pred += _flip(part, c)
        total_pred /= len(combos) + 1
        return total_pred


def _checked_output(result: Any, inputs: Any, total: int, patch: tuple[int, ...]) -> Any:
    """The predictor's (first) output, checked to be (total, K, *patch), as float32 unless it is a float dtype."""
    pred = _first_output(result)
    pv = B.view(pred, "predictor output")
    if pv.ndim != len(patch) + 2 or pv.shape[0] != total or tuple(pv.shape[2:]) != patch:
        raise ValueError(f"predictor output must have shape ({total}, K, *{patch}) for input of shape "
                         f"{tuple(B.view(inputs).shape)}, got shape={pv.shape}")
    if pv.dtype not in PROB_DTYPES:
        pred = pred.astype(np.float32) if hasattr(pred, "astype") else pred.float()
    return pred


def _contiguous(a: Any) -> Any:
    """A flipped numpy/cupy view as a C-contiguous array (torch.flip already copies)."""
    if isinstance(a, np.ndarray):
        return np.ascontiguousarray(a)
    if type(a).__module__.startswith("cupy"):
        return sys.modules["cupy"].ascontiguousarray(a)
    return a


def _no_grad():
    """torch.no_grad() while the predictor runs (its outputs only feed our kernels, so autograd would
    record a graph nobody can use: measured +30% CPU time and twice the page faults for a 3-D U-Net
    called without it); nothing when torch was never imported."""
    torch = sys.modules.get("torch")
    return torch.no_grad() if torch is not None else contextlib.nullcontext()


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
         results_device, mirror_calls="auto"):
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
                joint = mirror_calls == "joint" or (mirror_calls == "auto" and B.view(patches).device != "cpu")
                pred = _predict(predictor, patches, n, combos, plan.patch_size, joint)
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
