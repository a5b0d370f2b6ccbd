"""Reuse of large fresh host outputs, so that bandwidth-bound kernels run at memory speed without ``out=``.

A fresh output of hundreds of MiB costs more in first-touch page faults than the kernel that fills
it: glibc returns large blocks to the system on free, so the next volume's output is faulted in
again (on a virtual machine 160-570 ms for a 256 MiB float32 output that the kernel fills in 13 ms,
issue 16). Like the caching allocators of the GPU frameworks, we keep a few large blocks that
have been written once and hand them out again once nothing refers to them any more.

* A block is free when no array refers to it: every output is a view whose ``base`` is the block,
  so the block's reference count tells (checked under a lock at each allocation).
* The blocks kept add up to at most ``MEDSEG_HOST_CACHE_MB`` MiB (default: 1/8 of the machine's
  memory, at most 2048); ``0`` turns the cache off. Outputs smaller than 32 MiB are plain
  ``numpy.empty`` arrays.
* A reused block holds the previous output's bytes (``numpy.empty`` gives no guarantee either);
  the kernels write every element of their outputs.
* `clear()` drops the free blocks (memory returned to the system).
"""

from __future__ import annotations

import os
import sys
import threading

import numpy as np

__all__ = ["empty", "clear", "cached_bytes", "MIN_BYTES"]

MIN_BYTES = 32 << 20
_lock = threading.Lock()
_blocks: list[np.ndarray] = []   # uint8 blocks, least recently used first
_limit: int | None = None


def _limit_bytes() -> int:
    global _limit
    if _limit is None:
        env = os.environ.get("MEDSEG_HOST_CACHE_MB")
        if env is not None and env.strip() != "":
            try:
                mib = float(env)
            except ValueError:
                raise ValueError(f"MEDSEG_HOST_CACHE_MB must be a number of MiB (0: off), got {env!r}") from None
            _limit = max(0, int(mib * 2**20))
        else:
            try:
                total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            except (ValueError, OSError, AttributeError):
                total = 8 << 30
            _limit = min(2048 << 20, total // 8)
    return _limit


def _free(i: int) -> bool:
    # The only references to a free block: its list slot and getrefcount's argument (no local
    # name may hold it while this is asked).
    return sys.getrefcount(_blocks[i]) == 2


def empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array, from the cache when it is large."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    limit = _limit_bytes()
    if nbytes < MIN_BYTES or nbytes > limit:
        return np.empty(shape, dtype=dtype)
    with _lock:
        for i in range(len(_blocks)):
            # a free block of the right size class (at most 1/8 larger: no large waste)
            if nbytes <= _blocks[i].nbytes <= nbytes + nbytes // 8 and _free(i):
                _blocks.append(_blocks.pop(i))
                return _blocks[-1][:nbytes].view(dtype).reshape(shape)
        total = sum(b.nbytes for b in _blocks)
        i = 0
        while total + nbytes > limit and i < len(_blocks):   # evict free blocks, oldest first
            if _free(i):
                total -= _blocks.pop(i).nbytes
            else:
                i += 1
        if total + nbytes > limit:   # the cache is full of live outputs: a plain array
            return np.empty(shape, dtype=dtype)
        _blocks.append(np.empty(nbytes, dtype=np.uint8))
        return _blocks[-1].view(dtype).reshape(shape)


def cached_bytes() -> tuple[int, int]:
    """(bytes held by the cache, of which free)."""
    with _lock:
        held = sum(b.nbytes for b in _blocks)
        free = sum(_blocks[i].nbytes for i in range(len(_blocks)) if _free(i))
    return held, free


def clear() -> int:
    """Drop the free blocks; returns the bytes released."""
    with _lock:
        released, i = 0, 0
        while i < len(_blocks):
            if _free(i):
                released += _blocks.pop(i).nbytes
            else:
                i += 1
    return released
