"""Array types of the public API. Every kernel takes a numpy array, a torch tensor (CPU or CUDA) or
a cupy array and returns the same kind on the same device: ``Array`` is a constrained type variable,
so a type checker infers ``hu_window(np_array) -> np.ndarray`` and ``hu_window(tensor) -> Tensor``.
torch and cupy are named only for type checkers (``import medseg_fast`` needs neither)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar, Union

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - names for type checkers only
    import cupy
    import torch

__all__ = ["Array", "ArrayLike"]

Array = TypeVar("Array", np.ndarray, "torch.Tensor", "cupy.ndarray")
# An input that need not match the output's kind (masks, second operands).
ArrayLike = Union[np.ndarray, "torch.Tensor", "cupy.ndarray"]
