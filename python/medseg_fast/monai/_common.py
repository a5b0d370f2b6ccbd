"""Helpers shared by the MONAI drop-ins: MetaTensor unwrapping, connectivity, chunked arithmetic."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor

from .._backend import advise_huge_pages

# Elements per chunk of the chunked elementwise passes: large enough that torch's per-operation
# (thread wake-up) overhead does not dominate, small enough to stay mostly in the last-level cache
# between the few operations applied to it (measured: 2^22 fastest on the 2-core CI machine).
CHUNK = 1 << 22

# MONAI (skimage) connectivity: maximum number of orthogonal hops; ours: neighbour count.
_HOPS = {2: {1: 4, 2: 8}, 3: {1: 6, 2: 18, 3: 26}}


def plain(x: torch.Tensor) -> torch.Tensor:
    """The tensor without MetaTensor dispatch (same storage)."""
    return x.as_tensor() if isinstance(x, MetaTensor) else x


def neighbours(hops: Any, ndim: int) -> int | None:
    """Our connectivity for MONAI's ``connectivity`` (None: full), or None if not expressible."""
    table = _HOPS.get(ndim)
    if table is None:
        return None
    if hops is None:
        return table[ndim]
    if isinstance(hops, (bool, np.bool_)) or not isinstance(hops, (int, np.integer)):
        return None
    return table.get(int(hops))


def chunked(x: torch.Tensor, compute: torch.dtype, out_dtype: torch.dtype, steps) -> torch.Tensor:
    """``steps(chunk)`` applied in place to copies of cache-sized chunks of ``x``.

    ``steps`` receives a contiguous tensor of dtype ``compute`` holding a (cast) copy of one
    chunk and applies MONAI's elementwise operations to it in place, one after the other, as
    MONAI applies them to the whole tensor: elementwise results do not depend on the chunking,
    so the output is bit-identical to MONAI's while every element is read and written once.
    """
    src = x.contiguous().reshape(-1)
    out = torch.empty(x.shape, dtype=out_dtype, device=x.device)
    if out.device.type == "cpu" and out.numel() >= CHUNK:
        advise_huge_pages(out)   # fewer page faults on first touch of a large output
    flat = out.reshape(-1)
    n = src.numel()
    direct = out_dtype == compute
    buf = None if direct else torch.empty(min(CHUNK, n), dtype=compute, device=x.device)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        if direct:
            piece = flat[start:stop]
            piece.copy_(src[start:stop])
            steps(piece)
        else:
            piece = buf[: stop - start]
            piece.copy_(src[start:stop])
            steps(piece)
            flat[start:stop].copy_(piece)
    return out


def chunked_map(x: torch.Tensor, out_dtype: torch.dtype, fn) -> torch.Tensor:
    """``fn(chunk)`` (out of place, any dtype promotion) over cache-sized chunks of ``x``, cast into
    an ``out_dtype`` output: MONAI's elementwise expression evaluated chunk by chunk, so its
    intermediate dtypes (e.g. int16 arithmetic before a true division) are kept exactly."""
    src = x.contiguous().reshape(-1)
    out = torch.empty(x.shape, dtype=out_dtype, device=x.device)
    if out.device.type == "cpu" and out.numel() >= CHUNK:
        advise_huge_pages(out)
    flat = out.reshape(-1)
    for start in range(0, src.numel(), CHUNK):
        stop = min(start + CHUNK, src.numel())
        flat[start:stop].copy_(fn(src[start:stop]))
    return out


def is_real_scalar(v: Any) -> bool:
    """A plain real number (not a tensor or array): the fast paths reproduce MONAI's arithmetic
    for those; tensors take MONAI's own path."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def fresh(x: Any) -> Any:
    """A copy of a numpy / torch / MetaTensor input (meta data and applied operations included), for
    the MONAI code paths that write into their input's storage."""
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, torch.Tensor):
        return x.clone()
    return x
