"""The U-Net family: classic U-Net, residual (V-Net style) stages, attention gates, deep supervision.

Ronneberger et al., "U-Net", MICCAI 2015; Çiçek et al., "3D U-Net", MICCAI 2016; Isensee et al., "nnU-Net",
Nature Methods 2021 (instance norm, leaky ReLU, deep supervision).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .attention import AttentionGate
from .blocks import ConvBlock, Downsample, ResidualBlock, Upsample, conv_nd

__all__ = ["UNet", "AttentionUNet", "VNet", "build_model"]


class UNet(nn.Module):
    """A 2-D or 3-D U-Net.

    The encoder has ``len(channels)`` stages; stage ``i`` holds ``blocks`` convolutions (3x3 by default) with
    ``channels[i]`` filters, followed (except at the bottom) by a 2x down-sampling. The decoder up-samples
    (transposed convolution or interpolation), concatenates the skip features (optionally weighted by an
    attention gate), applies a stage of the same kind, and a 1x1 head gives ``out_channels`` logits.
    Any input size works: pooling uses ``ceil_mode`` and up-sampled maps are cropped to the skip's size,
    so the output always has the input's spatial shape.

    Parameters
    ----------
    spatial_dims : int
        2 or 3.
    in_channels, out_channels : int
        Input channels (modalities) and output channels (classes, background included).
    channels : sequence of int
        Filters per resolution level, finest first; its length is the depth.
    blocks : int or sequence of int
        Convolutions per encoder stage (one value for all, or one per level). Decoder stages use the same count.
    norm : {"instance", "batch", "group", "none"}
        Normalization after each convolution.
    upsample : {"transpose", "nearest", "linear"}
        Transposed 2x convolution, or interpolation followed by a 1x1 convolution.
    residual : bool
        Residual stages (V-Net style) instead of plain ones.
    attention : bool
        Attention gates on the skip connections (Attention U-Net).
    deep_supervision : bool
        Extra 1x1 heads on the decoder levels below full resolution. In training mode ``forward`` then
        returns a list of logits, full resolution first; in eval mode only the full-resolution logits.
    act : {"leakyrelu", "relu", "prelu", "gelu"}
        Activation (keyword-only extra).
    kernel_size : int
        Convolution size (3; V-Net uses 5).
    downsample : {"maxpool", "conv"}
        2x max-pooling (classic) or strided 2x2 convolution (V-Net).

    Examples
    --------
    >>> import torch
    >>> net = UNet(3, 1, 3, channels=(8, 16, 32))
    >>> net(torch.zeros(1, 1, 17, 20, 23)).shape
    torch.Size([1, 3, 17, 20, 23])
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        *,
        channels: Sequence[int] = (32, 64, 128, 256, 320),
        blocks: int | Sequence[int] = 2,
        norm: str | None = "instance",
        upsample: str = "transpose",
        residual: bool = False,
        attention: bool = False,
        deep_supervision: bool = False,
        act: str = "leakyrelu",
        kernel_size: int = 3,
        downsample: str = "maxpool",
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
        channels = tuple(int(c) for c in channels)
        if len(channels) < 1 or any(c < 1 for c in channels):
            raise ValueError(f"channels must be a non-empty sequence of positive widths, got {channels!r}")
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"in_channels and out_channels must be >= 1, got {in_channels}, {out_channels}")
        depth = len(channels)
        nblocks = [int(blocks)] * depth if isinstance(blocks, int) else [int(b) for b in blocks]
        if len(nblocks) != depth or any(b < 1 for b in nblocks):
            raise ValueError(f"blocks must be a positive int or one positive int per level ({depth}), got {blocks!r}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.config: dict[str, Any] = dict(
            spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels, channels=list(channels),
            blocks=nblocks, norm=norm, upsample=upsample, residual=residual, attention=attention,
            deep_supervision=deep_supervision, act=act, kernel_size=kernel_size, downsample=downsample)
        stage = ResidualBlock if residual else ConvBlock
        opts = dict(kernel_size=kernel_size, norm=norm, act=act)
        self.encoder = nn.ModuleList(
            stage(spatial_dims, in_channels if i == 0 else channels[i - 1], channels[i], nblocks[i], **opts)
            for i in range(depth))
        self.down = nn.ModuleList(Downsample(spatial_dims, channels[i], downsample, norm=norm, act=act)
                                  for i in range(depth - 1))
        self.up = nn.ModuleList(Upsample(spatial_dims, channels[i + 1], channels[i], upsample)
                                for i in range(depth - 1))
        self.gates = nn.ModuleList(
            AttentionGate(spatial_dims, channels[i], channels[i], norm=norm) if attention else nn.Identity()
            for i in range(depth - 1))
        self.decoder = nn.ModuleList(stage(spatial_dims, 2 * channels[i], channels[i], nblocks[i], **opts)
                                     for i in range(depth - 1))
        conv = conv_nd(spatial_dims)
        self.head = conv(channels[0], out_channels, 1)
        # heads for decoder levels 1..depth-2 (the bottom level has no decoder stage)
        self.ds_heads = nn.ModuleList(conv(channels[i], out_channels, 1) for i in range(1, depth - 1)) \
            if deep_supervision else nn.ModuleList()
        self.deep_supervision = deep_supervision
        self.attention = attention

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        skips = []
        for i, enc in enumerate(self.encoder):
            x = enc(x)
            if i < len(self.down):
                skips.append(x)
                x = self.down[i](x)
        extra: list[torch.Tensor] = []
        for i in reversed(range(len(self.decoder))):
            skip = skips[i]
            up = self.up[i](x, skip.shape[2:])
            if self.attention:
                skip = self.gates[i](skip, up)
            x = self.decoder[i](torch.cat([up, skip], dim=1))
            if self.deep_supervision and self.training and i > 0:
                extra.append(self.ds_heads[i - 1](x))
        out = self.head(x)
        if self.deep_supervision and self.training:
            return [out, *reversed(extra)]
        return out


