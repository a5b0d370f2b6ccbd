"""Additive attention gate of Attention U-Net (Oktay et al., "Attention U-Net: Learning Where to Look for
the Pancreas", MIDL 2018): the decoder's gating signal weighs the encoder's skip features voxel by voxel."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import conv_nd, make_norm

__all__ = ["AttentionGate"]


class AttentionGate(nn.Module):
    """``x * sigmoid(psi(relu(W_x x + W_g g)))`` with 1x1 convolutions; ``g`` has the spatial size of ``x``.

    Parameters
    ----------
    spatial_dims : int
        2 or 3.
    skip_channels, gate_channels : int
        Channels of the skip features ``x`` and of the gating signal ``g``.
    inter_channels : int, optional
        Width of the intermediate map (default: half of ``skip_channels``, at least 1).
    """

    def __init__(self, spatial_dims: int, skip_channels: int, gate_channels: int, inter_channels: int | None = None,
                 *, norm: str | None = "instance") -> None:
        super().__init__()
        inter = inter_channels or max(skip_channels // 2, 1)
        conv = conv_nd(spatial_dims)
        self.w_x = nn.Sequential(conv(skip_channels, inter, 1, bias=False), make_norm(norm, spatial_dims, inter))
        self.w_g = nn.Sequential(conv(gate_channels, inter, 1, bias=False), make_norm(norm, spatial_dims, inter))
        self.psi = nn.Sequential(conv(inter, 1, 1, bias=True), nn.Sigmoid())
        self.act = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return x * self.psi(self.act(self.w_x(x) + self.w_g(g)))
