"""Geometry (:class:`Meta`), the error type (:class:`DataError`) and image path names: what every part of
:mod:`medseg_fast.io` shares."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DataError", "Meta", "IMAGE_SUFFIXES", "is_image_path", "strip_suffix"]

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


class DataError(ValueError):
    """Bad user data (unreadable file, mismatched geometry, unknown label): the message names the file."""


@dataclass
class Meta:
    """Geometry of an image, in array axis order (z, y, x for 3-D).

    Attributes
    ----------
    spacing : tuple of float
        Voxel size in mm along each array axis.
    origin : tuple of float
        Physical position (mm) of the first voxel, components in array axis order (z, y, x).
    direction : numpy.ndarray
        ``(ndim, ndim)`` direction cosines in array axis order: column ``j`` is the physical direction of
        array axis ``j``. (ITK's matrix with rows and columns reversed.)
    extra : dict
        Free-form metadata kept alongside (e.g. ``{"source": path}``).
    """

    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spacing = tuple(float(s) for s in self.spacing)
        self.origin = tuple(float(o) for o in self.origin)
        self.direction = np.asarray(self.direction, dtype=np.float64).reshape(len(self.spacing), len(self.spacing))

    @classmethod
    def identity(cls, spacing: tuple[float, ...]) -> Meta:
        """Geometry with the given spacing, zero origin and identity direction."""
        n = len(spacing)
        return cls(tuple(spacing), (0.0,) * n, np.eye(n))

    @property
    def ndim(self) -> int:
        return len(self.spacing)

    @property
    def itk_spacing(self) -> tuple[float, ...]:
        return tuple(reversed(self.spacing))

    @property
    def itk_origin(self) -> tuple[float, ...]:
        return tuple(reversed(self.origin))

    @property
    def itk_direction(self) -> tuple[float, ...]:
        return tuple(float(v) for v in self.direction[::-1, ::-1].ravel())

    @classmethod
    def from_sitk(cls, image: Any) -> Meta:
        n = image.GetDimension()
        d = np.asarray(image.GetDirection(), dtype=np.float64).reshape(n, n)
        return cls(tuple(reversed(image.GetSpacing())), tuple(reversed(image.GetOrigin())), d[::-1, ::-1].copy())

    def apply_to(self, image: Any) -> None:
        """Set this geometry on a SimpleITK image."""
        image.SetSpacing(self.itk_spacing)
        image.SetOrigin(self.itk_origin)
        image.SetDirection(self.itk_direction)

    def to_dict(self) -> dict[str, Any]:
        return {"spacing": list(self.spacing), "origin": list(self.origin),
                "direction": self.direction.tolist(), "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Meta:
        return cls(tuple(d["spacing"]), tuple(d["origin"]), np.asarray(d["direction"]), dict(d.get("extra", {})))

    def same_geometry(self, other: Meta, tol: float = 1e-4) -> bool:
        """Spacing, origin and direction equal within ``tol`` (relative for spacing, mm for origin)."""
        return (self.ndim == other.ndim
                and np.allclose(self.spacing, other.spacing, rtol=tol, atol=0)
                and np.allclose(self.origin, other.origin, atol=max(tol, tol * max(map(abs, self.origin), default=0)))
                and np.allclose(self.direction, other.direction, atol=tol))


def is_image_path(path: str | os.PathLike) -> bool:
    """True for a path with a supported image suffix (a DICOM series is a folder instead)."""
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def strip_suffix(name: str) -> str:
    """``"case_0000.nii.gz"`` -> ``"case_0000"``."""
    low = name.lower()
    for s in IMAGE_SUFFIXES + (".dcm",):
        if low.endswith(s):
            return name[: -len(s)]
    return name


def _sitk():
    try:
        import SimpleITK as sitk
    except ImportError:  # pragma: no cover - SimpleITK is a pipeline dependency
        raise ImportError("medseg_fast.io needs SimpleITK: pip install SimpleITK") from None
    return sitk

