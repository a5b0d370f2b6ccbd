"""TorchIO intensity transforms (``RescaleIntensity``, ``Clamp``, ``ZNormalization``) on our kernels.

Each class subclasses the TorchIO class of the same name and only replaces how one image's
tensor is computed; parsing, masks, include/exclude, history and the Subject handling are
TorchIO's. Cases that TorchIO answers with a warning or an error run TorchIO's own code.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torchio as tio

from ..intensity import intensity_stats
from ._common import check_cpu, chunked, window

__all__ = ["RescaleIntensity", "Clamp", "ZNormalization"]



def _masks(transform, subject):
    """(name, image, mask) per image; mask None where TorchIO's mask would be all ones."""
    for name, image in transform.get_images_dict(subject).items():
        if transform.masking_method is None:
            yield name, image, None
        else:
            yield name, image, transform.get_mask_from_masking_method(transform.masking_method, subject, image.data)


class RescaleIntensity(tio.RescaleIntensity):
    """``tio.RescaleIntensity`` with exact one-pass percentiles and one compiled window pass.

    Same arguments and defaults as TorchIO (``out_min_max=(0, 1)``, ``percentiles=(0, 100)``,
    ``masking_method=None``, ``in_min_max=None``). TorchIO clips the float32 image to the
    percentiles of the masked voxels (``numpy.percentile``), then maps ``[in_min, in_max]`` (the
    clipped range, or ``in_min_max``) to ``out_min_max``. Here the percentiles come from
    :func:`medseg_fast.intensity_stats` (bit-identical to ``numpy.percentile``, no copy of the
    masked values) and clip + affine map run as one pass of the window kernel,
    ``(clip(x, lo, hi) - in_min) * (out_range / in_range) + out_min`` in float32. TorchIO
    divides and multiplies in two roundings, so results agree within ``1e-6 * max(|out_min|,
    |out_max|)`` (a few float32 ulps), not bit for bit.

    Fast path: CPU images with finite values. TorchIO's code runs for images holding NaN or
    infinities, an empty mask and a constant image (both of which TorchIO answers with a warning
    and the unchanged image).
    """

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        for name, image, mask in _masks(self, subject):
            result = self._fast(image.data, mask)
            if result is None:
                if mask is None:
                    mask = self.get_mask_from_masking_method(None, subject, image.data)
                result = self.rescale(image.data, mask, name)
            image.set_data(result)
        return subject

    def _fast(self, tensor: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
        if not check_cpu(tensor) or tensor.dtype == torch.bool or tensor.dtype.is_complex:
            return None
        if tensor.numel() == 0:
            return None
        x = tensor.float()                      # TorchIO's statistics are those of the float32 image
        if mask is not None:
            if not check_cpu(mask) or tuple(mask.shape) != tuple(x.shape):
                return None
            mask = mask.to(torch.bool)
        if mask is None and tuple(float(p) for p in self.percentiles) == (0.0, 100.0):
            # numpy's 0th and 100th percentiles are the minimum and maximum (NaN propagates).
            lo, hi = (float(v) for v in torch.aminmax(x.reshape(-1)))
            if not (math.isfinite(lo) and math.isfinite(hi)):
                return None
        else:
            stats = intensity_stats(x, mask=mask, percentiles=self.percentiles)
            lo, hi = (float(v) for v in stats["percentiles"])
            if stats["count"] == 0 or not (math.isfinite(stats["min"]) and math.isfinite(stats["max"])):
                return None
        if mask is not None and self.in_min_max is None and bool(torch.isnan(x).any()):
            return None                         # TorchIO's min/max of the clipped image would be NaN
        if self.in_min_max is None:
            # After clipping, TorchIO's min and max are the percentiles rounded to float32.
            in_min, in_max = float(np.float32(lo)), float(np.float32(hi))
        else:
            in_min, in_max = (float(v) for v in self.in_min_max)
        in_range = float(np.float32(in_max) - np.float32(in_min)) if self.in_min_max is None else in_max - in_min
        if in_range == 0 or not math.isfinite(in_range):
            return None
        out_range = float(self.out_max) - float(self.out_min)
        scale = out_range / in_range
        if not math.isfinite(scale):
            return None
        return window(x, lo, hi, in_min, scale, float(self.out_min))


class Clamp(tio.Clamp):
    """``tio.Clamp`` (``torch.clamp(out_min, out_max)``) on the compiled window pass.

    float32 CPU images with both bounds given run ``clamp(x, out_min, out_max)`` in one pass,
    bit-identical to ``torch.clamp`` (NaN stays NaN). Other dtypes, one-sided bounds and
    ``None`` bounds run TorchIO's code.
    """

    def clamp(self, tensor: torch.Tensor) -> torch.Tensor:
        lo, hi = self.out_min, self.out_max
        numbers = all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
                      for v in (lo, hi))
        if not (check_cpu(tensor) and tensor.dtype == torch.float32 and numbers):
            return super().clamp(tensor)
        with np.errstate(over="ignore"):
            lo32, hi32 = float(np.float32(lo)), float(np.float32(hi))
        if not (math.isfinite(lo32) and math.isfinite(hi32)) or lo32 > hi32:
            return super().clamp(tensor)
        # x - 0, * 1 and + (-0.0) are exact for every float (signed zeros included).
        return window(tensor, lo32, hi32, 0.0, 1.0, -0.0)


class ZNormalization(tio.ZNormalization):
    """``tio.ZNormalization`` without the masked copy and in one chunked pass.

    The statistics are TorchIO's (``torch`` float32 ``mean()`` and unbiased ``std()`` of the
    masked voxels; with no ``masking_method`` they are taken on the image itself, which torch
    reduces exactly as the flattened copy TorchIO makes), and ``(x - mean) / std`` runs in
    place on cache-sized float32 chunks: bit-identical. A zero std raises TorchIO's
    RuntimeError.
    """

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        for name, image, mask in _masks(self, subject):
            tensor = image.data
            if not check_cpu(tensor) or tensor.dtype == torch.bool or tensor.dtype.is_complex:
                if mask is None:
                    mask = self.get_mask_from_masking_method(None, subject, tensor)
                self.apply_normalization(subject, name, mask)
                continue
            x = tensor.float()
            values = x if mask is None else x[mask]
            mean, std = values.mean(), values.std()
            if std == 0:
                raise RuntimeError(f'Standard deviation is 0 for masked values in image "{name}" ({image.path})')

            def steps(t: torch.Tensor) -> None:
                t.sub_(mean).div_(std)

            image.set_data(chunked(x, steps))
        return subject
