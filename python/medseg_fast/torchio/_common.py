"""Helpers of the TorchIO drop-ins: window passes on image tensors and chunked elementwise steps."""

from __future__ import annotations

import torch

from .. import _backend as B
from .._chunked import chunked as _chunked
from .._intensity_common import _apply_windows


def window(x: torch.Tensor, lo: float, hi: float, center: float, scale: float, offset: float) -> torch.Tensor:
    """``(clamp(x, lo, hi) - center) * scale + offset`` in one compiled pass, as a float32 tensor."""
    return _apply_windows(B.view(x, "tensor"), [(float(lo), float(hi), float(center), float(scale), float(offset))],
                          "float32", None, stacked=False)


def chunked(x: torch.Tensor, steps) -> torch.Tensor:
    """``steps(chunk)`` applied in place to float32 copies of cache-sized chunks of ``x``
    (bit-identical to the same operations on a whole float32 copy; ``x`` is read once)."""
    return _chunked(x, torch.float32, torch.float32, steps)


def check_cpu(t: torch.Tensor) -> bool:
    return isinstance(t, torch.Tensor) and t.device.type == "cpu"
