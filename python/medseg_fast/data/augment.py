"""Data augmentation on the training device (torch, batched): random flips, 90-degree rotations in a plane
of equal patch size, intensity scale and shift, Gaussian noise. Image and label get the same geometric
transform; intensity transforms touch the image only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["AugmentConfig", "augment_batch"]


@dataclass
class AugmentConfig:
    """Probabilities and ranges (per sample).

    ``flip_axes`` are spatial axis indices; ``rot90_axes`` a pair of spatial axes (their patch sizes must
    match; None disables); ``scale``/``shift`` multiply / add to the (normalized) intensities; ``noise_std``
    is the upper bound of the noise standard deviation.
    """

    flip_axes: Sequence[int] = (0, 1, 2)
    p_flip: float = 0.5
    rot90_axes: tuple[int, int] | None = (1, 2)
    p_rot90: float = 0.5
    p_scale: float = 0.3
    scale: tuple[float, float] = (0.75, 1.25)
    p_shift: float = 0.3
    shift: float = 0.1
    p_noise: float = 0.15
    noise_std: float = 0.1


def augment_batch(x: torch.Tensor, y: torch.Tensor, config: AugmentConfig | None = None, *,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch in place of a copy: ``x`` (B, C, *spatial) float, ``y`` (B, *spatial) integer.

    Random numbers come from ``generator`` (a CPU generator; seed it per rank for reproducibility), so the
    result is the same on any device.

    Examples
    --------
    >>> import torch
    >>> x, y = torch.zeros(2, 1, 4, 6, 6), torch.zeros(2, 4, 6, 6, dtype=torch.long)
    >>> xa, ya = augment_batch(x, y, generator=torch.Generator().manual_seed(0))
    >>> xa.shape == x.shape and ya.shape == y.shape
    True
    """
    cfg = config or AugmentConfig()
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    nd = x.ndim - 2

    def rand() -> float:
        return float(torch.rand((), generator=g))

    xs, ys = [], []
    for b in range(x.shape[0]):
        xb, yb = x[b], y[b]
        for ax in cfg.flip_axes:
            if ax < nd and rand() < cfg.p_flip:
                xb, yb = xb.flip(ax + 1), yb.flip(ax)
        if cfg.rot90_axes is not None and rand() < cfg.p_rot90:
            a0, a1 = cfg.rot90_axes
            if a1 < nd and xb.shape[a0 + 1] == xb.shape[a1 + 1]:
                k = 1 + int(torch.randint(0, 3, (), generator=g))
                xb, yb = torch.rot90(xb, k, (a0 + 1, a1 + 1)), torch.rot90(yb, k, (a0, a1))
        if rand() < cfg.p_scale:
            lo, hi = cfg.scale
            xb = xb * (lo + (hi - lo) * rand())
        if rand() < cfg.p_shift:
            xb = xb + (2 * rand() - 1) * cfg.shift
        if rand() < cfg.p_noise:
            std = cfg.noise_std * rand()
            noise = torch.randn(xb.shape, generator=g).to(xb.device, xb.dtype)
            xb = xb + noise * std
        xs.append(xb)
        ys.append(yb)
    return torch.stack(xs).contiguous(), torch.stack(ys).contiguous()
