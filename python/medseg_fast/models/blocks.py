"""Building blocks of the U-Net family: conv-norm-activation, plain and residual stages, up-sampling.

Every block takes ``spatial_dims`` (2 or 3) so that one code path serves 2-D and 3-D networks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "conv_nd",
    "make_norm",
    "make_act",
    "ConvNormAct",
    "ConvBlock",
    "ResidualBlock",
    "Downsample",
    "Upsample",
    "match_size",
]

NORMS = ("instance", "batch", "group", "none")
ACTS = ("leakyrelu", "relu", "prelu", "gelu")
UPSAMPLES = ("transpose", "nearest", "linear")
DOWNSAMPLES = ("maxpool", "conv")


def conv_nd(spatial_dims: int) -> type[nn.Module]:
    """``nn.Conv2d`` or ``nn.Conv3d``."""
    return {2: nn.Conv2d, 3: nn.Conv3d}[spatial_dims]


def make_norm(norm: str | None, spatial_dims: int, channels: int) -> nn.Module:
    """A normalization layer by name: ``"instance"`` (affine, as nnU-Net), ``"batch"``, ``"group"`` or ``"none"``."""
    if norm is None or norm == "none":
        return nn.Identity()
    if norm == "instance":
        return (nn.InstanceNorm2d if spatial_dims == 2 else nn.InstanceNorm3d)(channels, eps=1e-5, affine=True)
    if norm == "batch":
        return (nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d)(channels)
    if norm == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def make_act(act: str, channels: int) -> nn.Module:
    """An activation by name: ``"leakyrelu"`` (slope 0.01, nnU-Net), ``"relu"``, ``"prelu"`` (V-Net) or ``"gelu"``."""
    if act == "leakyrelu":
        return nn.LeakyReLU(0.01, inplace=True)
    if act == "relu":
        return nn.ReLU(inplace=True)
    if act == "prelu":
        return nn.PReLU(channels)
    if act == "gelu":
        return nn.GELU()
    raise ValueError(f"act must be one of {ACTS}, got {act!r}")


class ConvNormAct(nn.Sequential):
    """Convolution (same padding, no bias when normalized), normalization, activation."""

    def __init__(self, spatial_dims: int, cin: int, cout: int, *, kernel_size: int = 3, stride: int = 1,
                 norm: str | None = "instance", act: str | None = "leakyrelu") -> None:
        layers: list[nn.Module] = [
            conv_nd(spatial_dims)(cin, cout, kernel_size, stride=stride, padding=kernel_size // 2,
                                  bias=norm in (None, "none")),
            make_norm(norm, spatial_dims, cout),
        ]
        if act is not None:
            layers.append(make_act(act, cout))
        super().__init__(*layers)


class ConvBlock(nn.Sequential):
    """``n`` stacked :class:`ConvNormAct` (the classic U-Net stage has two 3x3 convolutions)."""

    def __init__(self, spatial_dims: int, cin: int, cout: int, n: int = 2, *, kernel_size: int = 3,
                 norm: str | None = "instance", act: str = "leakyrelu") -> None:
        super().__init__(*[ConvNormAct(spatial_dims, cin if i == 0 else cout, cout, kernel_size=kernel_size,
                                       norm=norm, act=act) for i in range(max(n, 1))])


class ResidualBlock(nn.Module):
    """V-Net style residual stage: ``act(convs(x) + proj(x))``; ``proj`` is a 1x1 convolution when widths differ.

    Milletari et al., "V-Net", 3DV 2016; He et al., "Deep Residual Learning", CVPR 2016.
    """

    def __init__(self, spatial_dims: int, cin: int, cout: int, n: int = 2, *, kernel_size: int = 3,
                 norm: str | None = "instance", act: str = "leakyrelu") -> None:
        super().__init__()
        n = max(n, 1)
        convs = [ConvNormAct(spatial_dims, cin if i == 0 else cout, cout, kernel_size=kernel_size, norm=norm,
                             act=act if i < n - 1 else None) for i in range(n)]
        self.convs = nn.Sequential(*convs)
        self.proj: nn.Module = nn.Identity()
        if cin != cout:
            self.proj = nn.Sequential(conv_nd(spatial_dims)(cin, cout, 1, bias=False),
                                      make_norm(norm, spatial_dims, cout))
        self.act = make_act(act, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.convs(x) + self.proj(x))


class Downsample(nn.Module):
    """2x down-sampling: max-pooling (classic U-Net; ``ceil_mode`` so odd sizes keep their last voxel)
    or a strided 2x2 convolution (V-Net)."""

    def __init__(self, spatial_dims: int, channels: int, mode: str = "maxpool", *,
                 norm: str | None = "instance", act: str = "leakyrelu") -> None:
        super().__init__()
        if mode == "maxpool":
            pool = nn.MaxPool2d if spatial_dims == 2 else nn.MaxPool3d
            self.op: nn.Module = pool(2, stride=2, ceil_mode=True)
        elif mode == "conv":
            self.op = nn.Sequential(conv_nd(spatial_dims)(channels, channels, 2, stride=2, bias=False),
                                    make_norm(norm, spatial_dims, channels), make_act(act, channels))
        else:
            raise ValueError(f"downsample must be one of {DOWNSAMPLES}, got {mode!r}")
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "conv":  # a strided conv drops an odd last voxel: pad by replication first
            pad: list[int] = []
            for size in reversed(x.shape[2:]):
                pad += [0, size % 2]
            if any(pad):
                x = F.pad(x, pad, mode="replicate")
        return self.op(x)


class Upsample(nn.Module):
    """2x up-sampling from ``cin`` to ``cout`` channels: a transposed convolution, or nearest / (bi/tri)linear
    interpolation followed by a 1x1 convolution."""

    def __init__(self, spatial_dims: int, cin: int, cout: int, mode: str = "transpose") -> None:
        super().__init__()
        if mode not in UPSAMPLES:
            raise ValueError(f"upsample must be one of {UPSAMPLES}, got {mode!r}")
        self.mode = mode
        if mode == "transpose":
            tconv = nn.ConvTranspose2d if spatial_dims == 2 else nn.ConvTranspose3d
            self.op: nn.Module = tconv(cin, cout, 2, stride=2, bias=False)
        else:
            self.op = conv_nd(spatial_dims)(cin, cout, 1, bias=False)
        self.interp = "nearest" if mode == "nearest" else ("bilinear" if spatial_dims == 2 else "trilinear")

    def forward(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        if self.mode == "transpose":
            return match_size(self.op(x), size)
        kwargs = {} if self.interp == "nearest" else {"align_corners": False}
        return self.op(F.interpolate(x, size=tuple(size), mode=self.interp, **kwargs))


def match_size(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Crop (or zero-pad) the trailing spatial axes of ``x`` to ``size`` (odd skip sizes after ceil pooling)."""
    slices = [slice(None), slice(None)]
    pad: list[int] = []
    for have, want in zip(x.shape[2:], size):
        slices.append(slice(0, min(have, want)))
    for have, want in zip(reversed(x.shape[2:]), reversed(list(size))):
        pad += [0, max(want - have, 0)]
    x = x[tuple(slices)]
    return F.pad(x, pad) if any(pad) else x
