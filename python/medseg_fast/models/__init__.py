"""Segmentation networks (``torch.nn.Module``): :class:`UNet` and its named configurations."""

from .attention import AttentionGate
from .blocks import ConvBlock, ResidualBlock
from .unet import AttentionUNet, UNet, VNet, build_model

__all__ = ["UNet", "AttentionUNet", "VNet", "AttentionGate", "ConvBlock", "ResidualBlock", "build_model"]
