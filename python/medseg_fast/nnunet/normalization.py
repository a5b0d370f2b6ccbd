"""nnU-Net v2 ``ImageNormalization`` subclasses on our intensity kernels.

Same constructor (``use_mask_for_norm``, ``intensityproperties``, ``target_dtype``), ``run(image, seg)``
contract and ``leaves_pixels_outside_mask_at_zero_if_use_mask_for_norm_is_true`` flags as nnU-Net's
classes in ``default_normalization_schemes``; results agree with them to float32 rounding (the
statistics here are computed in float64). Plans name them ``MedsegCTNormalization`` etc. (findable
after :func:`medseg_fast.nnunet.enable`).
"""

from __future__ import annotations

import numpy as np
from nnunetv2.preprocessing.normalization.default_normalization_schemes import ImageNormalization

from ..intensity import ct_normalize

__all__ = ["MedsegCTNormalization", "MedsegZScoreNormalization", "MedsegNoNormalization",
           "MedsegRescaleTo01Normalization", "MedsegRGBTo01Normalization", "NNUNET_EQUIVALENT"]


def _eps(target_dtype) -> float:
    return 1e-4 if target_dtype == np.float16 else 1e-8


class MedsegCTNormalization(ImageNormalization):
    """nnU-Net's ``CTNormalization``: clip to the dataset's foreground 0.5/99.5 percentiles, subtract the
    foreground mean, divide by its std, in one pass (:func:`medseg_fast.ct_normalize`)."""

    leaves_pixels_outside_mask_at_zero_if_use_mask_for_norm_is_true = False

    def run(self, image: np.ndarray, seg: np.ndarray = None) -> np.ndarray:
        if self.intensityproperties is None:
            raise ValueError("MedsegCTNormalization needs intensityproperties (the dataset fingerprint's "
                             "foreground_intensity_properties_per_channel entry)")
        dtype = "float16" if self.target_dtype == np.float16 else "float32"
        out = ct_normalize(np.asarray(image), stats=self.intensityproperties, dtype=dtype)
        return out.astype(self.target_dtype, copy=False)


class MedsegZScoreNormalization(ImageNormalization):
    """nnU-Net's ``ZScoreNormalization``: (x - mean) / std over the image, or only inside ``seg >= 0``
    (``use_mask_for_norm``), leaving the rest unchanged, as nnU-Net does."""

    leaves_pixels_outside_mask_at_zero_if_use_mask_for_norm_is_true = True

    def run(self, image: np.ndarray, seg: np.ndarray = None) -> np.ndarray:
        eps = _eps(self.target_dtype)
        image = image.astype(self.target_dtype, copy=False)
        if self.use_mask_for_norm:
            if seg is None:
                raise ValueError("use_mask_for_norm is set: give seg (the mask is seg >= 0)")
            mask = seg >= 0
            values = image[mask]
            mean, std = float(values.mean(dtype=np.float64)), float(values.std(dtype=np.float64))
            image[mask] = (values - np.asarray(mean, image.dtype)) / np.asarray(max(std, eps), image.dtype)
            return image
        mean, std = float(image.mean(dtype=np.float64)), float(image.std(dtype=np.float64))
        image -= np.asarray(mean, image.dtype)
        image /= np.asarray(max(std, eps), image.dtype)
        return image


class MedsegNoNormalization(ImageNormalization):
    """nnU-Net's ``NoNormalization``: a dtype conversion."""

    leaves_pixels_outside_mask_at_zero_if_use_mask_for_norm_is_true = False

    def run(self, image: np.ndarray, seg: np.ndarray = None) -> np.ndarray:
        return image.astype(self.target_dtype, copy=False)


class MedsegRescaleTo01Normalization(ImageNormalization):
    """nnU-Net's ``RescaleTo01Normalization``: (x - min) / max(max - min, eps)."""

    leaves_pixels_outside_mask_at_zero_if_use_mask_for_norm_is_true = False

    def run(self, image: np.ndarray, seg: np.ndarray = None) -> np.ndarray:
        image = image.astype(self.target_dtype, copy=False)
        image -= image.min()
        image /= np.clip(image.max(), a_min=_eps(self.target_dtype), a_max=None)
        return image


class MedsegRGBTo01Normalization(ImageNormalization):
    """nnU-Net's ``RGBTo01Normalization``: x / 255 for values in [0, 255]."""

    leaves_pixels_outside_mask_at_zero_if_use_mask_for_norm_is_true = False

    def run(self, image: np.ndarray, seg: np.ndarray = None) -> np.ndarray:
        lo, hi = float(image.min()), float(image.max())
        if lo < 0 or hi > 255:
            raise ValueError(f"RGB images must lie in [0, 255], got values in [{lo}, {hi}]")
        image = image.astype(self.target_dtype, copy=False)
        image /= 255.0
        return image


#: nnU-Net scheme name -> our class (what MedsegPlanner writes into plans).
NNUNET_EQUIVALENT = {
    "CTNormalization": MedsegCTNormalization,
    "ZScoreNormalization": MedsegZScoreNormalization,
    "NoNormalization": MedsegNoNormalization,
    "RescaleTo01Normalization": MedsegRescaleTo01Normalization,
    "RGBTo01Normalization": MedsegRGBTo01Normalization,
}
