"""TorchIO ``Resample`` on the compiled resamplers: :func:`medseg_fast.resample` where TorchIO's grid is an
exact zoom of the input's, the per-axis affine kernel for other spacing targets."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sized
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torchio as tio
from torchio.data.io import get_rotation_and_spacing_from_affine, sitk_to_nib

from .._axis_resample import near_half_integer, resample_axes
from ..resampling import resample
from ._common import check_cpu

__all__ = ["Resample"]

# Largest |m * t - n * s| / (n * s) (per axis) for which TorchIO's grid counts as the exact zoom n / m:
# the sample positions then differ from ITK's by < 1e-9 voxel for any image size we can hold.
_ZOOM_TOL = 1e-13
_LINEAR_DTYPES = (torch.float32, torch.float64)
_NEAREST_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float32, torch.float64)


class Resample(tio.Resample):
    """``tio.Resample`` with TorchIO's output grid, on the compiled separable resampler when it is exact.

    TorchIO (SimpleITK) resamples to a spacing ``t`` on a grid of ``m = floor(n * s / t)`` voxels
    per axis (``n`` voxels of spacing ``s``), centred on the input's extent, with the input's
    direction; output voxel ``k`` reads input index ``(n - 1) / 2 + (k - (m - 1) / 2) * t / s``.
    :func:`medseg_fast.resample` reads ``(n - 1) / 2 + (k - (m - 1) / 2) * n / m`` (pixel centres
    aligned). The two are the same grid exactly when ``m * t == n * s`` on every axis of more
    than one voxel (``n * s`` a multiple of ``t``: e.g. 1 mm -> 0.5, 0.25 or 2 mm with an even
    size, 0.7 -> 0.35 mm), whatever the affine's rotation, since both grids are the input's
    rescaled along its own axes. Those cases run our kernel; the output affine is the input's
    composed with that per-axis zoom and shift (TorchIO's to rounding).

    On the fast path:

    - ``linear`` interpolation (``image_interpolation`` default) of float32/float64 images:
      ITK's trilinear weights with edge extension, as ours; ITK interpolates in double, ours in
      float32 for float32 images: within ``1e-6`` of the image's value range;
    - ``nearest`` (``label_interpolation`` default) of integer and float label maps or images,
      bit-identical, unless the zoom ``n / m`` written as a reduced fraction has an even
      numerator (2x, 4x, 2/3x downsampling...): then some sample points lie exactly half-way
      between two voxels, where ITK's choice depends on float rounding of its physical-point
      arithmetic, so those run TorchIO's code.

    Targets that are an image, an image name in the subject or ``(shape, affine)`` take the same
    path when that grid is exactly our kernel's zoom of the image's grid (output voxel ``k`` at
    input index ``(k + 0.5) * n / m - 0.5`` to 1e-9 voxel): identical grids (resampling label
    maps "to the image's space" when they are already there) and the 2x, 4x... finer or coarser
    grids centred like TorchIO's; the output affine is then the target's.

    Spacing targets whose grid is not an exact zoom (e.g. 0.7 mm -> 1 mm) run the per-axis
    affine kernel behind :class:`medseg_fast.monai.Spacing`: output voxel ``k`` at input index
    ``(n - 1) / 2 + (k - (m - 1) / 2) * t / s``, linear with edge clamping (every point of
    TorchIO's grid lies within half a voxel of the input, where ITK clamps too), computed in
    double and stored in the image's type as ITK does; nearest-neighbour grids with a point
    within 1e-6 of a half-integer, and int64 images, run TorchIO's code.

    Everything else runs TorchIO's own code (per image, same result, no speed-up): other target
    grids (shifted, rotated or non-integer zooms), file paths, ``pre_affine_name``, ``antialias``,
    other interpolations (``bspline``,
    ``gaussian``, sinc kernels...), bool and CUDA tensors, and integer images with ``linear``
    (e.g. int16 CTs as TorchIO loads them): ITK truncates its double result to the integer
    type, so where the exact value is an integer (flat regions) the last bits of ITK's
    physical-point arithmetic decide between two integers; our kernel in double matched ITK on
    every voxel for axis-aligned grids but differed by 1 on ~0.04% of voxels for a rotated one,
    so those stay on TorchIO's code. Images converted to float32 first
    (``image.set_data(image.data.float())``) take the fast path.
    """

    def _spacing_target(self) -> tuple[float, float, float] | None:
        target = self.target
        if isinstance(target, (str, Path, tio.Image)) or (isinstance(target, tuple) and len(target) == 2):
            return None
        if isinstance(target, (int, float)) or (isinstance(target, Sized) and isinstance(target, Iterable)
                                                and len(target) == 3):
            return self._parse_spacing(target)   # TorchIO's validation and errors
        return None

    def _grid_target(self, subject: tio.Subject) -> tuple[tuple[int, int, int], np.ndarray] | None:
        """(shape, affine) of an image / image-name / (shape, affine) target, as TorchIO reads it;
        None for anything else (paths included: TorchIO loads them itself) or anything odd."""
        target = self.target
        if isinstance(target, tio.Image):
            shape, affine = target.spatial_shape, target.affine
        elif isinstance(target, str) and not Path(target).is_file():
            try:
                image = subject.get_image(target)
            except KeyError:
                return None                        # TorchIO's ValueError
            shape, affine = image.spatial_shape, image.affine
        elif isinstance(target, tuple) and len(target) == 2 and isinstance(target[1], np.ndarray):
            shape, affine = target
            if not (isinstance(shape, Sized) and len(shape) == 3) or affine.shape != (4, 4):
                return None                        # TorchIO's RuntimeError
        else:
            return None
        try:
            shape = tuple(int(v) for v in shape)
        except (TypeError, ValueError):
            return None
        if any(v < 1 for v in shape) or not np.all(np.isfinite(affine)):
            return None
        return shape, np.asarray(affine, dtype=float)

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        if self.pre_affine_name is not None or self.antialias:
            return super().apply_transform(subject)
        spacing = self._spacing_target()
        grid = None if spacing is not None else self._grid_target(subject)
        if spacing is None and grid is None:
            return super().apply_transform(subject)
        named = subject.get_image(self.target) if isinstance(self.target, str) and grid is not None else None
        for image in self.get_images(subject):
            if self.target is image or named is image:
                continue                           # TorchIO leaves the reference as it is
            if not isinstance(image, tio.ScalarImage):
                if self.scalars_only:
                    continue
                interpolation = self.label_interpolation
            else:
                interpolation = self.image_interpolation
            if not self._fast(image, interpolation, spacing, grid):
                self._sitk(image, interpolation, subject)
        return subject

    def _sitk(self, image: tio.Image, interpolation: str, subject: tio.Subject) -> None:
        """TorchIO's resampling of one image to its target (its own methods, SimpleITK)."""
        floating = image.as_sitk(force_3d=True)
        resampler = self._get_resampler(self.get_sitk_interpolator(interpolation), floating, subject, self.target)
        array, affine = sitk_to_nib(resampler.Execute(floating))
        image.set_data(torch.as_tensor(array))
        image.affine = affine

    @staticmethod
    def _zoom_grid(shape, affine, spacing):
        """(m, new_affine) when TorchIO's grid for ``spacing`` is an exact zoom, else None."""
        grid = Resample._spacing_grid(shape, affine, spacing)
        if grid is None:
            return None
        m, new_affine, zoom, _ = grid
        for ni, mi, zi in zip(shape, m, zoom):   # m * t == n * s, with zoom = t / s
            if ni > 1 and abs(mi * zi - ni) > _ZOOM_TOL * ni:
                return None
        return m, new_affine

    @staticmethod
    def _matches_zoom(shape, affine, target_shape, target_affine):
        """(m, target_affine) when the target grid is our kernel's zoom of the image grid, else None:
        output voxel k must sit at input index (k + 0.5) * n / m - 0.5 (to 1e-9 voxel)."""
        n = np.asarray(shape, dtype=float)
        m = np.asarray(target_shape, dtype=float)
        try:
            index = np.linalg.solve(affine, target_affine)    # target index -> input index
        except np.linalg.LinAlgError:
            return None
        expected = np.eye(4)
        expected[:3, :3] = np.diag(n / m)
        expected[:3, 3] = (n / m - 1) / 2
        expected[:3, 3][n == 1] = 0.0
        expected[:3, :3][np.diag(n == 1)] = index[:3, :3][np.diag(n == 1)]   # size-1 axes: any spacing
        err = np.abs(index - expected)
        # A wrong coefficient moves the far corner by err * m voxels.
        if np.max(err[:3, :3] * m[None, :]) > 1e-9 or np.max(err[:3, 3]) > 1e-9 or np.any(err[3] > 1e-12):
            return None
        return tuple(int(v) for v in target_shape), np.array(target_affine, dtype=float)

    @staticmethod
    def _spacing_grid(shape, affine, spacing):
        """TorchIO's grid for ``spacing`` as (m, new_affine, scales, offsets): output voxel k of
        axis a reads input index offsets[a] + scales[a] * k; None for an empty grid."""
        _, old = get_rotation_and_spacing_from_affine(affine)
        old = np.asarray(old, dtype=float)
        new = np.asarray(spacing, dtype=float)
        n = np.asarray(shape)
        m = np.floor(n * old / new)                 # TorchIO's get_reference_image
        m[n == 1] = 1
        if np.any(m < 1):
            return None
        m = m.astype(int)
        zoom = new / old                           # input index step per output voxel
        shift = (n - 1) / 2.0 - (m - 1) / 2.0 * zoom   # 0 on size-1 axes
        out = np.eye(4)
        out[:3, :3] = affine[:3, :3] * zoom
        out[:3, 3] = affine[:3, 3] + affine[:3, :3] @ shift
        return tuple(int(v) for v in m), out, [float(v) for v in zoom], [float(v) for v in shift]

    def _fast_mapped(self, image: tio.Image, data: torch.Tensor, affine: np.ndarray, order: int, spacing) -> bool:
        """Spacing targets that are not an exact zoom: the per-axis affine sampling kernel. ITK
        samples every point of TorchIO's grid inside [-0.5, n - 0.5] (the grid is centred and no
        longer than the input), where its linear interpolation clamps to the edge as ours does;
        it computes in double and stores in the image's type, as we do here. Nearest-neighbour
        grids with a point within 1e-6 of a half-integer (ITK's rounding decides) and integer
        types beyond 32 bits run TorchIO's code."""
        if data.dtype == torch.int64:
            return False
        grid = self._spacing_grid(tuple(data.shape[1:]), affine, spacing)
        if grid is None:
            return False
        m, new_affine, scales, offsets = grid
        for ni, mi, sc, of in zip(data.shape[1:], m, scales, offsets):
            if min(of, of + sc * (mi - 1)) < -0.5 or max(of, of + sc * (mi - 1)) > ni - 0.5:
                return False
            if order == 0 and near_half_integer(of, sc, mi):
                return False
        if order == 1:
            lo, hi = torch.aminmax(data)
            if not (math.isfinite(float(lo)) and math.isfinite(float(hi))):
                return False
        x = data.detach().numpy()
        image.set_data(torch.from_numpy(resample_axes(x, m, scales, offsets, order).astype(x.dtype)))
        image.affine = new_affine
        return True

    def _fast(self, image: tio.Image, interpolation: str, spacing, grid=None) -> bool:
        data = image.data
        if not check_cpu(data) or data.ndim != 4 or data.numel() == 0:
            return False
        if interpolation == "linear":
            if data.dtype not in _LINEAR_DTYPES:
                return False
            order = 1
        elif interpolation == "nearest":
            if data.dtype not in _NEAREST_DTYPES:
                return False
            order = 0
        else:
            return False
        affine = np.asarray(image.affine, dtype=float)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            return False
        if spacing is not None:
            zoom = self._zoom_grid(tuple(data.shape[1:]), affine, spacing)
        else:
            zoom = self._matches_zoom(tuple(data.shape[1:]), affine, *grid)
        if zoom is None:
            return spacing is not None and self._fast_mapped(image, data, affine, order, spacing)
        m, new_affine = zoom
        n = tuple(data.shape[1:])
        if order == 0 and any(ni > 1 and Fraction(ni, mi).numerator % 2 == 0 for ni, mi in zip(n, m)):
            return False                           # half-way sample points: ITK's rounding decides
        if order == 1:
            lo, hi = torch.aminmax(data)           # NaN propagates: one cheap pass
            if not (math.isfinite(float(lo)) and math.isfinite(float(hi))):
                return False                       # ITK's double arithmetic spreads inf/NaN differently
        out = resample(data, m, order=order, clip=False)
        image.set_data(out)
        image.affine = new_affine
        return True
