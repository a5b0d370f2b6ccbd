"""Helpers shared by the MONAI drop-ins: MetaTensor unwrapping, connectivity, copies (chunked arithmetic
lives in medseg_fast._chunked, shared with the TorchIO drop-ins)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor


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
