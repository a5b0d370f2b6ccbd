"""Helpers of the TorchIO drop-ins: window passes on image tensors and chunked elementwise steps."""

from __future__ import annotations

import torch

from .. import _backend as B
from .._intensity_common import _apply_windows

# Elements per chunk of the chunked passes: large enough that per-operation overhead does not
# dominate, small enough that the few operations applied to one chunk hit the cache.
CHUNK = 1 << 22


def window(x: torch.Tensor, lo: float, hi: float, center: float, scale: float, offset: float) -> torch.Tensor:
    """``(clamp(x, lo, hi) - center) * scale + offset`` in one compiled pass, as a float32 tensor."""
    return _apply_windows(B.view(x, "tensor"), [(float(lo), float(hi), float(center), float(scale), float(offset))],
                          "float32", None, stacked=False)


def chunked(x: torch.Tensor, steps) -> torch.Tensor:
    """``steps(chunk)`` applied in place to float32 copies of cache-sized chunks of ``x``.

    Elementwise operations do not depend on the chunking, so the result is bit-identical to the
    same operations applied to a whole float32 copy of ``x``, while ``x`` is read once.
    """
    src = x.contiguous().reshape(-1)
    out = torch.empty(x.shape, dtype=torch.float32)
    flat = out.reshape(-1)
    n = src.numel()
    for start in range(0, n, CHUNK):
        piece = flat[start:min(start + CHUNK, n)]
        piece.copy_(src[start:start + piece.numel()])
        steps(piece)
    return out


def check_cpu(t: torch.Tensor) -> bool:
    return isinstance(t, torch.Tensor) and t.device.type == "cpu"
