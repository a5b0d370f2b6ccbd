"""Drop-in replacements for MONAI classes, on medseg_fast's compiled kernels.

Change ``from monai.transforms import X`` to ``from medseg_fast.monai import X`` (the same for
metrics, losses and inferers): every class here subclasses the MONAI class of the same name, takes
MONAI's constructor arguments with MONAI's defaults, accepts MONAI's input layouts and returns what
MONAI returns (a MetaTensor in gives a MetaTensor out with the same affine, meta and applied
operations; torch tensors stay on their device). The fast path is taken where its result equals
MONAI's; every other option goes to MONAI's own implementation (``super()``), so a MONAI config
works unchanged. Each class's docstring says which cases run on our kernels. ``GaussianMerger``
(Gaussian blending for ``monai.inferers.PatchInferer``, which MONAI lacks) subclasses
``monai.inferers.Merger``; the mergers use torch's in-place operations, not our kernels.

MONAI is imported when one of these names is first used: ``import medseg_fast`` needs neither
torch nor MONAI.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_WHERE = {
    # intensity transforms
    "ScaleIntensityRange": "transforms", "ScaleIntensityRanged": "transforms",
    "ScaleIntensityRangePercentiles": "transforms", "ScaleIntensityRangePercentilesd": "transforms",
    "NormalizeIntensity": "transforms", "NormalizeIntensityd": "transforms",
    "ScaleIntensity": "transforms", "ScaleIntensityd": "transforms",
    # post-processing transforms
    "KeepLargestConnectedComponent": "post", "KeepLargestConnectedComponentd": "post",
    "RemoveSmallObjects": "post", "RemoveSmallObjectsd": "post",
    "FillHoles": "post", "FillHolesd": "post",
    # spatial
    "SpatialResample": "spatial", "Spacing": "spatial", "Spacingd": "spatial",
    # metrics
    "DiceMetric": "metrics", "MeanIoU": "metrics", "HausdorffDistanceMetric": "metrics",
    "SurfaceDistanceMetric": "metrics", "SurfaceDiceMetric": "metrics",
    # losses
    "DiceLoss": "losses", "FocalLoss": "losses", "DiceFocalLoss": "losses", "DiceCELoss": "losses",
    "GeneralizedDiceLoss": "losses",
    # inferers
    "SlidingWindowInferer": "inferers", "AvgMerger": "inferers", "GaussianMerger": "inferers",
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
