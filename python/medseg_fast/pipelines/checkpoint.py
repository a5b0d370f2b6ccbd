"""Training checkpoints: written by :func:`~medseg_fast.pipelines.train.train`, read by training (resume) and
:class:`~medseg_fast.pipelines.predict.Predictor`.

A checkpoint is a ``torch.save`` dict holding at least ``model`` (state dict), ``model_config`` (the
:func:`~medseg_fast.models.build_model` arguments), ``plan`` (the preprocessing plan) and ``patch_size``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..io import DataError, atomic_path, check_zip

__all__ = ["CHECKPOINT_LAST", "CHECKPOINT_FINAL", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_LAST = "checkpoint_last.pt"
CHECKPOINT_FINAL = "checkpoint_final.pt"
_REQUIRED = ("model", "model_config", "plan")


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    DataError
        The file is missing, does not unpickle, or lacks ``model``, ``model_config`` or ``plan`` (one line
        naming the file).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: checkpoint file not found")
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        raise DataError(f"{p}: not a readable checkpoint ({type(exc).__name__}: {str(exc)[:120]})") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in _REQUIRED):
        raise DataError(f"{p}: not a medseg_fast checkpoint (needs model, model_config and plan)")
    return ckpt


def save_checkpoint(path: str | os.PathLike, obj: dict[str, Any]) -> None:
    """``torch.save`` atomically: the zip container is read back (CRC of every member) before the rename.

    Raises
    ------
    DataError
        The write failed (full disk, I/O error); nothing is left under ``path``.
    """
    try:
        with atomic_path(path, verify=check_zip) as tmp:
            torch.save(obj, tmp)
    except RuntimeError as exc:  # torch's zip writer reports short writes (full disk) as RuntimeError
        raise DataError(f"{path}: write failed ({' '.join(str(exc).split())[:200]}); nothing was written") from None
