"""Chunked elementwise passes on torch tensors, shared by the MONAI and TorchIO drop-ins.

A peer's elementwise expression (MONAI's, TorchIO's) applied chunk by chunk to cache-sized copies
gives the same bits as the expression on the whole tensor, while every element is read and written
once instead of once per operation.
"""

from __future__ import annotations

import torch

from ._backend import advise_huge_pages

__all__ = ["CHUNK", "chunked", "chunked_map"]

# Elements per chunk: large enough that torch's per-operation (thread wake-up) overhead does not
# dominate, small enough to stay mostly in the last-level cache between the few operations applied
# to it (measured: 2^22 fastest on the 2-core CI machine).
CHUNK = 1 << 22


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
