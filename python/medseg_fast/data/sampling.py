"""Training patches: random crops with foreground oversampling (nnU-Net: one patch in three is centred on
a voxel of a randomly chosen class present in the case; the others are uniform over the volume)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["PatchSampler", "pad_to"]


def pad_to(x: np.ndarray, shape: Sequence[int], value: float = 0.0) -> tuple[np.ndarray, list[int]]:
    """Pad the trailing ``len(shape)`` axes of ``x`` symmetrically up to at least ``shape``; returns the
    padded array and the pad before each spatial axis."""
    nd = len(shape)
    spatial = x.shape[-nd:]
    need = [max(s - n, 0) for s, n in zip(shape, spatial)]
    if not any(need):
        return x, [0] * nd
    before = [n // 2 for n in need]
    widths = [(0, 0)] * (x.ndim - nd) + [(b, n - b) for b, n in zip(before, need)]
    return np.pad(x, widths, mode="constant", constant_values=value), before


class PatchSampler:
    """Draws (image, label) patches from preprocessed cases.

    Parameters
    ----------
    cases : sequence of dict
        From :func:`medseg_fast.data.preprocess.load_preprocessed` (``data`` (C, *spatial), ``seg``, ``locations``).
    patch_size : sequence of int
        Spatial patch shape.
    oversample_foreground : float
        Probability that a patch is centred on a foreground voxel (1/3, as nnU-Net).
    seed : int
        Seed of this sampler's generator (give each DDP rank its own).

    Examples
    --------
    >>> import numpy as np
    >>> case = {"data": np.zeros((1, 8, 8, 8), np.float32), "seg": np.zeros((8, 8, 8), np.int8), "locations": {}}
    >>> x, y = PatchSampler([case], (4, 4, 4)).sample(2)
    >>> x.shape, y.shape
    ((2, 1, 4, 4, 4), (2, 4, 4, 4))
    """

    def __init__(self, cases: Sequence[dict[str, Any]], patch_size: Sequence[int], *,
                 oversample_foreground: float = 1.0 / 3.0, seed: int = 0) -> None:
        if not cases:
            raise ValueError("PatchSampler needs at least one case")
        self.patch = tuple(int(p) for p in patch_size)
        self.p_fg = float(oversample_foreground)
        self.rng = np.random.default_rng(seed)
        self.cases = []
        for c in cases:
            data, pad = pad_to(c["data"], self.patch)
            seg, _ = pad_to(c["seg"], self.patch)
            locs = {k: v + np.asarray(pad, dtype=v.dtype) for k, v in c["locations"].items() if len(v)}
            self.cases.append((data, seg, locs))

    def _start(self, shape: Sequence[int], center: Sequence[int] | None) -> list[int]:
        starts = []
        for ax, (n, p) in enumerate(zip(shape, self.patch)):
            hi = n - p
            if center is None:
                starts.append(int(self.rng.integers(0, hi + 1)))
            else:
                starts.append(int(np.clip(center[ax] - p // 2, 0, hi)))
        return starts

    def sample(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """A batch: images (B, C, *patch) float32 and labels (B, *patch) int64."""
        xs, ys = [], []
        for _ in range(batch_size):
            data, seg, locs = self.cases[int(self.rng.integers(len(self.cases)))]
            center = None
            if locs and self.rng.random() < self.p_fg:
                cls = sorted(locs)[int(self.rng.integers(len(locs)))]
                center = locs[cls][int(self.rng.integers(len(locs[cls])))]
            st = self._start(data.shape[1:], center)
            sl = tuple(slice(s, s + p) for s, p in zip(st, self.patch))
            xs.append(data[(slice(None), *sl)])
            ys.append(seg[sl])
        return np.stack(xs).astype(np.float32, copy=False), np.stack(ys).astype(np.int64)
