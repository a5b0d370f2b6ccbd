"""TorchIO label-map transforms on the compiled connected-component labelling."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
import torchio as tio
from torchio.transforms.preprocessing.label.label_transform import LabelTransform

from .. import components as _cc
from ._common import check_cpu

__all__ = ["KeepLargestComponent", "RemoveSmallObjects"]

_INTEGER = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
_CONNECTIVITY = (6, 18, 26)


class KeepLargestComponent(tio.KeepLargestComponent):
    """``tio.KeepLargestComponent`` on the compiled run-based labelling, bit-identical.

    TorchIO labels the nonzero voxels of a one-channel label map with SimpleITK's
    ``ConnectedComponent`` (face connectivity: 6 in 3-D, 4 for ``(1, W, H, 1)`` images), keeps
    the largest component (``RelabelComponent``: of equal sizes, the one whose first voxel comes
    first in ITK's raster order, x fastest) and returns it as a ``uint8`` 0/1 map with the same
    affine. The same here, labelling the ``(D, H, W)`` view of the array so that raster order and
    ties are ITK's. Bool and integer CPU label maps take the fast path; other dtypes (SimpleITK
    refuses floats) and multi-channel maps run TorchIO's code and its errors.
    """

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        for image in self.get_images(subject):
            data = image.data
            if data.ndim != 4 or data.shape[0] != 1 or not check_cpu(data) or data.dtype not in _INTEGER:
                return super().apply_transform(subject)
        for image in self.get_images(subject):
            fg = (image.data[0] != 0).numpy()
            kept = _cc.largest_component(fg.T, connectivity=6)    # (D, H, W): ITK's raster order
            image.set_data(torch.from_numpy(np.ascontiguousarray(kept.T).view(np.uint8))[None])
        return subject


class RemoveSmallObjects(LabelTransform):
    """Remove the small connected components of each class of a label map (TorchIO has no such transform).

    Every label value other than ``background`` is labelled separately (a component is a
    connected region of one value), and components with fewer than ``min_size`` voxels (or a
    volume below ``min_size`` mm³ with ``units="mm3"``, from the image's spacing) are set to
    ``background``; components of exactly ``min_size`` stay. On
    :func:`medseg_fast.remove_small_components`, in one labelling pass for all classes. Applies
    to ``LabelMap`` images only (``include`` / ``exclude`` as in TorchIO); each channel is
    processed on its own; dtype, shape and affine are kept.

    Parameters
    ----------
    min_size : float
        Smallest size (voxels, or mm³) a component keeps, a finite number >= 0.
    connectivity : {6, 18, 26}
        Neighbours of a voxel: 6 (faces, ITK's and TorchIO's default), 18 or 26.
    units : {"voxels", "mm3"}
        Unit of ``min_size``.
    background : int
        The value that is not a class and that removed voxels take (default 0).
    kwargs
        See ``tio.Transform`` (``include``, ``exclude``, ``p``, ``copy``...).

    Examples
    --------
    >>> import torch, torchio as tio
    >>> from medseg_fast.torchio import RemoveSmallObjects
    >>> seg = tio.LabelMap(tensor=torch.tensor([[[[1], [0], [2], [2]]]]))
    >>> RemoveSmallObjects(min_size=2)(seg).data.flatten().tolist()
    [0, 0, 2, 2]
    """

    def __init__(self, min_size: float, connectivity: int = 6, units: str = "voxels", background: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(min_size, bool) or not isinstance(min_size, Real) or not math.isfinite(float(min_size)) \
                or min_size < 0:
            raise ValueError(f"min_size must be a finite number >= 0, got {min_size!r}")
        if isinstance(connectivity, bool) or not isinstance(connectivity, Integral) or connectivity not in _CONNECTIVITY:
            raise ValueError(f"connectivity must be one of {_CONNECTIVITY}, got {connectivity!r}")
        if units not in ("voxels", "mm3"):
            raise ValueError(f"units must be 'voxels' or 'mm3', got {units!r}")
        if isinstance(background, bool) or not isinstance(background, Integral):
            raise TypeError(f"background must be an integer, got {type(background).__name__}")
        self.min_size = min_size
        self.connectivity = int(connectivity)
        self.units = units
        self.background = int(background)
        self.args_names = ["min_size", "connectivity", "units", "background"]

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        for name, image in self.get_images_dict(subject).items():
            data = image.data
            if data.is_floating_point():
                if data.numel() and not bool(torch.all(data == torch.round(data))):
                    raise TypeError(f'label map "{name}" must hold integer values, got non-integer {data.dtype} values')
                labels = data.to(torch.int64)
            elif data.dtype in _INTEGER:
                labels = data
            else:
                raise TypeError(f'label map "{name}" must have an integer, bool or float dtype, got {data.dtype}')
            spacing = image.spacing if self.units == "mm3" else None
            arr = labels.detach().cpu().numpy()
            out = np.empty_like(arr)
            for c in range(arr.shape[0]):
                out[c] = _cc.remove_small_components(arr[c], float(self.min_size), spacing=spacing,
                                                     connectivity=self.connectivity, background=self.background)
            result = torch.from_numpy(out).to(data.dtype)
            image.set_data(result.to(data.device))
        return subject
