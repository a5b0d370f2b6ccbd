"""TorchIO ``GridAggregator`` with the weighted scatter-add of :mod:`medseg_fast.sliding_window`."""

from __future__ import annotations

import numpy as np
import torch
import torchio as tio

from .. import _backend as B
from .. import _ext

__all__ = ["GridAggregator"]


class GridAggregator(tio.inference.GridAggregator):
    """``tio.inference.GridAggregator`` whose ``'average'`` and ``'hann'`` modes run the compiled scatter-add.

    Same constructor (``sampler``, ``overlap_mode='crop'``, ``downsampling_factor=1``),
    ``add_batch(batch_tensor, locations)`` and ``get_output_tensor()``. TorchIO adds every patch
    with two tensor operations per patch (``'hann'``: three, and a product tensor); here each
    batch is one call of the kernel that adds ``patch * weight`` into a float32 accumulator and
    the weight into one weight map (not one per channel), the windows being the sampler's grid
    (per-axis starts, raster order). ``get_output_tensor`` divides by the weights as TorchIO
    does (voxels no patch covered are 0 / 0 = NaN there too) and crops a padded volume.

    The weights are TorchIO's: ones (``'average'``) or TorchIO's own Hann window
    (``_get_hann_window``). Float32 batches agree with TorchIO within 1e-6 relative (the kernel
    may fuse the multiply-add). Batches of other float dtypes after a float32 first batch are
    added in float32. Locations off the sampler's grid are added with TorchIO's tensor
    arithmetic on the same accumulator.

    TorchIO's code runs for ``overlap_mode='crop'`` (which only copies), ``downsampling_factor``
    other than 1, and aggregators whose first batch is not float32 (TorchIO then keeps that
    dtype, e.g. float64 or integer outputs).
    """

    def __init__(self, sampler: tio.GridSampler, overlap_mode: str = "crop", downsampling_factor: int = 1):
        super().__init__(sampler, overlap_mode=overlap_mode, downsampling_factor=downsampling_factor)
        self._kernel: bool | None = None if overlap_mode in ("average", "hann") and downsampling_factor == 1 else False
        self._acc: torch.Tensor | None = None
        self._weights: torch.Tensor | None = None
        locations = np.asarray(sampler.locations, dtype=np.int64).reshape(-1, 6)
        self._starts = [np.unique(locations[:, d]) for d in range(3)]
        self._lookup = [{int(v): i for i, v in enumerate(s)} for s in self._starts]
        self._counts = [len(s) for s in self._starts]

    # ------------------------------------------------------------------ kernel state
    def _setup(self, channels: int) -> None:
        module = _ext.module_for("cpu")
        patch = [int(v) for v in self.patch_size]
        if self.overlap_mode == "hann":
            weight = self._get_hann_window(patch).to(torch.float32)
        else:
            weight = torch.ones(patch, dtype=torch.float32)
        self._weight_map = weight.contiguous().numpy()
        self._axes = [np.ascontiguousarray(a) for a in self._starts]
        spatial = [int(v) for v in self.spatial_shape]
        self._grid = module.SwGrid(image=spatial, patch=patch, count=self._counts,
                                   origins=[int(a.__array_interface__["data"][0]) for a in self._axes])
        self._importance = module.SwImportance(map=int(self._weight_map.__array_interface__["data"][0]))
        self._region = module.SwRegion(batch=1, channels=int(channels), origin=[0, 0, 0], shape=spatial)
        self._acc = torch.zeros(channels, *spatial, dtype=torch.float32)
        self._weights = torch.zeros(*spatial, dtype=torch.float32)
        self._module = module

    def _window_index(self, location: np.ndarray) -> int | None:
        if not np.array_equal(location[3:] - location[:3], self.patch_size):
            return None
        idx = [self._lookup[d].get(int(location[d])) for d in range(3)]
        if any(i is None for i in idx):
            return None
        return (idx[0] * self._counts[1] + idx[1]) * self._counts[2] + idx[2]

    def _scatter(self, patches: torch.Tensor, first: int) -> None:
        pv = B.view(patches, "patches")
        av = B.view(self._acc, "accumulator")
        wv = B.view(self._weights, "weights")
        self._module.sw_scatter_add(self._grid, self._importance, B.describe(pv, list(pv.strides)),
                                    B.describe(av, [0] + list(av.strides)), self._region,
                                    B.describe(wv, [0] + list(wv.strides)), int(first), int(patches.shape[0]))

    def _add_slow(self, patch: torch.Tensor, location: np.ndarray) -> None:
        i0, j0, k0, i1, j1, k1 = (int(v) for v in location)
        weight = torch.from_numpy(self._weight_map)
        self._acc[:, i0:i1, j0:j1, k0:k1] += patch * weight if self.overlap_mode == "hann" else patch
        self._weights[i0:i1, j0:j1, k0:k1] += weight

    # ------------------------------------------------------------------ public API
    def add_batch(self, batch_tensor: torch.Tensor, locations: torch.Tensor) -> None:
        if self._kernel is None:
            self._kernel = isinstance(batch_tensor, torch.Tensor) and batch_tensor.dtype == torch.float32 and \
                batch_tensor.ndim == 5 and not batch_tensor.requires_grad
        if not self._kernel:
            return super().add_batch(batch_tensor, locations)
        if not isinstance(batch_tensor, torch.Tensor) or batch_tensor.ndim != 5:
            raise TypeError(f"batch_tensor must be a 5-D tensor (B, C, W, H, D), got "
                            f"{type(batch_tensor).__name__} of shape {tuple(getattr(batch_tensor, 'shape', ()))}")
        loc = locations.cpu().numpy() if isinstance(locations, torch.Tensor) else np.asarray(locations)
        loc = loc.astype(np.int64, copy=False)
        if loc.ndim != 2 or loc.shape[1] != 6 or loc.shape[0] != batch_tensor.shape[0]:
            raise ValueError(f"locations must have shape (B, 6) with B = {batch_tensor.shape[0]} patches, "
                             f"got shape {tuple(loc.shape)}")
        targets = loc[:, 3:] - loc[:, :3]
        if len(np.unique(targets, axis=0)) > 1:
            raise ValueError(f"locations must all describe patches of one shape, got shapes {np.unique(targets, axis=0).tolist()}")
        if tuple(batch_tensor.shape[-3:]) != tuple(targets[0].tolist()):
            raise RuntimeError(f"The shape of the input batch, {tuple(batch_tensor.shape[-3:])}, does not match the "
                               f"shape of the target location, which is {tuple(targets[0].tolist())}")
        batch = batch_tensor.detach().cpu()
        if batch.dtype != torch.float32:
            batch = batch.float()
        batch = batch.contiguous()
        if self._acc is None:
            self._setup(batch.shape[1])
        elif batch.shape[1] != self._acc.shape[0]:
            raise ValueError(f"batch_tensor must have {self._acc.shape[0]} channels as the first batch, "
                             f"got {batch.shape[1]}")
        index = [self._window_index(location) for location in loc]
        start = 0
        while start < len(index):
            if index[start] is None:
                self._add_slow(batch[start], loc[start])
                start += 1
                continue
            stop = start + 1
            while stop < len(index) and index[stop] is not None and index[stop] == index[stop - 1] + 1:
                stop += 1
            self._scatter(batch[start:stop], index[start])
            start = stop

    def get_output_tensor(self) -> torch.Tensor:
        if not self._kernel:
            return super().get_output_tensor()
        if self._acc is None:
            raise RuntimeError("get_output_tensor() needs at least one add_batch() call first")
        output = torch.true_divide(self._acc, self._weights)
        if self.volume_padded:
            b0, b1, b2 = (int(v) for v in self.patch_overlap // 2)
            n0, n1, n2 = output.shape[1:]
            output = output[:, b0:n0 - b0, b1:n1 - b1, b2:n2 - b2].contiguous()
        return output
