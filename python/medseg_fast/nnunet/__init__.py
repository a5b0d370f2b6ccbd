"""nnU-Net v2 plug-in: our kernels behind nnU-Net's own interfaces.

* :func:`resample_data_or_seg_to_shape` / :func:`resample_data_or_seg_to_spacing` /
  :func:`resample_data_or_seg`: nnU-Net's resampling signatures and semantics on the compiled kernels.
* :func:`convert_predicted_logits_to_segmentation_with_correct_shape` /
  :func:`export_prediction_from_logits`: the export step through :func:`medseg_fast.resample_argmax`
  (no ``(C, *original)`` array).
* ``MedsegCTNormalization``, ``MedsegZScoreNormalization``, ... : ``ImageNormalization`` subclasses.
* :func:`enable`: makes the names above findable where nnU-Net looks classes and functions up by the
  names in a plans file (it searches only its own packages); :class:`MedsegPlanner` writes those names
  into new plans, :class:`MedsegPreprocessor` enables them in spawned preprocessing workers.
* :class:`nnUNetPredictor`: nnU-Net's predictor (same arguments) running our sliding window, mirroring
  and fused export.
* :func:`remove_all_but_largest_component_from_segmentation`: nnU-Net's post-processing on our
  connected-component kernels.

Needs ``nnunetv2`` (``pip install nnunetv2`` after torch).
"""

from __future__ import annotations

try:
    import nnunetv2  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without nnunetv2
    raise ImportError("medseg_fast.nnunet needs nnunetv2: pip install nnunetv2 (after installing torch)") from exc

from .export import convert_predicted_logits_to_segmentation_with_correct_shape, export_prediction_from_logits
from .normalization import (
    MedsegCTNormalization,
    MedsegNoNormalization,
    MedsegRescaleTo01Normalization,
    MedsegRGBTo01Normalization,
    MedsegZScoreNormalization,
)
from .postprocessing import remove_all_but_largest_component, remove_all_but_largest_component_from_segmentation
from .registry import REGISTRY, disable, enable, enabled, find
from .resampling import resample_data_or_seg, resample_data_or_seg_to_shape, resample_data_or_seg_to_spacing

__all__ = [
    "enable",
    "disable",
    "enabled",
    "find",
    "REGISTRY",
    "resample_data_or_seg_to_shape",
    "resample_data_or_seg_to_spacing",
    "resample_data_or_seg",
    "convert_predicted_logits_to_segmentation_with_correct_shape",
    "export_prediction_from_logits",
    "MedsegCTNormalization",
    "MedsegZScoreNormalization",
    "MedsegNoNormalization",
    "MedsegRescaleTo01Normalization",
    "MedsegRGBTo01Normalization",
    "remove_all_but_largest_component",
    "remove_all_but_largest_component_from_segmentation",
    "MedsegPlanner",
    "MedsegPreprocessor",
    "nnUNetPredictor",
]


def __getattr__(name: str):
    # The planner, preprocessor and predictor import more of nnU-Net (and torch networks): on first use.
    if name in ("MedsegPlanner", "MedsegPreprocessor"):
        from . import planner

        return getattr(planner, name)
    if name == "nnUNetPredictor":
        from .predictor import nnUNetPredictor

        return nnUNetPredictor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
