"""Making our names findable by nnU-Net v2.

nnU-Net resolves the names in a plans file (``resampling_fn_data``, ``normalization_schemes``,
``preprocessor_name``, the experiment planner) with ``recursive_find_python_class``, which only walks
its own package folders. :func:`enable` wraps that lookup, in nnunetv2's modules that imported it, so
that the names in :data:`REGISTRY` resolve to our objects first (every other name falls through to
nnU-Net unchanged); :func:`disable` restores the originals. Spawned worker processes start without
the wrapper: :class:`medseg_fast.nnunet.MedsegPreprocessor` calls :func:`enable` when it is unpickled
in a worker, and :class:`medseg_fast.nnunet.nnUNetPredictor` exports in its own process.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["REGISTRY", "enable", "disable", "enabled", "find"]

#: plans name -> "module:attribute" of the object nnU-Net gets for it.
REGISTRY: dict[str, str] = {
    "medseg_resample_data_or_seg_to_shape": "medseg_fast.nnunet.resampling:resample_data_or_seg_to_shape",
    "medseg_resample_data_or_seg_to_spacing": "medseg_fast.nnunet.resampling:resample_data_or_seg_to_spacing",
    "MedsegCTNormalization": "medseg_fast.nnunet.normalization:MedsegCTNormalization",
    "MedsegZScoreNormalization": "medseg_fast.nnunet.normalization:MedsegZScoreNormalization",
    "MedsegNoNormalization": "medseg_fast.nnunet.normalization:MedsegNoNormalization",
    "MedsegRescaleTo01Normalization": "medseg_fast.nnunet.normalization:MedsegRescaleTo01Normalization",
    "MedsegRGBTo01Normalization": "medseg_fast.nnunet.normalization:MedsegRGBTo01Normalization",
    "MedsegPreprocessor": "medseg_fast.nnunet.planner:MedsegPreprocessor",
    "MedsegPlanner": "medseg_fast.nnunet.planner:MedsegPlanner",
}

# Modules of nnunetv2 that call recursive_find_python_class through a module-level name.
_USERS = (
    "nnunetv2.utilities.find_class_by_name",
    "nnunetv2.utilities.plans_handling.plans_handler",
    "nnunetv2.preprocessing.preprocessors.default_preprocessor",
    "nnunetv2.preprocessing.resampling.utils",
    "nnunetv2.experiment_planning.plan_and_preprocess_api",
)
_original: dict[str, Any] = {}


def find(name: str) -> Any | None:
    """Our object registered under the plans name ``name``, or None."""
    target = REGISTRY.get(name)
    if target is None:
        return None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def _wrap(original):
    def recursive_find_python_class(folder, class_name, current_module, *args, **kwargs):
        ours = find(class_name)
        return ours if ours is not None else original(folder, class_name, current_module, *args, **kwargs)

    recursive_find_python_class.__wrapped__ = original
    recursive_find_python_class.__medseg__ = True
    return recursive_find_python_class


def enable() -> None:
    """Let nnU-Net find our resampling functions, normalization classes, preprocessor and planner by the
    names in :data:`REGISTRY` (idempotent; affects this process only)."""
    for mod_name in _USERS:
        mod = importlib.import_module(mod_name)
        current = getattr(mod, "recursive_find_python_class")
        if getattr(current, "__medseg__", False):
            continue
        _original[mod_name] = current
        setattr(mod, "recursive_find_python_class", _wrap(current))


def disable() -> None:
    """Undo :func:`enable`."""
    for mod_name, fn in list(_original.items()):
        setattr(importlib.import_module(mod_name), "recursive_find_python_class", fn)
        del _original[mod_name]


def enabled() -> bool:
    return bool(_original)