class AttentionUNet(UNet):
    """:class:`UNet` with attention gates on every skip connection (Oktay et al. 2018)."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, **kwargs: Any) -> None:
        kwargs.setdefault("attention", True)
        super().__init__(spatial_dims, in_channels, out_channels, **kwargs)


class VNet(UNet):
    """V-Net as a :class:`UNet` configuration (Milletari et al. 2016): residual stages of 1, 2, 3, 3, 3
    5x5x5 convolutions, strided-convolution down-sampling, transposed-convolution up-sampling, PReLU."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, **kwargs: Any) -> None:
        channels = kwargs.setdefault("channels", (16, 32, 64, 128, 256))
        kwargs.setdefault("blocks", [min(i + 1, 3) for i in range(len(channels))])
        kwargs.setdefault("residual", True)
        kwargs.setdefault("kernel_size", 5)
        kwargs.setdefault("downsample", "conv")
        kwargs.setdefault("act", "prelu")
        kwargs.setdefault("upsample", "transpose")
        super().__init__(spatial_dims, in_channels, out_channels, **kwargs)


_ARCHS = {"UNet": UNet, "AttentionUNet": AttentionUNet, "VNet": VNet}


def build_model(config: dict[str, Any]) -> UNet:
    """Build a model from a ``config`` dict: ``arch`` ("UNet", "AttentionUNet", "VNet"; default "UNet") plus
    the constructor's arguments. ``model.config`` of any built model rebuilds it exactly (checkpoints store
    it with ``arch``)."""
    cfg = dict(config)
    arch = cfg.pop("arch", "UNet")
    if arch not in _ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(_ARCHS)}")
    spatial_dims, cin, cout = cfg.pop("spatial_dims"), cfg.pop("in_channels"), cfg.pop("out_channels")
    return _ARCHS[arch](spatial_dims, cin, cout, **cfg)
