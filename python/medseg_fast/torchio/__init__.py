"""Drop-in replacements for TorchIO transforms and the grid aggregator, on medseg_fast's kernels.

Change ``tio.X`` to ``medseg_fast.torchio.X``: every class here subclasses the TorchIO class of the
same name (TorchIO >= 1.2), takes its constructor arguments with its defaults, works inside
``tio.Compose`` and on every input TorchIO accepts (Subject, Image, tensor, array, SimpleITK,
NiBabel, dict), keeps the image types, affines and history, applies to the same images
(``ScalarImage`` for intensity transforms, ``LabelMap`` for label transforms, ``include`` /
``exclude`` honoured) and never modifies its input. Where a case is not on the fast path the
class runs TorchIO's own code, so every option keeps working.

On our kernels (results equal TorchIO's; tolerances in each class's docstring):

- ``RescaleIntensity``: exact one-pass percentiles (:func:`medseg_fast.intensity_stats`) and one
  window pass (``clip, - in_min, * scale, + out_min``) on float images with finite values;
  agreement within 1e-6 of the output range (TorchIO divides and multiplies separately).
- ``Clamp``: float32 images with both bounds given, bit-identical.
- ``ZNormalization``: TorchIO's float32 mean/std without the masked copy when there is no mask,
  and one chunked pass; bit-identical.
- ``Resample`` to a spacing: whenever TorchIO's output grid (``floor(n * s / t)`` voxels, centred)
  is an exact zoom by ``n / m`` of the input grid per axis (e.g. 1 mm -> 0.5 mm, 2 mm, 0.25 mm),
  for ``linear`` (float32/float64 images) and ``nearest`` (integer images, unless the zoom puts
  sample points exactly half-way between voxels, as 2x downsampling does). Any affine (rotated
  too: the grid is the input's, rescaled per axis). The same for image / image-name /
  ``(shape, affine)`` targets whose grid is such a zoom of the image's (identical grids too).
  Within 1e-6 of the image's range.
- ``KeepLargestComponent``: compiled labelling, 6-connectivity, ITK's tie rule; bit-identical.
- ``RemoveSmallObjects`` (ours, TorchIO has none): per-class removal of small connected
  components on label maps.
- ``GridAggregator`` with ``overlap_mode='average'`` or ``'hann'`` and float32 batches: the
  compiled weighted scatter-add; within 1e-6 relative.

Delegated to TorchIO: masked/percentile edge cases that warn (empty mask, constant image),
non-finite intensity images, ``Resample`` of integer images with ``linear`` (ITK truncates to the
integer type), to a file-path target, with ``pre_affine_name`` or ``antialias``, to any grid that
is not an exact zoom (e.g. 0.7 mm -> 1 mm: our kernel has no free per-axis scale and offset),
2x-downsampling ``nearest`` (half-way ties), other interpolations (bspline, gaussian, sinc...);
``GridAggregator`` crop mode, non-float32 first batches, ``downsampling_factor != 1``.

TorchIO is imported when this subpackage is imported; ``import medseg_fast`` alone imports
neither torch nor TorchIO.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_WHERE = {
    "RescaleIntensity": "intensity", "Clamp": "intensity", "ZNormalization": "intensity",
    "Resample": "spatial",
    "KeepLargestComponent": "label", "RemoveSmallObjects": "label",
    "GridAggregator": "inference",
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
